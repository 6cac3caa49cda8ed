//! Configure: `tinyconfig`, then the `targets/` fragments and the LTO choice,
//! then `olddefconfig`, then proof that every requested symbol landed.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};

use crate::{
    kbuild::Kbuild,
    kconfig::{self, DotConfig},
    paths,
    target::{Profile, Target},
};

/// The fragments for a target, in the order they are applied.
pub fn fragments(target: &Target) -> Vec<PathBuf> {
    let dir = paths::targets_dir();
    let arch = target.arch.kbuild();
    let mut list = vec![dir.join("common/tiny.config"), dir.join(arch).join("tiny.config")];
    if target.profile == Profile::Proof {
        list.push(dir.join("common/proof.config"));
        list.push(dir.join(arch).join("proof.config"));
    }
    list
}

/// The generated fragment holding the LTO choice.
fn lto_fragment(target: &Target) -> String {
    format!(
        "# The LTO mode requested with --lto {}.\nCONFIG_{}=y\n",
        target.lto,
        target.lto.kconfig_symbol()
    )
}

/// Everything configure reads, for the build's cache key.
pub fn inputs(target: &Target) -> Result<String> {
    let mut text = lto_fragment(target);
    for fragment in fragments(target) {
        text += &fs::read_to_string(&fragment).with_context(|| format!("reading {}", fragment.display()))?;
    }
    Ok(text)
}

/// An error whose message lists the requested symbols that did not land.
#[derive(Debug)]
pub struct Unmet(pub Vec<String>);

impl std::fmt::Display for Unmet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "the configuration is missing requested symbols:")?;
        for line in &self.0 {
            writeln!(f, "  {line}")?;
        }
        write!(f, "fix the fragment (enable the dependency too) and rebuild")
    }
}

impl std::error::Error for Unmet {}

pub fn configure(kbuild: &Kbuild, target: &Target, jobs: usize) -> Result<()> {
    let state = kbuild.objtree.join(".xtask");
    fs::create_dir_all(&state)?;
    let lto_fragment_path = state.join("lto.config");
    fs::write(&lto_fragment_path, lto_fragment(target))?;
    let mut all = fragments(target);
    all.push(lto_fragment_path);

    kbuild.run("tinyconfig", jobs)?;
    let dot_config = kbuild.objtree.join(".config");
    let mut config = fs::read_to_string(&dot_config)?;
    let mut requests = Vec::new();
    for fragment in &all {
        config += &fs::read_to_string(fragment).with_context(|| format!("reading {}", fragment.display()))?;
        config.push('\n');
        requests.extend(kconfig::parse_fragment(fragment)?);
    }
    fs::write(&dot_config, config)?;
    kbuild.run("olddefconfig", jobs)?;

    let result = DotConfig::read(&dot_config)?;
    let unmet = kconfig::verify(&kbuild.srctree, kbuild.arch.srcarch(), &result, &requests)?;
    if !unmet.is_empty() {
        return Err(Unmet(unmet.iter().map(|u| u.to_string()).collect()).into());
    }
    Ok(())
}

/// The `.config` of an object tree, for cache keys.
pub fn config_path(objtree: &Path) -> PathBuf {
    objtree.join(".config")
}
