//! A private copy of the default kernel tree, for the end-to-end tests and
//! `cargo xtask bench`: they build and edit it, never the user's trees.
//!
//! The copy (`target/private/linux-source-6.12`) is hard links to the
//! unpacked default tree: no disk, a second to make. So an edit must never
//! write through a file: it replaces it (a new inode), records itself in a
//! log beside the copy, and is undone on drop by linking the pristine file
//! back. A run that was killed leaves the log behind; the next `open` undoes
//! what it lists. One process at a time holds the copy (a lock beside it),
//! so nobody undoes another's live edit.

use std::{
    fs,
    path::{Component, Path, PathBuf},
    time::SystemTime,
};

use anyhow::{bail, ensure, Context, Result};

use crate::{engine::lock::TreeLock, fs_atomic, process};

pub struct PrivateSource {
    pristine: PathBuf,
    root: PathBuf,
    _lock: TreeLock,
}

impl PrivateSource {
    /// The private copy of [`crate::source::unpack_default`], made if missing.
    pub fn open() -> Result<PrivateSource> {
        let pristine = crate::source::unpack_default()?;
        PrivateSource::at(
            &pristine,
            &crate::paths::target_dir().join("private/linux-source-6.12"),
        )
    }

    /// A private copy of `pristine` at `copy`. Waits while another process
    /// holds it; a second `at` of one copy in one process would wait forever.
    pub fn at(pristine: &Path, copy: &Path) -> Result<PrivateSource> {
        let lock = TreeLock::acquire(copy, |holder| {
            eprintln!("waiting for {}: {holder}", copy.display());
            Ok(())
        })?;
        if !copy.join("Makefile").is_file() {
            // Linked under another name first, so a killed `cp` never looks complete.
            let partial = copy.with_file_name(format!("{}.partial", file_name(copy)));
            let _ = fs::remove_dir_all(&partial);
            let _ = fs::remove_dir_all(copy);
            process::run(
                process::command("cp")
                    .arg("-al")
                    .arg(pristine)
                    .arg(&partial),
            )?;
            fs::rename(&partial, copy)?;
        }
        let source = PrivateSource {
            pristine: pristine.canonicalize()?,
            root: copy.canonicalize()?,
            _lock: lock,
        };
        source.undo_left_over_edits()?;
        Ok(source)
    }

    /// The copy's root, canonical: what `--source` resolves it to.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Appends `text` to `relative` (a path in the tree).
    pub fn append(&self, relative: &str, text: &str) -> Result<Edit> {
        let mut bytes =
            fs::read(self.root.join(relative)).with_context(|| format!("reading {relative}"))?;
        bytes.extend_from_slice(text.as_bytes());
        self.edit(relative, &bytes)
    }

    /// Replaces the one occurrence of `from` in `relative` with `to`.
    pub fn replace(&self, relative: &str, from: &str, to: &str) -> Result<Edit> {
        let text = fs::read_to_string(self.root.join(relative))
            .with_context(|| format!("reading {relative}"))?;
        ensure!(
            text.matches(from).count() == 1,
            "{relative} does not hold `{from}` exactly once"
        );
        self.edit(relative, text.replacen(from, to, 1).as_bytes())
    }

    /// Creates `relative`, a file the pristine tree does not have.
    pub fn create(&self, relative: &str, text: &str) -> Result<Edit> {
        ensure!(
            !self.pristine.join(relative).exists(),
            "{relative} exists in the pristine tree; edit it instead"
        );
        self.edit(relative, text.as_bytes())
    }

    /// Gives `relative` a new mtime, its bytes unchanged. A copy of the file
    /// gets the mtime: the pristine inode (and the default tree) keep theirs.
    pub fn touch(&self, relative: &str) -> Result<Edit> {
        let bytes =
            fs::read(self.root.join(relative)).with_context(|| format!("reading {relative}"))?;
        let edit = self.edit(relative, &bytes)?;
        let file = fs::File::options()
            .write(true)
            .open(self.root.join(relative))?;
        file.set_modified(SystemTime::now())
            .with_context(|| format!("touching {relative}"))?;
        Ok(edit)
    }

    /// Records the edit, then replaces the file: a kill in between leaves a
    /// logged file that is still pristine, which undoing puts back again.
    fn edit(&self, relative: &str, bytes: &[u8]) -> Result<Edit> {
        let relative = Path::new(relative);
        ensure!(
            relative
                .components()
                .all(|c| matches!(c, Component::Normal(_))),
            "{} is not a plain path inside the tree",
            relative.display()
        );
        let mut log = read_log(&self.root)?;
        if log.iter().any(|l| l == relative) {
            bail!(
                "{} is already edited; undo that edit first",
                relative.display()
            );
        }
        log.push(relative.into());
        write_log(&self.root, &log)?;
        let edit = Edit {
            pristine: self.pristine.clone(),
            root: self.root.clone(),
            relative: relative.into(),
        };
        // On failure `edit` drops here, which puts the pristine file back.
        fs_atomic::replace(&self.root.join(relative), bytes)?;
        Ok(edit)
    }

