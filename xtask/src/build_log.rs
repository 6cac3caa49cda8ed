//! `XTASK_BUILD_LOG=FILE`: one JSON line appended per finished build, what
//! a build cost at a glance (as ninja's `.ninja_log` is for its steps).
//! `cargo xtask test` sets it to count the cold builds each test does.

use std::{fs, io::Write, path::Path};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// The variable that names the log.
pub const ENV: &str = "XTASK_BUILD_LOG";

/// Who built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tool {
    Xtask,
    /// Kbuild's own build, which the fidelity test and the bench run.
    Kbuild,
}

/// One finished build.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub tool: Tool,
    /// The object tree's name (`x86_64-thin-tiny`...).
    pub tree: String,
    /// The tree's first finished build, and most of its steps ran here:
    /// neither an earlier build of the tree nor a shared cache saved them.
    pub cold: bool,
    pub steps_executed: u64,
    pub seconds: f64,
}

impl Entry {
    /// An xtask build: cold when the tree had no finished build before it
    /// and the shared cache restored fewer than half of its steps.
    pub fn xtask(
        tree: &Path,
        first: bool,
        planned: usize,
        executed: usize,
        restored: usize,
        seconds: f64,
    ) -> Entry {
        Entry {
            tool: Tool::Xtask,
            tree: name(tree),
            cold: first && restored * 2 < planned,
            steps_executed: executed as u64,
            seconds,
        }
    }
}

fn name(tree: &Path) -> String {
    tree.file_name().map_or_else(
        || tree.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Appends `entry` to the log `XTASK_BUILD_LOG` names; nothing when it is unset.
pub fn record(entry: &Entry) -> Result<()> {
    match std::env::var_os(ENV).filter(|v| !v.is_empty()) {
        Some(path) => append(Path::new(&path), entry),
        None => Ok(()),
    }
}

/// One line, written with one `write` to a file opened for appending, so
/// concurrent builds never interleave their lines.
pub fn append(log: &Path, entry: &Entry) -> Result<()> {
    let mut line = serde_json::to_vec(entry)?;
    line.push(b'\n');
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .and_then(|mut file| file.write_all(&line))
        .with_context(|| format!("appending to {} ({ENV})", log.display()))
}

/// Every entry of the log; an absent log has none.
pub fn read(log: &Path) -> Result<Vec<Entry>> {
    let text = match fs::read_to_string(log) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        text => text.with_context(|| format!("reading {}", log.display()))?,
    };
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line)
                .with_context(|| format!("{}:{}: not a build log entry", log.display(), i + 1))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_append_and_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("builds.jsonl");
        assert_eq!(read(&log).unwrap(), vec![]);
        let cold = Entry::xtask(Path::new("/t/x86_64-thin-tiny"), true, 1600, 1600, 0, 300.0);
        let restored = Entry::xtask(Path::new("/t/second"), true, 1600, 100, 1500, 20.0);
        let again = Entry::xtask(Path::new("/t/x86_64-thin-tiny"), false, 1600, 40, 0, 10.0);
        for entry in [&cold, &restored, &again] {
            append(&log, entry).unwrap();
        }
        let read = read(&log).unwrap();
        assert_eq!(read, vec![cold, restored, again]);
        assert_eq!(
            read.iter().map(|e| e.cold).collect::<Vec<_>>(),
            [true, false, false]
        );
        assert_eq!(read[0].tree, "x86_64-thin-tiny");
    }

    #[test]
    fn a_line_that_is_not_an_entry_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("builds.jsonl");
        fs::write(&log, "{\"tool\":\"kbuild\",\"tree\":\"k\",\"cold\":true,\"steps_executed\":0,\"seconds\":1.0}\nnot json\n").unwrap();
        let error = format!("{:#}", read(&log).unwrap_err());
        assert!(
            error.contains("builds.jsonl:2: not a build log entry"),
            "{error}"
        );
    }
}
