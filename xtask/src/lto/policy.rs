//! Policy: apply the per-unit LTO policy of `kernel-manifest` to the planned
//! compile commands, and prove afterwards that every object came out as the
//! policy says (bitcode or native ELF, by magic).

use std::{
    collections::{BTreeMap, BTreeSet},
    fs::File,
    io::Read,
    path::Path,
};

use anyhow::Result;
use kernel_manifest::{Origin, Policy};
use serde::Serialize;

use crate::kbuild::{Step, StepKind};

/// What an object is, as far as LTO is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    /// C compiled for the kernel: bitcode under LTO unless opted out.
    C,
    /// Assembly: always native code.
    Assembly,
    /// A single-object module that Kbuild links with `ld -r` right after
    /// compiling it, which runs LTO: native on disk although LTO'd.
    SelfLinkedModule,
}

impl ObjectKind {
    fn of(step: &Step) -> ObjectKind {
        if step.kind == StepKind::CompileAsm {
            ObjectKind::Assembly
        } else if step.command.contains(&format!(
            " -r -o {} {}",
            tmp_target(&step.output),
            step.output
        )) {
            ObjectKind::SelfLinkedModule
        } else {
            ObjectKind::C
        }
    }
}

/// What the build decided for one object.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct Decision {
    pub object: String,
    pub kind: ObjectKind,
    /// The policy: compiled for the LTO link.
    pub lto: bool,
    /// The format the object must have on disk. Equal to `lto` except for
    /// single-object modules, which Kbuild LTOs on its own with `ld -r`
    /// right after compiling them, so they end up native.
    pub bitcode: bool,
    pub source: String,
    pub reason: String,
}

/// Where a unit's policy comes from, as the `units` table prints it.
pub const KBUILD_SOURCE: &str = "kbuild-makefile";
const DEFAULT_SOURCE: &str = "default";

/// Rewrites the compile steps of opted-out objects and returns every object's decision.
///
/// `lto_flags` is this build's `CC_FLAGS_LTO` (`-flto=thin -fsplit-lto-unit
/// -fvisibility=hidden`); Kbuild's own opt-outs filter exactly that, leaving
/// `-fno-lto` to win, and so do we. The rewrite covers the command and the copy
/// fixdep records in the `.cmd` file, so Kbuild's state tells the truth.
pub fn apply(steps: &mut [Step], policy: &Policy, lto_flags: Option<&str>) -> Vec<Decision> {
    let mut decisions = Vec::new();
    for step in steps
        .iter_mut()
        .filter(|s| s.is_compile() && s.output.ends_with(".o"))
    {
        let rule = policy.rule_for(&step.output);
        let decision = match (lto_flags, rule) {
            (None, Some(rule)) => Decision {
                object: step.output.clone(),
                kind: ObjectKind::of(step),
                lto: false,
                bitcode: false,
                source: origin(&rule.origin),
                reason: format!("{} (LTO is off for the whole build)", rule.reason),
            },
            (None, None) => decision(
                step,
                false,
                DEFAULT_SOURCE,
                "LTO is off for the whole build",
            ),
            (Some(_), None) if ObjectKind::of(step) == ObjectKind::Assembly => decision(
                step,
                false,
                DEFAULT_SOURCE,
                "assembly is always native code",
            ),
            (Some(flags), rule) => {
                let block = format!(" {flags}");
                let kbuild_lto =
                    step.command.contains(&block) && ObjectKind::of(step) != ObjectKind::Assembly;
                match rule {
                    Some(rule) => {
                        let source = if kbuild_lto {
                            step.command = step.command.replace(&block, "");
                            origin(&rule.origin)
                        } else {
                            format!("{}+{KBUILD_SOURCE}", origin(&rule.origin))
                        };
                        let kind = ObjectKind::of(step);
                        Decision {
                            object: step.output.clone(),
                            kind,
                            lto: false,
                            bitcode: false,
                            source,
                            reason: rule.reason.clone(),
                        }
                    }
                    None if kbuild_lto => decision(
                        step,
                        true,
                        DEFAULT_SOURCE,
                        "LTO'd like the rest of the kernel",
                    ),
                    None => decision(
                        step,
                        false,
                        KBUILD_SOURCE,
                        "Kbuild's Makefile filters $(CC_FLAGS_LTO) here",
                    ),
                }
            }
        };
        if decision.bitcode && !step.inputs.iter().any(|i| i == AUTOCONF_SIZE) {
            step.inputs.push(AUTOCONF_SIZE.into());
        }
        decisions.push(decision);
    }
    decisions
}

