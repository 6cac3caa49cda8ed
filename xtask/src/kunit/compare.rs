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
    let mut by_case: BTreeMap<String, Vec<(Lto, Option<Outcome>)>> = BTreeMap::new();
    let per_run: Vec<BTreeMap<String, Outcome>> = runs
        .iter()
        .map(|run| {
            run.results
                .as_ref()
                .map(|r| {
                    cases(r)
                        .into_iter()
                        .map(|(name, case)| (name, case.outcome))
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect();
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
