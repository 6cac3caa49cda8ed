//! `scripts/link-vmlinux.sh`, natively: the kallsyms passes, the final link,
//! System.map, sorttable and the x86 relocation table.

use std::{collections::BTreeMap, fs, path::Path};

use anyhow::{bail, Result};

use super::{sh, sh_filter};
use crate::kconfig::DotConfig;

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
            (
                "vmlinux.a".to_string(),
                self.var("KBUILD_VMLINUX_LIBS").to_string(),
            )
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

    /// `nm -n | sed -f scripts/mksysmap`, with nm's failure seen: kallsyms
    /// must never converge on an empty symbol list.
    fn mksysmap(&self, input: &str, output: &str) -> Result<()> {
        let symbols = self.symbols(input)?;
        let map = sh_filter(
            self.objtree,
            self.env,
            &format!("sed -f {}/scripts/mksysmap", self.var("srctree")),
            Some(&symbols),
        )?;
        fs::write(self.objtree.join(output), map)?;
        Ok(())
    }

    /// Kbuild variables and Kconfig symbols the link reads: the native step's command.
    const VARS: &'static [&'static str] = &[
        "LD",
        "KBUILD_LDFLAGS",
        "XTASK_LDFLAGS_vmlinux",
        "KBUILD_LDS",
        "KBUILD_VMLINUX_LIBS",
        "objtree",
        "srctree",
        "CC",
        "NOSTDINC_FLAGS",
        "LINUXINCLUDE",
        "KBUILD_CPPFLAGS",
        "KBUILD_AFLAGS",
        "KBUILD_AFLAGS_KERNEL",
        "NM",
        "OBJCOPY",
        "SRCARCH",
    ];
    const SYMBOLS: &'static [&'static str] = &[
        "LTO_CLANG",
        "X86_KERNEL_IBT",
        "MODULES",
        "VMLINUX_MAP",
        "KALLSYMS",
        "KALLSYMS_ALL",
        "KALLSYMS_ABSOLUTE_PERCPU",
        "DEBUG_INFO_BTF",
        "BUILDTIME_TABLE_SORT",
        "X86_NEED_RELOCS",
    ];

    /// What decides this link besides its input files, for the cache key.
    pub fn command(&self) -> String {
        let mut command = String::from("xtask link-vmlinux");
        for var in Self::VARS {
            command += &format!("\n{var}={}", self.var(var));
        }
        for symbol in Self::SYMBOLS {
            command += &format!("\nCONFIG_{symbol}={}", self.enabled(symbol));
        }
        command
    }

    /// Every file the link reads.
    pub fn inputs(&self) -> Vec<String> {
        let mut inputs = vec![
            "vmlinux.o".to_string(),
            "vmlinux.a".to_string(),
            "init/version-timestamp.o".to_string(),
        ];
        inputs.extend(
            self.var("KBUILD_VMLINUX_LIBS")
                .split_whitespace()
                .map(String::from),
        );
        if self.enabled("MODULES") {
            inputs.push(".vmlinux.export.o".into());
        }
        inputs.push(self.var("KBUILD_LDS").to_string());
        inputs.extend(
            [
                "scripts/kallsyms",
                "scripts/sorttable",
                "arch/x86/tools/relocs",
            ]
            .map(String::from),
        );
        inputs.push(format!("{}/scripts/mksysmap", self.var("srctree")));
        inputs
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
            kallsymso =
                Some(self.kallsyms(".tmp_vmlinux.kallsyms0.syms", ".tmp_vmlinux0.kallsyms")?);
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
                    && self.symbols(previous.as_deref().unwrap_or(""))?
                        == self.symbols(&current)?;
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
            self.sh(&format!(
                "{} -S vmlinux > .tmp_vmlinux.nm-sort",
                self.var("NM")
            ))?;
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
        fs::write(
            self.objtree.join(".vmlinux.d"),
            "vmlinux: scripts/link-vmlinux.sh\n",
        )?;
        Ok(())
    }

    fn symbols(&self, object: &str) -> Result<Vec<u8>> {
        let symbols = sh_filter(
            self.objtree,
            self.env,
            &format!("{} -n {object}", self.var("NM")),
            None,
        )?;
        if symbols.is_empty() {
            bail!("{} -n {object} printed no symbols", self.var("NM"));
        }
        Ok(symbols)
    }
}
