//! The only ways this project invokes `make`: configure, `prepare`, capture the
//! exported environment, and print a plan with `-n`. Make never builds an object.

use std::{
    collections::BTreeMap,
    ffi::OsString,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

use anyhow::{bail, Context, Result};

use crate::{target::Arch, toolchain::Toolchain};

pub mod cmd_file;
pub mod dry_run;
pub mod step;

pub use step::{Step, StepKind};

pub struct Kbuild {
    pub srctree: PathBuf,
    pub objtree: PathBuf,
    pub arch: Arch,
    pub path: OsString,
}

impl Kbuild {
    pub fn new(srctree: &Path, objtree: &Path, arch: Arch, toolchain: &Toolchain) -> Kbuild {
        Kbuild { srctree: srctree.into(), objtree: objtree.into(), arch, path: toolchain.path_env() }
    }

    fn make(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("make");
        cmd.arg("-C")
            .arg(&self.srctree)
            .arg(format!("O={}", self.objtree.display()))
            .arg(format!("ARCH={}", self.arch.kbuild()))
            .arg("LLVM=1")
            .args(args)
            .env("PATH", &self.path)
            .env_remove("MAKEFLAGS")
            .env_remove("MAKELEVEL")
            .stdin(Stdio::null());
        cmd
    }

    /// A configuration target (`tinyconfig`, `olddefconfig`) or `prepare`.
    pub fn run(&self, target: &str, jobs: usize) -> Result<()> {
        assert!(
            target.ends_with("config") || target == "prepare",
            "make is only asked to configure or prepare, not to build {target}"
        );
        let jobs = format!("-j{jobs}");
        let out = self.make(&["-s", &jobs, target]).output().context("running make")?;
        check(&out, &format!("make {target}"))
    }

    /// The environment the top Makefile exports to every recipe, plus
    /// `XTASK_LDFLAGS_vmlinux`: Kbuild exports `LDFLAGS_vmlinux` only to the
    /// vmlinux recipe (a private target-specific export), so it is asked for.
    pub fn exported_env(&self) -> Result<BTreeMap<String, String>> {
        let out = self
            .make(&["-s", "--no-print-directory", "--eval=xtask-env: ; @env -0; printf 'XTASK_LDFLAGS_vmlinux=%s\\0' \"$(LDFLAGS_vmlinux)\"", "xtask-env"])
            .output()
            .context("running make to capture the environment")?;
        check(&out, "make xtask-env")?;
        let mut env = BTreeMap::new();
        for entry in out.stdout.split(|&b| b == 0) {
            let entry = String::from_utf8_lossy(entry);
            // make's own "Entering directory" chatter precedes the first entry.
            let entry = entry.rsplit_once('\n').map(|(_, e)| e.to_string()).unwrap_or(entry.into_owned());
            if let Some((k, v)) = entry.split_once('=') {
                if !k.is_empty() && !k.contains(char::is_whitespace) {
                    env.insert(k.to_string(), v.to_string());
                }
            }
        }
        for noise in ["MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "MAKE_TERMOUT", "MAKE_TERMERR"] {
            env.remove(noise);
        }
        Ok(env)
    }

    /// `make -n TARGETS`: what Kbuild would run. A dry run of `vmlinux` before the
    /// archives exist stops at `vmlinux_o`; that failure is expected and tolerated.
    pub fn dry_run(&self, targets: &[&str]) -> Result<String> {
        let mut args = vec!["-n", "-k"];
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
                bail!("make -n {} failed:\n{}", targets.join(" "), unexpected.join("\n"));
            }
        }
        Ok(stdout)
    }
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
