//! `cargo xtask test`: the whole suite, as CI runs it. First `cargo test
//! --workspace` (unit and integration tests), then the end-to-end tests that
//! build and boot real kernels, one at a time so they share the two cores.

use anyhow::{bail, Result};

pub fn run(other_versions: bool) -> Result<()> {
    // The unit tests read the real kernel tree and compile with the real
    // clang: set both up first, as a build would.
    crate::toolchain::ensure()?;
    crate::toolchain::ensure_boot_tools()?;
    let source = crate::source::unpack_default()?;
    eprintln!("kernel source: {}", source.display());
    // kernel-manifest cannot depend on the xtask's paths; tell it where the tree is.
    std::env::set_var("KERNEL_SRC", &source);
    cargo(&["test", "--workspace"])?;
    // t01 builds the x86_64 ThinLTO tiny tree and Kbuild's beside it, cold.
    // The bench smoke and the compdb test need exactly those two warm, and
    // later tests leave the first changed, so both run right after it.
    e2e(&["--exact", FIRST])?;
    // A benchmark, not a test: one rep of `noop` proves the command works.
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
    ])?;
    if other_versions {
        e2e(&["--skip", FIRST])
    } else {
        eprintln!("leaving out {OTHER_VERSIONS}: `cargo xtask test --other-versions` runs it");
        e2e(&["--skip", FIRST, "--skip", OTHER_VERSIONS])
    }
}

/// The end-to-end test that builds from nothing, against Kbuild.
const FIRST: &str = "t01_x86_64_thin_matches_kbuild_and_make_never_builds";

/// Another kernel version: a cold build that CI's 90 minutes cannot hold.
const OTHER_VERSIONS: &str = "t16_debian_6_1_builds_with_thin_lto_and_boots";

/// The end-to-end tests, one at a time so that they share the two cores.
fn e2e(filter: &[&str]) -> Result<()> {
    let mut args = vec![
        "test",
        "-p",
        "xtask",
        "--test",
        "e2e",
        "--",
        "--ignored",
        "--test-threads=1",
    ];
    args.extend(filter);
    cargo(&args)
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
