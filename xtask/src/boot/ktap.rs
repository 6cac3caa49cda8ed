//! The KTAP results in a serial log: what KUnit prints (KTAP version 1,
//! and the TAP 13/14 of older kernels), as kunit.py reads it.
//!
//! Hand-written: the Rust TAP parsers read flat TAP 13 and know neither
//! KTAP's nesting nor a log where the kernel's own messages interleave
//! with the results. A test is a header (`KTAP version 1`, `# Subtest:
//! NAME`, `# module: NAME`), an optional plan (`1..N`), its subtests, and
//! its own result line (`ok 3 NAME # SKIP reason`). Indentation is not
//! trusted (kernels have used tabs, four spaces and none); a result line
//! belongs to the test whose plan it completes, or whose name it bears.
//! Every other line (diagnostics, kernel messages) is kept with the case
//! whose result follows it. A log that ends early leaves the running test
//! without a result: [`Outcome::Missing`].

use serde::Serialize;

/// One test: the whole run, a suite, or a case.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Test {
    pub name: String,
    /// Its number in its parent's plan; 0 for the run.
    pub number: usize,
    pub outcome: Outcome,
    /// What follows `#` on its result line: `SKIP reason`, `XFAIL`, `TODO`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directive: Option<String>,
    /// How many subtests its plan announced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub planned: Option<usize>,
    /// From the line before it to its result line, by printk's clock
    /// (`CONFIG_PRINTK_TIME`); `None` without timestamps or a result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// The lines printed before its result that are not KTAP (KUnit's
    /// `# case: EXPECTATION FAILED at ...`, kernel messages), trimmed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subtests: Vec<Test>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Fail,
    /// `# SKIP`, whether `ok` or `not ok`.
    Skip,
    /// `# XFAIL`: failed, as it was expected to.
    ExpectedFail,
    /// `not ok ... # TODO`: a known failure, not counted as one.
    Todo,
    /// No result line: the log ended (a panic, a hang, a cut) first.
    #[default]
    Missing,
}

/// Cases by outcome, over a test's leaves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub pass: usize,
    pub fail: usize,
    pub skip: usize,
    /// Expected failures and known ones (`XFAIL`, `TODO`).
    pub other: usize,
    pub missing: usize,
}

impl Counts {
    pub fn total(&self) -> usize {
        self.pass + self.fail + self.skip + self.other + self.missing
    }
}

impl Test {
    /// The outcome of each leaf (case) under this test, counted.
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        self.visit_cases(&mut |case| match case.outcome {
            Outcome::Pass => counts.pass += 1,
            Outcome::Fail => counts.fail += 1,
            Outcome::Skip => counts.skip += 1,
            Outcome::ExpectedFail | Outcome::Todo => counts.other += 1,
            Outcome::Missing => counts.missing += 1,
        });
        counts
    }

    fn visit_cases(&self, visit: &mut impl FnMut(&Test)) {
        if self.subtests.is_empty() {
            visit(self);
        }
        for test in &self.subtests {
            test.visit_cases(visit);
        }
    }

    /// The test at `path` of names under this one (the last of a name).
    pub fn at<S: AsRef<str>>(&self, path: &[S]) -> Option<&Test> {
        path.iter().try_fold(self, |test, name| {
            test.subtests.iter().rev().find(|t| t.name == name.as_ref())
        })
    }

    /// In the test that was running when the log ended, the number of the
    /// case whose result never came and how many its plan announced.
    /// KUnit names a case only with its result, so the number is all the
    /// log tells.
    pub fn unfinished_case(&self) -> Option<(usize, usize)> {
        let running = self.at(&self.running()?)?;
        let planned = running.planned?;
        (running.subtests.len() < planned).then(|| (running.subtests.len() + 1, planned))
    }

    /// The innermost test without a result and the names leading to it:
    /// what was running when the log ended.
    pub fn running(&self) -> Option<Vec<&str>> {
        let last = self.subtests.last()?;
        if last.outcome != Outcome::Missing {
            return None;
        }
        let mut path = vec![last.name.as_str()];
        if let Some(inner) = last.running() {
            path.extend(inner);
        }
        Some(path)
    }
}

/// The results in `log`, as one test whose subtests are the suites;
/// `None` when the log holds no KTAP at all.
pub fn parse(log: &str) -> Option<Test> {
    let (lines, times) = isolate(log)?.into_iter().unzip();
    let mut parser = Parser {
        lines,
        times,
        next: 0,
    };
    let mut run = Test::default();
    parser.header(&mut run);
    parser.body(&mut run, true);
    // The run itself has no result line: it passed if every suite did.
    run.outcome = if run.subtests.iter().all(|t| ok(t.outcome)) {
        Outcome::Pass
    } else if run.subtests.iter().any(|t| t.outcome == Outcome::Missing) {
        Outcome::Missing
    } else {
        Outcome::Fail
    };
    Some(run)
}

