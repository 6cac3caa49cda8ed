//! The configuration symbols a plan can depend on. Make sees the
//! configuration as variables (`include/config/auto.conf`) and reads them
//! by name: no Makefile of the kernel builds a `CONFIG_` name from parts
//! (checked here, each time), and the scripts the Makefiles run read
//! theirs by name too (`setlocalversion` reads `CONFIG_LOCALVERSION`). So
//! two configurations that differ only in symbols no Makefile, Kbuild file,
//! make include or script names plan the same, as long as the generated
//! files the Makefiles read (arm64's `asm-offsets.h`) come out the same.

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};

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
/// file under `scripts/`.
pub fn named(srctree: &Path) -> Result<Named> {
    let files = files(srctree)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = files.len().div_ceil(threads).max(1);
    let parts: Vec<Result<Named>> = std::thread::scope(|scope| {
        let parts: Vec<_> = files
            .chunks(chunk)
            .map(|part| scope.spawn(move || scan(part)))
            .collect();
        parts
            .into_iter()
            .map(|p| p.join().expect("a scanning thread panicked"))
            .collect()
    });
    let mut all = BTreeSet::new();
    for part in parts {
        match part? {
            Named::Symbols(symbols) => all.extend(symbols),
            any => return Ok(any),
        }
    }
    Ok(Named::Symbols(all))
}

fn scan(files: &[PathBuf]) -> Result<Named> {
    let mut symbols = BTreeSet::new();
    for file in files {
        let bytes = fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        if !names_in(&bytes, &mut symbols) {
            return Ok(Named::Any(file.clone()));
        }
    }
    Ok(Named::Symbols(symbols))
}

/// Adds each `CONFIG_NAME` of `text` to `symbols`; false when a name is
/// built from parts (`CONFIG_$(...)`, `CONFIG_${...}`).
fn names_in(text: &[u8], symbols: &mut BTreeSet<String>) -> bool {
    const PREFIX: &[u8] = b"CONFIG_";
    let mut rest = text;
    while let Some(at) = find(rest, PREFIX) {
        let after = &rest[at + PREFIX.len()..];
        let len = after
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
            .count();
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

/// The files make or Kbuild's scripts read, under `srctree`.
fn files(srctree: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut dirs = vec![(srctree.to_path_buf(), false)];
    while let Some((dir, in_scripts)) = dirs.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let path = entry.path();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                if name != ".git" {
                    let scripts = in_scripts || (dir == srctree && name == "scripts");
                    dirs.push((path, scripts));
                }
            } else if kind.is_file() && (in_scripts || is_makefile(&name)) {
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
    fn makefiles_kbuild_files_includes_and_scripts_are_scanned() {
        let tree = tempfile::tempdir().unwrap();
        let root = tree.path();
        for (file, text) in [
            ("Makefile", "include scripts/Kbuild.include\n"),
            ("kernel/Makefile", "obj-$(CONFIG_PRINTK) += printk/\n"),
            ("arch/x86/Kbuild", "obj-$(CONFIG_KVM) += kvm/\n"),
            (
                "arch/x86/Makefile.postlink",
                "ifdef CONFIG_X86_NEED_RELOCS\n",
            ),
            ("scripts/Makefile.lib", "ifdef CONFIG_LTO_CLANG\n"),
            ("scripts/setlocalversion", "echo $CONFIG_LOCALVERSION\n"),
            ("tools/scripts/Makefile.include", "ifdef CONFIG_FOO_TOOL\n"),
            ("kernel/printk/printk.c", "#ifdef CONFIG_PRINTK_TIME\n"),
            ("kernel/Kconfig", "config PRINTK_CALLER\n"),
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
                "LTO_CLANG",
                "PRINTK",
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
