//! Link: what Kbuild's `scripts/generate_initcall_order.pl` and
//! `scripts/link-vmlinux.sh` do, performed by the xtask itself: the initcall
//! order, the kallsyms passes, the final link, System.map, sorttable and the
//! x86 relocation table. `vmlinux.o` (the LTO link plus objtool) and modpost
//! run as planned steps, with the flags Kbuild prints for them.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::kconfig::DotConfig;

/// One initcall, in the order the LTO link will place it.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Initcall {
    pub level: String,
    pub function: String,
    /// The section name suffix: `<module>__<counter>_<line>_<function>`.
    pub section: String,
}

/// Reads the initcalls of each archive member in link order, as
/// `generate_initcall_order.pl` does: LTO may reorder initcalls within a level,
/// so the link script pins them to the order of the archives.
pub fn initcall_order(objtree: &Path, nm: &Path, archives: &[&str]) -> Result<Vec<Initcall>> {
    let mut order = Vec::new();
    for archive in archives {
        let out = Command::new(nm)
            .arg("--defined-only")
            .arg(archive)
            .current_dir(objtree)
            .output()
            .with_context(|| format!("running {}", nm.display()))?;
        if !out.status.success() {
            bail!("{} --defined-only {archive} failed: {}", nm.display(), String::from_utf8_lossy(&out.stderr));
        }
        order.extend(parse_nm_initcalls(&String::from_utf8_lossy(&out.stdout))?);
    }
    if order.is_empty() {
        bail!("no initcalls found in {}", archives.join(" "));
    }
    Ok(order)
}

