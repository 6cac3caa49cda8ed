//! The final link of `vmlinux`: the tree's own `cmd_link_vmlinux`
//! (link-vmlinux.sh, then the arch's postlink pass), run as one native step
//! with a key that covers what the scripts read.

use std::{collections::BTreeMap, path::Path};

use anyhow::{Context, Result};

use super::sh;
use crate::kbuild::Step;

pub struct VmlinuxLink<'a> {
    pub objtree: &'a Path,
    pub env: &'a BTreeMap<String, String>,
    /// `cmd_link_vmlinux` as Makefile.vmlinux expands it.
    pub command: String,
}

/// What link-vmlinux.sh and the postlink passes read from the environment
/// (6.1 to 6.12), besides the flags on their command line.
const VARS: &[&str] = &[
    "LD",
    "CC",
    "NM",
    "OBJCOPY",
    "OBJDUMP",
    "READELF",
    "STRIP",
    "PAHOLE",
    "RESOLVE_BTFIDS",
    "CONFIG_SHELL",
    "MAKE",
    "KBUILD_LDS",
    "KBUILD_VMLINUX_LIBS",
    "KBUILD_CPPFLAGS",
    "KBUILD_AFLAGS",
    "KBUILD_AFLAGS_KERNEL",
    "NOSTDINC_FLAGS",
    "LINUXINCLUDE",
    "SRCARCH",
    "srctree",
    "objtree",
];

impl<'a> VmlinuxLink<'a> {
    /// The link Makefile.vmlinux planned ([`crate::kbuild::stage::plan_vmlinux`]).
    pub fn new(
        objtree: &'a Path,
        env: &'a BTreeMap<String, String>,
        planned: &[Step],
    ) -> Result<Self> {
        let step = planned
            .iter()
            .find(|s| s.output == "vmlinux")
            .context("Makefile.vmlinux planned no vmlinux link")?;
        Ok(VmlinuxLink {
            objtree,
            env,
            command: step.command.clone(),
        })
    }

    fn var(&self, name: &str) -> &str {
        self.env.get(name).map(String::as_str).unwrap_or("")
    }

    /// What decides this link besides its input files, for the cache key.
    pub fn key_command(&self) -> String {
        let mut command = self.command.clone();
        for var in VARS {
            command += &format!("\n{var}={}", self.var(var));
        }
        command
    }

    /// Every file the link reads: the objects, the linker script, the
    /// configuration the scripts test symbols in, the scripts and the host
    /// tools they run. A file this kernel version lacks is keyed as absent.
    pub fn inputs(&self) -> Vec<String> {
        let srctree = self.var("srctree");
        let srcarch = self.var("SRCARCH");
        let mut inputs: Vec<String> = [
            "vmlinux.o",
            "vmlinux.a",
            "init/version-timestamp.o",
            ".vmlinux.export.o",
            "include/config/auto.conf",
            "scripts/kallsyms",
            "scripts/sorttable",
            "arch/x86/tools/relocs",
        ]
        .map(String::from)
        .into();
        inputs.extend(
            self.var("KBUILD_VMLINUX_LIBS")
                .split_whitespace()
                .map(String::from),
        );
        inputs.push(self.var("KBUILD_LDS").to_string());
        inputs.extend(
            [
                "scripts/link-vmlinux.sh",
                "scripts/mksysmap",
                "scripts/file-size.sh",
                "scripts/Makefile.vmlinux",
                &format!("arch/{srcarch}/Makefile.postlink"),
            ]
            .map(|script| format!("{srctree}/{script}")),
        );
        inputs
    }

    pub fn run(&self) -> Result<()> {
        sh(self.objtree, self.env, &self.command)
    }
}
