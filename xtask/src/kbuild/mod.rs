//! Kbuild, the kernel's language: the only module that starts `make`. It is
//! asked to configure, to print its release and its exported environment,
//! and to print plans with `-n`; it never builds an object for the xtask (only
//! `cargo xtask bench` has Kbuild build its own tree, to compare). Always under
//! `LC_ALL=C`, because the expected stop of a dry run is recognised by make's own words.

use std::{
    collections::BTreeMap,
    ffi::OsString,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

use anyhow::{bail, Context, Result};

use crate::{
    kconfig, process,
    target::Arch,
    toolchain::{Llvm, Toolchain},
};

pub mod bundle;
pub mod cmd_file;
pub mod dry_run;
pub mod metadata;
pub mod plan;
pub mod plan_symbols;
pub mod plan_tree;
pub mod recipe;
pub mod stage;
pub mod step;

pub use step::{Step, StepKind};

#[derive(Clone)]
pub struct Kbuild {
    pub srctree: PathBuf,
    pub objtree: PathBuf,
    pub arch: Arch,
    pub path: OsString,
    /// `KBUILD_BUILD_*`, fixed for reproducible builds; recipes inherit them
    /// through the exported environment.
    pub metadata: Vec<(&'static str, String)>,
    /// Kbuild's `LLVM=`. The xtask's own makes say `1`, with its toolchain
    /// first on `PATH`, so that its commands name plain `clang`; a reference
    /// build says what its users say (`LLVM=-22`).
    pub llvm: Llvm,
}

impl Kbuild {
    pub fn new(
        srctree: &Path,
        objtree: &Path,
        arch: Arch,
        toolchain: &Toolchain,
    ) -> Result<Kbuild> {
        let metadata = metadata::variables(srctree)?;
        Ok(Kbuild {
            srctree: srctree.into(),
            objtree: objtree.into(),
            arch,
            path: toolchain.path_env(),
            metadata,
            llvm: Llvm::Default,
        })
    }

    fn make(&self, args: &[&str]) -> Command {
        let mut cmd = make_command();
        cmd.arg("-C")
            .arg(&self.srctree)
            .arg(format!("O={}", self.objtree.display()))
            .arg(format!("ARCH={}", self.arch.kbuild()))
            .arg(format!("LLVM={}", self.llvm))
            .args(args)
            .envs(self.metadata.iter().map(|(k, v)| (k, v)))
            .env("PATH", &self.path)
            .env_remove("MAKEFLAGS")
            .env_remove("MAKELEVEL");
        cmd
    }

    /// A configuration target (`tinyconfig`, `olddefconfig`, `syncconfig`).
    /// Whatever `autoconf.h` Kconfig wrote comes out padded
    /// (`kconfig::autoconf`).
    pub fn run(&self, target: &str, jobs: usize) -> Result<()> {
        assert!(
            target.ends_with("config"),
            "make is only asked to configure, not to build {target}"
        );
        let jobs = format!("-j{jobs}");
        let out = self
            .make(&["-s", &jobs, target])
            .output()
            .context("running make")?;
        check(&out, &format!("make {target}"))?;
        kconfig::autoconf::pad(&self.objtree)
    }

    /// One of Kbuild's interactive editors (`menuconfig`, `nconfig`) on the
    /// user's terminal.
    pub fn edit(&self, editor: &str) -> Result<()> {
        assert!(
            editor.ends_with("config"),
            "make is only asked to configure, not to build {editor}"
        );
        // The one make that reads the user's keys.
        let status = self
            .make(&[editor])
            .stdin(Stdio::inherit())
            .status()
            .context("running make")?;
        if !status.success() {
            bail!("`make {editor}` failed ({status}); its messages are above");
        }
        Ok(())
    }

    /// `make kernelrelease`: the release string Kbuild would write to
    /// `include/config/kernel.release`.
    pub fn kernel_release(&self) -> Result<String> {
        let out = self
            .make(&["-s", "--no-print-directory", "kernelrelease"])
            .output()
            .context("running make kernelrelease")?;
        check(&out, "make kernelrelease")?;
        let release = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if release.is_empty() || release.contains(char::is_whitespace) {
            bail!("make kernelrelease printed {release:?}, not a release");
        }
        Ok(release)
    }

    /// The environment the top Makefile exports to every recipe, plus
    /// `XTASK_LDFLAGS_vmlinux`: Kbuild exports `LDFLAGS_vmlinux` only to the
    /// vmlinux recipe (a private target-specific export), so it is asked for.
    pub fn exported_env(&self) -> Result<BTreeMap<String, String>> {
        let recipe = format!(
            "--eval=xtask-env: ; @printf '{ENV_MARK}\\0'; env -0; printf 'XTASK_LDFLAGS_vmlinux=%s\\0' \"$(LDFLAGS_vmlinux)\""
        );
        let out = self
            .make(&["-s", "--no-print-directory", &recipe, "xtask-env"])
            .output()
            .context("running make to capture the environment")?;
        check(&out, "make xtask-env")?;
        parse_env(&out.stdout)
    }

    /// `make -n -f <srctree>/<makefile> GOALS` in the object tree, with the
    /// environment the top Makefile exports: how Kbuild's own recursion runs
    /// the sub-makes (Makefile.vmlinux, Makefile.modfinal, the boot image).
    pub fn dry_run_in_objtree(
        &self,
        env: &BTreeMap<String, String>,
        makefile: &str,
        goals: &[&str],
    ) -> Result<String> {
        self.sub_make_dry_run(env, makefile, goals, false)
    }

    /// The command the recipe of `target` in `<srctree>/<makefile>` would run,
    /// where the recipe is `$(cmd_<name>)` of `target: prerequisite` and
    /// `vars` are given on the command line. See [`Kbuild::recipe_commands`].
    pub fn recipe_command(
        &self,
        env: &BTreeMap<String, String>,
        makefile: &str,
        vars: &[String],
        name: &str,
        target: &str,
        prerequisite: &str,
    ) -> Result<String> {
        let rule = Rule {
            target: target.to_string(),
            prerequisites: vec![prerequisite.to_string()],
        };
        let mut commands = self.recipe_commands(env, makefile, vars, name, &[rule])?;
        Ok(commands.remove(0))
    }

    /// `$(cmd_<name>)` of `<srctree>/<makefile>`, expanded for each rule as
    /// its recipe would be (`$@` the rule's target, `$^` its prerequisites),
    /// in one make run. For recipes marked `+` or naming `$(MAKE)`, which even
    /// `make -n` would run: make runs no recipe here, it expands the variable
    /// in rules of its own and prints it. The run is itself a dry run, so a
    /// prerequisite that is out of date is only printed.
    pub fn recipe_commands(
        &self,
        env: &BTreeMap<String, String>,
        makefile: &str,
        vars: &[String],
        name: &str,
        rules: &[Rule],
    ) -> Result<Vec<String>> {
        let srctree = env.get("srctree").context("Kbuild exported no srctree")?;
        // `$@` of a stand-in rule is its own name, which becomes the target.
        // The trailing `-` keeps `xtask-expand-1-` out of `xtask-expand-10-`.
        let stand_in = |i: usize| format!("xtask-expand-{i}-");
        let evals = rules.iter().enumerate().map(|(i, rule)| {
            format!(
                "--eval={stand_in}: {prerequisites} ; @:$(info {RECIPE_MARK}{i} $(subst {stand_in},{target},$(cmd_{name})))",
                stand_in = stand_in(i),
                prerequisites = rule.prerequisites.join(" "),
                target = rule.target,
            )
        });
        let out = make_command()
            .args([
                "-n",
                "-s",
                "--no-print-directory",
                "-f",
                &format!("{srctree}/{makefile}"),
            ])
            .args(vars)
            .args(evals)
            .args((0..rules.len()).map(stand_in))
            .current_dir(&self.objtree)
            .env_clear()
            .envs(env)
            .env("LC_ALL", "C")
            .output()
            .context("running make")?;
        check(&out, &format!("make -f {makefile} (expanding cmd_{name})"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let mut commands: Vec<Option<String>> = vec![None; rules.len()];
        for line in stdout.lines() {
            let Some((i, command)) = line
                .strip_prefix(RECIPE_MARK)
                .and_then(|rest| rest.split_once(' '))
            else {
                continue;
            };
            if let Some(slot) = i.parse().ok().and_then(|i: usize| commands.get_mut(i)) {
                *slot = Some(command.trim().to_string());
            }
        }
        commands
            .into_iter()
            .zip(rules)
            .map(|(command, rule)| match command {
                None => bail!(
                    "make printed no cmd_{name} from {makefile} for {}",
                    rule.target
                ),
                Some(c) if c.is_empty() => bail!("{makefile} defines no cmd_{name}"),
                Some(c) => Ok(c),
            })
            .collect()
    }

    /// Like [`Kbuild::dry_run_in_objtree`] with `-B`: every recipe, out of
    /// date or not, in make's order. Only for sub-makes, never the top
    /// Makefile (whose `.config` rule `-B` would re-run).
    pub fn full_dry_run_in_objtree(
        &self,
        env: &BTreeMap<String, String>,
        makefile: &str,
        goals: &[&str],
    ) -> Result<String> {
        self.sub_make_dry_run(env, makefile, goals, true)
    }

    fn sub_make_dry_run(
        &self,
        env: &BTreeMap<String, String>,
        makefile: &str,
        goals: &[&str],
        always: bool,
    ) -> Result<String> {
        let srctree = env.get("srctree").context("Kbuild exported no srctree")?;
        let out = make_command()
            .args(["-n", "-f", &format!("{srctree}/{makefile}")])
            .args(always.then_some("-B"))
            .args(goals)
            .current_dir(&self.objtree)
            .env_clear()
            .envs(env)
            .env("LC_ALL", "C")
            .output()
            .context("running make -n")?;
        if !out.status.success() {
            bail!(
                "make -n -f {makefile} {} failed:\n{}",
                goals.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `make -n TARGETS`: what Kbuild would run. A dry run of `vmlinux` before the
    /// archives exist stops at `vmlinux_o`; that failure is expected and tolerated.
    ///
    /// With `jobs` > 1 the directories' sub-makes read their Makefiles in
    /// parallel. `-Orecurse` prints each sub-make's output as one block when
    /// it finishes, and a recipe starts only after its prerequisites
    /// finished, so the output is still a valid sequential order, which
    /// `engine::graph` needs. Under `-n` a recipe without a recursive line is
    /// printed in one go, so no two recipes' lines interleave. A recipe that
    /// passes make's jobserver on (before 6.3, the `make -C tools/` line's
    /// `MAKEFLAGS="$(filter --j% -j,$(MAKEFLAGS))"`) is printed as a serial
    /// dry run prints it: the descriptors are this make's, not the build's.
    pub fn dry_run(&self, targets: &[&str], jobs: usize) -> Result<String> {
        let jobs = format!("-j{jobs}");
        let mut args = vec!["-n", "-k", &jobs, "-Orecurse"];
        args.extend_from_slice(targets);
        let out = self.make(&args).output().context("running make -n")?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let unexpected: Vec<&str> = stderr
                .lines()
                .filter(|l| l.contains("***") && !is_expected_dry_run_stop(l))
                .collect();
            if !unexpected.is_empty() {
                bail!(
                    "make -n {} failed:\n{}",
                    targets.join(" "),
                    unexpected.join("\n")
                );
            }
        }
        Ok(without_jobserver(&stdout))
    }

    // Kbuild building on its own, for comparison only: `cargo xtask bench`
    // times these against the xtask in a tree of their own. No build calls them.

    /// `make TARGET` (`olddefconfig`, `tinyconfig`, ...) in a reference tree.
    /// Returned unstarted, so the bench can measure it.
    pub fn reference_config(&self, target: &str) -> Command {
        assert!(target.ends_with("config"), "{target} is no config target");
        self.make(&[target])
    }

    /// `make -jN GOALS` in a reference tree, as a user builds. Returned
    /// unstarted, so the bench can measure it.
    pub fn reference_build(&self, goals: &[&str], jobs: usize) -> Command {
        let jobs = format!("-j{jobs}");
        self.make(&[&[jobs.as_str()], goals].concat())
    }
}

/// Every `make` this project runs: no stdin, and make's messages in English.
fn make_command() -> Command {
    let mut cmd = process::command("make");
    cmd.env("LC_ALL", "C").stdin(Stdio::null());
    cmd
}

/// A rule [`Kbuild::recipe_commands`] expands a recipe for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub target: String,
    /// In the order of the rule they stand for: `$^` keeps it.
    pub prerequisites: Vec<String>,
}

/// Printed before each recipe [`Kbuild::recipe_commands`] expands, with its index.
const RECIPE_MARK: &str = "XTASK_RECIPE ";

/// Printed just before `env -0`, so that nothing make prints first is taken
/// for a variable, and no value is cut at a newline.
const ENV_MARK: &str = "XTASK_ENV_BEGIN";

fn parse_env(stdout: &[u8]) -> Result<BTreeMap<String, String>> {
    let mut entries = stdout.split(|&b| b == 0);
    entries
        .by_ref()
        .find(|e| e.ends_with(ENV_MARK.as_bytes()))
        .context("make printed no environment")?;
    let mut env = BTreeMap::new();
    for entry in entries {
        let entry = String::from_utf8_lossy(entry);
        if let Some((k, v)) = entry.split_once('=') {
            if !k.is_empty() && !k.contains(char::is_whitespace) {
                env.insert(k.to_string(), v.to_string());
            }
        }
    }
    for noise in [
        "MAKEFLAGS",
        "MFLAGS",
        "MAKELEVEL",
        "MAKEOVERRIDES",
        "MAKE_TERMOUT",
        "MAKE_TERMERR",
    ] {
        env.remove(noise);
    }
    Ok(env)
}

/// `text` without make's `--jobserver-auth=...` (`--jobserver-fds=...`
/// before make 4.2) options.
fn without_jobserver(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = ["--jobserver-auth=", "--jobserver-fds="]
        .iter()
        .filter_map(|option| rest.find(option))
        .min()
    {
        out.push_str(&rest[..at]);
        let value = &rest[at..];
        let end = value
            .find(|c: char| c.is_whitespace() || c == '"' || c == '\'')
            .unwrap_or(value.len());
        rest = &value[end..];
    }
    out.push_str(rest);
    out
}

/// A dry run cannot link what it did not build: the archives do not exist yet.
fn is_expected_dry_run_stop(line: &str) -> bool {
    line.contains("needed by '.tmp_initcalls.lds'")
        || line.contains("needed by 'vmlinux.o'")
        || line.contains("] Error ")
        || line.contains("Target") && line.contains("not remade")
}

fn check(out: &Output, what: &str) -> Result<()> {
    if out.status.success() {
        return Ok(());
    }
    bail!(
        "`{what}` failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    #[test]
    fn environment_values_keep_their_newlines_and_chatter_is_not_a_variable() {
        let stdout = b"make[1]: Entering directory '/obj'\nXTASK_ENV_BEGIN\0srctree=/src\0MULTI=line one\nline two\0MAKEFLAGS=-s\0XTASK_LDFLAGS_vmlinux=--emit-relocs\0";
        let env = parse_env(stdout).unwrap();
        assert_eq!(env["srctree"], "/src");
        assert_eq!(env["MULTI"], "line one\nline two");
        assert_eq!(env["XTASK_LDFLAGS_vmlinux"], "--emit-relocs");
        assert!(!env.contains_key("MAKEFLAGS"));
        assert_eq!(env.len(), 3);
    }

    /// 6.1's `make -C tools/` line from a `-j2` dry run, against `-j1`'s.
    #[test]
    fn a_parallel_dry_run_prints_recipes_as_a_serial_one() {
        let parallel = "make LDFLAGS= MAKEFLAGS=\" --jobserver-auth=3,4\" O=/obj subdir=tools -C /src/tools/ objtool\n\
                        echo --jobserver-fds=5,6 --jobserver-auth=fifo:/tmp/GMfifo1 x";
        let serial = "make LDFLAGS= MAKEFLAGS=\" \" O=/obj subdir=tools -C /src/tools/ objtool\n\
                      echo   x";
        assert_eq!(without_jobserver(parallel), serial);
        assert_eq!(without_jobserver(serial), serial);
    }

    /// A recipe marked `+` that names `$(MAKE)`, as Makefile.vmlinux's link:
    /// its command comes back expanded for its own target, and nothing runs.
    #[test]
    fn a_recursive_recipe_is_expanded_for_its_target_without_running() {
        let dir = tempfile::tempdir().unwrap();
        let (src, obj) = (dir.path().join("src"), dir.path().join("obj"));
        fs::create_dir_all(src.join("scripts")).unwrap();
        fs::create_dir_all(&obj).unwrap();
        fs::write(src.join("scripts/link.sh"), "touch ran\n").unwrap();
        fs::write(
            src.join("scripts/Makefile.link"),
            "cmd_link = $< \"$(LD)\" \"$(LDFLAGS_out)\"; \\\n\t$(MAKE) -f post $@\n\
             out: scripts/link.sh FORCE\n\t+$(cmd_link)\nFORCE:\n\
             cmd_ko = $(LD) -r -o $@ $(filter %.o, $^)\n\
             %.ko: %.o %.mod.o FORCE\n\t+$(cmd_ko)\n\
             %.mod.o: FORCE\n\ttouch $@\n",
        )
        .unwrap();
        let kbuild = Kbuild {
            srctree: src.clone(),
            objtree: obj.clone(),
            arch: Arch::X86_64,
            path: std::env::var_os("PATH").unwrap(),
            metadata: Vec::new(),
            llvm: Llvm::Default,
        };
        let env = BTreeMap::from([
            ("srctree".to_string(), src.display().to_string()),
            ("VPATH".to_string(), src.display().to_string()),
            ("LD".to_string(), "ld.lld".to_string()),
            ("PATH".to_string(), std::env::var("PATH").unwrap()),
        ]);
        let command = kbuild
            .recipe_command(
                &env,
                "scripts/Makefile.link",
                &["LDFLAGS_out=--gc-sections".to_string()],
                "link",
                "out",
                "scripts/link.sh",
            )
            .unwrap();
        assert_eq!(
            command,
            format!(
                "{}/scripts/link.sh \"ld.lld\" \"--gc-sections\"; make -f post out",
                src.display()
            )
        );
        assert!(!obj.join("ran").exists());
        let missing = kbuild.recipe_command(
            &env,
            "scripts/Makefile.link",
            &[],
            "nothing",
            "out",
            "scripts/link.sh",
        );
        assert!(missing
            .unwrap_err()
            .to_string()
            .contains("defines no cmd_nothing"));

        // Many rules in one run, each with its own `$@` and `$^`; the
        // out-of-date `.mod.o` prerequisites are not made.
        for object in ["a.o", "b.o", "x.lds"] {
            fs::write(obj.join(object), "").unwrap();
        }
        let rule = |target: &str, prerequisites: &[&str]| Rule {
            target: target.to_string(),
            prerequisites: prerequisites.iter().map(|p| p.to_string()).collect(),
        };
        let commands = kbuild
            .recipe_commands(
                &env,
                "scripts/Makefile.link",
                &[],
                "ko",
                &[
                    rule("a.ko", &["a.o", "a.mod.o"]),
                    rule("b.ko", &["b.o", "b.mod.o", "x.lds"]),
                ],
            )
            .unwrap();
        assert_eq!(
            commands,
            [
                "ld.lld -r -o a.ko a.o a.mod.o",
                "ld.lld -r -o b.ko b.o b.mod.o"
            ]
        );
        assert!(!obj.join("a.mod.o").exists() && !obj.join("b.mod.o").exists());
    }

    #[test]
    fn a_dry_run_stop_at_the_link_is_expected_other_errors_are_not() {
        assert!(is_expected_dry_run_stop(
            "make[2]: *** No rule to make target 'vmlinux.a', needed by 'vmlinux.o'.  Stop."
        ));
        assert!(!is_expected_dry_run_stop("make[3]: *** No rule to make target 'kernel/missing.o', needed by 'kernel/built-in.a'.  Stop."));
    }
}
