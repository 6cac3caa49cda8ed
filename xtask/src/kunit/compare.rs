//! The same suites under several LTO modes, case by case: a case whose
//! result differs between modes is what LTO changed, and a case that passes
//! without LTO and fails with it is an LTO bug.

use std::collections::BTreeMap;

use crate::{
    boot::{ktap::Outcome, kunit::cases},
    target::{Arch, Lto},
};

use super::Run;

/// One case whose results differ, with its result in each run (`None`:
/// the case did not appear, e.g. a run that crashed before it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    pub case: String,
    pub results: Vec<(Lto, Option<Outcome>)>,
}

impl Difference {
    /// Passes without LTO and fails, crashes or is missing with it.
    pub fn is_lto_bug(&self) -> bool {
        let without = self.result(Lto::None);
        without == Some(Some(Outcome::Pass))
            && self
                .results
                .iter()
                .any(|(lto, r)| lto.is_lto() && *r != Some(Outcome::Pass))
    }

    fn result(&self, lto: Lto) -> Option<Option<Outcome>> {
        self.results
            .iter()
            .find(|(l, _)| *l == lto)
            .map(|(_, r)| *r)
    }
}

/// Every case whose result is not the same in all `runs`.
pub fn differences(runs: &[&Run]) -> Vec<Difference> {
    let mut per_run: Vec<BTreeMap<String, Outcome>> =
        runs.iter().map(|run| outcomes(run)).collect();
    // KUnit names a case only with its result: the case a run crashed in is
    // the next one of its suite, which the other runs name.
    for (i, run) in runs.iter().enumerate() {
        let Some(results) = &run.results else {
            continue;
        };
        let (Some(suite), Some((number, _))) = (results.running(), results.unfinished_case())
        else {
            continue;
        };
        let named = runs.iter().find_map(|other| {
            let suite = other.results.as_ref()?.at(&suite)?;
            suite
                .subtests
                .iter()
                .find(|c| c.number == number)
                .map(|c| c.name.clone())
        });
        if let Some(case) = named {
            per_run[i].insert(format!("{}.{case}", suite.join(".")), Outcome::Missing);
        }
    }
    let mut by_case: BTreeMap<String, Vec<(Lto, Option<Outcome>)>> = BTreeMap::new();
    for results in &per_run {
        for name in results.keys() {
            by_case.entry(name.clone()).or_default();
        }
    }
    for (name, results) in by_case.iter_mut() {
        for (run, outcomes) in runs.iter().zip(&per_run) {
            results.push((run.lto, outcomes.get(name).copied()));
        }
    }
    by_case
        .into_iter()
        .filter(|(_, results)| results.windows(2).any(|w| w[0].1 != w[1].1))
        .map(|(case, results)| Difference { case, results })
        .collect()
}

/// Each case of a run by its dotted name. A suite cut short before its
/// first result is no case.
fn outcomes(run: &Run) -> BTreeMap<String, Outcome> {
    let Some(results) = &run.results else {
        return BTreeMap::new();
    };
    cases(results)
        .into_iter()
        .filter(|(_, case)| case.planned.is_none_or(|n| n == 0))
        .map(|(name, case)| (name, case.outcome))
        .collect()
}

/// The table printed after the runs of one arch.
pub fn table(arch: Arch, runs: &[&Run], differences: &[Difference]) -> String {
    let modes: Vec<String> = runs.iter().map(|r| r.lto.to_string()).collect();
    let total = runs.iter().map(|r| r.counts.total()).max().unwrap_or(0);
    let mut out = format!(
        "kunit {arch} across LTO modes {}: {total} cases, ",
        modes.join(", ")
    );
    if differences.is_empty() {
        out += "the same result in every mode";
        return out;
    }
    out += &format!("{} differ", differences.len());
    let width = differences
        .iter()
        .map(|d| d.case.len())
        .max()
        .unwrap_or(0)
        .max(4);
    out += &format!("\n  {:width$}", "case");
    for mode in &modes {
        out += &format!("  {mode:8}");
    }
    for difference in differences {
        out += &format!("\n  {:width$}", difference.case);
        for (_, result) in &difference.results {
            out += &format!("  {:8}", word(*result));
        }
        if difference.is_lto_bug() {
            out += "  LTO bug: passes without LTO";
        }
    }
    out
}

fn word(result: Option<Outcome>) -> &'static str {
    match result {
        None => "absent",
        Some(Outcome::Pass) => "pass",
        Some(Outcome::Fail) => "FAIL",
        Some(Outcome::Skip) => "skip",
        Some(Outcome::ExpectedFail) => "xfail",
        Some(Outcome::Todo) => "todo",
        Some(Outcome::Missing) => "CRASHED",
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::boot::{judge::Ending, kunit::judge};

    /// A run of a recorded log, as if under `lto`.
    fn run(log: &str, lto: Lto) -> Run {
        let verdict = judge(log, Ending::Exited);
        Run {
            arch: Arch::X86_64,
            lto,
            config: "proof".into(),
            filter: None,
            outcome: "",
            message: verdict.message,
            counts: verdict
                .results
                .as_ref()
                .map(|r| r.counts())
                .unwrap_or_default(),
            seconds: 1.0,
            log: PathBuf::new(),
            results: verdict.results,
            failure: verdict.failure,
        }
    }

    const PASS: &str = include_str!("../boot/testdata/x86_64-proof-kunit-pass.log");
    const PANIC: &str = include_str!("../boot/testdata/x86_64-proof-kunit-panic.log");

    #[test]
    fn the_same_results_in_every_mode_differ_nowhere() {
        let (none, thin) = (run(PASS, Lto::None), run(PASS, Lto::Thin));
        let runs = [&none, &thin];
        assert_eq!(differences(&runs), []);
        assert_eq!(
            table(Arch::X86_64, &runs, &[]),
            "kunit x86_64 across LTO modes none, thin: 74 cases, the same result in every mode"
        );
    }

    /// The whole run without LTO against the run that panicked in
    /// `kunit_fault`: its case passes without LTO and crashes with it.
    #[test]
    fn a_case_that_passes_only_without_lto_is_an_lto_bug() {
        let (none, thin) = (run(PASS, Lto::None), run(PANIC, Lto::Thin));
        let found = differences(&[&none, &thin]);
        let fault = found
            .iter()
            .find(|d| d.case == "kunit_fault.kunit_test_fault_null_dereference")
            .unwrap();
        assert_eq!(
            fault.results,
            [
                (Lto::None, Some(Outcome::Pass)),
                (Lto::Thin, Some(Outcome::Missing))
            ]
        );
        assert!(fault.is_lto_bug());
        // The cases the panic kept from running are absent, not failed.
        let absent = found
            .iter()
            .find(|d| d.case == "example.example_simple_test")
            .unwrap();
        assert_eq!(absent.results[1], (Lto::Thin, None));
        let text = table(Arch::X86_64, &[&none, &thin], &found);
        let line = text
            .lines()
            .find(|l| l.contains("kunit_test_fault_null_dereference"))
            .unwrap();
        assert!(
            line.contains("pass      CRASHED   LTO bug: passes without LTO"),
            "{line}"
        );
    }
}
