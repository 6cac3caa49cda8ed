//! Plans on disk. The compile plan comes with configure, from the plan tree
//! (`.xtask/plan.json`); every later stage has its own file
//! (`.xtask/plans/<stage>.json`), written once per key and only read after.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::{plan_tree, stage::Stage, Step};
use crate::fs_atomic;

/// Bumped whenever the shape of the compile plan or of the configuration
/// changes (the tree is configured and planned again): v9 keeps the
/// `.config` and the prepare stage's files the plan was made with.
pub const FORMAT: &str = "xtask-plan-v9";
/// Bumped whenever the shape or the planning of a later stage changes (only
/// those stages are planned again).
const STAGE_FORMAT: &str = "xtask-stage-v5";

/// What configure and the compile dry run produced.
#[derive(Clone, Serialize, Deserialize)]
pub struct Plan {
    pub format: String,
    /// Everything that decides the configuration, except Makefiles.
    pub key: String,
    /// The Makefiles and Kconfig files that shaped the plan.
    pub makefiles: String,
    /// The environment the top Makefile exports to every recipe.
    pub env: BTreeMap<String, String>,
    /// Every compile and archive of `make -n vmlinux [modules]`.
    pub compile: Vec<Step>,
    /// Everything `key` covers but the configuration.
    pub setup_key: String,
    /// The `.config` the plan was made for.
    pub config: String,
    /// How many of `compile` are the prepare stage (they come first).
    pub prepare_steps: usize,
    /// What the prepare stage made, as the rest of the plan read it.
    pub prepared: Prepared,
}

/// The files the prepare stage made (its steps' outputs: the generated
/// headers, `asm-offsets.h` among them) and their blake3, as a plan read
/// them; empty for an absent file. The configuration's own files
/// (`autoconf.h`) are not among them: a plan reads those by symbol
/// (`plan_symbols`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prepared(BTreeMap<String, String>);

impl Prepared {
    pub fn hash(objtree: &Path, prepare: &[Step]) -> Result<Prepared> {
        let mut hashes = BTreeMap::new();
        for step in prepare {
            let file = &step.output;
            if plan_tree::CONFIG_FILES.contains(&file.as_str()) {
                continue;
            }
            let hash = match fs::read(objtree.join(file)) {
                Ok(bytes) => blake3::hash(&bytes).to_hex().to_string(),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
                // A directory output (a sub-make's) is no file to hash.
                Err(_) => continue,
            };
            hashes.insert(file.clone(), hash);
        }
        Ok(Prepared(hashes))
    }
}

/// Why a cached plan cannot be used.
pub enum Cached {
    Valid(Box<Plan>),
    Missing,
    /// From an older xtask, or damaged: not a reason to blame the configuration.
    Unreadable(anyhow::Error),
    /// Made for another key or other Makefiles: the last plan, which a
    /// change of configuration alone may not have reached.
    Stale(Box<Plan>),
}

impl Plan {
    pub fn path(objtree: &Path) -> PathBuf {
        objtree.join(".xtask/plan.json")
    }

    /// The cached plan, if its key and Makefiles still match.
    pub fn cached(objtree: &Path, key: &str, makefiles: impl Fn(&[Step]) -> String) -> Cached {
        let path = Plan::path(objtree);
        if !path.exists() {
            return Cached::Missing;
        }
        match fs_atomic::read_json::<Plan>(&path) {
            Err(error) => Cached::Unreadable(error),
            Ok(plan) if plan.format != FORMAT => {
                Cached::Unreadable(anyhow::anyhow!("format {} is not {FORMAT}", plan.format))
            }
            Ok(plan) if plan.key == key && plan.makefiles == makefiles(&plan.compile) => {
                Cached::Valid(Box::new(plan))
            }
            Ok(plan) => Cached::Stale(Box::new(plan)),
        }
    }

    pub fn write(&self, objtree: &Path) -> Result<()> {
        fs_atomic::write_json(&Plan::path(objtree), self)
    }
}

/// A later stage's plan and the key it was made for.
#[derive(Serialize, Deserialize)]
struct StagePlan {
    format: String,
    key: String,
    steps: Vec<Step>,
}

/// The plans of the stages after compile.
pub struct StagePlans {
    dir: PathBuf,
}

impl StagePlans {
    pub fn open(objtree: &Path) -> Result<StagePlans> {
        let dir = objtree.join(".xtask/plans");
        fs::create_dir_all(&dir)?;
        Ok(StagePlans { dir })
    }

    /// The plan of `stage` for `key`: the stored one, or `planner`'s, stored.
    pub fn get(
        &self,
        stage: Stage,
        key: &str,
        planner: impl FnOnce() -> Result<Vec<Step>>,
    ) -> Result<Vec<Step>> {
        if let Some(steps) = self.stored_for(stage, key) {
            return Ok(steps);
        }
        let steps = planner()?;
        self.store(stage, key, &steps)?;
        Ok(steps)
    }

    /// The stored plan of `stage` for `key`, if there is one.
    pub fn stored_for(&self, stage: Stage, key: &str) -> Option<Vec<Step>> {
        let stored = fs_atomic::read_json::<StagePlan>(&self.path(stage)).ok()?;
        (stored.format == STAGE_FORMAT && stored.key == key).then_some(stored.steps)
    }

    /// Stores the plan of `stage` for `key`.
    pub fn store(&self, stage: Stage, key: &str, steps: &[Step]) -> Result<()> {
        fs_atomic::write_json(
            &self.path(stage),
            &StagePlan {
                format: STAGE_FORMAT.into(),
                key: key.into(),
                steps: steps.to_vec(),
            },
        )
    }

