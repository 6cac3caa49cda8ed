//! A no-op proved from the disk alone, as ninja and git prove theirs: by
//! stat stamps, not by planning the build and keying every step.
//!
//! A build that finishes leaves a proof (`.xtask/up-to-date.pb`): what it
//! was asked (the target, the options, the environment Kbuild reads) and
//! every file whose content decided it, each with its stat stamp (mtime,
//! size, inode) and content hash. Those files are each step's output and
//! what it read, the Makefiles and Kconfig files of the plan, the
//! configuration's fragments and edits, the stored plans, the LLVM
//! binaries and the xtask itself. The next build of the same request
//! stats them, in parallel; a file whose stamp moved is hashed again, so a
//! `touch` is still a no-op. When every file holds, the last build's
//! outputs are this build's: nothing is planned and no key is computed.
//! Anything else, and the build runs as it always does.
//!
//! The proof is forgotten as soon as any command locks the tree to change
//! it, so a build that is killed leaves none. It is protocol buffers, the
//! format the shared cache already speaks: compact, and read in one pass.
//! A blake3 of the message follows it: protobuf cut at a field's end still
//! decodes, and a proof that lost files would prove too much.

use std::{
    fs,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::Result;
use prost::Message;

use super::{
    tree::{lock, objtree},
    Options,
};
use crate::{
    engine::{
        cache::{self, Cache},
        event::Counts,
    },
    fs_atomic,
    kbuild::metadata,
    parallel,
    report::{Phase, PlanFrom, Report, Stopwatch},
    source,
    target::Target,
};

/// Where the proof is kept, in the object tree.
pub const FILE: &str = ".xtask/up-to-date.pb";

const FORMAT: &str = "xtask-up-to-date-v2";

/// What phase a build proved up to date reports.
pub const PHASE: &str = "up to date";

#[derive(Clone, PartialEq, Message)]
struct Proof {
    #[prost(string, tag = "1")]
    format: String,
    #[prost(string, tag = "2")]
    request: String,
    /// When the stamps were taken, in nanoseconds since the epoch.
    #[prost(int64, tag = "3")]
    taken_ns: i64,
    #[prost(message, repeated, tag = "4")]
    files: Vec<Seen>,
}

/// One file as the build left it.
#[derive(Clone, PartialEq, Message)]
struct Seen {
    #[prost(string, tag = "1")]
    path: String,
    #[prost(int64, tag = "2")]
    mtime_ns: i64,
    #[prost(uint64, tag = "3")]
    size: u64,
    #[prost(uint64, tag = "4")]
    ino: u64,
    /// The content's blake3, in hex; empty for a file that was absent.
    #[prost(string, tag = "5")]
    hash: String,
}

/// What a build was asked, as far as it decides the outputs beyond the
/// files it read; `None` when a no-op must still run (a launcher, a shared
/// cache or a trace has work to do even then).
pub(super) fn request(
    target: &Target,
    options: &Options,
    srctree: &Path,
) -> Result<Option<String>> {
    let given = |value: &Option<String>| value.as_deref().is_some_and(|v| !v.trim().is_empty());
    if given(&options.launcher) || given(&options.cache) || options.trace.is_some() {
        return Ok(None);
    }
    let mut env: Vec<String> = std::env::vars()
        .filter(|(name, _)| {
            name == "PATH"
                || name == "SOURCE_DATE_EPOCH"
                || name.starts_with("KBUILD_")
                || name.starts_with("XTASK_")
        })
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    env.sort();
    Ok(Some(format!(
        "target {}\nllvm {}\nsource {}\nlto-off {:?}\npolicy {:?}\nfragments {:?}\nepoch {}\n{}\n",
        target.name(),
        options.llvm,
        srctree.display(),
        options.lto_off,
        options.overlays,
        options.fragments,
        metadata::epoch(srctree)?,
        env.join("\n"),
    )))
}

/// Removes the proof: the tree is about to change.
pub(super) fn forget(objtree: &Path) -> Result<()> {
    fs_atomic::remove_file(&objtree.join(FILE))
}

/// After a build finished: the proof that `files` (absolute paths) are as
/// it left them. `cache` hashes them, from its stamps where it can.
pub(super) fn record(
    objtree: &Path,
    request: String,
    files: Vec<PathBuf>,
    cache: &Cache,
) -> Result<()> {
    let taken_ns = cache::now_ns() as i64;
    let mut seen = Vec::with_capacity(files.len());
    for path in files {
        let before = fs::metadata(&path).ok();
        let hash = cache.file_hash(&path);
        let after = fs::metadata(&path).ok();
        let stamp = |m: &Option<fs::Metadata>| m.as_ref().map(stamp_of);
        if stamp(&before) != stamp(&after) {
            // Written while it was read: no proof this time.
            return Ok(());
        }
        let (mtime_ns, size, ino) = stamp(&after).unwrap_or_default();
        let hash = if after.is_some() { hash } else { String::new() };
        seen.push(Seen {
            path: path.to_string_lossy().into_owned(),
            mtime_ns,
            size,
            ino,
            hash,
        });
    }
    write(
        objtree,
        &Proof {
            format: FORMAT.into(),
            request,
            taken_ns,
            files: seen,
        },
    )
}

/// The last build's report, made a no-op's, when nothing it was made from
/// changed since: the build is done. `None`: build.
pub fn up_to_date(target: &Target, options: &Options) -> Result<Option<(PathBuf, Report)>> {
    let (started, stopwatch) = (Instant::now(), Stopwatch::start());
    let source = source::resolve(options.source.as_deref())?;
    let Some(request) = request(target, options, &source.root)? else {
        return Ok(None);
    };
    let objtree = objtree(target, options, &source);
    if !objtree.join(FILE).exists() {
        return Ok(None);
    }
    let _lock = lock(&objtree, options.no_wait)?;
    let objtree = objtree.canonicalize()?;
    let Some(proof) = read(&objtree) else {
        return Ok(None);
    };
    if proof.format != FORMAT || proof.request != request {
        return Ok(None);
    }
    let Some(files) = recheck(&proof.files, proof.taken_ns) else {
        return Ok(None);
    };
    let Ok(mut report) = fs_atomic::read_json::<Report>(&objtree.join("build-report.json")) else {
        return Ok(None);
    };
    // Stamps that moved, and files that were too new to trust, are
    // settled now: the next check stats them only.
    if files != proof.files || files.iter().any(|f| racy(f.mtime_ns, proof.taken_ns)) {
        write(
            &objtree,
            &Proof {
                taken_ns: cache::now_ns() as i64,
                files,
                ..proof
            },
        )?;
    }
    let (_, cpu_seconds) = stopwatch.elapsed();
    let seconds = started.elapsed().as_secs_f64();
    as_a_no_op(&mut report, seconds, cpu_seconds);
    report.write(&objtree)?;
    fs_atomic::write(&objtree.join(".xtask/last-executed.txt"), b"\n")?;
    crate::build_log::record(&crate::build_log::Entry::xtask(
        &objtree,
        false,
        report.steps.planned,
        0,
        0,
        seconds,
    ))?;
    Ok(Some((objtree, report)))
}

/// The report of a build in which every step was cached.
fn as_a_no_op(report: &mut Report, seconds: f64, cpu_seconds: f64) {
    let cached = |planned| Counts {
        planned,
        cached: planned,
        ..Counts::default()
    };
    report.steps = cached(report.steps.planned);
    for stage in &mut report.stages {
        stage.counts = cached(stage.counts.planned);
        stage.seconds = 0.0;
        stage.cpu_seconds = 0.0;
    }
    if let Some(backends) = &mut report.thin_backends {
        backends.clear();
    }
    report.backends_forked = None;
    report.launcher = None;
    report.shared_cache = None;
    report.plan_from = PlanFrom::Tree;
    report.phases = vec![Phase {
        name: PHASE.into(),
        seconds,
        cpu_seconds,
    }];
    report.seconds = seconds;
}

/// Each file checked again, on every core: the files with their stamps now,
/// or `None` when one changed.
fn recheck(files: &[Seen], taken_ns: i64) -> Option<Vec<Seen>> {
    let parts = parallel::by_chunks(files, |part| {
        part.iter()
            .map(|f| holds(f, taken_ns))
            .collect::<Option<Vec<Seen>>>()
    });
    let mut all = Vec::with_capacity(files.len());
    for part in parts {
        all.extend(part?);
    }
    Some(all)
}

/// `seen` with its stamp now, if its content is still what the build left.
fn holds(seen: &Seen, taken_ns: i64) -> Option<Seen> {
    let meta = match fs::metadata(&seen.path) {
        Ok(meta) => meta,
        Err(_) => return seen.hash.is_empty().then(|| seen.clone()),
    };
    if seen.hash.is_empty() {
        return None;
    }
    let (mtime_ns, size, ino) = stamp_of(&meta);
    let same_stamp = (mtime_ns, size, ino) == (seen.mtime_ns, seen.size, seen.ino);
    if same_stamp && !racy(seen.mtime_ns, taken_ns) {
        return Some(seen.clone());
    }
    let bytes = fs::read(&seen.path).ok()?;
    (cache::content_hash(&bytes) == seen.hash).then(|| Seen {
        mtime_ns,
        size,
        ino,
        ..seen.clone()
    })
}

fn stamp_of(meta: &fs::Metadata) -> (i64, u64, u64) {
    (cache::mtime_ns(meta) as i64, meta.len(), meta.ino())
}

/// Whether a file changed so shortly before the stamps were taken that it
/// may change again without moving its stamp: it is hashed on every
/// check (the cache's rule for its own stamps).
fn racy(mtime_ns: i64, taken_ns: i64) -> bool {
    i128::from(mtime_ns) > i128::from(taken_ns) - cache::RACY_NS
}

/// The proof, if it is whole: its message and the message's blake3.
fn read(objtree: &Path) -> Option<Proof> {
    let bytes = fs::read(objtree.join(FILE)).ok()?;
    let split = bytes.len().checked_sub(blake3::OUT_LEN)?;
    let (message, sum) = bytes.split_at(split);
    if blake3::hash(message).as_bytes() != sum {
        return None;
    }
    Proof::decode(message).ok()
}

fn write(objtree: &Path, proof: &Proof) -> Result<()> {
    let mut bytes = proof.encode_to_vec();
    let sum = blake3::hash(&bytes);
    bytes.extend_from_slice(sum.as_bytes());
    fs_atomic::write(&objtree.join(FILE), &bytes)
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    /// A tree with two files and one absent, and its proof.
    fn proved(tree: &Path) -> Proof {
        fs::write(tree.join("a.c"), "int a;\n").unwrap();
        fs::write(tree.join("a.o"), "object\n").unwrap();
        let files = ["a.c", "a.o", "new.h"].map(|f| tree.join(f)).to_vec();
        let cache = Cache::open(tree).unwrap();
        record(tree, "request".into(), files, &cache).unwrap();
        read(tree).expect("a proof was written")
    }

    fn set_mtime(path: &Path, seconds_ago: u64) {
        let when = SystemTime::now() - std::time::Duration::from_secs(seconds_ago);
        fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(when)
            .unwrap();
    }

    #[test]
    fn a_proof_holds_until_a_file_it_names_changes() {
        let tree = tempfile::tempdir().unwrap();
        let tree = tree.path();
        let proof = proved(tree);
        assert_eq!(proof.request, "request");
        assert_eq!(proof.files.len(), 3);
        assert!(proof.files[2].hash.is_empty(), "new.h was absent");
        assert!(recheck(&proof.files, proof.taken_ns).is_some());

        fs::write(tree.join("a.c"), "int b;\n").unwrap();
        assert!(recheck(&proof.files, proof.taken_ns).is_none(), "an edit");
        fs::write(tree.join("a.c"), "int a;\n").unwrap();
        assert!(
            recheck(&proof.files, proof.taken_ns).is_some(),
            "the edit undone"
        );

        fs::write(tree.join("new.h"), "").unwrap();
        assert!(
            recheck(&proof.files, proof.taken_ns).is_none(),
            "a file appeared"
        );
        fs::remove_file(tree.join("new.h")).unwrap();
        fs::remove_file(tree.join("a.o")).unwrap();
        assert!(
            recheck(&proof.files, proof.taken_ns).is_none(),
            "an output removed"
        );
    }

    /// A touch moves the stamp, not the content: still up to date, with
    /// the new stamp kept, so the next check only stats.
    #[test]
    fn a_touched_file_is_hashed_and_holds() {
        let tree = tempfile::tempdir().unwrap();
        let tree = tree.path();
        let proof = proved(tree);
        set_mtime(&tree.join("a.c"), 60);
        let files = recheck(&proof.files, proof.taken_ns).expect("the content is the same");
        assert_ne!(files[0].mtime_ns, proof.files[0].mtime_ns);
        assert_eq!(files[0].hash, proof.files[0].hash);
    }

    /// A proof cut short is no proof, even where the cut leaves valid
    /// protobuf with fewer files: the build then checks every step.
    #[test]
    fn a_torn_proof_is_not_read() {
        let tree = tempfile::tempdir().unwrap();
        let tree = tree.path();
        let whole = proved(tree);
        let bytes = fs::read(tree.join(FILE)).unwrap();
        let message = &bytes[..bytes.len() - blake3::OUT_LEN];
        let last = whole.files.last().unwrap().encoded_len();
        // Field tag and length prefix of the last file, then the file.
        let boundary = message.len() - last - 2;
        let fewer = Proof::decode(&message[..boundary]).expect("a cut at a field's end decodes");
        assert_eq!(fewer.files.len(), whole.files.len() - 1);
        for cut in [boundary, message.len(), bytes.len() - 1, 0] {
            fs::write(tree.join(FILE), &bytes[..cut]).unwrap();
            assert!(read(tree).is_none(), "cut at {cut} of {}", bytes.len());
        }
        fs::write(tree.join(FILE), &bytes).unwrap();
        assert_eq!(read(tree), Some(whole));
    }

    /// A file written just before the stamps were taken may be written
    /// again within the same stamp: it is hashed, whatever its stamp says.
    #[test]
    fn a_racy_file_is_hashed_even_with_its_stamp_unmoved() {
        let tree = tempfile::tempdir().unwrap();
        let tree = tree.path();
        let proof = proved(tree);
        let stamp = proof.files[0].mtime_ns;
        assert!(racy(stamp, proof.taken_ns), "a.c was written just now");
        // The same size and mtime, other bytes.
        let modified = fs::metadata(tree.join("a.c")).unwrap().modified().unwrap();
        fs::write(tree.join("a.c"), "int z;\n").unwrap();
        fs::File::options()
            .write(true)
            .open(tree.join("a.c"))
            .unwrap()
            .set_modified(modified)
            .unwrap();
        assert_eq!(
            fs::metadata(tree.join("a.c")).unwrap().mtime_nsec() as i64,
            stamp % 1_000_000_000
        );
        assert!(recheck(&proof.files, proof.taken_ns).is_none());
    }
}
