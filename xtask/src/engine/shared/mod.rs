//! The shared cache: step outputs by content, for other object trees,
//! checkouts and machines (`--cache DIR|URL`).
//!
//! Two levels, as ccache's direct mode, because what a compile reads is known
//! only after it ran:
//! - a step's *manifest* (keyed by its output and command) lists the input
//!   sets it was seen to read;
//! - each set gives the engine's own key (`CacheKey`: the command, every
//!   input's content, the upstream outputs' content), and under that key an
//!   `ActionResult` names the step's files by their sha256.
//!
//! So a hit is exactly what the local cache would call unchanged, and a
//! restored tree is byte-identical to one that compiled. Object-tree paths
//! in commands and `.cmd` files are relative already. Source-tree paths stay
//! in the key: ThinLTO bitcode records its source file's path
//! (`source_filename`), so the same source at another path makes a different
//! kernel, and sharing across paths would make a restored tree differ from a
//! clean one. Trees of one checkout share; other checkouts and machines share
//! when their source is at the same path (`--source`).

pub mod action_result;
pub mod http;
pub mod store;

use std::{
    fs,
    path::Path,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Once,
    },
};

use anyhow::{Context, Result};
use prost::Message;
use serde::{Deserialize, Serialize};

use self::{
    action_result::{sha256, ActionResult, Digest, OutputFile},
    store::{DirStore, Space, Store},
};
use crate::{
    kbuild::{cmd_file, Step, StepKind},
    render::{self, Notice},
};

/// How many input sets a manifest keeps, newest first.
const MANIFEST_ENTRIES: usize = 8;

/// The one file the action result of a document (a manifest, a plan
/// bundle) names.
const DOCUMENT_FILE: &str = "xtask-document.json";

/// One input set a step was seen to read: what its local record holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub inputs: Vec<String>,
    pub tracked: bool,
}

/// What a lookup found.
pub enum Lookup {
    /// The step's files are in the tree: the input set and key they match.
    Restored { seen: Seen, key: String },
    /// Nothing matched; the manifest as read, for `publish` to extend
    /// without reading it again.
    Missed(Vec<Seen>),
}

/// What this build did with the shared cache.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct Report {
    pub location: String,
    /// Steps restored instead of run.
    pub hits: usize,
    /// Shareable steps that ran (none of their input sets was stored).
    pub misses: usize,
    pub uploads: usize,
    /// Entries whose bytes did not match their digest: ignored and rebuilt.
    pub corrupt: usize,
    /// Why the cache was given up for the rest of the build, if it was.
    pub error: Option<String>,
    pub trimmed: store::Trimmed,
}

pub struct SharedCache {
    location: String,
    store: Box<dyn Store>,
    /// Part of every key: what the commands do not say (which `clang`).
    salt: String,
    broken: AtomicBool,
    warned: Once,
    error: std::sync::Mutex<Option<String>>,
    hits: AtomicUsize,
    misses: AtomicUsize,
    uploads: AtomicUsize,
    corrupt: AtomicUsize,
}

const DEFAULT_SIZE: &str = "5G";

impl SharedCache {
    /// The cache `--cache` (or `XTASK_CACHE`) names, if any: a blank value
    /// names none, so that `XTASK_CACHE=` is off.
    pub fn from_args(
        location: Option<&str>,
        size: Option<&str>,
        salt: &str,
    ) -> Result<Option<SharedCache>> {
        let Some(location) = location.filter(|s| !s.trim().is_empty()) else {
            return Ok(None);
        };
        let max_bytes = store::parse_size(size.unwrap_or(DEFAULT_SIZE))?;
        SharedCache::open(location, max_bytes, salt).map(Some)
    }

