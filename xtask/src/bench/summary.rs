//! Medians, the table and `bench-report.json`: pure over the samples.

use std::path::Path;

use serde::Serialize;

use super::{measure::Sample, Scenario, Tool};
use crate::target::Target;

/// One timed build.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Run {
    pub tool: Tool,
    /// From 1.
    pub rep: u32,
    /// Whether this tool went first in its rep (they alternate).
    pub first: bool,
    #[serde(flatten)]
    pub sample: Sample,
}

/// The median; of an even count, the mean of the middle two.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// Each column's median on its own, over one tool's runs.
pub fn medians(runs: &[Run], tool: Tool) -> Option<Sample> {
    let of = |field: fn(&Sample) -> f64| {
        let values: Vec<f64> = runs
            .iter()
            .filter(|r| r.tool == tool)
            .map(|r| field(&r.sample))
            .collect();
        median(&values)
    };
    Some(Sample {
        wall_s: of(|s| s.wall_s)?,
        cpu_s: of(|s| s.cpu_s)?,
        max_rss_kib: of(|s| s.max_rss_kib as f64)?.round() as u64,
    })
}

/// A scenario's samples, medians and xtask/Kbuild ratios, as the report holds them.
#[derive(Debug, Serialize)]
pub struct ScenarioSummary {
    pub scenario: Scenario,
    pub runs: Vec<Run>,
    pub median: Medians,
    /// xtask / Kbuild of each median; `null` when Kbuild's is zero.
    pub ratio: Ratios,
}

#[derive(Debug, Serialize)]
pub struct Medians {
    pub kbuild: Option<Sample>,
    pub xtask: Option<Sample>,
    /// The xtask through `cargo xtask` (the no-op only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cargo_xtask: Option<Sample>,
}

#[derive(Debug, Serialize)]
pub struct Ratios {
    pub wall: Option<f64>,
    pub cpu: Option<f64>,
    pub max_rss: Option<f64>,
    /// `cargo xtask`'s wall time over Kbuild's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cargo_xtask_wall: Option<f64>,
}

impl ScenarioSummary {
    pub fn new(scenario: Scenario, runs: Vec<Run>) -> ScenarioSummary {
        let (kbuild, xtask) = (medians(&runs, Tool::Kbuild), medians(&runs, Tool::Xtask));
        let cargo_xtask = medians(&runs, Tool::CargoXtask);
        let ratio = |of: Option<Sample>, field: fn(&Sample) -> f64| match (kbuild, of) {
            (Some(k), Some(x)) if field(&k) > 0.0 => Some(field(&x) / field(&k)),
            _ => None,
        };
        let ratio = Ratios {
            wall: ratio(xtask, |s| s.wall_s),
            cpu: ratio(xtask, |s| s.cpu_s),
            max_rss: ratio(xtask, |s| s.max_rss_kib as f64),
            cargo_xtask_wall: ratio(cargo_xtask, |s| s.wall_s),
        };
        ScenarioSummary {
            scenario,
            runs,
            median: Medians {
                kbuild,
                xtask,
                cargo_xtask,
            },
            ratio,
        }
    }
}

/// `target/bench/bench-report.json`.
#[derive(Debug, Serialize)]
pub struct Report<'a> {
    pub arch: crate::target::Arch,
    pub lto: crate::target::Lto,
    pub config: String,
    /// After the base, for both tools.
    pub fragments: &'a [std::path::PathBuf],
    pub jobs: usize,
    pub reps: u32,
    pub kernel_version: String,
    pub source: &'a Path,
    pub trees: Pair<&'a Path>,
    /// What each tool runs for a timed build (Kbuild's cold run starts with `olddefconfig`).
    pub commands: Pair<String>,
    pub notes: Vec<String>,
    pub scenarios: &'a [ScenarioSummary],
}

#[derive(Debug, Serialize)]
pub struct Pair<T> {
    pub kbuild: T,
    pub xtask: T,
}

