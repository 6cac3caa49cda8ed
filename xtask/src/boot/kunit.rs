//! From a KUnit run's serial log to a pass or a [`KunitFailure`], as
//! [`judge`](super::judge) does for our init: pure functions over the log,
//! unit-tested on real logs in `testdata/`.
//!
//! Precedence: no KTAP at all, then a run cut short (what was running, and
//! whether the kernel panicked, reset or hung), then no case at all, then
//! failed cases.

use std::fmt;

use serde::Serialize;

use super::{
    judge::{self, Ending, PANIC},
    ktap::{self, Counts, Outcome, Test},
};

/// How a KUnit run failed. A pass is the absence of a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KunitFailure {
    /// A case failed.
    Failed,
    /// The kernel panicked, or the machine reset, in the middle of a test.
    Crashed,
    /// A test was still running when the timeout came.
    Hung,
    /// No case ran: no KTAP in the log, or a filter that matched nothing.
    NoTests,
    /// A case's result differs between LTO modes.
    DiffersAcrossLto,
}

impl KunitFailure {
    pub fn name(self) -> &'static str {
        match self {
            KunitFailure::Failed => "failed",
            KunitFailure::Crashed => "crashed",
            KunitFailure::Hung => "hung",
            KunitFailure::NoTests => "no-tests",
            KunitFailure::DiffersAcrossLto => "differs-across-lto",
        }
    }
}

impl fmt::Display for KunitFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A judged run: the results, the failure if any, and the one line to read first.
#[derive(Clone, Debug)]
pub struct Verdict {
    pub results: Option<Test>,
    pub failure: Option<KunitFailure>,
    pub message: String,
}

/// Judges a boot that ran KUnit, from its serial log and how QEMU ended.
pub fn judge(log: &str, ending: Ending) -> Verdict {
    let results = ktap::parse(log);
    let (failure, message) = match &results {
        None => (
            Some(KunitFailure::NoTests),
            format!(
                "no KTAP in the serial log: the kernel ran no KUnit test (is CONFIG_KUNIT built in?); last line: {}",
                judge::last_line(log)
            ),
        ),
        Some(run) => match run.running() {
            Some(path) => {
                let running = running(run, &path, log);
                match (judge::find(log, PANIC), ending) {
                    (Some(line), _) => (
                        Some(KunitFailure::Crashed),
                        format!(
                            "the kernel panicked during {running}: {}",
                            judge::from(line, PANIC)
                        ),
                    ),
                    (None, Ending::TimedOut) => (
                        Some(KunitFailure::Hung),
                        format!("{running} was still running at the timeout"),
                    ),
                    (None, Ending::Exited) => (
                        Some(KunitFailure::Crashed),
                        format!(
                            "the machine reset during {running}; last line: {}",
                            judge::last_line(log)
                        ),
                    ),
                }
            }
            None => {
                let counts = run.counts();
                if counts.total() == 0 {
                    (
                        Some(KunitFailure::NoTests),
                        "no test ran: no suite is built in, or the filter matched none".into(),
                    )
                } else if counts.fail > 0 {
                    let failed = failed(run);
                    let shown = failed.len().min(10);
                    let more = match failed.len() - shown {
                        0 => String::new(),
                        n => format!(" and {n} more"),
                    };
                    (
                        Some(KunitFailure::Failed),
                        format!("failed: {}{more}", failed[..shown].join(", ")),
                    )
                } else {
                    (None, "no case failed".into())
                }
            }
        },
    };
    Verdict {
        results,
        failure,
        message,
    }
}

/// What was running when the log ended: the suite (and case) names KTAP
/// gave, the number of the case whose result never came (KUnit names a case
/// only with its result), and where the kernel was when it oopsed.
fn running(run: &Test, path: &[&str], log: &str) -> String {
    let mut text = path.join(".");
    if let Some((case, planned)) = run.unfinished_case() {
        text += &format!(", case {case} of {planned}");
    }
    // x86's `RIP: 0010:fn+0x6/0x50`, arm64's `pc : fn+0x6/0x50`.
    let at = ["RIP: 0010:", "pc : "].iter().find_map(|needle| {
        judge::find(log, needle).map(|line| judge::from(line, needle)[needle.len()..].trim())
    });
    if let Some(at) = at {
        text += &format!(" (at {at})");
    }
    text
}

/// kunit.py's summary: `Ran 321 tests: passed: 277, failed: 13, skipped: 31`.
pub fn summary(counts: &Counts) -> String {
    let statuses = [
        ("passed", counts.pass),
        ("failed", counts.fail),
        ("crashed", counts.missing),
        ("skipped", counts.skip),
        ("expected failures", counts.other),
    ];
    let named: Vec<String> = statuses
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(status, n)| format!("{status}: {n}"))
        .collect();
    format!("Ran {} tests: {}", counts.total(), named.join(", "))
}

