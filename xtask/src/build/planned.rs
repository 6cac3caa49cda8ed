//! The tree planned: its compile plan from `.xtask/` when the key and the
//! Makefiles still match, else from the shared cache, else configured and
//! dry-run here, with the prepare stage run part by part as it is planned.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

use anyhow::{bail, Result};
use kernel_manifest::{Origin, WarningKind};

use super::{
    pipeline::{Pipeline, Setup},
    tree::{makefiles_hash, tree, Tree},
    Options,
};
use crate::{
    configure,
    engine::{cache::Cache, launcher::Launcher, lock::TreeLock, shared::SharedCache, trace::Trace},
    kbuild::{
        bundle::Bundle,
        plan::{self, Cached, Plan, StagePlans},
        plan_symbols,
        stage::{self, Stage},
        Kbuild, Step,
    },
    kconfig::DotConfig,
    lto::policy,
    render::{self, Notice},
    report::{self, Laps},
    source,
    target::Target,
    toolchain::Toolchain,
};

/// Everything known before the first step runs.
pub struct Planned {
    /// Held until the build ends.
    _lock: TreeLock,
    pub(super) toolchain: Toolchain,
    pub(super) source: source::Source,
    pub objtree: PathBuf,
    pub(super) kbuild: Kbuild,
    pub plan: Plan,
    pub policy: kernel_manifest::Policy,
    pub(super) warnings: Vec<kernel_manifest::Warning>,
    pub lto_flags: Option<String>,
    pub(super) shared: Option<SharedCache>,
    pub(super) plan_from: report::PlanFrom,
    pub(super) recipe: configure::Recipe,
    /// The prepare stage, when planning ran it.
    pub(super) prepared: Prepared,
}

/// The prepare stage as planning ran it: its runs, the outputs of the
/// steps that executed, how many steps it has and what it made.
#[derive(Default)]
pub(super) struct Prepared {
    pub stages: Vec<report::StageRun>,
    pub ran: Vec<String>,
    pub steps: usize,
    pub files: plan::Prepared,
}

/// What LTO adds to a compile, when LTO is on.
fn lto_flags<'a>(target: &Target, env: &'a BTreeMap<String, String>) -> Option<&'a str> {
    env.get("CC_FLAGS_LTO")
        .filter(|_| target.lto.is_lto())
        .map(String::as_str)
}

/// The tree planned as its build would plan it, for a command that reads
/// the plan and builds nothing.
pub fn plan_only(target: &Target, options: &Options) -> Result<Planned> {
    planned(target, options, None, None, &mut Laps::start())
}

