//! `cargo xtask kunit`: the kernel's own unit tests (KUnit) in a kernel the
//! graph built, booted as `test-boot` boots, judged by their KTAP output
//! (`boot::kunit`), under one LTO mode or compared across all three
//! ([`compare`]).
//!
//! The suites come as Kconfig fragments on top of the tree's configuration,
//! like any `--fragment`: `.kunitconfig` files (the kernel ships them beside
//! its tests) and `--kconfig-add` lines. A suite that does not land is the
//! usual unmet-dependency error, naming the file, the line and the
//! dependency. The kernel runs its built-in suites after the initcalls and,
//! with `kunit_shutdown=reboot`, resets before any init runs.

pub mod compare;

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::{
    boot::{
        self,
        ktap::{Counts, Test},
        kunit::{self as judge, KunitFailure},
        Firmware,
    },
    build::{self, Options},
    paths,
    target::{Arch, Lto, Target},
    toolchain::{self, Tools},
};

/// What to run, beside the targets and the build's options.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// `.kunitconfig` files or directories holding one, as given.
    pub kunitconfigs: Vec<PathBuf>,
    /// `CONFIG_X=y` lines, after the files.
    pub kconfig_add: Vec<String>,
    /// `suite.case` glob, passed as `kunit.filter_glob=`.
    pub filter: Option<String>,
    /// More kernel parameters (`oops=panic`), after ours.
    pub kernel_args: Vec<String>,
    pub timeout: Duration,
    /// Print the KTAP as the kernel printed it instead of the summary.
    pub raw_output: bool,
    /// Print to stderr: stdout carries the JSON.
    pub print_to_stderr: bool,
}

/// Every run, and the failure that decides the exit code.
pub struct Outcome {
    pub runs: Vec<Run>,
    pub failure: Option<KunitFailure>,
}

/// `kunit-report.json`, next to the build report.
#[derive(Clone, Debug, Serialize)]
pub struct Run {
    pub arch: Arch,
    pub lto: Lto,
    pub config: String,
    pub filter: Option<String>,
    /// `pass`, or the [`KunitFailure`].
    pub outcome: &'static str,
    pub message: String,
    pub counts: Counts,
    /// The boot, from QEMU's start to its exit.
    pub seconds: f64,
    pub log: PathBuf,
    /// The run as KTAP nests it: suites, their cases, each case's result,
    /// directive, diagnostics and time.
    pub results: Option<Test>,
    #[serde(skip)]
    pub failure: Option<KunitFailure>,
}

/// Builds and boots each target, prints each run, and compares the runs
/// when there are several LTO modes. The first failure decides, except
/// that a difference between modes outranks everything.
pub fn run(targets: &[Target], options: &Options, request: &Request) -> Result<Outcome> {
    let mut out: Box<dyn Write> = match request.print_to_stderr {
        true => Box::new(std::io::stderr()),
        false => Box::new(std::io::stdout()),
    };
    let mut runs = Vec::new();
    for target in targets {
        toolchain::ensure_tools(&[Tools::Boot(target.arch)])?;
        let run = run_one(target, options, request)?;
        print(&mut out, &run, request.raw_output)?;
        runs.push(run);
    }
    let mut failure = runs.iter().find_map(|r| r.failure);
    let arches: Vec<Arch> = dedup(runs.iter().map(|r| r.arch));
    for arch in arches {
        let same_arch: Vec<&Run> = runs.iter().filter(|r| r.arch == arch).collect();
        if same_arch.len() < 2 {
            continue;
        }
        let differences = compare::differences(&same_arch);
        writeln!(out, "{}", compare::table(arch, &same_arch, &differences))?;
        if !differences.is_empty() {
            failure = Some(KunitFailure::DiffersAcrossLto);
        }
    }
    Ok(Outcome { runs, failure })
}

