//! The step cache: a step is skipped when its command, the content of every
//! input it read (from Kbuild's own `.cmd` dependency lists) and the outputs of
//! the steps it waits for are unchanged. Outputs are content-hashed too, so a
//! step that re-runs and produces the same bytes does not wake its dependents
//! (early cutoff). Results are journaled as they land, so an interrupted build
//! resumes where it stopped.

use std::{
    collections::HashMap,
    fs::{self, File, OpenOptions},
    io::{BufRead, BufReader, Write},
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    sync::Mutex,
    time::{SystemTime, UNIX_EPOCH},
};

use anyhow::Result;

use crate::{
    engine::{cache_key::CacheKey, cache_status::CacheStatus},
    fs_atomic::{read_json, write_json},
    kconfig::DotConfig,
};
use serde::{Deserialize, Serialize};

/// What is remembered about one executed step.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    pub output: String,
    pub key: String,
    pub output_hash: String,
    /// Files the step read (`engine::inputs`), plus `config:SYMBOL` entries.
    pub inputs: Vec<String>,
    /// `inputs` is everything the step read (fixdep's list): the steps it
    /// waits for only to be ordered are not part of its key.
    pub tracked: bool,
}

/// A hash standing for a file that does not exist.
pub const ABSENT: &str = "absent";

pub struct Cache {
    objtree: PathBuf,
    records: Mutex<HashMap<String, Record>>,
    journal: Mutex<File>,
    stamps: Mutex<HashMap<PathBuf, Stamp>>,
    config: DotConfig,
    dir: PathBuf,
    /// Hashes of source files (absolute paths) seen in this run: the source
    /// tree does not change under a build, so each is stat'ed once.
    sources: Mutex<HashMap<PathBuf, String>>,
    dirty: std::sync::atomic::AtomicBool,
    /// Outputs of the steps that ran in this build, in completion order.
    ran: Mutex<Vec<String>>,
}

/// The on-disk form of the records: input paths are shared by hundreds of
/// steps, so they are stored once and referred to by index.
#[derive(Default, Serialize, Deserialize)]
struct Snapshot {
    paths: Vec<String>,
    records: Vec<(String, String, String, Vec<u32>, bool)>,
}

impl Snapshot {
    fn from_records(records: &HashMap<String, Record>) -> Snapshot {
        let mut index: HashMap<&str, u32> = HashMap::new();
        let mut snapshot = Snapshot::default();
        for record in records.values() {
            let inputs = record
                .inputs
                .iter()
                .map(|p| {
                    *index.entry(p).or_insert_with(|| {
                        snapshot.paths.push(p.clone());
                        snapshot.paths.len() as u32 - 1
                    })
                })
                .collect();
            snapshot.records.push((
                record.output.clone(),
                record.key.clone(),
                record.output_hash.clone(),
                inputs,
                record.tracked,
            ));
        }
        snapshot
    }

    fn into_records(self) -> HashMap<String, Record> {
        let paths = self.paths;
        self.records
            .into_iter()
            .map(|(output, key, output_hash, inputs, tracked)| {
                let inputs = inputs
                    .iter()
                    .filter_map(|&i| paths.get(i as usize).cloned())
                    .collect();
                (
                    output.clone(),
                    Record {
                        output,
                        key,
                        output_hash,
                        inputs,
                        tracked,
                    },
                )
            })
            .collect()
    }
}

/// How long after its last write a file's stamp is trusted: more than any
/// file system's timestamp granularity (a jiffy on Linux, 2 s on FAT).
pub const RACY_NS: i128 = 2_000_000_000;

pub fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

/// A file's modification time, in nanoseconds since the epoch.
pub fn mtime_ns(meta: &fs::Metadata) -> i128 {
    meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128
}

/// The hash of a file's content, as records and stamps hold it.
pub fn content_hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// A file's identity as last hashed, so unchanged files are not read again.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Stamp {
    mtime_ns: i128,
    size: u64,
    ino: u64,
    hash: String,
}

