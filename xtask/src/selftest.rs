//! `cargo xtask test`: the whole suite, as CI runs it. First `cargo test
//! --workspace` (unit and integration tests), then the end-to-end tests that
//! build and boot real kernels, one at a time so they share the two cores,
//! each timed, with the builds it did counted from `XTASK_BUILD_LOG`.
//! `--full` adds the tests CI's time cannot hold.

use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::{
    build_log::{self, Entry},
    process,
    toolchain::{self, Tools},
};

/// The end-to-end test that builds from nothing, against Kbuild. It runs
/// first: the bench smoke and the compdb test need exactly the two trees it
/// leaves warm, and later tests change the first.
const FIRST: &str = "t01_x86_64_thin_matches_kbuild_and_make_never_builds";

/// Tests only `--full` runs: each is a cold build of a configuration no
/// other test builds, a second walk of a mechanism CI proves on x86_64, or
/// (`t09`) a check a unit test holds in CI, made again on `t07`'s tree.
const FULL_ONLY: &[&str] = &[
    "t06_arm64_opt_out_of_kernel_time_boots",
    "t07_x86_64_without_lto_builds_and_boots",
    "t09_lto_none_reports_policy_without_stripping",
    "t16_debian_6_1_builds_with_thin_lto_and_boots",
    "t18_arm64_thin_proof_passes_every_proof",
    "t19_x86_64_full_lto_proof_passes_every_proof",
    "t20_kunit_gives_the_same_results_under_every_lto_mode",
    "t21_llvm22_passes_every_proof_on_both_arches_and_lto_modes",
    "t22_x86_64_thin_llvm22_matches_kbuild",
];

/// One row of the suite after the unit tests.
enum Item {
    E2e(String),
    /// A benchmark, not a test: one rep of `noop` proves the command works.
    BenchSmoke,
    /// clangd reads the tree's `compile_commands.json`.
    Compdb,
}

impl Item {
    fn name(&self) -> &str {
        match self {
            Item::E2e(name) => name,
            Item::BenchSmoke => "bench --scenarios noop --reps 1",
            Item::Compdb => "compdb (clangd)",
        }
    }

    fn args(&self) -> Vec<&str> {
        let libtest = ["--", "--ignored", "--test-threads=1"];
        match self {
            Item::E2e(name) => [
                &["test", "-p", "xtask", "--test", "e2e"],
                &libtest[..],
                &["--exact", name],
            ]
            .concat(),
            Item::BenchSmoke => vec![
                "run",
                "-p",
                "xtask",
                "--",
                "bench",
                "--scenarios",
                "noop",
                "--reps",
                "1",
            ],
            Item::Compdb => [&["test", "-p", "xtask", "--test", "compdb"], &libtest[..]].concat(),
        }
    }
}

/// How one row went.
struct Row {
    name: String,
    passed: bool,
    seconds: f64,
    builds: Vec<Entry>,
}

