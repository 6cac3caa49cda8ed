//! The kernel source tree: Debian's `linux-source-6.12` unpacked once under
//! `target/src/`, or any tree given with `--source`. Never written to.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};

use crate::engine::lock::TreeLock;

/// The tarball Debian's `linux-source-6.12` package installs.
pub const DEFAULT_TARBALL: &str = "/usr/src/linux-source-6.12.tar.xz";

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

/// The unpacked default tree; unpacks it once (into a temporary directory first,
/// so an interrupted unpack never looks complete), one process at a time:
/// a second build started meanwhile waits for the first one's unpack.
pub fn unpack_default() -> Result<PathBuf> {
    let cache = crate::paths::target_dir().join("src");
    let root = cache.join("linux-source-6.12");
    let stamp = cache.join(".linux-source-6.12.unpacked");
    if stamp.exists() && root.is_dir() {
        return Ok(root);
    }
    fs::create_dir_all(&cache)?;
    let _lock = TreeLock::acquire(&root, |holder| {
        eprintln!("waiting for {} to be unpacked: {holder}", root.display());
        Ok(())
    })?;
    if stamp.exists() && root.is_dir() {
        return Ok(root);
    }
    let tarball = Path::new(DEFAULT_TARBALL);
    if !tarball.exists() {
        crate::toolchain::install(&["linux-source-6.12"])?;
    }
    let partial = cache.join("unpacking");
    let _ = fs::remove_dir_all(&partial);
    fs::create_dir_all(&partial)?;
    eprintln!("unpacking {} into {}", tarball.display(), cache.display());
    let status = Command::new("tar")
        .arg("-xf")
        .arg(tarball)
        .arg("-C")
        .arg(&partial)
        .status()
        .context("running tar")?;
    if !status.success() {
        bail!("tar -xf {} failed", tarball.display());
    }
    let _ = fs::remove_dir_all(&root);
    fs::rename(partial.join("linux-source-6.12"), &root)?;
    fs::remove_dir_all(&partial)?;
    fs::write(&stamp, tarball.display().to_string())?;
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