/// Within one object, initcalls are ordered by their `__COUNTER__`.
fn parse_nm_initcalls(nm_output: &str) -> Result<Vec<Initcall>> {
    let mut all = Vec::new();
    let mut member: BTreeMap<u64, Initcall> = BTreeMap::new();
    for line in nm_output.lines() {
        if line.ends_with(':') {
            all.extend(std::mem::take(&mut member).into_values());
            continue;
        }
        let Some(name) = line.split_whitespace().nth(2).or_else(|| line.split_whitespace().nth(1)) else {
            continue;
        };
        let Some(rest) = name.strip_prefix("__initcall__") else { continue };
        // <module>__<counter>_<line>_<function><level>
        let Some((module, tail)) = rest.rsplit_once("__") else { continue };
        let mut parts = tail.splitn(3, '_');
        let (Some(counter), Some(src_line), Some(symbol)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let (Ok(counter), true) = (counter.parse::<u64>(), src_line.chars().all(|c| c.is_ascii_digit())) else {
            continue;
        };
        let (function, level) = split_level(symbol)
            .with_context(|| format!("invalid initcall name {symbol}"))?;
        member.insert(
            counter,
            Initcall {
                level: level.into(),
                function: function.into(),
                section: format!("{module}__{counter}_{src_line}_{function}"),
            },
        );
    }
    all.extend(member.into_values());
    Ok(all)
}

/// `foo_init6s` -> (`foo_init`, `6s`). As in the Perl original the function
/// name is greedy, so the shortest level suffix wins (`populate_rootfsrootfs`).
fn split_level(symbol: &str) -> Option<(&str, &str)> {
    let is_level = |l: &str| matches!(l, "early" | "rootfs" | "con") || (l.len() == 1 && l.as_bytes()[0].is_ascii_digit());
    (1..=symbol.len().min(7))
        .map(|n| symbol.len() - n)
        .filter(|&i| symbol.is_char_boundary(i))
        .find(|&i| {
            let level = &symbol[i..];
            is_level(level) || level.strip_suffix('s').is_some_and(is_level)
        })
        .map(|i| (&symbol[..i], &symbol[i..]))
}

/// The linker script that pins the order, byte-compatible with Kbuild's.
pub fn initcall_lds(order: &[Initcall]) -> String {
    let mut levels: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for call in order {
        levels.entry(&call.level).or_default().push(&call.section);
    }
    let mut lds = String::from("SECTIONS {\n");
    for (level, sections) in levels {
        let section = if level == "con" { ".con_initcall.init".to_string() } else { format!(".initcall{level}.init") };
        lds += &format!("\t{section} : {{\n");
        for name in sections {
            lds += &format!("\t\t*({section}..{name}) ;\n");
        }
        lds += "\t}\n";
    }
    lds + "}\n"
}

/// Writes `.tmp_initcalls.lds` and `initcalls.json` (for the boot proof).
pub fn write_initcalls(objtree: &Path, nm: &Path, archives: &[&str]) -> Result<()> {
    let order = initcall_order(objtree, nm, archives)?;
    fs::write(objtree.join(".tmp_initcalls.lds"), initcall_lds(&order))?;
    crate::fs_atomic::write_json(&objtree.join("initcalls.json"), &order)
}

/// Runs one link command in the object tree with Kbuild's environment; a
/// failure names the command and shows what it printed.
pub fn sh(objtree: &Path, env: &BTreeMap<String, String>, command: &str) -> Result<()> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(objtree)
        .env_clear()
        .envs(env)
        .output()
        .context("running sh")?;
    if !out.status.success() {
        bail!(
            "link step failed\n  command: {command}\n--- output ---\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// The inputs of `link-vmlinux.sh`, from the environment Kbuild exports.
pub struct VmlinuxLink<'a> {
    pub objtree: &'a Path,
    pub env: &'a BTreeMap<String, String>,
    pub config: &'a DotConfig,
}

impl VmlinuxLink<'_> {
    fn var(&self, name: &str) -> &str {
        self.env.get(name).map(String::as_str).unwrap_or("")
    }

    fn enabled(&self, symbol: &str) -> bool {
        self.config.get(symbol) == Some("y")
    }

    fn sh(&self, command: &str) -> Result<()> {
        sh(self.objtree, self.env, command)
    }

    /// `vmlinux_link` of link-vmlinux.sh.
    fn link(&self, output: &str, kallsyms: Option<&str>, strip_debug: bool) -> Result<()> {
        let lto_or_ibt = self.enabled("LTO_CLANG") || self.enabled("X86_KERNEL_IBT");
        let (mut objs, libs) = if lto_or_ibt {
            ("vmlinux.o".to_string(), String::new())
        } else {
            ("vmlinux.a".to_string(), self.var("KBUILD_VMLINUX_LIBS").to_string())
        };
        if self.enabled("MODULES") {
            objs += " .vmlinux.export.o";
        }
        objs += " init/version-timestamp.o";
        let mut ldflags = format!(
            "{} {} --script={}/{}",
            self.var("KBUILD_LDFLAGS"),
            self.var("XTASK_LDFLAGS_vmlinux"),
            self.var("objtree"),
            self.var("KBUILD_LDS")
        );
        if strip_debug {
            ldflags += " --strip-debug";
        }
        if self.enabled("VMLINUX_MAP") {
            ldflags += &format!(" -Map={output}.map");
        }
        self.sh(&format!(
            "{} {ldflags} -o {output} --whole-archive {objs} --no-whole-archive --start-group {libs} --end-group {}",
            self.var("LD"),
            kallsyms.unwrap_or("")
        ))
    }

    /// `kallsyms` of link-vmlinux.sh: symbols in, assembled table out.
    fn kallsyms(&self, syms: &str, out: &str) -> Result<String> {
        let mut opts = String::new();
        if self.enabled("KALLSYMS_ALL") {
            opts += " --all-symbols";
        }
        if self.enabled("KALLSYMS_ABSOLUTE_PERCPU") {
            opts += " --absolute-percpu";
        }
        self.sh(&format!("scripts/kallsyms{opts} {syms} > {out}.S"))?;
        self.sh(&format!(
            "{} {} {} {} {} {} -c -o {out}.o {out}.S",
            self.var("CC"),
            self.var("NOSTDINC_FLAGS"),
            self.var("LINUXINCLUDE"),
            self.var("KBUILD_CPPFLAGS"),
            self.var("KBUILD_AFLAGS"),
            self.var("KBUILD_AFLAGS_KERNEL")
        ))?;
        Ok(format!("{out}.o"))
    }

    fn mksysmap(&self, input: &str, output: &str) -> Result<()> {
        self.sh(&format!("{} -n {input} | sed -f {}/scripts/mksysmap > {output}", self.var("NM"), self.var("srctree")))
    }

    /// The whole of link-vmlinux.sh (BTF is not supported: no pahole here).
    pub fn run(&self) -> Result<()> {
        if self.enabled("DEBUG_INFO_BTF") {
            bail!("CONFIG_DEBUG_INFO_BTF is not supported by the native link; disable it");
        }
        let mut kallsymso: Option<String> = None;
        let mut sysmap = String::new();
        if self.enabled("KALLSYMS") {
            fs::write(self.objtree.join(".tmp_vmlinux.kallsyms0.syms"), "")?;
            kallsymso = Some(self.kallsyms(".tmp_vmlinux.kallsyms0.syms", ".tmp_vmlinux0.kallsyms")?);
            let mut previous_size = None;
            for pass in 1..=3 {
                let tmp = format!(".tmp_vmlinux{pass}");
                self.link(&tmp, kallsymso.as_deref(), true)?;
                sysmap = format!("{tmp}.syms");
                self.mksysmap(&tmp, &sysmap)?;
                let previous = kallsymso.take();
                let current = self.kallsyms(&sysmap, &format!("{tmp}.kallsyms"))?;
                let size = fs::metadata(self.objtree.join(&current))?.len();
                let same = pass >= 2
                    && previous_size == Some(size)
                    && self.symbols(previous.as_deref().unwrap_or(""))? == self.symbols(&current)?;
                previous_size = Some(size);
                kallsymso = Some(current);
                if same {
                    break;
                }
            }
        } else if self.enabled("DEBUG_INFO_BTF") {
            self.link(".tmp_vmlinux1", None, false)?;
        }
        self.link("vmlinux", kallsymso.as_deref(), false)?;
        self.mksysmap("vmlinux", "System.map")?;
        if self.enabled("BUILDTIME_TABLE_SORT") {
            self.sh(&format!("{} -S vmlinux > .tmp_vmlinux.nm-sort", self.var("NM")))?;
            self.sh("scripts/sorttable -s .tmp_vmlinux.nm-sort vmlinux")?;
        }
        if self.enabled("KALLSYMS")
            && fs::read(self.objtree.join("System.map"))? != fs::read(self.objtree.join(&sysmap))?
        {
            bail!("inconsistent kallsyms data: System.map differs from {sysmap}");
        }
        if self.var("SRCARCH") == "x86" && self.enabled("X86_NEED_RELOCS") {
            self.sh("mkdir -p arch/x86/boot/compressed; arch/x86/tools/relocs vmlinux > arch/x86/boot/compressed/vmlinux.relocs; arch/x86/tools/relocs --abs-relocs vmlinux")?;
            self.sh(&format!(
                "{} --remove-section='.rel.*' --remove-section='.rel__*' --remove-section='.rela.*' --remove-section='.rela__*' vmlinux",
                self.var("OBJCOPY")
            ))?;
        }
        fs::write(self.objtree.join(".vmlinux.d"), "vmlinux: scripts/link-vmlinux.sh\n")?;
        Ok(())
    }

    fn symbols(&self, object: &str) -> Result<Vec<u8>> {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("{} -n {object}", self.var("NM")))
            .current_dir(self.objtree)
            .envs(self.env)
            .output()?;
        Ok(out.stdout)
    }
}