    fn undo_left_over_edits(&self) -> Result<()> {
        for relative in read_log(&self.root)? {
            eprintln!(
                "undoing an edit a killed run left behind: {}",
                relative.display()
            );
            undo(&self.pristine, &self.root, &relative)?;
        }
        Ok(())
    }
}

/// Kbuild's own build of the same `.config`, beside an object tree:
/// `target/kernel/x86_64-thin-tiny-src-<hash>-kbuild`. The fidelity test
/// builds it and `cargo xtask bench` times it, so either finds it warm.
pub fn kbuild_reference_dir(objtree: &Path) -> PathBuf {
    objtree.with_file_name(format!("{}-kbuild", file_name(objtree)))
}

/// A change to one file of a [`PrivateSource`], undone on drop, or by the
/// next [`PrivateSource::open`] if the process was killed.
#[must_use = "the edit is undone when dropped"]
pub struct Edit {
    pristine: PathBuf,
    root: PathBuf,
    relative: PathBuf,
}

impl Drop for Edit {
    fn drop(&mut self) {
        if let Err(error) = undo(&self.pristine, &self.root, &self.relative) {
            eprintln!(
                "error: undoing the edit of {}: {error:#}",
                self.relative.display()
            );
        }
    }
}

/// Links the pristine file back (the default tree's inode again), or removes
/// a file the pristine tree does not have, then forgets the edit.
fn undo(pristine: &Path, root: &Path, relative: &Path) -> Result<()> {
    let path = root.join(relative);
    if pristine.join(relative).exists() {
        let temporary = path.with_file_name(format!(".{}.xtask-undo", file_name(&path)));
        let _ = fs::remove_file(&temporary);
        fs::hard_link(pristine.join(relative), &temporary)
            .with_context(|| format!("linking {}", relative.display()))?;
        fs::rename(&temporary, &path).with_context(|| format!("restoring {}", path.display()))?;
    } else {
        fs_atomic::remove_file(&path)?;
    }
    let rest: Vec<PathBuf> = read_log(root)?
        .into_iter()
        .filter(|l| l != relative)
        .collect();
    write_log(root, &rest)
}

/// `target/private/linux-source-6.12.edits`: one edited path a line.
fn log_path(root: &Path) -> PathBuf {
    root.with_file_name(format!("{}.edits", file_name(root)))
}