pub fn run(full: bool) -> Result<()> {
    // The unit tests read the real kernel tree and compile with the real
    // clang: set both up first, as a build would.
    toolchain::ensure(&Default::default())?;
    toolchain::ensure_tools(&[Tools::Test])?;
    let source = crate::source::unpack_default()?;
    eprintln!("kernel source: {}", source.display());
    // kernel-manifest cannot depend on the xtask's paths; tell it where the tree is.
    std::env::set_var("KERNEL_SRC", &source);
    cargo(&["test", "--workspace"])?;

    let log = crate::paths::target_dir().join("tests/builds.jsonl");
    std::fs::create_dir_all(log.parent().unwrap())?;
    crate::fs_atomic::remove_file(&log)?;
    std::env::set_var(build_log::ENV, &log);

    let tests = e2e_tests()?;
    if let Some(stale) = FULL_ONLY.iter().find(|t| !tests.iter().any(|n| n == *t)) {
        bail!("no end-to-end test {stale}, which FULL_ONLY names: was it renamed?");
    }
    let mut items = vec![Item::E2e(FIRST.into()), Item::BenchSmoke, Item::Compdb];
    for name in tests {
        if name == FIRST {
            continue;
        }
        if !full && FULL_ONLY.contains(&name.as_str()) {
            eprintln!("leaving out {name}: `cargo xtask test --full` runs it");
            continue;
        }
        items.push(Item::E2e(name));
    }
    let started = Instant::now();
    let mut rows = Vec::new();
    // Entries already counted: each row's builds are those appended after.
    let mut counted = 0;
    for item in &items {
        let clock = Instant::now();
        let passed = cargo(&item.args()).is_ok();
        let builds = build_log::read(&log)?.split_off(counted);
        counted += builds.len();
        rows.push(Row {
            name: item.name().to_string(),
            passed,
            seconds: clock.elapsed().as_secs_f64(),
            builds,
        });
    }
    print!("{}", table(&rows, started.elapsed().as_secs_f64()));
    let failed: Vec<&str> = rows
        .iter()
        .filter(|r| !r.passed)
        .map(|r| r.name.as_str())
        .collect();
    // The closing line CI reads.
    println!(
        "e2e: {} passed, {} failed",
        rows.len() - failed.len(),
        failed.len()
    );
    if !failed.is_empty() {
        bail!("failed: {}", failed.join(", "));
    }
    Ok(())
}

/// The end-to-end tests in libtest's order (by name), from `--list`.
fn e2e_tests() -> Result<Vec<String>> {
    let listing = process::stdout(
        process::command(env!("CARGO"))
            .args([
                "test",
                "-q",
                "-p",
                "xtask",
                "--test",
                "e2e",
                "--",
                "--ignored",
                "--list",
            ])
            .current_dir(crate::paths::workspace_root()),
    )
    .context("listing the end-to-end tests")?;
    let names: Vec<String> = listing
        .lines()
        .filter_map(|l| l.strip_suffix(": test"))
        .map(String::from)
        .collect();
    if !names.iter().any(|n| n == FIRST) {
        bail!("no end-to-end test {FIRST}: the list was {names:?}");
    }
    Ok(names)
}

/// Each row's result, wall time and builds (all, cold, steps run), and the
/// cold trees by name; then the totals.
fn table(rows: &[Row], total: f64) -> String {
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    let mut out = format!(
        "\n{:width$}  {:>6}  {:>8}  {:>6}  {:>4}  {:>9}  cold trees\n",
        "test", "result", "wall", "builds", "cold", "steps run"
    );
    for row in rows {
        let cold: Vec<String> = row
            .builds
            .iter()
            .filter(|b| b.cold)
            .map(|b| match b.tool {
                build_log::Tool::Xtask => b.tree.clone(),
                build_log::Tool::Kbuild => format!("{} (Kbuild)", b.tree),
            })
            .collect();
        out += &format!(
            "{:width$}  {:>6}  {:>6.0} s  {:>6}  {:>4}  {:>9}  {}\n",
            row.name,
            if row.passed { "ok" } else { "FAILED" },
            row.seconds,
            row.builds.len(),
            cold.len(),
            row.builds.iter().map(|b| b.steps_executed).sum::<u64>(),
            cold.join(", ")
        );
    }
    let all = rows.iter().flat_map(|r| &r.builds);
    out += &format!(
        "{:width$}  {:>6}  {:>6.0} s  {:>6}  {:>4}  {:>9}\n",
        "total",
        "",
        total,
        all.clone().count(),
        all.clone().filter(|b| b.cold).count(),
        all.map(|b| b.steps_executed).sum::<u64>(),
    );
    out
}

fn cargo(args: &[&str]) -> Result<()> {
    eprintln!("$ cargo {}", args.join(" "));
    process::run(
        process::command(env!("CARGO"))
            .args(args)
            .current_dir(crate::paths::workspace_root()),
    )
}
