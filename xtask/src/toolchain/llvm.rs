//! Which LLVM builds the kernel, spelled as Kbuild's `LLVM=` is: `1` (the
//! default release), `-22` (a version suffix: Debian's `clang-22`, whose
//! unsuffixed tools live in `/usr/lib/llvm-22/bin`), or a directory
//! (`/usr/lib/llvm-22/bin/`). Every object tree belongs to one toolchain.

use std::{
    fmt,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};

use crate::process;

/// The release used when none is asked for.
pub const DEFAULT_RELEASE: u32 = 19;

/// The tools a kernel build runs from the toolchain's directory.
pub const TOOLS: &[&str] = &["clang", "ld.lld", "llvm-ar", "llvm-nm", "llvm-objcopy"];

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Llvm {
    /// `LLVM=1`, or nothing: Debian's `llvm-19`, else the first on `PATH`.
    #[default]
    Default,
    /// `LLVM=-22`: Debian's `llvm-22`.
    Release(u32),
    /// `LLVM=/usr/lib/llvm-22/bin/`: the tools in that directory.
    Dir(PathBuf),
}

impl Llvm {
    /// Kbuild's spellings of `LLVM=`.
    pub fn parse(value: &str) -> Result<Llvm, String> {
        let value = value.trim();
        if value == "1" {
            return Ok(Llvm::Default);
        }
        if let Some(release) = value.strip_prefix('-') {
            return match release.parse::<u32>() {
                Ok(release) => Ok(Llvm::Release(release).normalized()),
                Err(_) => Err(format!(
                    "LLVM={value}: a version suffix is a number, as in -22 (clang-22)"
                )),
            };
        }
        if value.contains('/') {
            return Ok(Llvm::Dir(PathBuf::from(value)).normalized());
        }
        Err(format!(
            "LLVM={value}: expected 1, a version suffix such as -22 (clang-22), \
             or a directory such as /usr/lib/llvm-22/bin/"
        ))
    }

    /// Debian's directory of a release is that release, and the default
    /// release is the default: each toolchain has one name and one tree.
    fn normalized(self) -> Llvm {
        match self {
            Llvm::Release(DEFAULT_RELEASE) => Llvm::Default,
            Llvm::Dir(dir) => match debian_release(&dir) {
                Some(release) => Llvm::Release(release).normalized(),
                None => Llvm::Dir(dir),
            },
            other => other,
        }
    }

    /// The directories searched for the tools, in order.
    pub fn dirs(&self) -> Vec<PathBuf> {
        match self {
            Llvm::Default => std::iter::once(debian_dir(DEFAULT_RELEASE))
                .chain(
                    std::env::var_os("PATH")
                        .into_iter()
                        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>()),
                )
                .collect(),
            Llvm::Release(release) => vec![debian_dir(*release)],
            Llvm::Dir(dir) => vec![dir.clone()],
        }
    }

    /// The first of `dirs` that holds every tool.
    pub fn bin(&self) -> Option<PathBuf> {
        self.dirs()
            .into_iter()
            .find(|dir| TOOLS.iter().all(|t| dir.join(t).is_file()))
    }

    /// The Debian packages that provide it; none for a directory.
    pub fn packages(&self) -> Vec<String> {
        let release = match self {
            Llvm::Default => DEFAULT_RELEASE,
            Llvm::Release(release) => *release,
            Llvm::Dir(_) => return Vec::new(),
        };
        ["clang", "lld", "llvm"]
            .map(|p| format!("{p}-{release}"))
            .to_vec()
    }

    /// What object trees of this toolchain add to their name; nothing for
    /// the default.
    pub fn tree_tag(&self) -> Option<String> {
        match self {
            Llvm::Default => None,
            Llvm::Release(release) => Some(format!("llvm{release}")),
            Llvm::Dir(dir) => Some(format!("llvm-{}", crate::target::short_hash(dir))),
        }
    }
}

impl fmt::Display for Llvm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Llvm::Default => write!(f, "1"),
            Llvm::Release(release) => write!(f, "-{release}"),
            Llvm::Dir(dir) => write!(f, "{}/", dir.display().to_string().trim_end_matches('/')),
        }
    }
}

fn debian_dir(release: u32) -> PathBuf {
    PathBuf::from(format!("/usr/lib/llvm-{release}/bin"))
}

/// `N` for `/usr/lib/llvm-N/bin`, with or without the trailing slash.
fn debian_release(dir: &Path) -> Option<u32> {
    let text = dir.to_str()?.trim_end_matches('/');
    text.strip_prefix("/usr/lib/llvm-")?
        .strip_suffix("/bin")?
        .parse()
        .ok()
}

/// A release as `major.minor.patch`.
pub type Version = (u32, u32, u32);

/// The release in `clang --version`'s first line: `Debian clang version
/// 19.1.7 (3~deb12u1)`, `Ubuntu clang version 14.0.0-1ubuntu1.1`.
pub fn clang_release(line: &str) -> Option<Version> {
    let rest = &line[line.find("clang version ")? + "clang version ".len()..];
    let number: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    version(&number)
}

