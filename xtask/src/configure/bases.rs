//! Bases made before. The `.config` that `make tinyconfig` (or any target
//! that asks nothing and reads no `.config`) writes depends on the source,
//! the toolchain and the arch alone, and making it runs Kconfig twice, each
//! time with about a hundred compiler probes: 12 s of a tiny tree's 18-s
//! configure. The trees of a source share what one of them made. An entry
//! holds the Kconfig files the target read and their hash, and is used only
//! while they hash the same.

use std::{
    fs,
    path::{Path, PathBuf},
    time::SystemTime,
};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::fs_atomic;

/// Bumped whenever what a base depends on is read differently.
pub const FORMAT: &str = "xtask-base-v1";

/// How many bases are kept; the oldest goes first.
const KEPT: usize = 8;

pub struct Bases {
    dir: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    key: String,
    /// The Kconfig files the target read (`include/config/auto.conf.cmd`).
    kconfig: Vec<String>,
    /// Those files and Kconfig's own make, hashed when the base was made.
    inputs: String,
    config: String,
}

impl Bases {
    /// The store beside the trees of `objtree`'s kind.
    pub fn beside(objtree: &Path) -> Bases {
        let parent = objtree.parent().unwrap_or(objtree);
        Bases {
            dir: parent.join(".bases"),
        }
    }

    /// The `.config` made for `key` from Kconfig files that `inputs` still
    /// hashes the same.
    pub fn get(&self, key: &str, inputs: impl Fn(&[String]) -> String) -> Option<String> {
        self.entries(key)
            .into_iter()
            .filter_map(|path| fs_atomic::read_json::<Entry>(&path).ok())
            .find(|entry| entry.key == key && inputs(&entry.kconfig) == entry.inputs)
            .map(|entry| entry.config)
    }

    pub fn put(
        &self,
        key: &str,
        kconfig: Vec<String>,
        inputs: String,
        config: String,
    ) -> Result<()> {
        fs::create_dir_all(&self.dir)?;
        let path = self.dir.join(format!("{key}-{inputs}.json"));
        fs_atomic::write_json(
            &path,
            &Entry {
                key: key.into(),
                kconfig,
                inputs,
                config,
            },
        )?;
        self.prune()
    }

    fn entries(&self, key: &str) -> Vec<PathBuf> {
        let prefix = format!("{key}-");
        self.files()
            .into_iter()
            .map(|(path, _)| path)
            .filter(|path| {
                path.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&prefix))
            })
            .collect()
    }

    /// Every entry, the newest first.
    fn files(&self) -> Vec<(PathBuf, SystemTime)> {
        let mut files: Vec<(PathBuf, SystemTime)> = fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| Some((e.path(), e.metadata().ok()?.modified().ok()?)))
            .collect();
        files.sort_by_key(|f| std::cmp::Reverse(f.1));
        files
    }

    fn prune(&self) -> Result<()> {
        for (path, _) in self.files().into_iter().skip(KEPT) {
            fs_atomic::remove_file(&path)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_is_given_back_while_its_kconfig_files_hash_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let bases = Bases::beside(&dir.path().join("x86_64-thin-tiny"));
        let kconfig = vec!["Kconfig".to_string(), "init/Kconfig".to_string()];
        let hash = |version: &str| format!("{version:0>64}");
        bases
            .put("k", kconfig.clone(), hash("1"), "CONFIG_A=y\n".into())
            .unwrap();
        bases
            .put("k", kconfig.clone(), hash("2"), "CONFIG_A=n\n".into())
            .unwrap();
        let read_as = |version: &'static str| {
            move |files: &[String]| {
                assert_eq!(files, ["Kconfig", "init/Kconfig"]);
                hash(version)
            }
        };
        assert_eq!(bases.get("k", read_as("1")).unwrap(), "CONFIG_A=y\n");
        assert_eq!(bases.get("k", read_as("2")).unwrap(), "CONFIG_A=n\n");
        assert_eq!(bases.get("k", read_as("3")), None, "a Kconfig file changed");
        assert_eq!(bases.get("other", read_as("1")), None, "another target");
    }

    #[test]
    fn only_the_newest_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let bases = Bases::beside(&dir.path().join("tree"));
        for n in 0..KEPT + 3 {
            bases
                .put(&format!("k{n}"), vec![], format!("{n:0>64}"), String::new())
                .unwrap();
        }
        assert_eq!(bases.files().len(), KEPT);
    }
}
