//! Steps the xtask performs itself (the initcall order, link-vmlinux.sh, the
//! `.ko` links), cached like planned steps: by a declared command and the
//! content of declared inputs.

use std::path::Path;

use anyhow::Result;

use super::cache::{Cache, Record};

/// Whether a native step ran or was proven unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Native {
    Ran,
    Cached,
}

/// Runs `run` unless `output` exists as recorded and the key of `command` and
/// `inputs` is unchanged.
pub fn step(
    cache: &Cache,
    output: &str,
    command: &str,
    inputs: &[String],
    run: impl FnOnce() -> Result<()>,
) -> Result<Native> {
    let key = cache.key(command, inputs, &[]);
    let recorded = cache
        .record(output)
        .is_some_and(|r| r.key == key && cache.file_hash(Path::new(output)) == r.output_hash);
    if recorded {
        return Ok(Native::Cached);
    }
    run()?;
    cache.store(Record {
        output: output.into(),
        key,
        output_hash: cache.file_hash(Path::new(output)),
        inputs: Vec::new(),
        tracked: false,
    })?;
    // Journaled by `store`; the snapshot is rewritten when a stage ends, not
    // per step (hundreds of `.ko` links each rewrote tens of MB).
    Ok(Native::Ran)
}
