//! Configure: `tinyconfig`, then the `targets/` fragments, the user's
//! `--fragment`s and the LTO choice,
//! then `olddefconfig`, then proof that every requested symbol landed.

use std::{
    fmt, fs,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};

use crate::{
    kbuild::Kbuild,
    kconfig::{self, DotConfig},
    paths,
    target::{Profile, Target},
};

/// The fragments of a build, in the order they are applied: the profile's
/// (`targets/`), the user's (`--fragment`), then the LTO choice.
pub struct Fragments {
    files: Vec<PathBuf>,
    lto: String,
}

impl Fragments {
    /// The target's fragments and the user's, each found or named in an error.
    pub fn resolve(target: &Target, srctree: &Path, user: &[PathBuf]) -> Result<Fragments> {
        let mut files = profile_fragments(target);
        for fragment in user {
            files.push(find(fragment, srctree, target.arch.srcarch())?);
        }
        Ok(Fragments { files, lto: lto_fragment(target) })
    }

    /// Everything configure reads, for the build's cache key.
    pub fn text(&self) -> Result<String> {
        let mut text = String::new();
        for fragment in &self.files {
            text += &format!("# {}\n", fragment.display());
            text += &fs::read_to_string(fragment).with_context(|| format!("reading {}", fragment.display()))?;
        }
        Ok(text + &self.lto)
    }
}

/// The profile's fragments, in the order they are applied.
fn profile_fragments(target: &Target) -> Vec<PathBuf> {
    let dir = paths::targets_dir();
    let arch = target.arch.kbuild();
    let mut list = vec![dir.join("common/tiny.config"), dir.join(arch).join("tiny.config")];
    if target.profile == Profile::Proof {
        list.push(dir.join("common/proof.config"));
        list.push(dir.join(arch).join("proof.config"));
    }
    list
}

/// A fragment as given, or a bare `NAME.config` from the kernel's own.
fn find(fragment: &Path, srctree: &Path, srcarch: &str) -> Result<PathBuf> {
    if fragment.is_file() {
        return Ok(fragment.canonicalize()?);
    }
    let bare = fragment.components().count() == 1;
    let candidates = [srctree.join("kernel/configs").join(fragment), srctree.join("arch").join(srcarch).join("configs").join(fragment)];
    if let Some(found) = candidates.iter().filter(|_| bare).find(|c| c.is_file()) {
        return Ok(found.clone());
    }
    let looked: Vec<String> = candidates.iter().filter(|_| bare).map(|c| c.display().to_string()).collect();
    bail!(
        "--fragment {}: no such file{}",
        fragment.display(),
        if looked.is_empty() { String::new() } else { format!(" (also looked for {})", looked.join(" and ")) }
    )
}

/// The generated fragment holding the LTO choice.
fn lto_fragment(target: &Target) -> String {
    format!(
        "# The LTO mode requested with --lto {}.\nCONFIG_{}=y\n",
        target.lto,
        target.lto.kconfig_symbol()
    )
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

pub fn configure(kbuild: &Kbuild, fragments: &Fragments, jobs: usize) -> Result<()> {
    let state = kbuild.objtree.join(".xtask");
    fs::create_dir_all(&state)?;
    let lto_fragment_path = state.join("lto.config");
    fs::write(&lto_fragment_path, &fragments.lto)?;
    let mut all = fragments.files.clone();
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
