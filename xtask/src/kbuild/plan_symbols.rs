//! The configuration symbols a plan can depend on. Make sees the
//! configuration as variables (`include/config/auto.conf`) and reads them
//! by name: no Makefile of the kernel builds a `CONFIG_` name from parts
//! (checked here, each time), and the scripts the Makefiles run read
//! theirs by name too (`setlocalversion` reads `CONFIG_LOCALVERSION`). So
//! two configurations that differ only in symbols that no Makefile, Kbuild
//! file or make include names, nor any script they run (what a `$(shell
//! ...)` names, Kbuild's `scripts/` wherever named, and the scripts those
//! name in turn), plan the same, as long as the generated files the
//! Makefiles read (arm64's `asm-offsets.h`) come out the same. A script a
//! recipe runs is a step's business, not the plan's: its command is the
//! same either way. C sources are never followed: they are compiled, not
//! run, and a compile's inputs are its own key's.

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};

use crate::parallel;

/// What the source's Makefiles and scripts can read of a configuration.
#[derive(Debug, PartialEq, Eq)]
pub enum Named {
    /// Only these symbols (without `CONFIG_`).
    Symbols(BTreeSet<String>),
    /// Any symbol: this file builds a name from parts (`CONFIG_$(x)`).
    Any(PathBuf),
}

impl Named {
    /// Which of `symbols` a plan may depend on; `None` when any may.
    pub fn reached<'a>(&self, symbols: &'a BTreeSet<String>) -> Option<Vec<&'a str>> {
        match self {
            Named::Any(_) => None,
            Named::Symbols(named) => Some(
                symbols
                    .iter()
                    .filter(|s| named.contains(*s))
                    .map(String::as_str)
                    .collect(),
            ),
        }
    }
}

/// Scans `srctree`: every Makefile, Kbuild file and make include, and every
/// file they name, transitively.
pub fn named(srctree: &Path) -> Result<Named> {
    let mut seen: BTreeSet<PathBuf> = BTreeSet::new();
    let mut symbols = BTreeSet::new();
    let mut next = makefiles(srctree)?;
    while !next.is_empty() {
        seen.extend(next.iter().cloned());
        let mut named_files = BTreeSet::new();
        for part in parallel::by_chunks(&next, |part| scan(srctree, part)) {
            let part = part?;
            if let Some(file) = part.any {
                return Ok(Named::Any(file));
            }
            symbols.extend(part.symbols);
            named_files.extend(part.files);
        }
        next = named_files
            .into_iter()
            .filter(|f| !seen.contains(f))
            .collect();
    }
    Ok(Named::Symbols(symbols))
}

/// What one batch of files names.
#[derive(Default)]
struct Scanned {
    symbols: BTreeSet<String>,
    /// Other files of the source, by path.
    files: BTreeSet<PathBuf>,
    /// A file that builds a symbol's name from parts.
    any: Option<PathBuf>,
}

fn scan(srctree: &Path, files: &[PathBuf]) -> Result<Scanned> {
    let mut scanned = Scanned::default();
    for file in files {
        let bytes = fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        if !names_in(&bytes, &mut scanned.symbols) {
            scanned.any = Some(file.clone());
            return Ok(scanned);
        }
        let dir = file.parent().unwrap_or(srctree);
        for path in paths_in(&bytes) {
            for base in [srctree, dir] {
                let candidate = base.join(&path);
                if is_followed(&candidate) && candidate.is_file() {
                    scanned.files.insert(candidate);
                }
            }
        }
    }
    Ok(scanned)
}

/// The files `text` names that a plan may run: any path on a line that
/// runs a command while make reads its Makefiles (`$(shell ...)`), and
/// Kbuild's scripts anywhere (`$(srctree)/scripts/setlocalversion`).
fn paths_in(text: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(text);
    let mut paths = Vec::new();
    let mut logical = String::new();
    for line in text.lines() {
        logical.push_str(line);
        if line.ends_with('\\') {
            continue;
        }
        let at_parse_time = logical.contains("$(shell");
        paths.extend(
            words(&logical)
                .filter(|w| at_parse_time || w.starts_with("scripts/"))
                .map(String::from),
        );
        logical.clear();
    }
    paths
}

/// Words that look like relative paths (`scripts/foo.sh`, also from
/// `$(srctree)/scripts/foo.sh`).
fn words(line: &str) -> impl Iterator<Item = &str> {
    line.split(|c: char| !(c.is_ascii_alphanumeric() || "_./+-".contains(c)))
        .filter(|word| word.contains('/') && !word.contains("..") && !word.ends_with('/'))
        .map(|word| word.trim_start_matches('/'))
}

/// A file a plan may run or read: not a source the compiler reads.
fn is_followed(path: &Path) -> bool {
    const COMPILED: &[&str] = &["c", "h", "S", "rs", "lds", "dts", "dtsi", "o"];
    !path
        .extension()
        .is_some_and(|e| COMPILED.iter().any(|c| e == *c))
}