/// The size of `autoconf.h`, an input of every bitcode object. fixdep drops
/// `autoconf.h` from every dependency list (a symbol's users depend on its
/// `include/config/` file instead), but every C file includes it first, so
/// its length moves the source offsets clang records for inline assembly
/// (`!srcloc`). In bitcode those offsets are bytes of the module, whose hash
/// names every local symbol ThinLTO promotes (`foo.llvm.<hash>`): without this
/// input, flipping any symbol would leave `vmlinux`'s symbol table different
/// from a clean build's. ELF objects carry no `!srcloc`.
pub const AUTOCONF_SIZE: &str = "size:include/generated/autoconf.h";

fn decision(step: &Step, lto: bool, source: &str, reason: &str) -> Decision {
    let kind = ObjectKind::of(step);
    let bitcode = lto && kind == ObjectKind::C;
    Decision {
        object: step.output.clone(),
        kind,
        lto,
        bitcode,
        source: source.into(),
        reason: reason.into(),
    }
}

/// Kbuild's `$(tmp-target)`: `dir/.tmp_name`.
fn tmp_target(output: &str) -> String {
    match output.rsplit_once('/') {
        Some((dir, name)) => format!("{dir}/.tmp_{name}"),
        None => format!(".tmp_{output}"),
    }
}

pub fn origin(origin: &Origin) -> String {
    match origin {
        Origin::Manifest => "manifest".into(),
        Origin::CommandLine => "--lto-off".into(),
        Origin::Overlay { file, line } => format!("{}:{line}", file.display()),
    }
}

/// The format of an object file, by magic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Bitcode,
    Elf,
    Other,
    Missing,
}

pub fn format_of(path: &Path) -> Format {
    let mut magic = [0u8; 4];
    let Ok(mut file) = File::open(path) else {
        return Format::Missing;
    };
    if file.read_exact(&mut magic).is_err() {
        return Format::Other;
    }
    match magic {
        [b'B', b'C', 0xC0, 0xDE] | [0xDE, 0xC0, 0x17, 0x0B] => Format::Bitcode,
        [0x7F, b'E', b'L', b'F'] => Format::Elf,
        _ => Format::Other,
    }
}

/// Whether a unit's C objects, or one object, are LTO'd: `on` or `off` in
/// the report and in `cargo xtask units`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LtoState {
    On,
    Off,
}

impl From<bool> for LtoState {
    fn from(lto: bool) -> LtoState {
        if lto {
            LtoState::On
        } else {
            LtoState::Off
        }
    }
}

impl std::fmt::Display for LtoState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            LtoState::On => "on",
            LtoState::Off => "off",
        })
    }
}

/// One unit (directory) in the report.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct Unit {
    pub path: String,
    pub objects: usize,
    /// The majority of its C objects; the others are `exceptions`.
    pub lto: LtoState,
    pub source: String,
    pub reason: String,
    pub bitcode: usize,
    pub elf: usize,
    /// Objects whose decision differs from the unit's.
    pub exceptions: Vec<Decision>,
}

