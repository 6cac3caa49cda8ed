//! Configure: `tinyconfig`, then the `targets/` fragments and the LTO choice,
//! then `olddefconfig`, then proof that every requested symbol landed.

use std::{fmt, fs, path::PathBuf};

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

/// The error when requested symbols did not land, each with its reasons.
#[derive(Debug)]
pub struct UnmetRequests(pub Vec<kconfig::Unmet>);

impl fmt::Display for UnmetRequests {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "the configuration is missing requested symbols:")?;
        for unmet in &self.0 {
            writeln!(f, "  {unmet}")?;
        }
        write!(f, "fix the fragment (enable the dependency too) and rebuild")
    }
}

impl std::error::Error for UnmetRequests {}

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
        return Err(UnmetRequests(unmet).into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmet_requests_list_one_miss_a_line() {
        let request = kconfig::Request {
            symbol: "LKDTM".to_string(),
            value: "y".to_string(),
            file: PathBuf::from("targets/common/proof.config"),
            line: 7,
        };
        let unmet = kconfig::Unmet {
            request,
            actual: None,
            reasons: vec!["if RUNTIME_TESTING_MENU [=n] (lib/Kconfig.debug:2167)".to_string()],
        };
        assert_eq!(
            UnmetRequests(vec![unmet]).to_string(),
            "the configuration is missing requested symbols:\n  \
             CONFIG_LKDTM=y (targets/common/proof.config:7) did not land (is not set): \
             if RUNTIME_TESTING_MENU [=n] (lib/Kconfig.debug:2167)\n\
             fix the fragment (enable the dependency too) and rebuild"
        );
    }
}