fn read_log(root: &Path) -> Result<Vec<PathBuf>> {
    match fs::read_to_string(log_path(root)) {
        Ok(text) => Ok(text
            .lines()
            .filter(|l| !l.is_empty())
            .map(PathBuf::from)
            .collect()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(error) => Err(error).with_context(|| format!("reading {}", log_path(root).display())),
    }
}

fn write_log(root: &Path, log: &[PathBuf]) -> Result<()> {
    if log.is_empty() {
        return fs_atomic::remove_file(&log_path(root));
    }
    let text: String = log.iter().map(|l| format!("{}\n", l.display())).collect();
    fs_atomic::write(&log_path(root), text.as_bytes())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    /// A two-file "kernel" and its private copy, in a temporary directory.
    fn tree() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let pristine = dir.path().join("linux");
        fs::create_dir_all(pristine.join("kernel")).unwrap();
        fs::write(pristine.join("Makefile"), "all:\n").unwrap();
        fs::write(pristine.join("kernel/fork.c"), "int fork;\n").unwrap();
        let copy = dir.path().join("private/linux");
        fs::create_dir_all(copy.parent().unwrap()).unwrap();
        (dir, pristine, copy)
    }

    fn inode(path: &Path) -> u64 {
        fs::metadata(path).unwrap().ino()
    }

    fn mtime(path: &Path) -> SystemTime {
        fs::metadata(path).unwrap().modified().unwrap()
    }

    #[test]
    fn the_copy_is_hard_links_to_the_pristine_tree() {
        let (_dir, pristine, copy) = tree();
        let source = PrivateSource::at(&pristine, &copy).unwrap();
        assert_eq!(source.root(), copy.canonicalize().unwrap());
        assert_eq!(
            inode(&copy.join("kernel/fork.c")),
            inode(&pristine.join("kernel/fork.c"))
        );
        assert!(!copy.with_file_name("linux.partial").exists());
    }

    #[test]
    fn an_edit_replaces_the_file_and_dropping_it_links_the_pristine_one_back() {
        let (_dir, pristine, copy) = tree();
        let source = PrivateSource::at(&pristine, &copy).unwrap();
        let edit = source
            .append("kernel/fork.c", "void probe(void) {}\n")
            .unwrap();
        assert_eq!(
            fs::read_to_string(copy.join("kernel/fork.c")).unwrap(),
            "int fork;\nvoid probe(void) {}\n"
        );
        assert_eq!(
            fs::read_to_string(pristine.join("kernel/fork.c")).unwrap(),
            "int fork;\n"
        );
        assert_ne!(
            inode(&copy.join("kernel/fork.c")),
            inode(&pristine.join("kernel/fork.c"))
        );
        assert_eq!(
            fs::read_to_string(log_path(source.root())).unwrap(),
            "kernel/fork.c\n"
        );
        assert!(
            source.touch("kernel/fork.c").is_err(),
            "a second edit of one file is refused"
        );

        drop(edit);
        assert_eq!(
            inode(&copy.join("kernel/fork.c")),
            inode(&pristine.join("kernel/fork.c"))
        );
        assert!(!log_path(source.root()).exists());
        let names: Vec<_> = fs::read_dir(copy.join("kernel"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["fork.c"], "no temporary is left");
    }

    #[test]
    fn a_created_file_is_removed_when_its_edit_drops() {
        let (_dir, pristine, copy) = tree();
        let source = PrivateSource::at(&pristine, &copy).unwrap();
        let edit = source.create("kernel/new.c", "int x;\n").unwrap();
        assert_eq!(
            fs::read_to_string(copy.join("kernel/new.c")).unwrap(),
            "int x;\n"
        );
        assert!(!pristine.join("kernel/new.c").exists());
        assert!(
            source.create("kernel/fork.c", "").is_err(),
            "an existing file is edited, not created"
        );
        drop(edit);
        assert!(!copy.join("kernel/new.c").exists());
        assert!(read_log(&copy).unwrap().is_empty());
    }

    #[test]
    fn replace_needs_exactly_one_occurrence_and_changes_nothing_otherwise() {
        let (_dir, pristine, copy) = tree();
        let source = PrivateSource::at(&pristine, &copy).unwrap();
        let error = source
            .replace("kernel/fork.c", "int spoon;", "int knife;")
            .err()
            .unwrap();
        assert!(error.to_string().contains("exactly once"), "{error}");
        assert!(!log_path(source.root()).exists());
        assert_eq!(
            inode(&copy.join("kernel/fork.c")),
            inode(&pristine.join("kernel/fork.c"))
        );
        let _edit = source.replace("kernel/fork.c", "fork", "spoon").unwrap();
        assert_eq!(
            fs::read_to_string(copy.join("kernel/fork.c")).unwrap(),
            "int spoon;\n"
        );
        assert!(source.append("../escape.c", "").is_err());
    }

    #[test]
    fn touch_gives_the_copy_a_new_mtime_and_leaves_the_pristine_file_alone() {
        let (_dir, pristine, copy) = tree();
        let old = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        fs::File::options()
            .write(true)
            .open(pristine.join("kernel/fork.c"))
            .unwrap()
            .set_modified(old)
            .unwrap();
        let source = PrivateSource::at(&pristine, &copy).unwrap();
        let touch = source.touch("kernel/fork.c").unwrap();
        assert!(mtime(&copy.join("kernel/fork.c")) > old);
        assert_eq!(mtime(&pristine.join("kernel/fork.c")), old);
        assert_eq!(
            fs::read(copy.join("kernel/fork.c")).unwrap(),
            b"int fork;\n"
        );
        drop(touch);
        assert_eq!(mtime(&copy.join("kernel/fork.c")), old);
    }

    #[test]
    fn the_next_open_undoes_what_a_killed_run_left() {
        let (_dir, pristine, copy) = tree();
        let source = PrivateSource::at(&pristine, &copy).unwrap();
        std::mem::forget(source.append("kernel/fork.c", "broken").unwrap());
        drop(source);
        assert_ne!(
            inode(&copy.join("kernel/fork.c")),
            inode(&pristine.join("kernel/fork.c"))
        );

        let source = PrivateSource::at(&pristine, &copy).unwrap();
        assert_eq!(
            inode(&copy.join("kernel/fork.c")),
            inode(&pristine.join("kernel/fork.c"))
        );
        assert!(!log_path(source.root()).exists());
    }

    #[test]
    fn kbuilds_tree_sits_beside_ours() {
        assert_eq!(
            kbuild_reference_dir(Path::new("/t/kernel/x86_64-thin-tiny-src-0123456789ab")),
            Path::new("/t/kernel/x86_64-thin-tiny-src-0123456789ab-kbuild")
        );
    }
}