    fn path(&self, stage: Stage) -> PathBuf {
        self.dir.join(format!("{}.json", stage.file_name()))
    }

    /// The steps of every stored stage plan but the image rounds (the
    /// settled image plan holds what they ran).
    pub fn stored(&self) -> Result<Vec<Step>> {
        let mut steps = Vec::new();
        let mut paths: Vec<PathBuf> = fs::read_dir(&self.dir)?
            .flatten()
            .map(|e| e.path())
            .collect();
        paths.sort();
        let rounds = Stage::ImageRound(0).file_name();
        let rounds = rounds.trim_end_matches('0');
        for path in paths.iter().filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(rounds))
        }) {
            if let Ok(stored) = fs_atomic::read_json::<StagePlan>(path) {
                steps.extend(stored.steps);
            }
        }
        Ok(steps)
    }

    /// Moves every stage plan made for `from` to `to`: a configuration
    /// that kept the compile plan keeps the later stages' too, as a change
    /// to a source does (each reads the stages before it as it runs).
    /// Plans of other keys stay as they are: their keys still decide.
    pub fn rekey(&self, from: &str, to: &str) -> Result<()> {
        for entry in fs::read_dir(&self.dir)?.flatten() {
            let path = entry.path();
            if let Ok(stored) = fs_atomic::read_json::<StagePlan>(&path) {
                if stored.format == STAGE_FORMAT && stored.key == from {
                    let stored = StagePlan {
                        key: to.into(),
                        ..stored
                    };
                    fs_atomic::write_json(&path, &stored)?;
                }
            }
        }
        Ok(())
    }

    /// Forgets every stage plan (a new configuration).
    pub fn clear(&self) -> Result<()> {
        for entry in fs::read_dir(&self.dir)?.flatten() {
            fs::remove_file(entry.path())?;
        }
        Ok(())
    }
}

/// A key over named parts, so no two different lists hash alike.
/// A hash of each file's path and bytes (or that it is absent), in order:
/// what a plan or a configuration was made from.
pub fn files_hash(files: impl IntoIterator<Item = PathBuf>) -> String {
    let mut hasher = blake3::Hasher::new();
    for file in files {
        hasher.update(file.as_os_str().as_encoded_bytes());
        match fs::read(&file) {
            Ok(bytes) => hasher.update(&bytes),
            Err(_) => hasher.update(b"\0absent"),
        };
    }
    hasher.finalize().to_hex().to_string()
}

pub fn key(parts: &[(&str, &str)]) -> String {
    let mut hasher = blake3::Hasher::new();
    for (name, value) in parts {
        hasher.update(name.as_bytes());
        hasher.update(b"\0");
        hasher.update(&(value.len() as u64).to_le_bytes());
        hasher.update(value.as_bytes());
    }
    hasher.finalize().to_hex().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the prepare stage made is hashed, the configuration's own files
    /// are not (a plan reads those by symbol), and an absent output counts.
    #[test]
    fn the_prepare_stage_is_hashed_without_the_configuration() {
        let tree = tempfile::tempdir().unwrap();
        let root = tree.path();
        for (file, text) in [
            ("include/generated/autoconf.h", "#define CONFIG_A 1\n"),
            ("include/generated/bounds.h", "#define NR_PAGEFLAGS 22\n"),
            (
                "include/generated/compile.h",
                "#define UTS_MACHINE \"x86_64\"\n",
            ),
        ] {
            let path = root.join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }
        let steps = [
            Step::new("GEN", false, "include/generated/autoconf.h", "true"),
            Step::new("CC", false, "include/generated/bounds.h", "true"),
            Step::new("GEN", false, "include/generated/missing.h", "true"),
        ];
        let before = Prepared::hash(root, &steps).unwrap();
        let files: Vec<&str> = before.0.keys().map(String::as_str).collect();
        assert_eq!(
            files,
            ["include/generated/bounds.h", "include/generated/missing.h"],
            "the prepare stage's own outputs, not the configuration, not a later stage's"
        );
        assert_eq!(before.0["include/generated/missing.h"], "");

        fs::write(
            root.join("include/generated/autoconf.h"),
            "#define CONFIG_B 1\n",
        )
        .unwrap();
        fs::write(root.join("include/generated/compile.h"), "").unwrap();
        assert_eq!(Prepared::hash(root, &steps).unwrap(), before);
        fs::write(
            root.join("include/generated/bounds.h"),
            "#define NR_PAGEFLAGS 23\n",
        )
        .unwrap();
        assert_ne!(Prepared::hash(root, &steps).unwrap(), before);
    }

    #[test]
    fn stage_plans_move_to_a_new_key_and_others_keep_theirs() {
        let tree = tempfile::tempdir().unwrap();
        let plans = StagePlans::open(tree.path()).unwrap();
        let steps = vec![Step::new("LD", false, "vmlinux.o", "ld.lld -r")];
        plans.store(Stage::VmlinuxO, "old", &steps).unwrap();
        plans.store(Stage::Image, "older", &steps).unwrap();
        plans.rekey("old", "new").unwrap();
        assert_eq!(
            plans.stored_for(Stage::VmlinuxO, "new"),
            Some(steps.clone())
        );
        assert_eq!(plans.stored_for(Stage::VmlinuxO, "old"), None);
        assert_eq!(plans.stored_for(Stage::Image, "older"), Some(steps.clone()));
    }
}
