//! `cargo xtask test`: the whole suite, as CI runs it.

use anyhow::{bail, Result};

pub fn run() -> Result<()> {
    let status = std::process::Command::new(env!("CARGO"))
        .args(["test", "--workspace"])
        .current_dir(crate::paths::workspace_root())
        .status()?;
    if !status.success() {
        bail!("cargo test --workspace failed");
    }
    Ok(())
}
