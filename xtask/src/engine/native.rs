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
pub fn step(cache: &Cache, output: &str, command: &str, inputs: &[String], run: impl FnOnce() -> Result<()>) -> Result<Native> {
    let key = cache.key(command, inputs, &[]);
    if let Some(record) = cache.record(output) {
        if record.key == key && cache.file_hash(Path::new(output)) == record.output_hash {
            return Ok(Native::Cached);
        }
    }
    run()?;
    cache.store(Record { output: output.into(), key, output_hash: cache.file_hash(Path::new(output)), inputs: Vec::new() })?;
    cache.save()?;
    Ok(Native::Ran)
}