/// The failed cases as `suite.case` (nested suites joined by dots).
pub fn failed(run: &Test) -> Vec<String> {
    cases(run)
        .into_iter()
        .filter(|(_, case)| case.outcome == Outcome::Fail)
        .map(|(name, _)| name)
        .collect()
}

/// Every case under the run, with its full dotted name.
pub fn cases(run: &Test) -> Vec<(String, &Test)> {
    fn walk<'a>(test: &'a Test, prefix: &str, out: &mut Vec<(String, &'a Test)>) {
        for sub in &test.subtests {
            let name = if prefix.is_empty() {
                sub.name.clone()
            } else {
                format!("{prefix}.{}", sub.name)
            };
            if sub.subtests.is_empty() {
                out.push((name, sub));
            } else {
                walk(sub, &name, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(run, "", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real serial logs of `cargo xtask kunit --profile proof --kunitconfig
    // lib/kunit` on x86_64 ThinLTO: the whole run, and `kunit_fault` with
    // `oops=panic`, whose deliberate NULL dereference then panics.
    const PASS: &str = include_str!("testdata/x86_64-proof-kunit-pass.log");
    const PANIC: &str = include_str!("testdata/x86_64-proof-kunit-panic.log");

    #[test]
    fn a_whole_run_passes_with_its_skips() {
        let verdict = judge(PASS, Ending::Exited);
        assert_eq!(verdict.failure, None, "{}", verdict.message);
        let counts = verdict.results.unwrap().counts();
        assert_eq!(summary(&counts), "Ran 74 tests: passed: 70, skipped: 4");
    }

    #[test]
    fn a_panic_names_the_suite_the_case_and_where() {
        let verdict = judge(PANIC, Ending::Exited);
        assert_eq!(verdict.failure, Some(KunitFailure::Crashed));
        assert_eq!(
            verdict.message,
            "the kernel panicked during kunit_fault, case 1 of 1 \
             (at kunit_test_null_dereference+0x6/0x50): Kernel panic - not syncing: Fatal exception"
        );
    }

    /// The whole run's log cut inside `kunit-resource-test`: a hang when
    /// QEMU had to be killed, a reset when it exited by itself.
    #[test]
    fn a_log_that_stops_mid_suite_is_a_hang_or_a_reset() {
        let case = PASS
            .find("ok 2 kunit_resource_test_alloc_resource")
            .expect("the recorded run has kunit-resource-test");
        let log = &PASS[..PASS[..case].rfind('\n').unwrap() + 1];
        let hung = judge(log, Ending::TimedOut);
        assert_eq!(hung.failure, Some(KunitFailure::Hung));
        assert!(
            hung.message.starts_with("kunit-resource-test, case 2 of "),
            "{}",
            hung.message
        );
        let reset = judge(log, Ending::Exited);
        assert_eq!(reset.failure, Some(KunitFailure::Crashed));
        assert!(
            reset
                .message
                .starts_with("the machine reset during kunit-resource-test"),
            "{}",
            reset.message
        );
    }

    /// `cargo xtask kunit` with the default suites on x86_64 ThinLTO tiny,
    /// before `kunit.config` had sysfs: two failures, each with KUnit's
    /// diagnostics, and each case timed by printk's clock.
    #[test]
    fn failures_are_named_with_their_diagnostics_and_times() {
        let log = include_str!("testdata/x86_64-tiny-kunit-failures.log");
        let verdict = judge(log, Ending::Exited);
        assert_eq!(verdict.failure, Some(KunitFailure::Failed));
        assert_eq!(
            verdict.message,
            "failed: kunit_platform_device.kunit_platform_device_add_twice_fails_test, overflow.DEFINE_FLEX_test"
        );
        let run = verdict.results.unwrap();
        assert_eq!(
            summary(&run.counts()),
            "Ran 324 tests: passed: 289, failed: 2, skipped: 33"
        );
        let (_, flex) = cases(&run)
            .into_iter()
            .find(|(name, _)| name == "overflow.DEFINE_FLEX_test")
            .unwrap();
        assert!(
            flex.diagnostics
                .iter()
                .any(|d| d.contains("__builtin_dynamic_object_size(two_but_zero, 0) == 12")),
            "{:?}",
            flex.diagnostics
        );
        let time = run
            .subtests
            .iter()
            .find(|s| s.name == "time_test_cases")
            .unwrap();
        assert!(
            time.seconds.is_some_and(|s| s > 1.0) && time.subtests[0].seconds.is_some(),
            "{time:?}"
        );
    }

    #[test]
    fn a_boot_without_ktap_ran_no_test() {
        let log = include_str!("testdata/x86_64-tiny-pass.log");
        let verdict = judge(log, Ending::Exited);
        assert_eq!(verdict.failure, Some(KunitFailure::NoTests));
        assert!(verdict.message.starts_with("no KTAP in the serial log"));
    }
}