fn version(text: &str) -> Option<Version> {
    let mut parts = text.trim().split('.').map(|p| p.parse::<u32>().ok());
    Some((
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
        parts.next().flatten().unwrap_or(0),
    ))
}

/// The oldest LLVM the kernel supports on `srcarch`, as the kernel says
/// (`scripts/min-tool-version.sh llvm`).
pub fn kernel_minimum(srctree: &Path, srcarch: &str) -> Result<Version> {
    let script = srctree.join("scripts/min-tool-version.sh");
    let out = process::stdout(
        process::command("sh")
            .arg(&script)
            .arg("llvm")
            .env("SRCARCH", srcarch),
    )?;
    version(&out).with_context(|| format!("{} printed {out:?}, not a version", script.display()))
}

/// An error naming the kernel's minimum when `clang` is older.
pub fn check_supported(clang: &str, minimum: Version, srctree: &Path) -> Result<()> {
    let release = clang_release(clang).with_context(|| format!("no version in {clang:?}"))?;
    if release < minimum {
        let (a, b, c) = minimum;
        let (x, y, z) = release;
        bail!(
            "{clang}: LLVM {x}.{y}.{z} is older than {a}.{b}.{c}, the oldest this kernel supports \
             ({}/scripts/min-tool-version.sh llvm)",
            srctree.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kbuilds_spellings_parse() {
        assert_eq!(Llvm::parse("1"), Ok(Llvm::Default));
        assert_eq!(Llvm::parse("-22"), Ok(Llvm::Release(22)));
        assert_eq!(Llvm::parse("-19"), Ok(Llvm::Default), "the default release");
        assert_eq!(
            Llvm::parse("/usr/lib/llvm-22/bin/"),
            Ok(Llvm::Release(22)),
            "Debian's directory of a release is the release"
        );
        assert_eq!(Llvm::parse("/usr/lib/llvm-19/bin"), Ok(Llvm::Default));
        assert_eq!(
            Llvm::parse("/opt/llvm/bin/"),
            Ok(Llvm::Dir("/opt/llvm/bin/".into()))
        );
    }

    #[test]
    fn a_bad_spelling_says_what_kbuild_takes() {
        let error = Llvm::parse("22").unwrap_err();
        assert!(
            error.contains("expected 1, a version suffix such as -22"),
            "{error}"
        );
        let error = Llvm::parse("-x").unwrap_err();
        assert!(error.contains("a version suffix is a number"), "{error}");
    }

    #[test]
    fn each_toolchain_has_its_own_tree_and_packages() {
        assert_eq!(Llvm::Default.tree_tag(), None);
        assert_eq!(Llvm::Release(22).tree_tag().as_deref(), Some("llvm22"));
        let dir = Llvm::Dir("/opt/llvm/bin".into()).tree_tag().unwrap();
        assert!(dir.starts_with("llvm-"), "{dir}");
        assert_ne!(Some(dir), Llvm::Dir("/opt/other/bin".into()).tree_tag());
        assert_eq!(Llvm::Default.packages(), ["clang-19", "lld-19", "llvm-19"]);
        assert_eq!(
            Llvm::Release(22).packages(),
            ["clang-22", "lld-22", "llvm-22"]
        );
        assert!(Llvm::Dir("/opt/llvm/bin".into()).packages().is_empty());
        assert_eq!(Llvm::Release(22).to_string(), "-22");
        assert_eq!(
            Llvm::Dir("/opt/llvm/bin".into()).to_string(),
            "/opt/llvm/bin/"
        );
    }

    #[test]
    fn the_release_is_read_from_clangs_own_line() {
        assert_eq!(
            clang_release("Debian clang version 19.1.7 (3~deb12u1)"),
            Some((19, 1, 7))
        );
        assert_eq!(
            clang_release("Ubuntu clang version 14.0.0-1ubuntu1.1"),
            Some((14, 0, 0))
        );
        assert_eq!(clang_release("clang version 22.1.8"), Some((22, 1, 8)));
        assert_eq!(clang_release("gcc (Debian 12.2.0-14) 12.2.0"), None);
    }

    /// The kernel's own script, and a release below it named as such.
    #[test]
    fn a_release_older_than_the_kernels_minimum_is_refused() {
        let srctree = tempfile::tempdir().unwrap();
        let script = srctree.path().join("scripts/min-tool-version.sh");
        std::fs::create_dir_all(script.parent().unwrap()).unwrap();
        std::fs::write(
            &script,
            "case \"$1\" in llvm) if [ \"$SRCARCH\" = s390 ]; then echo 15.0.0; else echo 13.0.1; fi;; esac\n",
        )
        .unwrap();
        assert_eq!(kernel_minimum(srctree.path(), "x86").unwrap(), (13, 0, 1));
        assert_eq!(kernel_minimum(srctree.path(), "s390").unwrap(), (15, 0, 0));
        let minimum = (13, 0, 1);
        check_supported(
            "Debian clang version 19.1.7 (3~deb12u1)",
            minimum,
            srctree.path(),
        )
        .unwrap();
        let error = check_supported("clang version 12.0.1", minimum, srctree.path())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("LLVM 12.0.1 is older than 13.0.1, the oldest this kernel supports"),
            "{error}"
        );
    }
}