/// Checks every object against its decision; returns the units and the mismatches.
pub fn verify(objtree: &Path, decisions: &[Decision]) -> (Vec<Unit>, Vec<String>) {
    let mut by_unit: BTreeMap<String, Vec<(&Decision, Format)>> = BTreeMap::new();
    let mut wrong = Vec::new();
    for d in decisions {
        let format = format_of(&objtree.join(&d.object));
        let expected = if d.bitcode {
            Format::Bitcode
        } else {
            Format::Elf
        };
        if format != expected {
            wrong.push(format!(
                "{}: expected {expected:?} ({}), found {format:?}",
                d.object, d.source
            ));
        }
        let unit = d
            .object
            .rsplit_once('/')
            .map_or("", |(dir, _)| dir)
            .to_string();
        by_unit.entry(unit).or_default().push((d, format));
    }
    let units = by_unit
        .into_iter()
        .map(|(path, objs)| {
            // The unit's verdict is its C objects' majority; the rest are exceptions.
            let lto_on = objs.iter().filter(|(d, _)| d.lto).count();
            let c_objs: Vec<_> = objs
                .iter()
                .filter(|(d, _)| d.kind != ObjectKind::Assembly)
                .collect();
            let on = lto_on * 2 > c_objs.len() && lto_on > 0;
            let representative = c_objs
                .iter()
                .find(|(d, _)| d.lto == on)
                .or(c_objs.first())
                .map(|(d, _)| *d);
            let representative = representative.unwrap_or(objs[0].0);
            let exceptions = c_objs
                .iter()
                .filter(|(d, _)| d.lto != on)
                .map(|(d, _)| (*d).clone())
                .collect();
            Unit {
                objects: objs.len(),
                lto: on.into(),
                source: representative.source.clone(),
                reason: representative.reason.clone(),
                bitcode: objs.iter().filter(|(_, f)| *f == Format::Bitcode).count(),
                elf: objs.iter().filter(|(_, f)| *f == Format::Elf).count(),
                exceptions,
                path,
            }
        })
        .collect();
    (units, wrong)
}

/// Directories that hold at least one compiled kernel object, for validating rules.
pub fn built_units(steps: &[Step]) -> BTreeSet<String> {
    steps
        .iter()
        .filter(|s| s.is_compile())
        .map(|s| s.dir().to_string())
        .collect()
}