/// The footnotes the table and the report share.
pub fn notes(scenarios: &[ScenarioSummary]) -> Vec<String> {
    let mut notes = vec![
        "median of each column on its own; the tools alternate going first; setup (building both trees, undoing edits) is not timed".to_string(),
        "CPU: user+sys of the tool and every process it waited for".to_string(),
        "peak RSS: the largest single process of a run (ru_maxrss), not a sum".to_string(),
    ];
    if scenarios
        .iter()
        .any(|s| matches!(s.scenario, Scenario::Cached | Scenario::CachedHttp))
    {
        notes.push(
            "cached, cached-http: Kbuild cold as in `cold`; the xtask cold in a new tree with --cache, a directory or nginx on loopback \
             speaking Bazel's HTTP protocol, filled by one untimed cold build earlier in the run"
                .to_string(),
        );
    }
    if scenarios.iter().any(|s| s.median.cargo_xtask.is_some()) {
        notes.push(
            "through cargo xtask: the xtask's build as users run it, `cargo xtask build` from the workspace, after the \
             binary's own run; the difference is cargo checking the xtask's sources"
                .to_string(),
        );
    }
    if scenarios.iter().any(|s| s.scenario == Scenario::Ccache) {
        notes.push(
            "ccache: both cold, Kbuild with CC=\"ccache clang\" and the xtask with --launcher ccache, on one CCACHE_DIR \
             filled by one untimed cold xtask build earlier in the run (the compile commands are the same)"
                .to_string(),
        );
    }
    if scenarios.iter().any(|s| s.scenario == Scenario::Cold) {
        notes.push(
            "cold: both from nothing, configure included: Kbuild as its user makes the xtask's configuration (the base \
             target such as tinyconfig, the same fragments appended, olddefconfig; checked equal), then the build; \
             the xtask as a user of its --profile or --config runs it"
                .to_string(),
        );
    }
    notes
}

/// The table printed after a run.
pub fn table(target: &Target, jobs: usize, reps: u32, scenarios: &[ScenarioSummary]) -> String {
    let mut out = format!(
        "cargo xtask bench: {} {} {}, -j {jobs}, median of {reps} rep{}\n",
        target.arch,
        target.lto,
        target.config,
        if reps == 1 { "" } else { "s" }
    );
    out += &format!(
        "{:<40}{:>11}{:>11}{:>14}\n",
        "scenario", "Kbuild", "xtask", "xtask/Kbuild"
    );
    for summary in scenarios {
        let cells = |show: fn(&Sample) -> String| {
            let cell = |s: &Option<Sample>| s.as_ref().map_or("-".to_string(), show);
            (cell(&summary.median.kbuild), cell(&summary.median.xtask))
        };
        let rows = [
            ("wall", cells(|s| seconds(s.wall_s)), summary.ratio.wall),
            (
                "CPU (user+sys)",
                cells(|s| seconds(s.cpu_s)),
                summary.ratio.cpu,
            ),
            (
                "peak RSS (largest process)",
                cells(|s| memory(s.max_rss_kib)),
                summary.ratio.max_rss,
            ),
        ];
        for (i, (metric, (kbuild, xtask), ratio)) in rows.into_iter().enumerate() {
            let scenario = if i == 0 { summary.scenario.name() } else { "" };
            let ratio = ratio.map_or("-".to_string(), format_ratio);
            out += &format!("{scenario:<12}{metric:<28}{kbuild:>11}{xtask:>11}{ratio:>14}\n");
            if let (0, Some(cargo)) = (i, summary.median.cargo_xtask) {
                let ratio = summary
                    .ratio
                    .cargo_xtask_wall
                    .map_or("-".to_string(), format_ratio);
                let wall = seconds(cargo.wall_s);
                let metric = "wall, through cargo xtask";
                out += &format!("{:<12}{metric:<28}{:>11}{wall:>11}{ratio:>14}\n", "", "-");
            }
        }
    }
    for note in notes(scenarios) {
        out += &format!("  {note}\n");
    }
    out
}

fn seconds(s: f64) -> String {
    if s < 10.0 {
        format!("{s:.2} s")
    } else {
        format!("{s:.1} s")
    }
}

fn memory(kib: u64) -> String {
    let mib = kib as f64 / 1024.0;
    if mib >= 1024.0 {
        format!("{:.2} GiB", mib / 1024.0)
    } else if mib >= 10.0 {
        format!("{mib:.0} MiB")
    } else {
        format!("{mib:.1} MiB")
    }
}

