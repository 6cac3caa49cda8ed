//! The plan tree: a second object tree beside the real one that holds the
//! configuration and nothing built. A dry run prints only what is out of
//! date, so in the real tree it would hide every step whose output already
//! exists; here every step is out of date, the prepare stage included, and the
//! plan is complete however warm the real tree is. Nothing is ever built in it.

use std::{
    fs::{self, File},
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};

use super::{dry_run, Kbuild, Step};

/// What Kbuild reads from the object tree while it parses, copied with their
/// times so that make sees the configuration in sync and does not rerun
/// `syncconfig` here (which would build `conf` for real).
pub const CONFIG_FILES: &[&str] = &[
    ".config",
    "include/config/auto.conf",
    "include/config/auto.conf.cmd",
    "include/generated/autoconf.h",
    "include/generated/rustc_cfg",
    // `KERNELRELEASE` is read from it whenever a recipe is expanded
    // (`utsrelease.h`); a dry run must not print it empty. The build writes
    // it before planning.
    KERNEL_RELEASE,
];

const KERNEL_RELEASE: &str = "include/config/kernel.release";

/// Directories the tools build (objtool) insists exist when its Makefiles are
/// read; Kbuild's recipes would create them, but a dry run runs no recipe.
const TOOLS_DIRS: &[&str] = &["tools/objtool/libsubcmd"];

/// Where the recursive make into the tools build starts (`tools/%` in the top Makefile).
const TOOLS: &str = "tools/";

pub struct PlanTree {
    pub kbuild: Kbuild,
}