fn dedup<T: PartialEq>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut out = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// One kernel: built with the suites, booted, judged, reported.
fn run_one(target: &Target, options: &Options, request: &Request) -> Result<Run> {
    let mut options = options.clone();
    let source = crate::source::resolve(options.source.as_deref())?;
    options.fragments.extend(fragments(&source.root, request)?);
    let built = build::build(target, &options)?;
    let mut input = crate::test_boot::input(&built, Firmware::Bios, request.timeout);
    input.cmdline = cmdline(request);
    let serial = boot::run(&input, "kunit")?;
    let verdict = judge::judge(&serial.text, serial.run.ending);
    let run = Run {
        arch: target.arch,
        lto: target.lto,
        config: target.config.to_string(),
        filter: request.filter.clone(),
        outcome: verdict.failure.map_or("pass", KunitFailure::name),
        message: verdict.message,
        counts: verdict
            .results
            .as_ref()
            .map(Test::counts)
            .unwrap_or_default(),
        seconds: (serial.run.seconds * 100.0).round() / 100.0,
        log: serial.log,
        results: verdict.results,
        failure: verdict.failure,
    };
    crate::fs_atomic::write(
        &built.objtree.join("kunit-report.json"),
        (serde_json::to_string_pretty(&run)? + "\n").as_bytes(),
    )?;
    Ok(run)
}

/// `--json`: every run, to `to`, or to stdout when it is `-`.
pub fn write_json(runs: &[Run], to: &Path) -> Result<()> {
    let text = serde_json::to_string_pretty(runs)? + "\n";
    if to.as_os_str() == "-" {
        print!("{text}");
        Ok(())
    } else {
        crate::fs_atomic::write(to, text.as_bytes())
    }
}

/// The kernel parameters: KUnit on (a tree may default it off, as the proof
/// profile does), the filter, and a reset once the suites are done.
fn cmdline(request: &Request) -> Vec<String> {
    let mut args = vec![
        "kunit.enable=1".to_string(),
        "kunit_shutdown=reboot".to_string(),
    ];
    if let Some(glob) = &request.filter {
        args.push(format!("kunit.filter_glob={glob}"));
    }
    args.extend(request.kernel_args.iter().cloned());
    args
}

/// The fragments that bring the suites: each `.kunitconfig`, then one file
/// of the `--kconfig-add` lines (with `CONFIG_KUNIT=y`, which every run needs).
fn fragments(srctree: &Path, request: &Request) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let kunitconfigs = if request.kunitconfigs.is_empty() {
        vec![default_kunitconfig()]
    } else {
        request.kunitconfigs.clone()
    };
    for given in &kunitconfigs {
        files.push(find_kunitconfig(given, srctree)?);
    }
    let mut text = String::from("# cargo xtask kunit --kconfig-add\nCONFIG_KUNIT=y\n");
    for line in &request.kconfig_add {
        check_setting(line)?;
        text += line;
        text += "\n";
    }
    // Named by content, so a run with the same lines finds the same file.
    let dir = paths::target_dir().join("kunit");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let file = dir.join(format!(
        "kconfig-add-{}.config",
        &blake3::hash(text.as_bytes()).to_hex()[..12]
    ));
    if fs::read_to_string(&file).ok().as_deref() != Some(text.as_str()) {
        crate::fs_atomic::write(&file, text.as_bytes())?;
    }
    files.push(file);
    Ok(files)
}

/// The suites run when no `--kunitconfig` is given (the README says why each).
pub fn default_kunitconfig() -> PathBuf {
    paths::targets_dir().join("common/kunit.config")
}

/// A `.kunitconfig`, or a directory holding one, as given or in the kernel
/// source (kunit.py's `--kunitconfig lib/kunit` is relative to the source).
fn find_kunitconfig(given: &Path, srctree: &Path) -> Result<PathBuf> {
    for candidate in [given.to_path_buf(), srctree.join(given)] {
        let file = if candidate.is_dir() {
            candidate.join(".kunitconfig")
        } else {
            candidate
        };
        if file.is_file() {
            return file
                .canonicalize()
                .with_context(|| format!("--kunitconfig {}", file.display()));
        }
    }
    bail!(
        "--kunitconfig {}: no such file, and no .kunitconfig there or under {}",
        given.display(),
        srctree.display()
    )
}

/// `CONFIG_X=y`, `CONFIG_X="text"`, or `# CONFIG_X is not set`.
fn check_setting(line: &str) -> Result<()> {
    let valid = match line.strip_prefix("# ") {
        Some(rest) => rest
            .strip_suffix(" is not set")
            .is_some_and(|name| name.starts_with("CONFIG_") && is_symbol(&name[7..])),
        None => line
            .strip_prefix("CONFIG_")
            .and_then(|rest| rest.split_once('='))
            .is_some_and(|(name, value)| is_symbol(name) && !value.is_empty()),
    };
    if !valid {
        bail!("--kconfig-add {line:?}: expected CONFIG_NAME=value or \"# CONFIG_NAME is not set\"");
    }
    Ok(())
}

