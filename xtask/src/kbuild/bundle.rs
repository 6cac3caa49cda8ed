//! A tree's configuration and plans as one document, so that a fresh tree of
//! the same recipe, on this machine or another, skips configure and every
//! dry run (`--cache`): the `.config`, the compile plan and the stage plans.
//! The object tree's absolute path in them stands as a placeholder. The
//! tree's directories come too: Kbuild makes them while it reads its
//! Makefiles, which a restored tree never has make do.
//!
//! A restored tree still runs `make syncconfig` (Kconfig's outputs, and the
//! list of Kconfig files), and its plan is used only if the Makefiles and
//! Kconfig files hash as they did where it was made (`Plan::cached`).

use std::{collections::BTreeMap, fs, path::Path};

use anyhow::{ensure, Context, Result};
use serde::{Deserialize, Serialize};

use crate::fs_atomic;

const FORMAT: &str = "xtask-bundle-v2";
const OBJTREE: &str = "@XTASK_OBJTREE@";
/// The files a bundle carries, relative to the object tree; stage plans are
/// every file of `PLANS`.
const CONFIG: &str = ".config";
const PLAN: &str = ".xtask/plan.json";
const PLANS: &str = ".xtask/plans";
/// The recipe key under which the tree last shared its bundle.
const SHARED: &str = ".xtask/bundle-shared";

#[derive(Serialize, Deserialize)]
pub struct Bundle {
    format: String,
    files: BTreeMap<String, String>,
    /// Every directory of the tree, relative.
    dirs: Vec<String>,
}

impl Bundle {
    /// Whether the tree shared its bundle under `key` already. A build
    /// killed after planning but before sharing has not: its resume shares.
    pub fn shared_as(objtree: &Path, key: &str) -> bool {
        fs::read_to_string(objtree.join(SHARED)).is_ok_and(|k| k == key)
    }

    /// Notes that the tree's bundle is in the shared cache under `key`.
    pub fn mark_shared(objtree: &Path, key: &str) -> Result<()> {
        fs_atomic::write(&objtree.join(SHARED), key.as_bytes())
    }

    /// What the tree holds now.
    pub fn collect(objtree: &Path) -> Result<Bundle> {
        let mut names = vec![CONFIG.to_string(), PLAN.to_string()];
        for entry in fs::read_dir(objtree.join(PLANS))
            .with_context(|| format!("reading {PLANS}"))?
            .flatten()
        {
            names.push(format!("{PLANS}/{}", entry.file_name().to_string_lossy()));
        }
        let prefix = objtree
            .to_str()
            .context("the object tree's path is not UTF-8")?;
        let mut files = BTreeMap::new();
        for name in names {
            let text = fs::read_to_string(objtree.join(&name))
                .with_context(|| format!("reading {name}"))?;
            files.insert(name, text.replace(prefix, OBJTREE));
        }
        Ok(Bundle {
            format: FORMAT.into(),
            files,
            dirs: dirs(objtree),
        })
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        Ok(serde_json::to_vec(self)?)
    }

    /// A stored bundle, if it is of this xtask's format.
    pub fn from_bytes(bytes: &[u8]) -> Option<Bundle> {
        serde_json::from_slice::<Bundle>(bytes).ok().filter(|b| {
            b.format == FORMAT && b.files.contains_key(CONFIG) && b.files.contains_key(PLAN)
        })
    }

    /// Writes the `.config` into `objtree`.
    pub fn write_config(&self, objtree: &Path) -> Result<()> {
        self.write(objtree, |name| name == CONFIG)
    }

    /// Writes the compile plan and the stage plans into `objtree`, and
    /// makes its directories.
    pub fn write_plans(&self, objtree: &Path) -> Result<()> {
        for dir in &self.dirs {
            ensure!(
                !dir.split('/').any(|part| part == "..") && !dir.starts_with('/'),
                "a bundle names {dir} outside the tree"
            );
            fs::create_dir_all(objtree.join(dir)).with_context(|| format!("creating {dir}"))?;
        }
        self.write(objtree, |name| name != CONFIG)
    }

    fn write(&self, objtree: &Path, which: impl Fn(&str) -> bool) -> Result<()> {
        let prefix = objtree
            .to_str()
            .context("the object tree's path is not UTF-8")?;
        for (name, text) in self.files.iter().filter(|(name, _)| which(name)) {
            ensure!(
                !name.contains("..") && !name.starts_with('/'),
                "a bundle names {name} outside the tree"
            );
            let path = objtree.join(name);
            fs::create_dir_all(path.parent().expect("a file in the tree"))?;
            fs_atomic::write(&path, text.replace(OBJTREE, prefix).as_bytes())?;
        }
        Ok(())
    }
}

/// The tree's directories but its own state, relative, sorted.
fn dirs(objtree: &Path) -> Vec<String> {
    let mut found: Vec<String> = super::plan_tree::object_dirs(objtree)
        .into_iter()
        .filter_map(|dir| dir.to_str().map(String::from))
        .collect();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_moves_to_another_tree_path() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("tree-b"));
        fs::create_dir_all(a.join(PLANS)).unwrap();
        fs::write(a.join(CONFIG), "CONFIG_A=y\n").unwrap();
        fs::write(a.join(PLAN), format!("{{\"O\": \"{}\"}}", a.display())).unwrap();
        fs::write(
            a.join(PLANS).join("image.json"),
            format!("cd {}/tools", a.display()),
        )
        .unwrap();
        fs::create_dir_all(a.join("arch/x86/include/generated/uapi/asm")).unwrap();
        let bytes = Bundle::collect(&a).unwrap().to_bytes().unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains(a.to_str().unwrap()));

        let bundle = Bundle::from_bytes(&bytes).unwrap();
        bundle.write_config(&b).unwrap();
        assert_eq!(fs::read_to_string(b.join(CONFIG)).unwrap(), "CONFIG_A=y\n");
        assert!(
            !b.join(PLAN).exists(),
            "plans are written only once the configuration is synced"
        );
        bundle.write_plans(&b).unwrap();
        assert_eq!(
            fs::read_to_string(b.join(PLAN)).unwrap(),
            format!("{{\"O\": \"{}\"}}", b.display())
        );
        assert_eq!(
            fs::read_to_string(b.join(PLANS).join("image.json")).unwrap(),
            format!("cd {}/tools", b.display())
        );
        assert!(
            b.join("arch/x86/include/generated/uapi/asm").is_dir(),
            "the directories Kbuild makes while it reads its Makefiles"
        );
        assert!(Bundle::from_bytes(b"{\"format\": \"xtask-bundle-v0\", \"files\": {}}").is_none());
    }

    #[test]
    fn a_tree_notes_the_key_it_shared_its_bundle_under() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join(".xtask")).unwrap();
        assert!(!Bundle::shared_as(dir.path(), "recipe a"));
        Bundle::mark_shared(dir.path(), "recipe a").unwrap();
        assert!(Bundle::shared_as(dir.path(), "recipe a"));
        assert!(!Bundle::shared_as(dir.path(), "recipe b"));
    }
}
