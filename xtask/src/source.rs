//! The kernel source tree: Debian's `linux-source-6.12` unpacked once under
//! `target/src/`, or any tree given with `--source`. Never written to.
//! Debian's other series unpack the same way, for the tests of other versions.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};

use crate::{
    engine::lock::TreeLock,
    process,
    render::{self, Notice},
};

/// The Debian `linux-source-<series>` built when no `--source` is given.
pub const DEFAULT_SERIES: &str = "6.12";

#[derive(Clone, Debug)]
pub struct Source {
    pub root: PathBuf,
    /// `6.12.117`, from the top Makefile.
    pub version: String,
}

/// The source tree to build: `--source`, or the default tarball unpacked into the cache.
pub fn resolve(explicit: Option<&Path>) -> Result<Source> {
    let root = match explicit {
        Some(dir) => dir
            .canonicalize()
            .with_context(|| format!("--source {}", dir.display()))?,
        None => unpack_default()?,
    };
    if !root.join("Makefile").is_file() || !root.join("Kconfig").is_file() {
        bail!(
            "{} is not a kernel source tree (no Makefile and Kconfig at its root)",
            root.display()
        );
    }
    if root.join(".config").exists() || root.join("include/config").exists() {
        bail!(
            "{} has been configured in place; builds are out of tree: run `make mrproper` there",
            root.display()
        );
    }
    let version = kernel_version(&root)?;
    Ok(Source { root, version })
}

/// The unpacked default tree ([`unpack_debian`] of [`DEFAULT_SERIES`]).
pub fn unpack_default() -> Result<PathBuf> {
    unpack_debian(DEFAULT_SERIES)
}

/// Debian's `linux-source-<series>` (`6.12`, `6.1`) unpacked under
/// `target/src/`, installed first if missing. Unpacked once (into a
/// temporary directory first, so an interrupted unpack never looks
/// complete), one process at a time: a second build started meanwhile waits
/// for the first one's unpack.
pub fn unpack_debian(series: &str) -> Result<PathBuf> {
    let name = format!("linux-source-{series}");
    let cache = crate::paths::target_dir().join("src");
    let root = cache.join(&name);
    let stamp = cache.join(format!(".{name}.unpacked"));
    if stamp.exists() && root.is_dir() {
        return Ok(root);
    }
    fs::create_dir_all(&cache)?;
    let _lock = TreeLock::acquire(&root, |holder| {
        render::notice(Notice::Doing(format!(
            "waiting for {} to be unpacked: {holder}",
            root.display()
        )));
        Ok(())
    })?;
    if stamp.exists() && root.is_dir() {
        return Ok(root);
    }
    let tarball = PathBuf::from(format!("/usr/src/{name}.tar.xz"));
    if !tarball.exists() {
        crate::toolchain::install(&[&name])?;
    }
    let partial = cache.join(format!("unpacking-{name}"));
    let _ = fs::remove_dir_all(&partial);
    fs::create_dir_all(&partial)?;
    render::notice(Notice::Doing(format!(
        "unpacking {} into {}",
        tarball.display(),
        cache.display()
    )));
    process::run(
        process::command("tar")
            .arg("-xf")
            .arg(&tarball)
            .arg("-C")
            .arg(&partial),
    )?;
    let _ = fs::remove_dir_all(&root);
    fs::rename(partial.join(&name), &root)?;
    fs::remove_dir_all(&partial)?;
    crate::fs_atomic::write(&stamp, tarball.display().to_string().as_bytes())?;
    Ok(root)
}

/// `VERSION.PATCHLEVEL.SUBLEVEL[EXTRAVERSION]` from the top Makefile.
pub fn kernel_version(root: &Path) -> Result<String> {
    let makefile = fs::read_to_string(root.join("Makefile"))?;
    let field = |name: &str| {
        makefile
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim_start().strip_prefix('='))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    Ok(format!(
        "{}.{}.{}{}",
        field("VERSION"),
        field("PATCHLEVEL"),
        field("SUBLEVEL"),
        field("EXTRAVERSION")
    ))
}
