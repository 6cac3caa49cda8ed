//! Writes that a crash never leaves half done: a temporary file beside the
//! target, then a rename. Every state and report file goes through here.

use std::{fs, io::Write, os::unix::fs::PermissionsExt, path::Path};

use anyhow::{Context, Result};
use serde::{de::DeserializeOwned, Serialize};

/// Replaces `path` with `bytes`. The temporary name is unique, so two
/// writers of one file never write into each other's temporary: the last
/// rename wins whole.
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    // `fs::write`'s mode, 0666 less the umask, rather than tempfile's 0600:
    // reports and state are read by other users and tools.
    write_mode(path, bytes, 0o666)
}

/// Replaces `path` with `bytes`, keeping its mode: an edited script stays
/// executable. A new file is made as [`write`] makes it.
pub fn replace(path: &Path, bytes: &[u8]) -> Result<()> {
    let mode = match fs::metadata(path) {
        Ok(metadata) => metadata.permissions().mode() & 0o7777,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return write(path, bytes),
        Err(error) => {
            return Err(error).with_context(|| format!("reading the mode of {}", path.display()))
        }
    };
    write_mode(path, bytes, mode)?;
    // The umask may have taken bits the file had.
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("restoring the mode of {}", path.display()))
}

fn write_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let context = || format!("writing {}", path.display());
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let mut file = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .permissions(fs::Permissions::from_mode(mode))
        .tempfile_in(dir)
        .with_context(context)?;
    file.write_all(bytes).with_context(context)?;
    file.persist(path)
        .map_err(|e| e.error)
        .with_context(context)?;
    Ok(())
}

/// Removes `path`; a file that is not there is already removed.
pub fn remove_file(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            Err(error).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

pub fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<()> {
    write(path, &serde_json::to_vec(value)?)
}

pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn replace_keeps_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("link.sh");
        fs::write(&script, "old").unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o757)).unwrap();
        super::replace(&script, b"new").unwrap();
        assert_eq!(fs::read_to_string(&script).unwrap(), "new");
        let mode = fs::metadata(&script).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o757);
        let fresh = dir.path().join("fresh.c");
        super::replace(&fresh, b"int x;").unwrap();
        assert_eq!(names(dir.path()).len(), 2, "a temporary was left");
    }

    use std::{fs, os::unix::fs::PermissionsExt, path::Path};

    fn names(dir: &Path) -> Vec<std::ffi::OsString> {
        let entries = fs::read_dir(dir).unwrap();
        entries.map(|e| e.unwrap().file_name()).collect()
    }

    #[test]
    fn round_trip_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        super::write_json(&path, &vec![1, 2, 3]).unwrap();
        assert_eq!(super::read_json::<Vec<u32>>(&path).unwrap(), [1, 2, 3]);
        assert_eq!(names(dir.path()), ["state.json"]);
    }

    /// The mode `fs::write` gives a new file, whatever the umask: the old
    /// writer used it, and a report must stay readable by others.
    #[test]
    fn mode_is_that_of_fs_write() {
        let dir = tempfile::tempdir().unwrap();
        let reference = dir.path().join("reference");
        fs::write(&reference, "x").unwrap();
        let path = dir.path().join("report.json");
        super::write(&path, b"{}").unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), mode(&reference));
        // Over a file that exists too: the new file's mode, not the old one's.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        super::write(&path, b"{}").unwrap();
        assert_eq!(mode(&path), mode(&reference));
    }

    /// Writers of one file each get their own temporary: every write lands
    /// whole and none fails on another's rename.
    #[test]
    fn concurrent_writers_do_not_collide() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.txt");
        std::thread::scope(|scope| {
            for writer in 0..8u8 {
                let path = &path;
                scope.spawn(move || {
                    let bytes = vec![b'a' + writer; 64 * 1024];
                    for _ in 0..20 {
                        super::write(path, &bytes).unwrap();
                    }
                });
            }
        });
        let bytes = fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 64 * 1024);
        assert!(bytes.iter().all(|&b| b == bytes[0]));
        assert_eq!(names(dir.path()), ["state.txt"]);
    }
}
