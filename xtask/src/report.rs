//! The build report: `build-report.json` in the object tree.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::Result;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::{
    engine::event::Counts,
    fs_atomic,
    kbuild::{cmd_file::CmdFile, stage::Stage},
    lto::policy::{LtoState, Unit},
    target::{Arch, Lto},
    toolchain::Toolchain,
};

#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct Phase {
    pub name: String,
    pub seconds: f64,
    /// User and system time of the xtask and every process it waited for:
    /// `cpu_seconds / seconds` is how many cores the phase kept busy.
    pub cpu_seconds: f64,
}

/// Wall and CPU time since a start, for phases and stages.
pub struct Stopwatch {
    wall: std::time::Instant,
    cpu: f64,
}

impl Stopwatch {
    pub fn start() -> Stopwatch {
        Stopwatch {
            wall: std::time::Instant::now(),
            cpu: cpu_seconds(),
        }
    }

    /// Seconds of wall time and of CPU time since the start.
    pub fn elapsed(&self) -> (f64, f64) {
        (self.wall.elapsed().as_secs_f64(), cpu_seconds() - self.cpu)
    }
}

/// A build's phases, each timed from the end of the one before.
pub struct Laps {
    since: Stopwatch,
    /// CPU time done elsewhere, as last seen (see `lap_with`).
    elsewhere: f64,
    pub phases: Vec<Phase>,
}

impl Laps {
    pub fn start() -> Laps {
        Laps {
            since: Stopwatch::start(),
            elsewhere: 0.0,
            phases: Vec::new(),
        }
    }

    /// Ends the phase `name` now; the next one starts.
    pub fn lap(&mut self, name: &str) {
        self.lap_with(name, self.elsewhere);
    }

    /// The same, where `elsewhere` is the CPU time so far of work this
    /// process does not wait for (the fork server's backends, whose server
    /// is reaped only when the build ends): what it grew by since the last
    /// lap counts to this phase.
    pub fn lap_with(&mut self, name: &str, elsewhere: f64) {
        let (seconds, cpu_seconds) = self.since.elapsed();
        self.since = Stopwatch::start();
        let grown = (elsewhere - self.elsewhere).max(0.0);
        self.elsewhere = elsewhere;
        self.phases.push(Phase {
            name: name.into(),
            seconds,
            cpu_seconds: cpu_seconds + grown,
        });
    }
}

/// CPU time of this process and of the children it has waited for.
fn cpu_seconds() -> f64 {
    let seconds = |who| {
        // SAFETY: getrusage only writes the struct it is given.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(who, &mut usage) } != 0 {
            return 0.0;
        }
        let time = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        time(usage.ru_utime) + time(usage.ru_stime)
    };
    seconds(libc::RUSAGE_SELF) + seconds(libc::RUSAGE_CHILDREN)
}

/// How one stage of the pipeline went.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct StageRun {
    pub stage: Stage,
    #[serde(flatten)]
    pub counts: Counts,
    pub seconds: f64,
    pub cpu_seconds: f64,
}

#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct Artifact {
    pub path: PathBuf,
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct Report {
    pub arch: Arch,
    pub lto: Lto,
    /// The preset, Kbuild target or `.config` file.
    pub config: String,
    pub kernel_version: String,
    pub source: PathBuf,
    pub toolchain: Toolchain,
    pub units: Vec<Unit>,
    pub steps: Counts,
    /// Each planned stage as it ran: `thin_link`, `backends` and `final_link`
    /// show how much of the ThinLTO link an edit cost.
    pub stages: Vec<StageRun>,
    /// ThinLTO: each backend that ran in this build, and the inputs that
    /// made it run.
    pub thin_backends: Option<Vec<crate::lto::thin::BackendRun>>,
    /// Whether the backends that ran were forks of one loaded clang (see
    /// `engine::fork_server`); `false` with a warning when that clang could
    /// not serve; absent when none ran.
    pub backends_forked: Option<bool>,
    pub phases: Vec<Phase>,
    pub seconds: f64,
    pub artifacts: Vec<Artifact>,
    pub policy_warnings: Vec<String>,
    /// The `vmlinux.o` link as it ran (`.vmlinux.o.cmd`): shows the LTO
    /// flags such as `-mllvm -import-instr-limit=5` and the objtool pass.
    /// `--launcher`: its command and, for ccache and sccache, this build's hits and misses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launcher: Option<crate::engine::launcher::Report>,
    /// `--cache`: where, and this build's hits, misses, uploads and corrupt entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_cache: Option<crate::engine::shared::Report>,
    pub vmlinux_o_command: String,
    /// Where the configuration and the plans came from.
    pub plan_from: PlanFrom,
}

