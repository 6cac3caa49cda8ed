//! Makefile.modfinal's `.ko` link, natively: its recipe is marked `+`, so a
//! dry run would execute it. The `.cmd` file is written as Kbuild writes it.

use std::{collections::BTreeMap, fs, path::Path};

use anyhow::{Context, Result};

use crate::kbuild::cmd_file;

/// The modules of this build, from `modules.order` (`lib/test_module.o`).
pub fn list(objtree: &Path) -> Vec<String> {
    let text = fs::read_to_string(objtree.join("modules.order")).unwrap_or_default();
    text.lines()
        .filter(|l| l.ends_with(".o"))
        .map(String::from)
        .collect()
}

/// One `.ko` link: its output, command and inputs.
pub struct KoLink {
    pub ko: String,
    pub command: String,
    pub inputs: Vec<String>,
}

impl KoLink {
    pub fn new(objtree: &Path, env: &BTreeMap<String, String>, module: &str) -> Result<KoLink> {
        let var = |name: &str| env.get(name).map_or("", String::as_str);
        let arch_lds = format!("arch/{}/module.lds", var("SRCARCH"));
        let lds = ["scripts/module.lds", arch_lds.as_str()]
            .into_iter()
            .find(|p| objtree.join(p).exists())
            .context("no module linker script (scripts/module.lds)")?;
        let ko = module.replace(".o", ".ko");
        let inputs = vec![
            module.to_string(),
            module.replace(".o", ".mod.o"),
            ".module-common.o".to_string(),
            lds.to_string(),
        ];
        let command = format!(
            "{} -r {} {} {} -T {lds} -o {ko} {} {} {}",
            var("LD"),
            var("KBUILD_LDFLAGS"),
            var("KBUILD_LDFLAGS_MODULE"),
            var("LDFLAGS_MODULE"),
            inputs[0],
            inputs[1],
            inputs[2]
        );
        Ok(KoLink {
            ko,
            command,
            inputs,
        })
    }

    pub fn run(&self, objtree: &Path, env: &BTreeMap<String, String>) -> Result<()> {
        super::sh(objtree, env, &self.command)?;
        fs::write(
            objtree.join(cmd_file::path(&self.ko)),
            format!("savedcmd_{} := {}\n", self.ko, self.command),
        )?;
        Ok(())
    }
}