impl PlanTree {
    /// `<objtree>.plan`, made afresh from the real tree's configuration.
    pub fn create(real: &Kbuild) -> Result<PlanTree> {
        let dir = path(&real.objtree);
        if dir.exists() {
            fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        for file in CONFIG_FILES {
            let from = real.objtree.join(file);
            if !from.exists() {
                continue;
            }
            let to = dir.join(file);
            fs::create_dir_all(to.parent().unwrap())?;
            copy_with_time(&from, &to)?;
        }
        if !dir.join(KERNEL_RELEASE).exists() {
            bail!(
                "no {KERNEL_RELEASE} in {}: it is written before planning",
                real.objtree.display()
            );
        }
        for tools in TOOLS_DIRS {
            fs::create_dir_all(dir.join(tools))?;
        }
        Ok(PlanTree {
            kbuild: Kbuild {
                objtree: dir,
                ..real.clone()
            },
        })
    }

    /// Each output of `steps` (as the real tree names them) here as `real`
    /// has it, or empty where it has none: make sees them exist, plans what
    /// needs them, and reads the ones its Makefiles read.
    pub fn bring_in(&self, steps: &[Step], real: &Path) -> Result<()> {
        for step in steps.iter().filter(|s| !s.output.starts_with('/')) {
            let path = self.kbuild.objtree.join(&step.output);
            if path.is_dir() {
                continue;
            }
            fs::create_dir_all(path.parent().unwrap())?;
            let from = real.join(&step.output);
            if from.is_file() {
                fs::copy(&from, &path)
                    .with_context(|| format!("copying {} to {}", from.display(), path.display()))?;
            } else if !path.exists() {
                File::create(&path).with_context(|| format!("creating {}", path.display()))?;
            }
        }
        Ok(())
    }

    /// Creates in `real` every directory the dry run made here: Kbuild makes
    /// object directories while it reads its Makefiles (`$(shell mkdir -p)`
    /// in Makefile.build and the syscall Makefiles), not in recipes, so a
    /// dry run that did that here did not do it there.
    pub fn mirror_dirs(&self, real: &Path) -> Result<()> {
        for relative in object_dirs(&self.kbuild.objtree) {
            fs::create_dir_all(real.join(&relative))
                .with_context(|| format!("creating {}", real.join(&relative).display()))?;
        }
        Ok(())
    }

    /// The steps of a dry run here, as the real tree must run them: the plan
    /// tree's absolute path becomes the real one; checks of the source tree
    /// are dropped; the tools build becomes one recursive make.
    pub fn into_real(&self, dry_run: &str, real: &Path) -> Result<Vec<Step>> {
        let from = self.kbuild.objtree.display().to_string();
        let to = real.display().to_string();
        let srctree = format!("{}/", self.kbuild.srctree.display());
        let mut kept = Vec::new();
        // Before 6.3 the recursive make into tools/ sets its own MAKEFLAGS,
        // so `-n` does not reach it: it prints no steps under tools/ at all
        // (it built them, here). Its `make -C` line is the step either way.
        let tools = tools_step(dry_run, &self.kbuild.srctree, &from, &to);
        for mut step in dry_run::parse(dry_run) {
            step.output = rebase(&step.output, &from, &to);
            step.command = step.command.replace(&from, &to);
            // `CALL checksyscalls.sh`, `CHKSHA1 include/linux/atomic/*.h`:
            // checks of the source that only warn, with no output of their own.
            if step.output.starts_with(&srctree) {
                continue;
            }
            if step.output.starts_with(TOOLS) {
                if tools.is_none() {
                    bail!(
                        "the dry run planned {} but printed no `make -C <srctree>/{TOOLS}` line",
                        step.output
                    );
                }
                continue;
            }
            kept.push(step);
        }
        // The tools build comes first: its own make orders what is inside it.
        if let Some(tools) = tools {
            kept.insert(0, tools);
        }
        Ok(kept)
    }
}

/// `<objtree>.plan`: beside the object tree, so nothing that walks the real
/// tree ever finds it.
pub fn path(objtree: &Path) -> PathBuf {
    let mut name = objtree.as_os_str().to_owned();
    name.push(".plan");
    PathBuf::from(name)
}

/// A path as the real tree names it: absolute ones under the object tree
/// become relative, as Kbuild names the rest.
fn rebase(output: &str, from: &str, to: &str) -> String {
    let output = output.replace(from, to);
    match output
        .strip_prefix(to)
        .and_then(|rest| rest.strip_prefix('/'))
    {
        Some(relative) => relative.to_string(),
        None => output,
    }
}

/// objtool, built by its own build system (`tools/build`), whose recipes
/// print no Kbuild tags and install headers between compiles: one step, the
/// recursive make exactly as Kbuild prints it (`tools/%` in the top
/// Makefile), kept up to date by its own make.
fn tools_step(dry_run: &str, srctree: &Path, from: &str, to: &str) -> Option<Step> {
    let descend = format!("-C {}/{TOOLS} ", srctree.display());
    // `$(MAKE)` is make's argv[0]: `make`, or a path (`/usr/bin/make`).
    let is_make = |l: &str| {
        l.split_whitespace()
            .next()
            .is_some_and(|w| w == "make" || w.ends_with("/make"))
    };
    let line = dry_run
        .lines()
        .find(|l| is_make(l) && l.contains(&descend))?;
    let goal = line.rsplit(' ').next()?;
    let command = format!("mkdir -p tools && {}", line.replace(from, to));
    Some(Step::new(
        "DESCEND",
        false,
        &format!("{TOOLS}{goal}/{goal}"),
        &command,
    ))
}

fn copy_with_time(from: &Path, to: &Path) -> Result<()> {
    fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    let modified = fs::metadata(from)?.modified()?;
    File::options()
        .write(true)
        .open(to)?
        .set_modified(modified)?;
    Ok(())
}

/// The directories of an object tree, relative to it, parents first; the
/// xtask's own state (`.xtask`) is not Kbuild's.
pub fn object_dirs(objtree: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        for entry in fs::read_dir(objtree.join(&relative))
            .into_iter()
            .flatten()
            .flatten()
        {
            if entry.file_type().is_ok_and(|t| t.is_dir()) && entry.file_name() != ".xtask" {
                let relative = relative.join(entry.file_name());
                found.push(relative.clone());
                pending.push(relative);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_under_the_plan_tree_become_relative_to_the_real_one() {
        assert_eq!(
            rebase("/o/t.plan/tools/objtool/objtool-in.o", "/o/t.plan", "/o/t"),
            "tools/objtool/objtool-in.o"
        );
        assert_eq!(
            rebase("kernel/fork.o", "/o/t.plan", "/o/t"),
            "kernel/fork.o"
        );
        assert_eq!(
            rebase("/src/scripts/checksyscalls.sh", "/o/t.plan", "/o/t"),
            "/src/scripts/checksyscalls.sh"
        );
        assert_eq!(
            path(Path::new("/o/x86_64-thin-tiny")),
            Path::new("/o/x86_64-thin-tiny.plan")
        );
    }

    /// Lines of a real `make -n` in a plan tree (`/o/t.plan`, source `/src`), shortened.
    const DRY_RUN: &str = "\
set -e;  echo '  CHKSHA1 /src/include/linux/atomic/atomic-long.h';   trap 'rm -f .checked-atomic-long.h; trap - HUP; kill -s HUP $$' HUP; touch .checked-atomic-long.h
mkdir -p ./tools
make O=/o/t.plan subdir=tools -C /src/tools/ objtool
set -e;  echo '  LD      /o/t.plan/tools/objtool/objtool-in.o';  ld.lld -r -o /o/t.plan/tools/objtool/objtool-in.o  /o/t.plan/tools/objtool/check.o
set -e;  echo '  CC      kernel/fork.o';   clang -c -o kernel/fork.o /src/kernel/fork.c -I /o/t.plan/include
";

    fn tree() -> PlanTree {
        let kbuild = Kbuild {
            srctree: "/src".into(),
            objtree: "/o/t.plan".into(),
            arch: crate::target::Arch::X86_64,
            path: Default::default(),
            metadata: Vec::new(),
            llvm: Default::default(),
        };
        PlanTree { kbuild }
    }

    #[test]
    fn a_dry_run_here_becomes_the_real_trees_steps() {
        let steps = tree().into_real(DRY_RUN, Path::new("/o/t")).unwrap();
        let outputs: Vec<&str> = steps.iter().map(|s| s.output.as_str()).collect();
        assert_eq!(
            outputs,
            ["tools/objtool/objtool", "kernel/fork.o"],
            "the check is dropped, the tools build is one step, first"
        );
        assert_eq!(steps[0].kind, super::super::StepKind::SubMake);
        assert_eq!(
            steps[0].command,
            "mkdir -p tools && make O=/o/t subdir=tools -C /src/tools/ objtool"
        );
        assert!(
            steps[1].command.ends_with("-I /o/t/include"),
            "{}",
            steps[1].command
        );
    }

    /// Linux 6.1 gives the tools make its own MAKEFLAGS: `-n` is lost, it
    /// builds objtool instead of printing its steps, and echoes its recipes.
    #[test]
    fn a_tools_make_that_ignored_the_dry_run_is_still_the_tools_step() {
        let dry_run = "\
mkdir -p ./tools
make LDFLAGS= MAKEFLAGS=\" \" O=/o/t.plan subdir=tools -C /src/tools/ objtool
echo	       '  DESCEND 'objtool; mkdir -p /o/t.plan/tools/objtool && make O=/o/t.plan subdir=tools/objtool --no-print-directory -C objtool
set -e;  echo '  CC      kernel/fork.o';   clang -c -o kernel/fork.o /src/kernel/fork.c
";
        let steps = tree().into_real(dry_run, Path::new("/o/t")).unwrap();
        let outputs: Vec<&str> = steps.iter().map(|s| s.output.as_str()).collect();
        assert_eq!(outputs, ["tools/objtool/objtool", "kernel/fork.o"]);
        assert_eq!(
            steps[0].command,
            "mkdir -p tools && make LDFLAGS= MAKEFLAGS=\" \" O=/o/t subdir=tools -C /src/tools/ objtool"
        );
    }

    #[test]
    fn make_may_name_itself_by_path() {
        let dry_run = DRY_RUN.replace("\nmake O=", "\n/usr/bin/make O=");
        let steps = tree().into_real(&dry_run, Path::new("/o/t")).unwrap();
        assert_eq!(
            steps[0].command,
            "mkdir -p tools && /usr/bin/make O=/o/t subdir=tools -C /src/tools/ objtool"
        );
    }

    #[test]
    fn tools_steps_without_their_make_line_are_an_error() {
        let without: String = DRY_RUN
            .lines()
            .filter(|l| !l.starts_with("make "))
            .map(|l| format!("{l}\n"))
            .collect();
        let error = tree().into_real(&without, Path::new("/o/t")).unwrap_err();
        assert!(error.to_string().contains("tools/"), "{error}");
    }
}
