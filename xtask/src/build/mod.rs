//! `cargo xtask build`: the stages in order.
//!
//! host → tree lock (`tree`) → planned (`planned`) → compiled → `vmlinux.o`
//! (thin or full) → `vmlinux` → modules → image (`stages`) → verified →
//! report. Each stage after planning is planned when the build reaches it;
//! its steps go through the LTO policy and the scheduler (`pipeline`), and
//! native stages run the xtask's own link code. Every plan is cached under
//! `.xtask/` by the inputs that decide it, so a no-op build only proves,
//! step by step, that nothing changed.

mod pipeline;
mod planned;
mod stages;
mod tree;
mod up_to_date;

use std::{
    fs,
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{Context, Result};

pub use planned::{plan_only, Planned};
pub use tree::{tree, Tree};
pub use up_to_date::{up_to_date, PHASE as UP_TO_DATE};

use self::{
    pipeline::{Pipeline, Setup},
    stages::Stages,
};
use crate::{
    configure,
    engine::{
        cache::Cache,
        fork_server::ForkServer,
        launcher::{self, Launcher},
        shared::SharedCache,
        trace::Trace,
    },
    kbuild::{plan::StagePlans, Step},
    link,
    lto::{policy, thin},
    render::{self, Notice},
    report::{self, Laps, Report},
    target::Target,
    toolchain::{Llvm, Toolchain},
};

#[derive(Clone, Debug, Default)]
pub struct Options {
    pub source: Option<PathBuf>,
    /// Parallel jobs, already resolved (see `cli::jobs`).
    pub jobs: usize,
    pub lto_off: Vec<String>,
    pub overlays: Vec<PathBuf>,
    /// Fail (exit 14) instead of waiting when another build holds the tree.
    pub no_wait: bool,
    /// The user's Kconfig fragments, applied after the profile's.
    pub fragments: Vec<PathBuf>,
    /// `--launcher` or `XTASK_LAUNCHER`, as given; blank is none.
    pub launcher: Option<String>,
    /// `--cache` or `XTASK_CACHE`, as given; blank is none.
    pub cache: Option<String>,
    /// `--cache-size` or `XTASK_CACHE_SIZE`, as given; none is 5G.
    pub cache_size: Option<String>,
    /// `--trace FILE`: where the steps go as a Chrome trace.
    pub trace: Option<PathBuf>,
    /// `--llvm` or `LLVM`: the toolchain, which has its own trees.
    pub llvm: Llvm,
}

/// What a finished build hands to `test-boot` and `compdb`.
pub struct Built {
    pub target: Target,
    pub objtree: PathBuf,
    pub toolchain: Toolchain,
    pub report: Report,
    /// Every step, after the policy rewrite, as it ran.
    pub steps: Vec<Step>,
}

/// What the build brings from outside the tree: the launcher, the trace
/// and the clocks.
struct Host {
    started: Instant,
    launcher: Option<Launcher>,
    launcher_before: Option<launcher::Stats>,
    trace: Option<Trace>,
    laps: Laps,
}

impl Host {
    fn start(options: &Options) -> Result<Host> {
        let launcher = Launcher::from_args(options.launcher.as_deref())?;
        Ok(Host {
            started: Instant::now(),
            launcher_before: launcher.as_ref().and_then(Launcher::stats),
            launcher,
            trace: options.trace.as_ref().map(|_| Trace::new()),
            laps: Laps::start(),
        })
    }
}

pub fn build(target: &Target, options: &Options) -> Result<Built> {
    let mut host = Host::start(options)?;
    let planned = planned::planned(
        target,
        options,
        host.launcher.as_ref(),
        host.trace.as_ref(),
        &mut host.laps,
    )?;
    for warning in &planned.warnings {
        render::notice(Notice::Warning(warning.to_string()));
    }
    let objtree = &planned.objtree;
    let env = &planned.plan.env;
    let cache = Cache::open(objtree)?;
    let plans = StagePlans::open(objtree)?;
    let cc = env.get("CC").map_or("clang", String::as_str);
    let fork_server = ForkServer::new(cc, env, objtree);
    let setup = Setup {
        jobs: options.jobs,
        policy: &planned.policy,
        lto_flags: planned.lto_flags.as_deref(),
        launcher: host.launcher.as_ref(),
        shared: planned.shared.as_ref(),
        fork_server: Some(&fork_server),
        trace: host.trace.as_ref(),
    };
    let mut pipeline = Pipeline::new(objtree, env, &cache, setup);
    pipeline.adopt(planned.prepared.stages.clone());
    let mut stages = Stages {
        target,
        planned: &planned,
        cache: &cache,
        plans: &plans,
        fork_server: &fork_server,
        pipeline,
    };

    // The backends' CPU is the fork server's, which the build reaps only at its end.
    let forked = || fork_server.cpu_seconds();
    stages.compiled()?;
    host.laps.lap_with("compile", forked());
    let thin_backends = stages.vmlinux_o()?;
    let modules = stages.vmlinux()?;
    if modules {
        stages.modules()?;
    }
    host.laps.lap_with("link", forked());
    stages.image()?;
    host.laps.lap_with("image", forked());
    if let Some(shared) = &planned.shared {
        stages.share(shared)?;
    }

    let verified = verified(&planned, &cache, stages.pipeline)?;
    host.laps.lap_with("verify", forked());
    let report = report(
        &host,
        target,
        &planned,
        &fork_server,
        &verified,
        thin_backends,
    )?;
    record(&host, options, &planned, &report)?;
    if !verified.wrong.is_empty() {
        return Err(report::PolicyViolation(verified.wrong).into());
    }
    if let Some(request) = up_to_date::request(target, options, &planned.source.root)? {
        let files = decided_by(&planned, &cache, options);
        up_to_date::record(&planned.objtree, request, files, &cache)?;
    }
    Ok(Built {
        target: target.clone(),
        objtree: planned.objtree,
        toolchain: planned.toolchain,
        report,
        steps: verified.steps,
    })
}

/// What ran, with every unit's LTO state checked in its objects.
struct Verified {
    /// Every step, the last version of each (image rounds re-run corrected
    /// versions of earlier steps).
    steps: Vec<Step>,
    counts: crate::engine::event::Counts,
    stage_runs: Vec<report::StageRun>,
    units: Vec<policy::Unit>,
    /// Units whose objects contradict the policy.
    wrong: Vec<String>,
}

fn verified(planned: &Planned, cache: &Cache, pipeline: Pipeline<'_>) -> Result<Verified> {
    let Pipeline {
        decisions,
        steps,
        counts,
        stages: stage_runs,
        ..
    } = pipeline;
    let steps = last_of_each(steps, |s| s.output.clone());
    let decisions = last_of_each(decisions, |d| d.object.clone());
    let ran = [planned.prepared.ran.clone(), cache.ran()].concat();
    crate::fs_atomic::write(
        &planned.objtree.join(".xtask/last-executed.txt"),
        (ran.join("\n") + "\n").as_bytes(),
    )?;
    let (units, wrong) = policy::verify(&planned.objtree, &decisions);
    Ok(Verified {
        steps,
        counts,
        stage_runs,
        units,
        wrong,
    })
}

fn report(
    host: &Host,
    target: &Target,
    planned: &Planned,
    fork_server: &ForkServer,
    verified: &Verified,
    thin_backends: Option<Vec<thin::BackendRun>>,
) -> Result<Report> {
    let Planned {
        objtree,
        toolchain,
        source,
        shared,
        plan_from,
        warnings,
        ..
    } = planned;
    Ok(Report {
        arch: target.arch,
        lto: target.lto,
        config: target.config.to_string(),
        kernel_version: source.version.clone(),
        source: source.root.clone(),
        toolchain: toolchain.clone(),
        units: verified.units.clone(),
        steps: verified.counts,
        stages: verified.stage_runs.clone(),
        thin_backends,
        backends_forked: fork_server.served(),
        phases: host.laps.phases.clone(),
        seconds: host.started.elapsed().as_secs_f64(),
        artifacts: report::artifacts(objtree, &link::artifacts(objtree, target.arch))?,
        policy_warnings: warnings.iter().map(|w| w.to_string()).collect(),
        plan_from: *plan_from,
        vmlinux_o_command: report::saved_command(objtree, "vmlinux.o"),
        launcher: host.launcher.as_ref().map(|l| launcher::Report {
            command: l.line(),
            kind: l.kind,
            stats: l
                .stats()
                .zip(host.launcher_before)
                .map(|(after, before)| after.since(before)),
        }),
        shared_cache: shared.as_ref().map(SharedCache::finish),
    })
}

/// The report written, with the trace and the build log, and the
/// launcher's advice when compiles it was given came back local.
fn record(host: &Host, options: &Options, planned: &Planned, report: &Report) -> Result<()> {
    let objtree = &planned.objtree;
    let advice = host.launcher.as_ref().and_then(|l| {
        l.fell_back_advice(
            report.steps.fell_back,
            report.steps.launched,
            &planned.toolchain.tool("clang"),
        )
    });
    if let Some(advice) = advice {
        render::notice(Notice::Warning(advice));
    }
    let first = !objtree.join("build-report.json").exists();
    report.write(objtree)?;
    if let (Some(trace), Some(path)) = (&host.trace, &options.trace) {
        trace
            .write(path)
            .with_context(|| format!("--trace {}", path.display()))?;
    }
    crate::build_log::record(&crate::build_log::Entry::xtask(
        objtree,
        first,
        report.steps.planned,
        report.steps.executed,
        report.steps.restored,
        report.seconds,
    ))
}

/// Every file whose content decided this build (see `up_to_date`).
fn decided_by(planned: &Planned, cache: &Cache, options: &Options) -> Vec<PathBuf> {
    let objtree = &planned.objtree;
    let entries = |dir: &Path| -> Vec<PathBuf> {
        fs::read_dir(dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    let mut files: Vec<PathBuf> = cache.files().iter().map(|f| objtree.join(f)).collect();
    files.extend(tree::makefiles(
        &planned.source.root,
        objtree,
        &planned.plan.compile,
    ));
    files.extend(planned.recipe.files().cloned());
    files.push(configure::edits_path(objtree));
    files.extend(options.overlays.iter().cloned());
    files.extend(std::env::current_exe());
    files.extend(entries(&planned.toolchain.bin));
    files.push(objtree.join(".config"));
    files.push(objtree.join(".xtask/plan.json"));
    files.extend(entries(&objtree.join(".xtask/plans")));
    files.sort_unstable();
    files.dedup();
    files
}

/// The last item for each key, in the order the keys first appeared.
fn last_of_each<T>(items: Vec<T>, key: impl Fn(&T) -> String) -> Vec<T> {
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut kept: Vec<T> = Vec::with_capacity(items.len());
    for item in items {
        match index.get(&key(&item)) {
            Some(&at) => kept[at] = item,
            None => {
                index.insert(key(&item), kept.len());
                kept.push(item);
            }
        }
    }
    kept
}
