//! One build per object tree at a time. Two builds interleaving in one tree
//! corrupt archives, and the cache would then record the corruption as good.
//! The lock is a file beside the tree (the tree itself may be removed and
//! re-created under the lock), held with `flock`, so a killed holder frees it.
//! The holder writes who it is, so a waiting build can say whom it waits for.

use std::{
    fs::{File, OpenOptions},
    io::{Read, Seek, Write},
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result};

/// Another build holds the tree, and this one was asked not to wait.
#[derive(Debug)]
pub struct Locked {
    pub tree: PathBuf,
    pub holder: String,
}

impl std::fmt::Display for Locked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is being built by {}; run again without --no-wait to wait for it",
            self.tree.display(),
            self.holder
        )
    }
}

impl std::error::Error for Locked {}

/// Held until dropped.
pub struct TreeLock {
    file: File,
    path: PathBuf,
}

impl TreeLock {
    /// Locks `objtree`, waiting for another build that holds it; `waiting` is
    /// told once who that is, and may refuse to wait by returning an error.
    pub fn acquire(objtree: &Path, waiting: impl FnOnce(&str) -> Result<()>) -> Result<TreeLock> {
        let path = lock_path(objtree);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                waiting(if holder.is_empty() {
                    "another build"
                } else {
                    holder
                })?;
                file.lock()
                    .with_context(|| format!("locking {}", path.display()))?;
            }
            Err(std::fs::TryLockError::Error(error)) => {
                return Err(error).with_context(|| format!("locking {}", path.display()));
            }
        }
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let command: Vec<String> = std::env::args().collect();
        file.set_len(0)?;
        file.rewind()?;
        write!(
            file,
            "pid {} since {} (unix time {since}): {}",
            std::process::id(),
            timestamp(since),
            command.join(" ")
        )?;
        file.flush()?;
        Ok(TreeLock { file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TreeLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

/// `target/kernel/x86_64-thin-tiny.lock` for `target/kernel/x86_64-thin-tiny`.
fn lock_path(objtree: &Path) -> PathBuf {
    let name = objtree
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    objtree.with_file_name(format!("{name}.lock"))
}

/// Hours, minutes and seconds of the day in UTC: enough to recognise a build.
fn timestamp(unix: u64) -> String {
    let day = unix % 86_400;
    format!(
        "{:02}:{:02}:{:02} UTC",
        day / 3600,
        day % 3600 / 60,
        day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_waits_and_learns_who_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("x86_64-thin-tiny");
        let first = TreeLock::acquire(&tree, |_| panic!("nobody holds it yet")).unwrap();
        let refused = TreeLock::acquire(&tree, |holder| anyhow::bail!("busy: {holder}"))
            .err()
            .expect("a second holder that will not wait fails");
        assert!(
            refused
                .to_string()
                .starts_with(&format!("busy: pid {}", std::process::id())),
            "{refused}"
        );
        assert_eq!(first.path(), dir.path().join("x86_64-thin-tiny.lock"));
        let (told_tx, told_rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn({
            let tree = tree.clone();
            move || {
                let _second =
                    TreeLock::acquire(&tree, |holder| Ok(told_tx.send(holder.to_string())?))
                        .unwrap();
            }
        });
        let holder = told_rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("the waiter was told");
        assert!(
            holder.starts_with(&format!("pid {} since ", std::process::id())),
            "{holder}"
        );
        assert!(
            !waiter.is_finished(),
            "the second lock was granted while the first was held"
        );
        drop(first);
        waiter.join().unwrap();
    }
}