impl Cache {
    pub fn open(objtree: &Path) -> Result<Cache> {
        let dir = objtree.join(".xtask");
        fs::create_dir_all(&dir)?;
        let mut records: HashMap<String, Record> = read_json::<Snapshot>(&dir.join("steps.json"))
            .map(Snapshot::into_records)
            .unwrap_or_default();
        // Replay what landed after the last snapshot (an interrupted build).
        if let Ok(file) = File::open(dir.join("steps.journal")) {
            for line in BufReader::new(file).lines().map_while(|l| l.ok()) {
                if let Ok(record) = serde_json::from_str::<Record>(&line) {
                    records.insert(record.output.clone(), record);
                }
            }
        }
        let stamps = read_json(&dir.join("stamps.json")).unwrap_or_default();
        let journal = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("steps.journal"))?;
        let config = DotConfig::read_or_empty(&objtree.join("include/config/auto.conf"))?;
        Ok(Cache {
            objtree: objtree.into(),
            records: Mutex::new(records),
            journal: Mutex::new(journal),
            stamps: Mutex::new(stamps),
            config,
            dir,
            sources: Mutex::new(HashMap::new()),
            dirty: Default::default(),
            ran: Mutex::new(Vec::new()),
        })
    }

    pub fn record(&self, output: &str) -> Option<Record> {
        self.records.lock().unwrap().get(output).cloned()
    }

    /// The step's record lists everything it read (see `Record::tracked`).
    pub fn is_tracked(&self, output: &str) -> bool {
        self.records
            .lock()
            .unwrap()
            .get(output)
            .is_some_and(|r| r.tracked)
    }

    pub fn has_output(&self, output: &str) -> bool {
        self.records.lock().unwrap().contains_key(output)
    }

    pub fn output_hash(&self, output: &str) -> String {
        self.records
            .lock()
            .unwrap()
            .get(output)
            .map(|r| r.output_hash.clone())
            .unwrap_or_else(|| ABSENT.into())
    }

    /// The key of a step: its command, the hashes of the given inputs, and the
    /// output hashes of the steps it waits for, hashed (see `CacheKey`).
    pub fn key(&self, command: &str, inputs: &[String], upstream: &[String]) -> String {
        self.cache_key(command, inputs, upstream).hash()
    }

    /// The key of a step with each part named, hashed as it stands now.
    pub fn cache_key<'a>(
        &self,
        command: &'a str,
        inputs: &'a [String],
        upstream: &'a [String],
    ) -> CacheKey<'a> {
        CacheKey {
            command,
            inputs: inputs
                .iter()
                .map(|input| (input.as_str(), self.input_hash(input)))
                .collect(),
            upstream: upstream
                .iter()
                .map(|output| (output.as_str(), self.output_hash(output)))
                .collect(),
        }
    }

    /// Whether the step making `output` with `command`, after the steps that
    /// made `upstream`, can be skipped: its key is unchanged and its output is
    /// still the bytes it wrote. `declared` are the inputs the step declares
    /// now (`Step::inputs`): one its record lacks makes the key differ.
    pub fn status(
        &self,
        output: &str,
        command: &str,
        declared: &[String],
        upstream: &[String],
    ) -> CacheStatus {
        let Some(record) = self.record(output) else {
            return CacheStatus::Miss;
        };
        let output_intact =
            record.output_hash == ABSENT || self.file_hash(Path::new(output)) == record.output_hash;
        let missing: Vec<&String> = declared
            .iter()
            .filter(|d| !record.inputs.contains(d))
            .collect();
        let key = if missing.is_empty() {
            self.key(command, &record.inputs, upstream)
        } else {
            let mut inputs = record.inputs.clone();
            inputs.extend(missing.into_iter().cloned());
            self.key(command, &inputs, upstream)
        };
        if output_intact && key == record.key {
            CacheStatus::Hit
        } else {
            CacheStatus::Miss
        }
    }

    /// Kconfig dependencies (`include/config/FOO`) are empty files that Kconfig
    /// touches; their meaning is the symbol's value, so that is what is hashed.
    /// A `size:PATH` input counts only the file's length (see
    /// `lto::policy::AUTOCONF_SIZE`).
    fn input_hash(&self, input: &str) -> String {
        if let Some(path) = input.strip_prefix("size:") {
            return fs::metadata(self.objtree.join(path))
                .map_or_else(|_| ABSENT.into(), |m| m.len().to_string());
        }
        match input.strip_prefix("config:") {
            Some(symbol) => self.config.get(symbol).unwrap_or("n").to_string(),
            None if input.starts_with('/') => {
                if let Some(hash) = self.sources.lock().unwrap().get(Path::new(input)) {
                    return hash.clone();
                }
                let hash = self.file_hash(Path::new(input));
                self.sources
                    .lock()
                    .unwrap()
                    .insert(input.into(), hash.clone());
                hash
            }
            None => self.file_hash(Path::new(input)),
        }
    }

    /// Content hash of a file (relative paths are in the object tree).
    pub fn file_hash(&self, path: &Path) -> String {
        let path = self.objtree.join(path);
        let Ok(meta) = fs::metadata(&path) else {
            return ABSENT.into();
        };
        let mtime_ns = mtime_ns(&meta);
        if let Some(s) = self.stamps.lock().unwrap().get(&path) {
            if s.mtime_ns == mtime_ns && s.size == meta.len() && s.ino == meta.ino() {
                return s.hash.clone();
            }
        }
        let hash = match fs::read(&path) {
            Ok(bytes) => content_hash(&bytes),
            Err(_) => return ABSENT.into(),
        };
        // A file written moments ago may be written again within the same
        // clock tick, keeping its size, inode and mtime: such a stamp would
        // vouch for stale bytes, so it is not kept and the file is read again.
        if mtime_ns < now_ns() - RACY_NS {
            let stamp = Stamp {
                mtime_ns,
                size: meta.len(),
                ino: meta.ino(),
                hash: hash.clone(),
            };
            self.stamps.lock().unwrap().insert(path, stamp);
            self.dirty.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        hash
    }

    /// Records a step that ran, durably.
    pub fn store(&self, record: Record) -> Result<()> {
        let output = record.output.clone();
        self.keep(record)?;
        self.ran.lock().unwrap().push(output);
        Ok(())
    }

    /// Records a step restored from the shared cache: durably, as `store`,
    /// but not among what ran.
    pub fn adopt(&self, record: Record) -> Result<()> {
        self.keep(record)
    }

    fn keep(&self, record: Record) -> Result<()> {
        let line = serde_json::to_string(&record)?;
        writeln!(self.journal.lock().unwrap(), "{line}")?;
        self.records
            .lock()
            .unwrap()
            .insert(record.output.clone(), record);
        self.dirty.store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// What ran in this build, in completion order.
    /// Every file a record names: each step's output and what it read
    /// (a `config:` input is read from `include/config/auto.conf`, a
    /// `size:` input is its file). Relative paths are in the object tree.
    pub fn files(&self) -> Vec<String> {
        let mut files: Vec<String> = vec!["include/config/auto.conf".into()];
        for record in self.records.lock().unwrap().values() {
            files.push(record.output.clone());
            files.extend(
                record
                    .inputs
                    .iter()
                    .filter(|i| !i.starts_with("config:"))
                    .map(|i| i.strip_prefix("size:").unwrap_or(i).to_string()),
            );
        }
        files.sort_unstable();
        files.dedup();
        files
    }

    pub fn ran(&self) -> Vec<String> {
        self.ran.lock().unwrap().clone()
    }

    /// Writes the snapshot and empties the journal.
    pub fn save(&self) -> Result<()> {
        if !self.dirty.swap(false, std::sync::atomic::Ordering::Relaxed) {
            return Ok(());
        }
        write_json(
            &self.dir.join("steps.json"),
            &Snapshot::from_records(&self.records.lock().unwrap()),
        )?;
        write_json(&self.dir.join("stamps.json"), &*self.stamps.lock().unwrap())?;
        self.journal.lock().unwrap().set_len(0)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_rewritten_within_a_clock_tick_is_hashed_again() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let out = dir.path().join("out");
        fs::write(&out, "one").unwrap();
        let mtime = fs::metadata(&out).unwrap().modified().unwrap();
        let before = cache.file_hash(Path::new("out"));
        // Same size, same inode and, as on a coarse clock, the same mtime.
        fs::write(&out, "two").unwrap();
        File::options()
            .write(true)
            .open(&out)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        assert_ne!(cache.file_hash(Path::new("out")), before);
        fs::remove_file(&out).unwrap();
        assert_eq!(cache.file_hash(Path::new("out")), ABSENT);
    }
}
