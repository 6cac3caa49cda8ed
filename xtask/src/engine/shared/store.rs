//! Where shared entries live: the two namespaces of Bazel's remote cache,
//! `ac` (action results by key) and `cas` (blobs by their sha256), in a
//! local directory or behind an HTTP server (`http`).

use std::{
    fs,
    io::ErrorKind,
    path::{Path, PathBuf},
    time::SystemTime,
};

use anyhow::{Context, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Space {
    /// Action results, by the step's key.
    Ac,
    /// Blobs, by the sha256 of their bytes.
    Cas,
}

impl Space {
    pub fn name(self) -> &'static str {
        match self {
            Space::Ac => "ac",
            Space::Cas => "cas",
        }
    }
}

/// One shared cache location. Errors are the location's (unreachable,
/// unwritable): the caller falls back to local work.
pub trait Store: Send + Sync {
    fn get(&self, space: Space, key: &str) -> Result<Option<Vec<u8>>>;
    fn put(&self, space: Space, key: &str, bytes: &[u8]) -> Result<()>;
    /// Forgets an entry found corrupt, where the store allows it.
    fn forget(&self, space: Space, key: &str);
    /// Keeps the store within its size, least recently used first.
    fn trim(&self) -> Result<Trimmed>;
}

/// What a `trim` removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Trimmed {
    pub files: usize,
    pub bytes: u64,
}

/// A directory shared by trees and checkouts on one machine (or a network
/// file system): `DIR/ac/xx/KEY` and `DIR/cas/xx/SHA256`, written by rename
/// so concurrent builds never see half a file. A read refreshes the entry's
/// mtime, which is what `trim` evicts by, as ccache does.
pub struct DirStore {
    root: PathBuf,
    max_bytes: u64,
}

impl DirStore {
    pub fn open(root: &Path, max_bytes: u64) -> Result<DirStore> {
        for space in [Space::Ac, Space::Cas] {
            fs::create_dir_all(root.join(space.name()))
                .with_context(|| format!("creating the shared cache {}", root.display()))?;
        }
        Ok(DirStore {
            root: root.into(),
            max_bytes,
        })
    }

    fn path(&self, space: Space, key: &str) -> PathBuf {
        self.root
            .join(space.name())
            .join(key.get(..2).unwrap_or("__"))
            .join(key)
    }
}

impl Store for DirStore {
    fn get(&self, space: Space, key: &str) -> Result<Option<Vec<u8>>> {
        let path = self.path(space, key);
        match fs::read(&path) {
            Ok(bytes) => {
                // Recently used; a failure only makes it an earlier victim.
                let _ = fs::File::options()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.set_modified(SystemTime::now()));
                Ok(Some(bytes))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    fn put(&self, space: Space, key: &str, bytes: &[u8]) -> Result<()> {
        let path = self.path(space, key);
        let dir = path.parent().expect("entries are in a shard directory");
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        crate::fs_atomic::write(&path, bytes)
    }

    fn forget(&self, space: Space, key: &str) {
        let _ = fs::remove_file(self.path(space, key));
    }

    fn trim(&self) -> Result<Trimmed> {
        let mut entries = Vec::new();
        for space in [Space::Ac, Space::Cas] {
            for shard in fs::read_dir(self.root.join(space.name()))?.flatten() {
                for entry in fs::read_dir(shard.path())?.flatten() {
                    let meta = entry.metadata()?;
                    entries.push((meta.modified()?, meta.len(), entry.path()));
                }
            }
        }
        let mut total: u64 = entries.iter().map(|e| e.1).sum();
        let mut trimmed = Trimmed::default();
        if total <= self.max_bytes {
            return Ok(trimmed);
        }
        // Down to 90 %, so the next build does not trim again at once.
        let goal = self.max_bytes / 10 * 9;
        entries.sort();
        for (_, len, path) in entries {
            if total <= goal {
                break;
            }
            if fs::remove_file(&path).is_ok() {
                total -= len;
                trimmed.files += 1;
                trimmed.bytes += len;
            }
        }
        Ok(trimmed)
    }
}

/// `5G`, `500M`, `64K` or bytes, as ccache's `max_size`.
pub fn parse_size(text: &str) -> Result<u64> {
    let text = text.trim();
    let (digits, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let scale: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        "T" | "TB" | "TIB" => 1 << 40,
        _ => anyhow::bail!(
            "cache size `{text}`: expected a number with an optional K, M, G or T, as `5G`"
        ),
    };
    let number: u64 = digits
        .parse()
        .with_context(|| format!("cache size `{text}`: expected a number, as `5G`"))?;
    Ok(number * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_ccache_writes_them() {
        assert_eq!(parse_size("5G").unwrap(), 5 << 30);
        assert_eq!(parse_size("500M").unwrap(), 500 << 20);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("5X")
            .unwrap_err()
            .to_string()
            .contains("as `5G`"));
        assert!(parse_size("G").is_err());
    }

    #[test]
    fn trimming_drops_the_least_recently_used_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::open(dir.path(), 150).unwrap();
        for key in ["aa01", "aa02", "aa03"] {
            store.put(Space::Cas, key, &[0; 100]).unwrap();
        }
        let old = SystemTime::now() - std::time::Duration::from_secs(3600);
        for (i, key) in ["aa01", "aa02", "aa03"].iter().enumerate() {
            let f = fs::File::options()
                .write(true)
                .open(store.path(Space::Cas, key))
                .unwrap();
            f.set_modified(old + std::time::Duration::from_secs(i as u64))
                .unwrap();
        }
        // Reading the oldest makes it the newest.
        assert!(store.get(Space::Cas, "aa01").unwrap().is_some());
        assert_eq!(
            store.trim().unwrap(),
            Trimmed {
                files: 2,
                bytes: 200
            }
        );
        assert!(store.get(Space::Cas, "aa01").unwrap().is_some());
        assert_eq!(store.get(Space::Cas, "aa02").unwrap(), None);
        assert_eq!(store.get(Space::Cas, "aa03").unwrap(), None);
    }
}