    /// `location` is a directory, or an `http://` URL of a Bazel remote cache.
    /// `salt` names the toolchain, whose binaries no command hashes.
    pub fn open(location: &str, max_bytes: u64, salt: &str) -> Result<SharedCache> {
        let store: Box<dyn Store> =
            if location.starts_with("http://") || location.starts_with("https://") {
                Box::new(http::HttpStore::new(location))
            } else {
                Box::new(DirStore::open(Path::new(location), max_bytes)?)
            };
        Ok(SharedCache {
            location: location.into(),
            store,
            salt: salt.into(),
            broken: AtomicBool::new(false),
            warned: Once::new(),
            error: Default::default(),
            hits: Default::default(),
            misses: Default::default(),
            uploads: Default::default(),
            corrupt: Default::default(),
        })
    }

    /// Compiles and ThinLTO backends: steps whose only products are their
    /// output and its records, so restoring those is running them.
    pub fn shares(step: &Step) -> bool {
        matches!(
            step.kind,
            StepKind::CompileC | StepKind::CompileAsm | StepKind::Backend
        )
    }

    /// The files a shared step leaves behind: its output, its `.cmd`
    /// record and, for a backend, the sums that explain its next run.
    fn products(step: &Step) -> Vec<String> {
        let mut files = vec![step.output.clone(), cmd_file::path(&step.output)];
        if step.kind == StepKind::Backend {
            files.push(format!("{}.sums", step.output));
        }
        files
    }