/// Source, toolchain, policy, and the compile plan (cached, or configure +
/// dry run in the plan tree).
pub(super) fn planned(
    target: &Target,
    options: &Options,
    launcher: Option<&Launcher>,
    trace: Option<&Trace>,
    laps: &mut Laps,
) -> Result<Planned> {
    let tree = tree(target, options)?;
    laps.lap("source");
    let cached = tree.cached_plan();
    let Tree {
        lock,
        toolchain,
        source,
        policy,
        objtree,
        kbuild,
        recipe,
        shared,
        key,
        setup_key,
    } = tree;
    let restored = match (&cached, &shared) {
        (Cached::Missing, Some(shared)) => restore_plans(shared, &key, &kbuild, options.jobs)?,
        _ => None,
    };
    let mut plan_from = report::PlanFrom::Tree;
    let mut prepared = Prepared::default();
    let plan = match (cached, restored) {
        (Cached::Valid(plan), _) => *plan,
        (_, Some(plan)) => {
            plan_from = report::PlanFrom::SharedCache;
            laps.lap("configure");
            plan
        }
        (cached, None) => {
            plan_from = report::PlanFrom::Planned;
            // The plan comes from a tree of its own (`kbuild::plan_tree`), so a
            // new configuration keeps every object: what it did not change stays cached.
            let tree = objtree.display();
            if let Cached::Unreadable(error) = &cached {
                render::notice(Notice::Doing(format!(
                    "its plan cache is unusable ({error:#}): planning {tree} again"
                )));
            }
            if configure::is_current(&kbuild, &key) {
                render::notice(Notice::Doing(format!("{tree} is configured: planning it")));
            } else {
                render::notice(Notice::Doing(format!("configuring {target} in {tree}")));
                configure::configure(&kbuild, &recipe, &toolchain, &key, options.jobs)?;
                laps.lap("configure");
            }
            // The first file Kbuild's prepare writes, which the top Makefile
            // exports as KERNELRELEASE: captured now, a cold tree's
            // environment is the one a warm tree would give.
            write_kernel_release(&kbuild)?;
            let setup = Setup {
                jobs: options.jobs,
                policy: &policy,
                lto_flags: None,
                launcher,
                shared: shared.as_ref(),
                fork_server: None,
                trace,
            };
            let config = fs::read_to_string(objtree.join(".config"))?;
            let kept = match cached {
                Cached::Stale(last) if last.setup_key == setup_key => {
                    kept_plan(*last, &config, &kbuild, &source.root, target, setup, laps)?
                }
                _ => None,
            };
            let stage_plans = StagePlans::open(&objtree)?;
            let plan = match kept {
                Some((last, early)) => {
                    plan_from = report::PlanFrom::Kept;
                    prepared = early;
                    stage_plans.rekey(&last.key, &key)?;
                    Plan {
                        key,
                        config,
                        ..last
                    }
                }
                None => {
                    render::notice(Notice::Doing(format!("planning {tree}")));
                    stage_plans.clear()?;
                    let (env, compile, early) =
                        plan_configured(&kbuild, &toolchain, target, setup, laps)?;
                    let plan = Plan {
                        format: plan::FORMAT.into(),
                        key,
                        makefiles: makefiles_hash(&source.root, &objtree, &compile),
                        env,
                        prepare_steps: early.steps,
                        prepared: early.files.clone(),
                        compile,
                        setup_key,
                        config,
                    };
                    prepared = early;
                    plan
                }
            };
            plan.write(&objtree)?;
            laps.lap("plan");
            plan
        }
    };

    let warnings = policy
        .validate(&source.root, &policy::built_units(&plan.compile))?
        .into_iter()
        // Only the user's own rules deserve a warning when their unit is not built.
        .filter(|w| !(w.kind == WarningKind::NotBuilt && w.origin == Origin::Manifest))
        .collect();
    let lto_flags = lto_flags(target, &plan.env).map(String::from);
    if target.lto.is_lto() && lto_flags.is_none() {
        bail!(
            "LTO is on, but Kbuild exported no CC_FLAGS_LTO: is CONFIG_{} set in {}?",
            target.lto.kconfig_symbol(),
            objtree.join(".config").display()
        );
    }
    Ok(Planned {
        _lock: lock,
        toolchain,
        source,
        objtree,
        kbuild,
        plan,
        policy,
        warnings,
        lto_flags,
        shared,
        plan_from,
        recipe,
        prepared,
    })
}

/// Plans a configured tree: the environment, and the prepare stage part by
/// part, each run in the tree as soon as it is planned (the next part and
/// the rest of the plan read what it made), then the rest. Returns the
/// environment, the compile plan and the prepare stage as it ran.
fn plan_configured(
    kbuild: &Kbuild,
    toolchain: &Toolchain,
    target: &Target,
    setup: Setup<'_>,
    laps: &mut Laps,
) -> Result<(BTreeMap<String, String>, Vec<Step>, Prepared)> {
    // Two single-threaded makes that read the configuration and write
    // nothing the other reads (the dry run works in the plan tree).
    let (env, first) = std::thread::scope(|scope| {
        let env = scope.spawn(|| step_env(kbuild, toolchain));
        let first = stage::Planning::start(kbuild, setup.jobs).and_then(|mut planning| {
            let steps = planning.plan(kbuild, &[stage::PREPARE_PARTS[0]])?;
            Ok((planning, steps))
        });
        (
            env.join().expect("capturing the environment panicked"),
            first,
        )
    });
    let (env, (mut planning, mut steps)) = (env?, first?);
    let cache = Cache::open(&kbuild.objtree)?;
    let setup = Setup {
        lto_flags: lto_flags(target, &env),
        ..setup
    };
    let mut early = Pipeline::new(&kbuild.objtree, &env, &cache, setup);
    let mut prepare = steps.clone();
    for part in &stage::PREPARE_PARTS[1..] {
        early.run(Stage::Prepare, steps)?;
        steps = planning.plan(kbuild, &[part])?;
        prepare.extend(steps.iter().cloned());
    }
    early.run(Stage::Prepare, steps)?;
    cache.save()?;
    // What the rest of the plan is read after.
    let files = plan::Prepared::hash(&kbuild.objtree, &prepare)?;
    laps.lap("prepare");
    let compile = planning.finish(kbuild)?;
    let prepared = Prepared {
        stages: early.into_stage_runs(),
        ran: cache.ran(),
        steps: prepare.len(),
        files,
    };
    Ok((env, compile, prepared))
}