/// Adds each `CONFIG_NAME` of `text` to `symbols`; false when a name is
/// built from parts (`CONFIG_$(...)`, `CONFIG_${...}`).
fn names_in(text: &[u8], symbols: &mut BTreeSet<String>) -> bool {
    const PREFIX: &[u8] = b"CONFIG_";
    let is_word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    let mut rest = text;
    while let Some(at) = find(rest, PREFIX) {
        let after = &rest[at + PREFIX.len()..];
        // `DEFCONFIG_$(ARCH)` is another name.
        if at > 0 && is_word(&rest[at - 1]) {
            rest = after;
            continue;
        }
        let len = after.iter().take_while(|b| is_word(b)).count();
        if len == 0 && after.first() == Some(&b'$') {
            return false;
        }
        if len > 0 {
            symbols.insert(String::from_utf8_lossy(&after[..len]).into_owned());
        }
        rest = &after[len..];
    }
    true
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Directories no build of the kernel reads: the selftests' own Makefiles
/// (`tools/testing/shared/shared.mk` builds `CONFIG_$(LONG_BIT)BIT`), and
/// Kconfig's, whose targets make the configuration before any plan (its
/// Makefile names `streamline_config.pl`, which reads every symbol).
const NOT_BUILT: &[&str] = &["tools/testing", "scripts/kconfig", ".git"];

/// Every Makefile, Kbuild file and make include under `srctree`.
fn makefiles(srctree: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut dirs = vec![srctree.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let path = entry.path();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                let skipped = path
                    .strip_prefix(srctree)
                    .is_ok_and(|p| NOT_BUILT.iter().any(|n| p == Path::new(n)));
                if !skipped {
                    dirs.push(path);
                }
            } else if kind.is_file() && is_makefile(&name) {
                files.push(path);
            }
        }
    }
    Ok(files)
}

fn is_makefile(name: &str) -> bool {
    name.starts_with("Makefile")
        || name.starts_with("Kbuild")
        || name.ends_with(".mk")
        || name.ends_with(".include")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_read_whole_and_a_name_built_from_parts_is_any() {
        let mut symbols = BTreeSet::new();
        assert!(names_in(
            b"obj-$(CONFIG_PRINTK) += printk.o\nifdef CONFIG_X86_64\n# CONFIG_\n",
            &mut symbols
        ));
        assert_eq!(
            symbols.into_iter().collect::<Vec<_>>(),
            ["PRINTK", "X86_64"]
        );
        assert!(!names_in(
            b"obj-$(CONFIG_$(ARCH)) += a.o\n",
            &mut BTreeSet::new()
        ));
        assert!(!names_in(b"x := ${CONFIG_${A}}\n", &mut BTreeSet::new()));
    }

    #[test]
    fn makefiles_and_the_files_they_name_are_scanned() {
        let tree = tempfile::tempdir().unwrap();
        let root = tree.path();
        for (file, text) in [
            (
                "Makefile",
                "include $(srctree)/scripts/Kbuild.include\nrelease = $(shell $(srctree)/scripts/setlocalversion)\n",
            ),
            ("kernel/Makefile", "obj-$(CONFIG_PRINTK) += printk/\n"),
            ("arch/x86/Kbuild", "obj-$(CONFIG_KVM) += kvm/\n"),
            ("arch/x86/Makefile.postlink", "ifdef CONFIG_X86_NEED_RELOCS\n"),
            ("scripts/Makefile.lib", "ifdef CONFIG_LTO_CLANG\n"),
            ("scripts/setlocalversion", ". scripts/lib/version.sh\necho $CONFIG_LOCALVERSION\n"),
            ("scripts/lib/version.sh", "echo $CONFIG_LOCALVERSION_AUTO\n"),
            ("scripts/Kbuild.include", "cmd_gen = $(src)/recipe.sh\n"),
            (
                "arch/x86/Makefile",
                "flags := $(shell $(src)/gen.sh \\\n\t$(src)/table.h)\n$(obj)/t.h: $(src)/recipe.sh\n",
            ),
            ("arch/x86/gen.sh", "echo $CONFIG_X86_GEN\n"),
            ("arch/x86/table.h", "#ifdef CONFIG_ONLY_COMPILED\n"),
            ("arch/x86/recipe.sh", "echo $CONFIG_RUN_BY_A_RECIPE\n"),
            ("tools/scripts/Makefile.include", "ifdef CONFIG_FOO_TOOL\n"),
            ("kernel/printk/printk.c", "#ifdef CONFIG_PRINTK_TIME\n"),
            ("scripts/diffconfig", "PRINTK_TIME n -> y: CONFIG_PRINTK_TIME\n"),
            ("kernel/Kconfig", "config PRINTK_CALLER\n"),
            ("tools/testing/shared/shared.mk", "CONFIG_$(LONG_BIT)BIT\n"),
            (
                "scripts/kconfig/Makefile",
                "streamline := $(srctree)/scripts/kconfig/streamline_config.pl\n",
            ),
            ("scripts/kconfig/streamline_config.pl", "\"CONFIG_$config\"\n"),
        ] {
            let path = root.join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }
        let Named::Symbols(symbols) = named(root).unwrap() else {
            panic!("no name is built from parts here");
        };
        assert_eq!(
            symbols.iter().map(String::as_str).collect::<Vec<_>>(),
            [
                "FOO_TOOL",
                "KVM",
                "LOCALVERSION",
                "LOCALVERSION_AUTO",
                "LTO_CLANG",
                "PRINTK",
                "X86_GEN",
                "X86_NEED_RELOCS"
            ]
        );
        let changed: BTreeSet<String> = ["PRINTK_TIME", "KVM"].map(String::from).into();
        assert_eq!(Named::Symbols(symbols).reached(&changed), Some(vec!["KVM"]));

        fs::create_dir_all(root.join("drivers")).unwrap();
        fs::write(root.join("drivers/Makefile"), "obj-$(CONFIG_$(X)) += x/\n").unwrap();
        assert_eq!(
            named(root).unwrap(),
            Named::Any(root.join("drivers/Makefile"))
        );
    }
}