/// The policy for a build: the shipped manifest plus the user's overrides.
pub fn load(
    arch: kernel_manifest::Arch,
    lto_off: &[String],
    overlays: &[std::path::PathBuf],
) -> Result<Policy> {
    let mut policy = Policy::upstream(arch);
    for overlay in overlays {
        policy.add_overlay(overlay)?;
    }
    for spec in lto_off {
        policy.add_command_line(spec)?;
    }
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    const LTO: &str = "-flto=thin -fsplit-lto-unit -fvisibility=hidden";

    fn compile(output: &str, lto: bool) -> Step {
        let flags = if lto {
            format!("-fno-lto {LTO} -falign-functions=16")
        } else {
            "-fno-lto -falign-functions=16".into()
        };
        let cc = format!("clang -Os {flags} -c -o {output} src.c");
        Step::new("CC", false, output, &format!("set -e; echo '  CC      {output}'; {cc} ; scripts/basic/fixdep d {output} '{cc}' > x.cmd"))
    }

    #[test]
    fn opt_outs_strip_exactly_the_lto_flags_from_command_and_record() {
        let mut policy = Policy::upstream(kernel_manifest::Arch::X86_64);
        policy.add_command_line("kernel/time").unwrap();
        let mut steps = vec![
            compile("kernel/time/ntp.o", true),
            compile("kernel/fork.o", true),
            compile("arch/x86/entry/vdso/vgetcpu.o", false),
        ];
        let decisions = apply(&mut steps, &policy, Some(LTO));
        assert!(
            !steps[0].command.contains("-flto=thin"),
            "{}",
            steps[0].command
        );
        assert_eq!(
            steps[0]
                .command
                .matches("-fno-lto -falign-functions=16")
                .count(),
            2,
            "command and fixdep record both rewritten"
        );
        assert!(steps[1].command.contains(LTO));
        let by_object = |o: &str| decisions.iter().find(|d| d.object == o).unwrap();
        assert_eq!(
            (
                by_object("kernel/time/ntp.o").lto,
                by_object("kernel/time/ntp.o").source.as_str()
            ),
            (false, "--lto-off")
        );
        assert_eq!(
            (
                by_object("kernel/fork.o").lto,
                by_object("kernel/fork.o").source.as_str()
            ),
            (true, "default")
        );
        assert_eq!(
            by_object("arch/x86/entry/vdso/vgetcpu.o").source,
            "manifest+kbuild-makefile"
        );
        // Only the bitcode object's key covers autoconf.h's size.
        let sized: Vec<bool> = steps
            .iter()
            .map(|s| s.inputs.iter().any(|i| i == AUTOCONF_SIZE))
            .collect();
        assert_eq!(sized, [false, true, false]);
    }

    #[test]
    fn an_objects_kind_is_a_field_assembly_and_self_linked_modules_are_native() {
        let policy = Policy::upstream(kernel_manifest::Arch::X86_64);
        let asm = Step::new(
            "AS",
            false,
            "kernel/entry.o",
            "set -e; clang -D__ASSEMBLY__ -c -o kernel/entry.o entry.S",
        );
        let module = Step::new("CC", true, "lib/test_module.o", &format!("set -e; clang {LTO} -c -o lib/test_module.o x.c; ld.lld -r -o lib/.tmp_test_module.o lib/test_module.o"));
        let mut steps = vec![asm, module, compile("kernel/fork.o", true)];
        let decisions = apply(&mut steps, &policy, Some(LTO));
        let kinds: Vec<(ObjectKind, bool, bool)> = decisions
            .iter()
            .map(|d| (d.kind, d.lto, d.bitcode))
            .collect();
        assert_eq!(
            kinds,
            [
                (ObjectKind::Assembly, false, false),
                (ObjectKind::SelfLinkedModule, true, false),
                (ObjectKind::C, true, true)
            ]
        );
    }

    #[test]
    fn without_lto_nothing_is_stripped_but_the_policy_is_reported() {
        let policy = Policy::upstream(kernel_manifest::Arch::X86_64);
        let mut steps = vec![compile("arch/x86/entry/vdso/vgetcpu.o", false)];
        let before = steps[0].command.clone();
        let decisions = apply(&mut steps, &policy, None);
        assert_eq!(steps[0].command, before);
        assert_eq!(decisions[0].source, "manifest");
        assert!(decisions[0]
            .reason
            .contains("LTO is off for the whole build"));
    }

    /// Real objects from the real compiler: `-flto=thin` and `-flto` give
    /// bitcode (ThinLTO's in the wrapper-less form), no LTO gives ELF.
    #[test]
    fn formats_are_told_apart_by_magic() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("unit.c");
        std::fs::write(&source, "int answer(void) { return 42; }\n").unwrap();
        let clang = "/usr/lib/llvm-19/bin/clang";
        let object = |name: &str, flags: &[&str]| -> PathBuf {
            let out = dir.path().join(name);
            let status = std::process::Command::new(clang)
                .args(["--target=x86_64-linux-gnu", "-c", "-o"])
                .arg(&out)
                .args(flags)
                .arg(&source)
                .status()
                .unwrap_or_else(|e| {
                    panic!("{clang}: {e}; install it with: apt-get install clang-19")
                });
            assert!(status.success());
            out
        };
        assert_eq!(
            format_of(&object("thin.o", &["-flto=thin"])),
            Format::Bitcode
        );
        assert_eq!(format_of(&object("full.o", &["-flto"])), Format::Bitcode);
        assert_eq!(format_of(&object("native.o", &["-fno-lto"])), Format::Elf);
        assert_eq!(
            format_of(&object("off.o", &["-fno-lto", "-flto=thin", "-fno-lto"])),
            Format::Elf
        );
        std::fs::write(dir.path().join("archive.a"), b"!<arch>\n").unwrap();
        assert_eq!(format_of(&dir.path().join("archive.a")), Format::Other);
        assert_eq!(format_of(&dir.path().join("missing.o")), Format::Missing);
    }
}