/// The artifacts a build produces, relative to the object tree.
pub fn artifacts(objtree: &Path, arch: crate::target::Arch) -> Vec<PathBuf> {
    let mut list = vec![PathBuf::from("vmlinux"), PathBuf::from("System.map")];
    match arch {
        crate::target::Arch::X86_64 => list.push("arch/x86/boot/bzImage".into()),
        crate::target::Arch::Arm64 => list.push("arch/arm64/boot/Image".into()),
    }
    list.retain(|p| objtree.join(p).exists());
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initcalls_follow_member_order_then_counter() {
        let nm = "vmlinux.a:\n\ninit/main.o:\n\
0000000000000008 d __initcall__kmod_main__300_1200_second_init6\n\
0000000000000000 d __initcall__kmod_main__299_1100_first_initearly\n\
00000000 T not_an_initcall\n\
kernel/fork.o:\n\
0000000000000000 d __initcall__kmod_fork__512_3300_fork_init1s\n\
init/initramfs.o:\n\
0000000000000000 d __initcall__kmod_initramfs__9_755_populate_rootfsrootfs\n\
drivers/tty/vt.o:\n\
0000000000000000 d __initcall__kmod_vt__7_10_con_initcon\n";
        let calls = parse_nm_initcalls(nm).unwrap();
        let names: Vec<_> = calls.iter().map(|c| (c.level.as_str(), c.function.as_str())).collect();
        assert_eq!(names, [("early", "first_init"), ("6", "second_init"), ("1s", "fork_init"), ("rootfs", "populate_rootfs"), ("con", "con_init")]);
        let lds = initcall_lds(&calls);
        assert!(lds.contains("\t.con_initcall.init : {\n\t\t*(.con_initcall.init..kmod_vt__7_10_con_init) ;\n"), "{lds}");
        assert!(lds.contains(".initcall1s.init..kmod_fork__512_3300_fork_init) ;"), "{lds}");
        let level_order: Vec<_> = lds.lines().filter(|l| l.ends_with(": {")).collect();
        assert_eq!(level_order.len(), 5);
        assert!(level_order[0].contains("initcall1s") && level_order[4].contains("initcallrootfs"), "{lds}");
    }
}