/// The tree's last plan, when a new configuration (`config`, the `.config`
/// text) cannot have changed it:
/// the same setup and Makefiles, no changed symbol that a Makefile or
/// script names (`kbuild::plan_symbols`), and the prepare stage, run again,
/// made the same files the rest of the plan was read after. Returns the
/// plan and the prepare stage as it ran.
fn kept_plan(
    last: Plan,
    config: &str,
    kbuild: &Kbuild,
    srctree: &Path,
    target: &Target,
    setup: Setup<'_>,
    laps: &mut Laps,
) -> Result<Option<(Plan, Prepared)>> {
    let objtree = &kbuild.objtree;
    if last.makefiles != makefiles_hash(srctree, objtree, &last.compile) {
        return Ok(None);
    }
    let changed = DotConfig::parse(&last.config).changed(&DotConfig::parse(config));
    let named = plan_symbols::named(srctree)?;
    match named.reached(&changed) {
        Some(reached) if reached.is_empty() => {}
        Some(reached) => {
            render::notice(Notice::Doing(format!(
                "the Makefiles read CONFIG_{}: the plan is made again",
                reached.join(", CONFIG_")
            )));
            return Ok(None);
        }
        None => return Ok(None),
    }
    render::notice(Notice::Doing(format!(
        "no Makefile reads what changed ({} symbol{}): running the prepare stage to keep the plan",
        changed.len(),
        if changed.len() == 1 { "" } else { "s" }
    )));
    let cache = Cache::open(objtree)?;
    let setup = Setup {
        lto_flags: lto_flags(target, &last.env),
        ..setup
    };
    let prepare = last.compile[..last.prepare_steps].to_vec();
    let mut early = Pipeline::new(objtree, &last.env, &cache, setup);
    early.run(Stage::Prepare, prepare)?;
    cache.save()?;
    laps.lap("prepare");
    let files = plan::Prepared::hash(objtree, &last.compile[..last.prepare_steps])?;
    if files != last.prepared {
        render::notice(Notice::Doing(
            "the prepare stage made other files: the plan is made again".into(),
        ));
        return Ok(None);
    }
    let prepared = Prepared {
        stages: early.into_stage_runs(),
        ran: cache.ran(),
        steps: last.prepare_steps,
        files,
    };
    Ok(Some((last, prepared)))
}

/// A fresh tree of a recipe some tree planned before: its configuration and
/// plans from the shared cache (`kbuild::bundle`), if this source's
/// Makefiles and Kconfig files are the ones they were made from.
fn restore_plans(
    shared: &SharedCache,
    key: &str,
    kbuild: &Kbuild,
    jobs: usize,
) -> Result<Option<Plan>> {
    let Some(bundle) = shared
        .document(key)
        .and_then(|bytes| Bundle::from_bytes(&bytes))
    else {
        return Ok(None);
    };
    let objtree = &kbuild.objtree;
    render::notice(Notice::Doing(format!(
        "configuring {} from the shared cache",
        objtree.display()
    )));
    bundle.write_config(objtree)?;
    // Kconfig's outputs and its list of Kconfig files, which the check reads.
    kbuild.run("syncconfig", jobs)?;
    bundle.write_plans(objtree)?;
    match Plan::cached(objtree, key, |compile| {
        makefiles_hash(&kbuild.srctree, objtree, compile)
    }) {
        Cached::Valid(plan) => {
            configure::mark_configured(kbuild, key)?;
            Ok(Some(*plan))
        }
        _ => {
            render::notice(Notice::Doing(
                "the shared plan was made from other Makefiles or Kconfig files: planning here"
                    .into(),
            ));
            Ok(None)
        }
    }
}

fn write_kernel_release(kbuild: &Kbuild) -> Result<()> {
    let path = kbuild.objtree.join("include/config/kernel.release");
    let release = format!("{}\n", kbuild.kernel_release()?);
    if fs::read_to_string(&path).ok().as_deref() != Some(release.as_str()) {
        crate::fs_atomic::write(&path, release.as_bytes())?;
    }
    Ok(())
}

/// The environment every step runs in: what the top Makefile exports, with
/// the LLVM tools first on `PATH`.
fn step_env(kbuild: &Kbuild, toolchain: &Toolchain) -> Result<BTreeMap<String, String>> {
    let mut env = kbuild.exported_env()?;
    // Captured under `make -s`, which exports `quiet=silent_`; the plan parser
    // needs the quiet tags that Kbuild prints by default.
    env.insert("quiet".into(), "quiet_".into());
    env.insert("Q".into(), "@".into());
    env.insert(
        "PATH".into(),
        toolchain.path_env().to_string_lossy().into_owned(),
    );
    Ok(env)
}
