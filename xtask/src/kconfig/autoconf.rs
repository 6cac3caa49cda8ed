//! `include/generated/autoconf.h`, padded to a length that does not move
//! when symbols come and go.
//!
//! Every C file includes it first, and clang records the source offsets of
//! inline assembly (`!srcloc`) in the bitcode: counted over everything the
//! compile read, so they all move when this file's length does. That
//! changes the bytes of every bitcode object, and with them the module
//! hashes that name ThinLTO's promoted locals. Padded with a trailing
//! comment to a multiple of [`BUCKET`], a symbol that appears or disappears
//! leaves the offsets where they were, and only the symbol's users rebuild.
//! When the length crosses a bucket, every bitcode object rebuilds
//! (`lto::policy::AUTOCONF_SIZE`), as it must.

use std::{fs, io, path::Path};

use anyhow::{Context, Result};

use crate::fs_atomic;

/// Where Kconfig writes it, in the object tree.
pub const PATH: &str = "include/generated/autoconf.h";

/// The padded length is a multiple of this. A symbol's line is about 40
/// bytes, so a flip crosses a boundary about once in 1,600; each compile
/// reads at most this much more comment.
pub const BUCKET: usize = 64 * 1024;

/// The padding's first bytes: how the padding is found again.
const MARK: &str = "/* cargo xtask: padded to a fixed length, so that source offsets \
                    after this file stay put when symbols change (!srcloc)";

const END: &str = " */\n";

/// Pads the tree's `autoconf.h` if Kconfig wrote one. Idempotent: a padded
/// file is left as it is.
pub fn pad(objtree: &Path) -> Result<()> {
    let path = objtree.join(PATH);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let padded = padded(&text);
    if padded != text {
        fs_atomic::write(&path, padded.as_bytes())?;
    }
    Ok(())
}

/// `text` without any padding of ours, padded to the next multiple of `BUCKET`.
fn padded(text: &str) -> String {
    let body = match text.rfind(MARK) {
        Some(at) if text[at..].ends_with(END) => &text[..at],
        _ => text,
    };
    let least = body.len() + MARK.len() + END.len();
    let length = least.div_ceil(BUCKET) * BUCKET;
    format!("{body}{MARK}{}{END}", " ".repeat(length - least))
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUTOCONF: &str = "/*\n * Automatically generated file; DO NOT EDIT.\n */\n\
#define CONFIG_PRINTK 1\n#define CONFIG_LOG_BUF_SHIFT 17\n";

    #[test]
    fn a_symbol_that_comes_or_goes_leaves_the_length_as_it_was() {
        let flipped = AUTOCONF.replace(
            "#define CONFIG_PRINTK 1\n",
            "#define CONFIG_PRINTK 1\n#define CONFIG_PRINTK_TIME 1\n",
        );
        let (before, after) = (padded(AUTOCONF), padded(&flipped));
        assert_eq!(before.len(), BUCKET);
        assert_eq!(after.len(), BUCKET);
        assert!(after.starts_with(&flipped) && before.starts_with(AUTOCONF));
        // Padding again changes nothing: the old padding is found and replaced.
        assert_eq!(padded(&before), before);
        assert_eq!(padded(&after.replace("TIME", "DELAY")).len(), BUCKET);
    }

    #[test]
    fn a_file_past_a_bucket_takes_the_next_one() {
        let big = AUTOCONF.to_string() + &"#define CONFIG_X 1\n".repeat(BUCKET / 19);
        assert_eq!(padded(&big).len(), 2 * BUCKET);
    }

    /// The padded file is still C: clang preprocesses it to the defines alone.
    #[test]
    fn clang_reads_the_padded_file_as_the_unpadded_one() {
        let dir = tempfile::tempdir().unwrap();
        let header = dir.path().join("autoconf.h");
        fs::write(&header, padded(AUTOCONF)).unwrap();
        let defines = |header: &Path| {
            let out = std::process::Command::new("/usr/lib/llvm-19/bin/clang")
                .args(["-E", "-dM", "-undef", "-x", "c"])
                .arg(header)
                .output()
                .expect("clang-19 is missing: apt-get install clang-19");
            assert!(out.status.success(), "{out:?}");
            String::from_utf8(out.stdout).unwrap()
        };
        let plain = dir.path().join("plain.h");
        fs::write(&plain, AUTOCONF).unwrap();
        assert_eq!(defines(&header), defines(&plain));
    }

    #[test]
    fn a_tree_is_padded_in_place_once() {
        let tree = tempfile::tempdir().unwrap();
        pad(tree.path()).unwrap();
        assert!(
            !tree.path().join(PATH).exists(),
            "a tree without one gets none"
        );
        let path = tree.path().join(PATH);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, AUTOCONF).unwrap();
        pad(tree.path()).unwrap();
        let once = fs::read_to_string(&path).unwrap();
        assert_eq!((once.len(), once.starts_with(AUTOCONF)), (BUCKET, true));
        let modified = fs::metadata(&path).unwrap().modified().unwrap();
        pad(tree.path()).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), once);
        assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), modified);
    }
}