/// Three significant digits or so: `1.74`, `12.3`, `0.042`.
pub fn format_ratio(ratio: f64) -> String {
    if ratio >= 10.0 {
        format!("{ratio:.1}")
    } else if ratio >= 0.1 {
        format!("{ratio:.2}")
    } else {
        format!("{ratio:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::{Arch, Config, Lto, Profile};

    fn run(tool: Tool, rep: u32, wall_s: f64, cpu_s: f64, max_rss_kib: u64) -> Run {
        Run {
            tool,
            rep,
            first: false,
            sample: Sample {
                wall_s,
                cpu_s,
                max_rss_kib,
            },
        }
    }

    #[test]
    fn the_median_of_odd_and_even_counts() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[4.0]), Some(4.0));
        assert_eq!(median(&[9.0, 1.0, 5.0]), Some(5.0));
        assert_eq!(median(&[9.0, 1.0, 5.0, 3.0]), Some(4.0));
    }

    #[test]
    fn each_column_has_its_own_median_and_tools_are_kept_apart() {
        let runs = [
            run(Tool::Xtask, 1, 1.0, 30.0, 300),
            run(Tool::Xtask, 2, 2.0, 10.0, 100),
            run(Tool::Xtask, 3, 3.0, 20.0, 200),
            run(Tool::Kbuild, 1, 100.0, 100.0, 1),
        ];
        assert_eq!(
            medians(&runs, Tool::Xtask),
            Some(Sample {
                wall_s: 2.0,
                cpu_s: 20.0,
                max_rss_kib: 200
            })
        );
        assert_eq!(
            medians(&runs, Tool::Kbuild),
            Some(Sample {
                wall_s: 100.0,
                cpu_s: 100.0,
                max_rss_kib: 1
            })
        );
        assert_eq!(medians(&runs[3..], Tool::Xtask), None);
    }

    #[test]
    fn ratios_keep_about_three_digits() {
        assert_eq!(format_ratio(1.7412), "1.74");
        assert_eq!(format_ratio(12.34), "12.3");
        assert_eq!(format_ratio(0.04237), "0.042");
        assert_eq!(format_ratio(0.5), "0.50");
    }

    #[test]
    fn the_table_shows_medians_and_ratios_per_scenario() {
        let target = Target {
            arch: Arch::X86_64,
            lto: Lto::Thin,
            config: Config::Preset(Profile::Tiny),
        };
        let noop = ScenarioSummary::new(
            Scenario::Noop,
            vec![
                run(Tool::Kbuild, 1, 12.0, 10.0, 200 * 1024),
                run(Tool::Xtask, 1, 0.5, 0.6, 50 * 1024),
                run(Tool::Kbuild, 2, 14.0, 12.0, 200 * 1024),
                run(Tool::Xtask, 2, 0.7, 0.8, 52 * 1024),
                run(Tool::CargoXtask, 1, 1.3, 1.0, 60 * 1024),
                run(Tool::CargoXtask, 2, 1.3, 1.0, 60 * 1024),
            ],
        );
        let cold = ScenarioSummary::new(
            Scenario::Cold,
            vec![
                run(Tool::Kbuild, 1, 173.0, 320.0, 1536 * 1024),
                run(Tool::Xtask, 1, 301.0, 400.0, 768 * 1024),
            ],
        );
        let expected = "\
cargo xtask bench: x86_64 thin tiny, -j 2, median of 2 reps
scenario                                     Kbuild      xtask  xtask/Kbuild
cold        wall                            173.0 s    301.0 s          1.74
            CPU (user+sys)                  320.0 s    400.0 s          1.25
            peak RSS (largest process)     1.50 GiB    768 MiB          0.50
noop        wall                             13.0 s     0.60 s         0.046
            wall, through cargo xtask             -     1.30 s          0.10
            CPU (user+sys)                   11.0 s     0.70 s         0.064
            peak RSS (largest process)      200 MiB     51 MiB          0.26
";
        let table = table(&target, 2, 2, &[cold, noop]);
        assert!(table.starts_with(expected), "{table}");
        assert!(
            table.contains("  cold: both from nothing, configure included"),
            "{table}"
        );
        assert!(
            table.contains("  peak RSS: the largest single process"),
            "{table}"
        );
        assert!(table.contains("  through cargo xtask: "), "{table}");
    }

    #[test]
    fn a_scenario_without_kbuild_samples_has_no_ratio() {
        let only = ScenarioSummary::new(Scenario::Edit, vec![run(Tool::Xtask, 1, 1.0, 1.0, 1)]);
        assert_eq!((only.ratio.wall, only.ratio.cpu), (None, None));
        let table = table(
            &Target {
                arch: Arch::Arm64,
                lto: Lto::None,
                config: Config::Preset(Profile::Proof),
            },
            1,
            1,
            &[only],
        );
        assert!(
            table.contains(
                "edit        wall                                  -     1.00 s             -\n"
            ),
            "{table}"
        );
        assert!(!table.contains("cold:"), "{table}");
    }
}