fn is_symbol(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// kunit.py's shape: a line per suite, the failed cases with their
/// diagnostics, then `Testing complete. Ran N tests: ...`.
fn print(out: &mut dyn Write, run: &Run, raw_output: bool) -> Result<()> {
    let title = format!("kunit {}-{}-{}", run.arch, run.lto, run.config);
    if raw_output {
        let text = fs::read(&run.log).with_context(|| format!("reading {}", run.log.display()))?;
        write!(out, "{}", String::from_utf8_lossy(&text))?;
    } else if let Some(results) = &run.results {
        for suite in &results.subtests {
            let counts = suite.counts();
            writeln!(
                out,
                "  [{}] {} ({})",
                status_word(suite),
                suite.name,
                judge::summary(&counts)
            )?;
            for (name, case) in judge::cases(suite) {
                if case.outcome == crate::boot::ktap::Outcome::Fail {
                    writeln!(out, "      [FAILED] {name}")?;
                    for line in &case.diagnostics {
                        writeln!(out, "        {line}")?;
                    }
                }
            }
        }
    }
    let outcome = match run.failure {
        None => "PASS".to_string(),
        Some(failure) => format!("FAIL ({failure})"),
    };
    writeln!(
        out,
        "{title}: {outcome} in {:.1} s: {}",
        run.seconds, run.message
    )?;
    writeln!(out, "  Testing complete. {}", judge::summary(&run.counts))?;
    writeln!(out, "  log: {}", run.log.display())?;
    Ok(())
}

fn status_word(test: &Test) -> &'static str {
    use crate::boot::ktap::Outcome;
    match test.outcome {
        Outcome::Pass => "PASSED",
        Outcome::Fail => "FAILED",
        Outcome::Skip => "SKIPPED",
        Outcome::ExpectedFail | Outcome::Todo => "XFAIL",
        Outcome::Missing => "CRASHED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kconfig_add_takes_settings_only() {
        for good in [
            "CONFIG_LIST_KUNIT_TEST=y",
            "CONFIG_CMDLINE=\"a b\"",
            "# CONFIG_SMP is not set",
        ] {
            check_setting(good).unwrap();
        }
        for bad in [
            "LIST_KUNIT_TEST=y",
            "CONFIG_X",
            "CONFIG_=y",
            "CONFIG_X=",
            "# CONFIG_X",
        ] {
            let error = check_setting(bad).unwrap_err().to_string();
            assert!(
                error.contains("expected CONFIG_NAME=value"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn a_kunitconfig_is_found_as_given_or_in_the_source() {
        let src = tempfile::tempdir().unwrap();
        fs::create_dir_all(src.path().join("lib/kunit")).unwrap();
        fs::write(
            src.path().join("lib/kunit/.kunitconfig"),
            "CONFIG_KUNIT=y\n",
        )
        .unwrap();
        let found = find_kunitconfig(Path::new("lib/kunit"), src.path()).unwrap();
        assert!(found.ends_with("lib/kunit/.kunitconfig"), "{found:?}");
        let file = src.path().join("mine.kunitconfig");
        fs::write(&file, "CONFIG_KUNIT=y\n").unwrap();
        assert_eq!(
            find_kunitconfig(&file, Path::new("/nonexistent")).unwrap(),
            file.canonicalize().unwrap()
        );
        let error = find_kunitconfig(Path::new("lib/nothing"), src.path()).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("--kunitconfig lib/nothing: no such file"),
            "{error}"
        );
    }

    #[test]
    fn the_filter_and_the_reset_go_on_the_command_line() {
        let request = Request {
            filter: Some("list*".into()),
            kernel_args: vec!["oops=panic".into()],
            ..Request::default()
        };
        assert_eq!(
            cmdline(&request),
            [
                "kunit.enable=1",
                "kunit_shutdown=reboot",
                "kunit.filter_glob=list*",
                "oops=panic"
            ]
        );
        assert_eq!(
            cmdline(&Request::default()),
            ["kunit.enable=1", "kunit_shutdown=reboot"]
        );
    }
}