fn ok(outcome: Outcome) -> bool {
    matches!(
        outcome,
        Outcome::Pass | Outcome::Skip | Outcome::ExpectedFail | Outcome::Todo
    )
}

/// The lines from the version line to the end of the results, without the
/// console's prefix (printk's `[    0.060000]`, `[    T1]`), each with
/// printk's time when it has one.
fn isolate(log: &str) -> Option<Vec<(String, Option<f64>)>> {
    let mut lines = log.lines().map(|l| l.trim_end_matches('\r'));
    let first = lines.by_ref().find(|l| is_version(strip_console(l)))?;
    let mut isolated = vec![(strip_console(first).trim().to_string(), time(first))];
    for line in lines {
        let text = strip_console(line);
        if ENDS.iter().any(|end| text.trim_start().starts_with(end)) {
            break;
        }
        isolated.push((text.to_string(), time(line)));
    }
    Some(isolated)
}

/// printk's `[   12.345678]`, in seconds.
fn time(line: &str) -> Option<f64> {
    let inner = line.strip_prefix('[')?;
    inner[..inner.find(']')?].trim().parse().ok()
}

/// What the kernel prints once the tests are over (kunit.py stops there too).
const ENDS: &[&str] = &[
    "List of all partitions:",
    "Kernel panic - not syncing: VFS:",
    "reboot: System halted",
    // `kunit_shutdown=reboot`, as `cargo xtask kunit` boots.
    "reboot: Restarting system",
];

/// Without leading `[...]` groups and the space after them.
fn strip_console(line: &str) -> &str {
    let mut rest = line;
    while let Some(inner) = rest.strip_prefix('[') {
        match inner.find(']') {
            Some(end) => rest = &inner[end + 1..],
            None => break,
        }
    }
    if rest.len() == line.len() {
        line
    } else {
        rest.strip_prefix(' ').unwrap_or(rest)
    }
}

fn is_version(line: &str) -> bool {
    let line = line.trim();
    ["KTAP version ", "TAP version "].iter().any(|v| {
        line.strip_prefix(v)
            .is_some_and(|n| n.parse::<u32>().is_ok())
    })
}

/// `ok 3 - name # SKIP reason`, parsed.
struct ResultLine {
    ok: bool,
    number: usize,
    name: String,
    directive: Option<String>,
}