/// Where a build's configuration and plans came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlanFrom {
    /// The tree's own, still valid.
    Tree,
    /// Another tree's, from the shared cache (`--cache`).
    SharedCache,
    /// Configured and planned in this build.
    Planned,
    /// Configured in this build, with the last configuration's plan: what
    /// changed is read by no Makefile.
    Kept,
}

impl Report {
    pub fn write(&self, objtree: &Path) -> Result<()> {
        fs_atomic::write(
            &objtree.join("build-report.json"),
            serde_json::to_string_pretty(self)?.as_bytes(),
        )
    }
}

/// Kbuild's record of how `output` was made, from its `.cmd` file.
pub fn saved_command(objtree: &Path, output: &str) -> String {
    CmdFile::read(objtree, output)
        .and_then(|f| f.command)
        .unwrap_or_default()
}

pub fn artifacts(objtree: &Path, paths: &[PathBuf]) -> Result<Vec<Artifact>> {
    paths
        .iter()
        .map(|path| {
            let bytes = fs::read(objtree.join(path))?;
            Ok(Artifact {
                path: objtree.join(path),
                sha256: format!("{:x}", Sha256::digest(&bytes)),
                bytes: bytes.len() as u64,
            })
        })
        .collect()
}

/// Objects whose format contradicts the policy.
#[derive(Debug)]
pub struct PolicyViolation(pub Vec<String>);

impl std::fmt::Display for PolicyViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{} objects contradict the LTO policy:", self.0.len())?;
        for line in self.0.iter().take(50) {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyViolation {}

/// The few lines a person wants after a build.
pub fn print_summary(report: &Report, objtree: &Path) {
    let lto_units = report
        .units
        .iter()
        .filter(|u| u.lto == LtoState::On)
        .count();
    println!(
        "built {} {} LTO={} config={} in {:.1}s: {} steps planned, {} executed, {} cached; {} units ({} LTO'd, {} native)",
        report.kernel_version,
        report.arch,
        report.lto,
        report.config,
        report.seconds,
        report.steps.planned,
        report.steps.executed,
        report.steps.cached,
        report.units.len(),
        lto_units,
        report.units.len() - lto_units,
    );
    for artifact in &report.artifacts {
        println!(
            "  {} ({} bytes, sha256 {})",
            artifact.path.display(),
            artifact.bytes,
            &artifact.sha256[..16]
        );
    }
    println!("  report: {}", objtree.join("build-report.json").display());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phase_counts_the_cpu_done_elsewhere_since_the_last_lap() {
        let mut laps = Laps::start();
        laps.lap_with("compile", 5.0);
        laps.lap("image");
        laps.lap_with("link", 7.5);
        let cpu: Vec<f64> = laps.phases.iter().map(|p| p.cpu_seconds).collect();
        // This process's own CPU between laps is a few milliseconds at most.
        assert!((5.0..5.5).contains(&cpu[0]), "{cpu:?}");
        assert!(cpu[1] < 0.5, "{cpu:?}");
        assert!((2.5..3.0).contains(&cpu[2]), "{cpu:?}");
    }
}