    /// Restores the step's files if an input set it was seen to read has a
    /// stored result under `key_of(set)`.
    pub fn restore(&self, objtree: &Path, step: &Step, key_of: impl Fn(&Seen) -> String) -> Lookup {
        let found = self.attempt(|| {
            let seens = self.manifest(step)?;
            for seen in &seens {
                let key = key_of(seen);
                let Some(result) = self.action(&self.salted(&key))? else {
                    continue;
                };
                if self.write_back(objtree, &result)? {
                    return Ok(Lookup::Restored {
                        seen: seen.clone(),
                        key,
                    });
                }
            }
            Ok(Lookup::Missed(seens))
        });
        let lookup = found.unwrap_or(Lookup::Missed(Vec::new()));
        let counter = if matches!(lookup, Lookup::Restored { .. }) {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        lookup
    }

    /// Stores a step that ran: its files, its result under `key`, and `seen`
    /// added to `seens`, the manifest its lookup found.
    pub fn publish(
        &self,
        objtree: &Path,
        step: &Step,
        mut seens: Vec<Seen>,
        seen: Seen,
        key: &str,
    ) {
        self.attempt(|| {
            let mut result = ActionResult::default();
            for path in Self::products(step) {
                let Ok(bytes) = fs::read(objtree.join(&path)) else {
                    // A step that left a product out is not restorable.
                    return Ok(());
                };
                let digest = Digest::of(&bytes);
                self.store.put(Space::Cas, &digest.hash, &bytes)?;
                result.output_files.push(OutputFile {
                    path,
                    digest: Some(digest),
                    is_executable: false,
                });
            }
            self.store
                .put(Space::Ac, &self.salted(key), &result.encode_to_vec())?;
            seens.retain(|s| *s != seen);
            seens.insert(0, seen);
            seens.truncate(MANIFEST_ENTRIES);
            self.put_document(&self.manifest_key(step), &serde_json::to_vec(&seens)?)?;
            self.uploads.fetch_add(1, Ordering::Relaxed);
            Ok(())
        });
    }

    /// The document stored under `name` (a recipe's configuration and
    /// plans: `kbuild::plan::Bundle`), if any and intact.
    pub fn document(&self, name: &str) -> Option<Vec<u8>> {
        self.attempt(|| self.get_document(&self.document_key(name)))
            .flatten()
    }

    /// Stores a document under `name`; a failure turns the cache off as any.
    /// Whether it was stored.
    pub fn store_document(&self, name: &str, bytes: &[u8]) -> bool {
        self.attempt(|| self.put_document(&self.document_key(name), bytes))
            .is_some()
    }

    /// A document is one blob, named by an action result under `ac_key`.
    fn put_document(&self, ac_key: &str, bytes: &[u8]) -> Result<()> {
        let digest = Digest::of(bytes);
        self.store.put(Space::Cas, &digest.hash, bytes)?;
        let result = ActionResult {
            output_files: vec![OutputFile {
                path: DOCUMENT_FILE.into(),
                digest: Some(digest),
                is_executable: false,
            }],
            exit_code: 0,
        };
        self.store.put(Space::Ac, ac_key, &result.encode_to_vec())
    }

    fn get_document(&self, ac_key: &str) -> Result<Option<Vec<u8>>> {
        let Some(result) = self.action(ac_key)? else {
            return Ok(None);
        };
        match result.output_files.iter().find(|f| f.path == DOCUMENT_FILE) {
            Some(file) => self.blob(file),
            None => Ok(None),
        }
    }

    /// Evicts what exceeds the size limit, and says what happened.
    pub fn finish(&self) -> Report {
        let trimmed = self.attempt(|| self.store.trim()).unwrap_or_default();
        Report {
            location: self.location.clone(),
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            uploads: self.uploads.load(Ordering::Relaxed),
            corrupt: self.corrupt.load(Ordering::Relaxed),
            error: self.error.lock().unwrap().clone(),
            trimmed,
        }
    }

    /// Runs `work` unless the cache failed before; a failure warns once and
    /// turns the cache off for the rest of the build: local work goes on.
    fn attempt<T>(&self, work: impl FnOnce() -> Result<T>) -> Option<T> {
        if self.broken.load(Ordering::Relaxed) {
            return None;
        }
        match work() {
            Ok(value) => Some(value),
            Err(e) => {
                self.broken.store(true, Ordering::Relaxed);
                self.warned.call_once(|| {
                    render::notice(Notice::Warning(format!(
                        "shared cache {}: {e:#}; building locally from here on",
                        self.location
                    )));
                    *self.error.lock().unwrap() = Some(format!("{e:#}"));
                });
                None
            }
        }
    }

    fn salted(&self, key: &str) -> String {
        sha256(format!("xtask shared cache v1\0{}\0{key}", self.salt).as_bytes())
    }

    fn document_key(&self, name: &str) -> String {
        self.salted(&format!("document\0{name}"))
    }

    fn manifest_key(&self, step: &Step) -> String {
        self.salted(&format!("manifest\0{}\0{}", step.output, step.command))
    }

    /// The input sets the step was seen to read, newest first.
    fn manifest(&self, step: &Step) -> Result<Vec<Seen>> {
        let bytes = self.get_document(&self.manifest_key(step))?;
        Ok(bytes
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default())
    }

    /// The action result stored under an `ac` key, if any and readable.
    fn action(&self, ac_key: &str) -> Result<Option<ActionResult>> {
        let Some(bytes) = self.store.get(Space::Ac, ac_key)? else {
            return Ok(None);
        };
        match ActionResult::decode(bytes.as_slice()) {
            Ok(result) => Ok(Some(result)),
            Err(_) => {
                self.corrupt.fetch_add(1, Ordering::Relaxed);
                self.store.forget(Space::Ac, ac_key);
                Ok(None)
            }
        }
    }

    /// The blob a file names, if stored and intact.
    fn blob(&self, file: &OutputFile) -> Result<Option<Vec<u8>>> {
        let Some(digest) = &file.digest else {
            return Ok(None);
        };
        let Some(bytes) = self.store.get(Space::Cas, &digest.hash)? else {
            return Ok(None);
        };
        if digest.matches(&bytes) {
            return Ok(Some(bytes));
        }
        self.corrupt.fetch_add(1, Ordering::Relaxed);
        self.store.forget(Space::Cas, &digest.hash);
        Ok(None)
    }

    /// Writes every file of a result into the tree, or none if one is
    /// missing or corrupt.
    fn write_back(&self, objtree: &Path, result: &ActionResult) -> Result<bool> {
        let mut files = Vec::new();
        for file in &result.output_files {
            let Some(bytes) = self.blob(file)? else {
                return Ok(false);
            };
            files.push((objtree.join(&file.path), bytes));
        }
        for (path, bytes) in files {
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir)?;
            }
            crate::fs_atomic::write(&path, &bytes)
                .with_context(|| format!("restoring {}", path.display()))?;
        }
        Ok(!result.output_files.is_empty())
    }
}
