//! `cargo xtask test`: the whole suite, as CI runs it. First `cargo test
//! --workspace` (unit and integration tests), then the end-to-end tests that
//! build and boot real kernels, one at a time so they share the two cores.

use anyhow::{bail, Result};

pub fn run() -> Result<()> {
    // The unit tests read the real kernel tree and compile with the real
    // clang: set both up first, as a build would.
    crate::toolchain::ensure()?;
    crate::toolchain::ensure_boot_tools()?;
    let source = crate::source::unpack_default()?;
    eprintln!("kernel source: {}", source.display());
    // kernel-manifest cannot depend on the xtask's paths; tell it where the tree is.
    std::env::set_var("KERNEL_SRC", &source);
    cargo(&["test", "--workspace"])?;
    cargo(&[
        "test",
        "-p",
        "xtask",
        "--test",
        "e2e",
        "--",
        "--ignored",
        "--test-threads=1",
    ])?;
    // A benchmark, not a test: one rep of `noop` proves the command works on
    // the trees the end-to-end tests left warm.
    cargo(&[
        "run",
        "-p",
        "xtask",
        "--",
        "bench",
        "--scenarios",
        "noop",
        "--reps",
        "1",
    ])?;
    cargo(&[
        "test",
        "-p",
        "xtask",
        "--test",
        "compdb",
        "--",
        "--ignored",
        "--test-threads=1",
    ])
}

fn cargo(args: &[&str]) -> Result<()> {
    eprintln!("$ cargo {}", args.join(" "));
    let status = std::process::Command::new(env!("CARGO"))
        .args(args)
        .current_dir(crate::paths::workspace_root())
        .status()?;
    if !status.success() {
        bail!("cargo {} failed", args.join(" "));
    }
    Ok(())
}