fn result_line(line: &str) -> Option<ResultLine> {
    let line = line.trim();
    let (ok, rest) = if let Some(rest) = line.strip_prefix("not ok ") {
        (false, rest)
    } else {
        (true, line.strip_prefix("ok ")?)
    };
    let (number, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let number = number.parse().ok()?;
    let rest = rest.strip_prefix("- ").unwrap_or(rest);
    let (name, directive) = match rest.split_once(" # ") {
        Some((name, directive)) => (name, Some(directive.trim().to_string())),
        None => match rest.strip_prefix("# ") {
            Some(directive) => ("", Some(directive.trim().to_string())),
            None => (rest, None),
        },
    };
    Some(ResultLine {
        ok,
        number,
        name: name.trim().to_string(),
        directive,
    })
}

fn outcome(ok: bool, directive: Option<&str>) -> Outcome {
    let word = directive
        .and_then(|d| d.split_whitespace().next())
        .map(str::to_ascii_uppercase);
    match (ok, word.as_deref()) {
        (_, Some("SKIP")) => Outcome::Skip,
        (_, Some("XFAIL")) => Outcome::ExpectedFail,
        (false, Some("TODO")) => Outcome::Todo,
        (true, _) => Outcome::Pass,
        (false, _) => Outcome::Fail,
    }
}

fn plan(line: &str) -> Option<usize> {
    line.trim()
        .strip_prefix("1..")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn subtest_name(line: &str) -> Option<&str> {
    line.trim().strip_prefix("# Subtest: ").map(str::trim)
}

struct Parser {
    lines: Vec<String>,
    times: Vec<Option<f64>>,
    next: usize,
}

impl Parser {
    fn peek(&self) -> Option<&str> {
        self.lines.get(self.next).map(String::as_str)
    }

    /// The time of the last timestamped line before line `index`.
    fn time_before(&self, index: usize) -> Option<f64> {
        self.times[..index.min(self.times.len())]
            .iter()
            .rev()
            .find_map(|t| *t)
    }

    /// From the line before `start` to the line just consumed.
    fn seconds_since(&self, start: usize) -> Option<f64> {
        let end = self.times.get(self.next.checked_sub(1)?).copied()??;
        let seconds = end - self.time_before(start)?;
        Some((seconds * 1e6).round() / 1e6)
    }

    /// The version, name and plan lines of a test, whichever are there,
    /// and the `# key: value` lines KUnit prints between them.
    fn header(&mut self, test: &mut Test) {
        let mut named = false;
        while let Some(line) = self.peek() {
            if is_version(line) && !named && test.planned.is_none() {
                self.next += 1;
            } else if let Some(name) = subtest_name(line).filter(|_| !named) {
                test.name = name.to_string();
                named = true;
                self.next += 1;
            } else if let Some(n) = plan(line).filter(|_| test.planned.is_none()) {
                test.planned = Some(n);
                self.next += 1;
                return;
            } else if named && is_attribute(line) {
                self.next += 1;
            } else {
                return;
            }
        }
    }

    /// Subtests until this test's plan is complete or its own result line
    /// comes (the run has none: it ends with the log).
    fn body(&mut self, test: &mut Test, is_run: bool) {
        let mut pending: Vec<String> = Vec::new();
        // Where the next case's lines begin: its time runs from the line before.
        let mut case_start = self.next;
        while let Some(line) = self.peek() {
            let complete = test.planned.is_some_and(|n| test.subtests.len() >= n);
            if is_version(line) || subtest_name(line).is_some() {
                if complete && !is_run {
                    break;
                }
                let start = self.next;
                let mut subtest = Test {
                    diagnostics: std::mem::take(&mut pending),
                    ..Test::default()
                };
                self.header(&mut subtest);
                self.body(&mut subtest, false);
                if self.own_result(&mut subtest) {
                    subtest.seconds = self.seconds_since(start);
                }
                test.subtests.push(subtest);
                case_start = self.next;
            } else if let Some(result) = result_line(line) {
                let own =
                    !is_run && (complete || (!test.name.is_empty() && result.name == test.name));
                if own {
                    break;
                }
                self.next += 1;
                test.subtests.push(Test {
                    name: result.name,
                    number: result.number,
                    outcome: outcome(result.ok, result.directive.as_deref()),
                    directive: result.directive,
                    diagnostics: std::mem::take(&mut pending),
                    seconds: self.seconds_since(case_start),
                    ..Test::default()
                });
                case_start = self.next;
            } else {
                let line = line.trim();
                if !line.is_empty() && line != "#" {
                    pending.push(line.to_string());
                }
                self.next += 1;
            }
        }
        test.diagnostics.extend(pending);
    }

    /// The result line that ends `test`, if the log got that far.
    fn own_result(&mut self, test: &mut Test) -> bool {
        let Some(result) = self.peek().and_then(result_line) else {
            test.outcome = Outcome::Missing;
            return false;
        };
        self.next += 1;
        if test.name.is_empty() {
            test.name = result.name;
        }
        test.number = result.number;
        test.outcome = outcome(result.ok, result.directive.as_deref());
        test.directive = result.directive;
        true
    }
}

/// `# module: list_test`, `# speed: slow`: a test's attributes.
fn is_attribute(line: &str) -> bool {
    line.trim()
        .strip_prefix("# ")
        .and_then(|rest| rest.split_once(": "))
        .is_some_and(|(key, _)| !key.contains(' '))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// kunit.py's own recorded logs, in the kernel source.
    fn kunit_log(name: &str) -> String {
        let path = crate::kconfig::fixture::kernel_src()
            .join("tools/testing/kunit/test_data")
            .join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn names(test: &Test) -> Vec<&str> {
        test.subtests.iter().map(|t| t.name.as_str()).collect()
    }

    #[test]
    fn a_passing_run_with_nested_suites() {
        let run = parse(&kunit_log("test_is_test_passed-all_passed_nested.log")).unwrap();
        assert_eq!(run.outcome, Outcome::Pass);
        assert_eq!(names(&run), ["sysctl_test", "example"]);
        let sysctl = &run.subtests[0];
        assert_eq!(sysctl.planned, Some(4));
        assert_eq!(sysctl.subtests.len(), 4);
        assert_eq!(
            sysctl.subtests[1].name, "example",
            "a suite nested in a suite"
        );
        assert_eq!(sysctl.subtests[1].subtests.len(), 2);
        assert_eq!(
            sysctl.subtests[0].diagnostics,
            ["# sysctl_test_dointvec_null_tbl_data: sysctl_test_dointvec_null_tbl_data passed"]
        );
        assert_eq!(run.counts().fail, 0);
        assert_eq!(run.counts().pass, run.counts().total());
    }

    #[test]
    fn failures_keep_their_diagnostics() {
        let run = parse(&kunit_log("test_is_test_passed-failure.log")).unwrap();
        assert_eq!(run.outcome, Outcome::Fail);
        let failed: Vec<&Test> = run
            .subtests
            .iter()
            .flat_map(|s| &s.subtests)
            .filter(|c| c.outcome == Outcome::Fail)
            .collect();
        assert_eq!(failed.len(), 1, "{run:#?}");
        assert!(
            failed[0]
                .diagnostics
                .iter()
                .any(|d| d.contains("EXPECTATION FAILED")),
            "{:?}",
            failed[0].diagnostics
        );
    }

    #[test]
    fn skips_are_neither_passes_nor_failures() {
        let run = parse(&kunit_log("test_skip_tests.log")).unwrap();
        assert_eq!(run.outcome, Outcome::Pass);
        let example = &run.subtests[1];
        assert_eq!(example.subtests[1].outcome, Outcome::Skip);
        assert_eq!(
            example.subtests[1].directive.as_deref(),
            Some("SKIP this test should be skipped")
        );
        let all = parse(&kunit_log("test_skip_all_tests.log")).unwrap();
        assert!(
            all.counts().skip > 0 && all.counts().pass == 0,
            "{:?}",
            all.counts()
        );
    }

    #[test]
    fn a_panic_mid_suite_names_what_was_running() {
        let run = parse(&kunit_log("test_kernel_panic_interrupt.log")).unwrap();
        assert_eq!(run.outcome, Outcome::Missing);
        assert_eq!(run.running(), Some(vec!["string-stream-test"]));
        let suite = &run.subtests[2];
        assert_eq!((suite.planned, suite.subtests.len()), (Some(3), 1));
        assert_eq!(run.counts().pass, 8);
    }

    #[test]
    fn kernel_messages_between_results_are_kept_not_parsed() {
        let run = parse(&kunit_log("test_interrupted_tap_output.log")).unwrap();
        let first = &run.subtests[0];
        assert_eq!(first.subtests.len(), 5);
        assert!(
            first.subtests[3]
                .diagnostics
                .iter()
                .any(|d| d.starts_with("kAFS: Red Hat AFS client")),
            "{:?}",
            first.subtests[3]
        );
        assert_eq!(run.outcome, Outcome::Pass);
    }

    #[test]
    fn console_prefixes_of_any_kind_are_stripped() {
        let run = parse(&kunit_log("test_multiple_prefixes.log")).unwrap();
        assert_eq!(names(&run)[0], "kunit-resource-test");
        assert_eq!(run.subtests[0].subtests.len(), 5);
        assert_eq!(
            strip_console("[    0.060000][    T1] \tok 1 - a"),
            "\tok 1 - a"
        );
        assert_eq!(strip_console("ok 1 - a"), "ok 1 - a");
    }

    #[test]
    fn a_log_cut_in_the_middle_misses_the_rest() {
        let log = kunit_log("test_skip_tests.log");
        let cut: String = log.lines().take(6).map(|l| format!("{l}\n")).collect();
        let run = parse(&cut).unwrap();
        assert_eq!(run.outcome, Outcome::Missing);
        assert_eq!(run.running(), Some(vec!["string-stream-test"]));
        assert_eq!(parse("no results here\n"), None);
    }

    #[test]
    fn ktap_v1_with_attributes_and_parameters() {
        let run = parse(&kunit_log("test_parse_ktap_output.log")).unwrap();
        assert!(!run.subtests.is_empty(), "{run:#?}");
        let attributes = parse(&kunit_log("test_parse_attributes.log")).unwrap();
        assert!(
            attributes.subtests.iter().all(|s| !s.name.is_empty()),
            "{attributes:#?}"
        );
    }

    #[test]
    fn result_lines_and_directives() {
        let r = result_line("not ok 12 - overflow # TODO later").unwrap();
        assert_eq!((r.ok, r.number, r.name.as_str()), (false, 12, "overflow"));
        assert_eq!(outcome(r.ok, r.directive.as_deref()), Outcome::Todo);
        let r = result_line("ok 2 example # XFAIL known").unwrap();
        assert_eq!(outcome(r.ok, r.directive.as_deref()), Outcome::ExpectedFail);
        let r = result_line("ok 3 # SKIP no hardware").unwrap();
        assert_eq!(
            (r.name.as_str(), outcome(r.ok, r.directive.as_deref())),
            ("", Outcome::Skip)
        );
        assert!(result_line("okay 1 x").is_none());
    }
}
