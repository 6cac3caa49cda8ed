//! Makefile.modfinal: the `.ko` links. Their recipe is marked `+`, so a dry
//! run would execute it: make expands the tree's own `cmd_ld_ko_o` for each
//! module instead ([`Kbuild::recipe_commands`]), and the xtask runs it as a
//! cached native step, writing the `.cmd` file as Kbuild does.
//!
//! What differs between kernel versions is read from the tree:
//! `modules.order` lists objects since 6.2 and `.ko` files before, and the
//! modules link `.module-common.o` since 6.10.

use std::{collections::BTreeMap, fs, path::Path};

use anyhow::{Context, Result};

use crate::kbuild::{cmd_file, Kbuild, Rule, Step};

const MODFINAL: &str = "scripts/Makefile.modfinal";
const COMMON: &str = ".module-common.o";

/// The modules of a build, and what Makefile.modfinal makes of them.
pub struct Modfinal {
    /// Each module's object (`lib/test_module.o`), in `modules.order`.
    pub modules: Vec<String>,
    /// `.module-common.o`, compiled once and linked into every module,
    /// when the tree's Makefile.modfinal has it.
    common: Option<&'static str>,
    /// The module linker script the link reads (`ARCH_MODULE_LDS`).
    lds: String,
}

impl Modfinal {
    pub fn read(srctree: &Path, objtree: &Path, srcarch: &str) -> Result<Modfinal> {
        let makefile = srctree.join(MODFINAL);
        let modfinal = fs::read_to_string(&makefile)
            .with_context(|| format!("reading {}", makefile.display()))?;
        // Makefile.modfinal's own choice: the first that exists.
        let arch_lds = format!("arch/{srcarch}/module.lds");
        let lds = ["scripts/module.lds", arch_lds.as_str()]
            .into_iter()
            .find(|p| objtree.join(p).exists())
            .context("no module linker script (scripts/module.lds)")?;
        Ok(Modfinal {
            modules: order(objtree),
            common: modfinal.contains(COMMON).then_some(COMMON),
            lds: lds.to_string(),
        })
    }

    /// What Makefile.modfinal compiles: each module's `.mod.o`, and the
    /// common object.
    pub fn compiled(&self) -> Vec<String> {
        let mod_objects = self.modules.iter().map(|m| sibling(m, ".mod.o"));
        mod_objects.chain(self.common.map(String::from)).collect()
    }

    /// The `.ko` links, each a step with the command make expanded from the
    /// tree's rule and the files it reads.
    pub fn plan(&self, kbuild: &Kbuild, env: &BTreeMap<String, String>) -> Result<Vec<Step>> {
        let rules: Vec<Rule> = self
            .modules
            .iter()
            .map(|module| Rule {
                target: sibling(module, ".ko"),
                // The rule's objects, in its order: the command links `$^`.
                prerequisites: [module.clone(), sibling(module, ".mod.o")]
                    .into_iter()
                    .chain(self.common.map(String::from))
                    .collect(),
            })
            .collect();
        let commands = kbuild.recipe_commands(env, MODFINAL, &[], "ld_ko_o", &rules)?;
        Ok(rules
            .into_iter()
            .zip(commands)
            .map(|(rule, command)| {
                let mut step = Step::new("LD", true, &rule.target, &command);
                step.inputs = rule.prerequisites;
                step.inputs.push(self.lds.clone());
                step
            })
            .collect())
    }
}

/// Runs one planned `.ko` link and records its command as Kbuild does.
pub fn link(objtree: &Path, env: &BTreeMap<String, String>, step: &Step) -> Result<()> {
    super::sh(objtree, env, &step.command)?;
    fs::write(
        objtree.join(cmd_file::path(&step.output)),
        format!("savedcmd_{} := {}\n", step.output, step.command),
    )?;
    Ok(())
}

/// A module's other files by its object's stem: `lib/test_module.o` with
/// `.ko` is `lib/test_module.ko`.
pub fn sibling(module: &str, suffix: &str) -> String {
    format!("{}{suffix}", module.strip_suffix(".o").unwrap_or(module))
}

/// The modules of a build, each as its object (`lib/test_module.o`), in
/// `modules.order`; none before modpost wrote it.
pub fn order(objtree: &Path) -> Vec<String> {
    objects(&fs::read_to_string(objtree.join("modules.order")).unwrap_or_default())
}

/// `modules.order` as objects: 6.2 on lists `lib/test_module.o`, earlier
/// kernels `lib/test_module.ko`.
fn objects(order: &str) -> Vec<String> {
    order
        .lines()
        .filter_map(|l| {
            l.strip_suffix(".ko")
                .map(|stem| format!("{stem}.o"))
                .or_else(|| l.ends_with(".o").then(|| l.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_order_names_objects_in_either_spelling() {
        // 6.12's and 6.1's lines for the same two modules.
        let new = "fs/fat/fat.o\nfs/fat/vfat.o\n";
        let old = "fs/fat/fat.ko\nfs/fat/vfat.ko\n";
        assert_eq!(objects(new), ["fs/fat/fat.o", "fs/fat/vfat.o"]);
        assert_eq!(objects(old), objects(new));
        assert!(objects("\n").is_empty());
    }
}
