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
    end_to_end()?;
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

/// The end-to-end tests one at a time, each in its own `cargo test` run, so
/// that the suite ends with the time each took: CI has a budget.
fn end_to_end() -> Result<()> {
    const E2E: [&str; 5] = ["test", "-p", "xtask", "--test", "e2e"];
    let list = std::process::Command::new(env!("CARGO"))
        .args(E2E)
        .args(["-q", "--", "--ignored", "--list"])
        .current_dir(crate::paths::workspace_root())
        .stderr(std::process::Stdio::inherit())
        .output()?;
    if !list.status.success() {
        bail!("cargo {} -- --ignored --list failed", E2E.join(" "));
    }
    let names: Vec<String> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .filter_map(|l| l.strip_suffix(": test"))
        .map(String::from)
        .collect();
    if names.is_empty() {
        bail!("cargo {} listed no end-to-end test", E2E.join(" "));
    }
    let mut times = Vec::new();
    let mut failed = Vec::new();
    for name in &names {
        let started = std::time::Instant::now();
        let args: Vec<&str> = E2E
            .iter()
            .copied()
            .chain(["--", "--ignored", "--exact", name])
            .collect();
        if cargo(&args).is_err() {
            failed.push(name.as_str());
        }
        times.push((name, started.elapsed().as_secs()));
    }
    eprintln!("end-to-end tests, wall time:");
    for (name, seconds) in &times {
        eprintln!("  {seconds:>5} s  {name}");
    }
    let total: u64 = times.iter().map(|(_, s)| s).sum();
    eprintln!("  {total:>5} s  in all");
    if !failed.is_empty() {
        bail!("end-to-end tests failed: {}", failed.join(", "));
    }
    Ok(())
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
