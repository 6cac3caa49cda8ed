//! `cargo xtask build`: the pipeline. Source and configure give the compile
//! plan (the prepare stage included); then each stage (`kbuild::stage::Stage`) is planned when the
//! build reaches it, its steps go through the LTO policy and the scheduler,
//! and native stages run the xtask's own link code. Every plan is cached
//! under `.xtask/` by the inputs that decide it, so a no-op build only
//! proves, step by step, that nothing changed.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{bail, Context, Result};
use kernel_manifest::{Origin, WarningKind};

use crate::{
    configure,
    engine::shared::SharedCache,
    engine::{
        cache::Cache,
        event::Counts,
        fork_server::ForkServer,
        graph::Graph,
        launcher::Launcher,
        lock::{Locked, TreeLock},
        native::{self, Native},
        scheduler::Runner,
        trace::Trace,
    },
    kbuild::{
        bundle::Bundle,
        plan::{self, Cached, Plan, StagePlans},
        stage::{self, Stage},
        Kbuild, Step,
    },
    kconfig::{self, DotConfig},
    link::{self, modules::Modfinal, vmlinux::VmlinuxLink},
    lto::{
        policy::{self, Decision},
        thin,
    },
    report::{self, Phase, Report, Stopwatch},
    source,
    target::{Lto, Target},
    toolchain::{self, Toolchain},
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

/// Everything known before the first step runs.
pub struct Planned {
    lock: TreeLock,
    toolchain: Toolchain,
    source: source::Source,
    pub objtree: PathBuf,
    kbuild: Kbuild,
    pub plan: Plan,
    pub policy: kernel_manifest::Policy,
    warnings: Vec<kernel_manifest::Warning>,
    pub lto_flags: Option<String>,
    shared: Option<SharedCache>,
    plan_from: report::PlanFrom,
    /// The prepare stage, when planning ran it.
    prepared: Prepared,
}

/// The prepare stage as planning ran it: its runs, and the outputs of the
/// steps that executed.
#[derive(Default)]
struct Prepared {
    stages: Vec<report::StageRun>,
    ran: Vec<String>,
}

/// What LTO adds to a compile, when LTO is on.
fn lto_flags<'a>(target: &Target, env: &'a BTreeMap<String, String>) -> Option<&'a str> {
    env.get("CC_FLAGS_LTO")
        .filter(|_| target.lto.is_lto())
        .map(String::as_str)
}

/// A tree chosen and locked (held until this is dropped): its source,
/// toolchain, policy, recipe and key.
pub struct Tree {
    lock: TreeLock,
    pub toolchain: Toolchain,
    source: source::Source,
    policy: kernel_manifest::Policy,
    pub objtree: PathBuf,
    pub kbuild: Kbuild,
    pub recipe: configure::Recipe,
    shared: Option<SharedCache>,
    /// Everything that decides the configuration, except what the source's
    /// Kconfig files and Makefiles say.
    pub key: String,
}

impl Tree {
    /// Whether the tree's plan is the one its key and Makefiles give.
    pub fn is_planned(&self) -> bool {
        matches!(
            Plan::cached(&self.objtree, &self.key, |compile| {
                makefiles_hash(&self.source.root, &self.objtree, compile)
            }),
            Cached::Valid(_)
        )
    }
}

pub fn tree(target: &Target, options: &Options) -> Result<Tree> {
    let toolchain = toolchain::ensure()?;
    let source = source::resolve(options.source.as_deref())?;
    // Bad overrides are rejected before anything is configured or removed.
    let policy = policy::load(target.arch.manifest(), &options.lto_off, &options.overlays)?;
    policy.validate(&source.root, &Default::default())?;
    let objtree = target.obj_dir(options.source.as_ref().map(|_| source.root.as_path()));
    // A typo in the configuration fails here, before the tree exists.
    let recipe = configure::Recipe::resolve(target, &source.root, &objtree, &options.fragments)?;
    let lock = TreeLock::acquire(&objtree, |holder| {
        if options.no_wait {
            return Err(Locked {
                tree: objtree.clone(),
                holder: holder.into(),
            }
            .into());
        }
        eprintln!("waiting for {}: {holder}", objtree.display());
        Ok(())
    })?;
    fs::create_dir_all(&objtree)?;
    let objtree = objtree.canonicalize()?;
    let kbuild = Kbuild::new(&source.root, &objtree, target.arch, &toolchain)?;
    let salt = format!("{}\n{}\n{}", toolchain.clang, toolchain.lld, toolchain.llvm);
    let shared = SharedCache::from_args(
        options.cache.as_deref(),
        options.cache_size.as_deref(),
        &salt,
    )?;
    let key = plan_key(target, &source, &toolchain, &kbuild, &recipe)?;
    Ok(Tree {
        lock,
        toolchain,
        source,
        policy,
        objtree,
        kbuild,
        recipe,
        shared,
        key,
    })
}

/// The tree planned as its build would plan it, for a command that reads
/// the plan and builds nothing.
pub fn plan_only(target: &Target, options: &Options) -> Result<Planned> {
    planned(
        target,
        options,
        None,
        None,
        &mut Vec::new(),
        &mut Timer::new(),
    )
}

/// Source, toolchain, policy, and the compile plan (cached, or configure +
/// dry run in the plan tree).
fn planned(
    target: &Target,
    options: &Options,
    launcher: Option<&Launcher>,
    trace: Option<&Trace>,
    phases: &mut Vec<Phase>,
    timer: &mut Timer,
) -> Result<Planned> {
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
    } = tree(target, options)?;
    phases.push(timer.lap("source"));
    let cached = Plan::cached(&objtree, &key, |compile| {
        makefiles_hash(&source.root, &objtree, compile)
    });
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
            phases.push(timer.lap("configure"));
            plan
        }
        (cached, None) => {
            plan_from = report::PlanFrom::Planned;
            // The plan comes from a tree of its own (`kbuild::plan_tree`), so a
            // new configuration keeps every object: what it did not change stays cached.
            match cached {
                Cached::Stale => eprintln!(
                    "configuration inputs changed: planning {} again",
                    objtree.display()
                ),
                Cached::Unreadable(error) => eprintln!(
                    "its plan cache is unusable ({error:#}): planning {} again",
                    objtree.display()
                ),
                _ => {}
            }
            if configure::is_current(&kbuild, &key) {
                eprintln!("{} is configured: planning it", objtree.display());
            } else {
                eprintln!("configuring {target} in {}", objtree.display());
                configure::configure(&kbuild, &recipe, &toolchain, &key, options.jobs)?;
                phases.push(timer.lap("configure"));
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
            let (env, compile, early) =
                plan_configured(&kbuild, &toolchain, target, setup, phases, timer)?;
            prepared = early;
            let plan = Plan {
                format: plan::FORMAT.into(),
                key,
                makefiles: makefiles_hash(&source.root, &objtree, &compile),
                env,
                compile,
            };
            plan.write(&objtree)?;
            StagePlans::open(&objtree)?.clear()?;
            phases.push(timer.lap("plan"));
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
        lock,
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
    phases: &mut Vec<Phase>,
    timer: &mut Timer,
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
    for part in &stage::PREPARE_PARTS[1..] {
        early.run(Stage::Prepare, steps)?;
        steps = planning.plan(kbuild, &[part])?;
    }
    early.run(Stage::Prepare, steps)?;
    cache.save()?;
    let prepared = Prepared {
        stages: early.stages,
        ran: cache.ran(),
    };
    phases.push(timer.lap("prepare"));
    let compile = planning.finish(kbuild)?;
    Ok((env, compile, prepared))
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
    eprintln!("configuring {} from the shared cache", objtree.display());
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
            eprintln!(
                "the shared plan was made from other Makefiles or Kconfig files: planning here"
            );
            Ok(None)
        }
    }
}

/// Runs stages: planned steps through the policy and the scheduler, native
/// stages through the cache. Collects what ran, the decisions and the counts.
struct Pipeline<'a> {
    objtree: &'a Path,
    env: &'a BTreeMap<String, String>,
    cache: &'a Cache,
    setup: Setup<'a>,
    decisions: Vec<Decision>,
    steps: Vec<Step>,
    counts: Counts,
    stages: Vec<report::StageRun>,
}

/// How a pipeline runs its steps, whatever tree and plan.
#[derive(Clone, Copy)]
struct Setup<'a> {
    jobs: usize,
    policy: &'a kernel_manifest::Policy,
    lto_flags: Option<&'a str>,
    launcher: Option<&'a Launcher>,
    shared: Option<&'a SharedCache>,
    fork_server: Option<&'a ForkServer>,
    trace: Option<&'a Trace>,
}

impl<'a> Pipeline<'a> {
    fn new(
        objtree: &'a Path,
        env: &'a BTreeMap<String, String>,
        cache: &'a Cache,
        setup: Setup<'a>,
    ) -> Self {
        Pipeline {
            objtree,
            env,
            cache,
            setup,
            decisions: Vec::new(),
            steps: Vec::new(),
            counts: Counts::default(),
            stages: Vec::new(),
        }
    }

    fn run(&mut self, stage: Stage, mut steps: Vec<Step>) -> Result<()> {
        self.decisions.extend(policy::apply(
            &mut steps,
            self.setup.policy,
            self.setup.lto_flags,
        ));
        let label = stage.file_name();
        let runner = Runner {
            objtree: self.objtree,
            env: self.env,
            jobs: self.setup.jobs,
            cache: self.cache,
            label: &label,
            launcher: self.setup.launcher,
            shared: self.setup.shared,
            fork_server: self.setup.fork_server,
            after_run: Some(&|step, hash| thin::after_run(self.objtree, step, hash)),
        };
        let stopwatch = Stopwatch::start();
        let forked = self.setup.fork_server.map_or(0.0, ForkServer::cpu_seconds);
        let counts = runner.run_traced(&steps, &Graph::new(&steps), self.setup.trace)?;
        add(&mut self.counts, counts);
        let (seconds, cpu_seconds) = stopwatch.elapsed();
        let forked = self.setup.fork_server.map_or(0.0, ForkServer::cpu_seconds) - forked;
        let cpu_seconds = cpu_seconds + forked;
        self.stages.push(report::StageRun {
            stage,
            counts,
            seconds,
            cpu_seconds,
        });
        self.steps.extend(steps);
        Ok(())
    }

    fn native(
        &mut self,
        output: &str,
        command: &str,
        inputs: &[String],
        run: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        let start = self.setup.trace.map(Trace::now);
        let status = native::step(self.cache, output, command, inputs, run)?;
        if let (Some(trace), Some(start)) = (self.setup.trace, start) {
            trace.native(output, start, status == Native::Cached);
        }
        self.counts.planned += 1;
        match status {
            Native::Ran => self.counts.executed += 1,
            Native::Cached => self.counts.cached += 1,
        }
        Ok(())
    }

    /// The outputs of `steps` as they are now, for keying what is planned from them.
    fn outputs_key(&self, steps: &[Step]) -> String {
        let hashes: Vec<String> = steps
            .iter()
            .map(|s| format!("{}={}", s.output, self.cache.output_hash(&s.output)))
            .collect();
        plan::key(&[("outputs", &hashes.join("\n"))])
    }
}

pub fn build(target: &Target, options: &Options) -> Result<Built> {
    let started = Instant::now();
    let launcher = Launcher::from_args(options.launcher.as_deref())?;
    let launcher_before = launcher.as_ref().and_then(Launcher::stats);
    let trace = options.trace.as_ref().map(|_| Trace::new());
    let mut phases = Vec::new();
    let mut timer = Timer::new();
    let Planned {
        lock: _lock,
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
        prepared,
    } = planned(
        target,
        options,
        launcher.as_ref(),
        trace.as_ref(),
        &mut phases,
        &mut timer,
    )?;
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    let env = &plan.env;
    let cache = Cache::open(&objtree)?;
    let stages = StagePlans::open(&objtree)?;
    let cc = env.get("CC").map_or("clang", String::as_str);
    let fork_server = ForkServer::new(cc, env, &objtree);
    let setup = Setup {
        jobs: options.jobs,
        policy: &policy,
        lto_flags: lto_flags.as_deref(),
        launcher: launcher.as_ref(),
        shared: shared.as_ref(),
        fork_server: Some(&fork_server),
        trace: trace.as_ref(),
    };
    let mut pipeline = Pipeline::new(&objtree, env, &cache, setup);
    for early in prepared.stages {
        add(&mut pipeline.counts, early.counts);
        pipeline.stages.push(early);
    }
    pipeline.run(Stage::Compile, plan.compile.clone())?;
    phases.push(timer.lap("compile"));

    // The initcall order must reflect this build's archives before vmlinux.o links.
    if target.lto.is_lto() {
        let archives = archives(env);
        let nm = toolchain.tool("llvm-nm");
        pipeline.native(
            ".tmp_initcalls.lds",
            link::initcalls::COMMAND,
            &archives,
            || link::initcalls::write(&objtree, &nm, &archives),
        )?;
    }
    let steps = stages.get(Stage::VmlinuxO, &plan.key, || {
        stage::plan_vmlinux_o(&kbuild, env, &pipeline.steps)
    })?;
    let mut thin_backends = None;
    match (target.lto, pipeline.setup.lto_flags) {
        (Lto::Thin, Some(lto_flags)) => {
            let (link, rest): (Vec<Step>, Vec<Step>) =
                steps.into_iter().partition(|s| s.output == "vmlinux.o");
            let link = link.first().context("Kbuild planned no vmlinux.o link")?;
            let link =
                thin::KbuildLink::parse(link, env.get("LD").map_or("ld.lld", String::as_str))?;
            let members = thin::Members::read(&objtree, &toolchain.tool("llvm-ar"), &link)?;
            pipeline.run(Stage::ThinLink, vec![thin::thin_link(&link, &members)])?;
            let indexed = thin::indexed(&objtree)?;
            pipeline.run(
                Stage::Backends,
                thin::backends(&objtree, &indexed, lto_flags)?,
            )?;
            if let Some(why) = fork_server.failure() {
                eprintln!("warning: the ThinLTO backends ran as separate processes: {why}");
            }
            thin_backends = Some(thin::why(&objtree, &cache.ran()));
            pipeline.run(
                Stage::FinalLink,
                vec![thin::final_link(&objtree, &link, &members, &indexed)?],
            )?;
            pipeline.run(Stage::VmlinuxO, rest)?;
        }
        _ => pipeline.run(Stage::VmlinuxO, steps)?,
    }
    let config = DotConfig::read(&objtree.join("include/config/auto.conf"))?;
    let modules = config.get("MODULES") == Some("y");
    let steps = stages.get(Stage::Modpost, &plan.key, || {
        stage::plan_modpost(&kbuild, env, &pipeline.steps, modules)
    })?;
    pipeline.run(Stage::Modpost, steps)?;
    if modules {
        let steps = stages.get(Stage::Export, &plan.key, || {
            stage::plan_export(&kbuild, env)
        })?;
        pipeline.run(Stage::Export, steps)?;
    }
    let steps = stages.get(Stage::Vmlinux, &plan.key, || {
        stage::plan_vmlinux(&kbuild, env)
    })?;
    let link = VmlinuxLink::new(&objtree, env, &steps)?;
    pipeline.native("vmlinux", &link.key_command(), &link.inputs(), || {
        link.run()
    })?;
    if modules {
        let srcarch = env.get("SRCARCH").map_or("", String::as_str);
        let modfinal = Modfinal::read(&kbuild.srctree, &objtree, srcarch)?;
        let list = modfinal.modules.join("\n");
        let key = plan::key(&[("plan", &plan.key), ("modules", &list)]);
        let steps = stages.get(Stage::Modfinal, &key, || {
            stage::plan_modfinal(&kbuild, env, &modfinal.compiled())
        })?;
        pipeline.run(Stage::Modfinal, steps)?;
        let links = stages.get(Stage::Modules, &key, || modfinal.plan(&kbuild, env))?;
        for ko in &links {
            pipeline.native(&ko.output, &ko.command, &ko.inputs, || {
                link::modules::link(&objtree, env, ko)
            })?;
        }
    }
    phases.push(timer.lap("link"));

    let vmlinux = cache.output_hash("vmlinux");
    match stages.stored_for(Stage::Image, &vmlinux) {
        Some(steps) => pipeline.run(Stage::Image, steps)?,
        None => {
            let env = pipeline.env;
            let settled = link::image::settle(
                |round, outputs| {
                    let key = plan::key(&[("vmlinux", &vmlinux), ("previous round", outputs)]);
                    stages.get(Stage::ImageRound(round), &key, || {
                        stage::plan_image(&kbuild, env, target.arch, round)
                    })
                },
                |round, steps| {
                    pipeline.run(Stage::ImageRound(round), steps.to_vec())?;
                    Ok(pipeline.outputs_key(steps))
                },
            )?;
            stages.store(Stage::Image, &vmlinux, &settled)?;
        }
    }
    phases.push(timer.lap("image"));
    // Every stage is planned now: a tree that planned shares its plans, and
    // so does one that resumes a build killed before it could.
    if let Some(shared) = &shared {
        let share = match plan_from {
            report::PlanFrom::Planned => true,
            report::PlanFrom::Tree => !Bundle::shared_as(&objtree, &plan.key),
            report::PlanFrom::SharedCache => false,
        };
        if share && shared.store_document(&plan.key, &Bundle::collect(&objtree)?.to_bytes()?) {
            Bundle::mark_shared(&objtree, &plan.key)?;
        }
    }

    let Pipeline {
        decisions,
        steps,
        counts,
        stages: stage_runs,
        ..
    } = pipeline;
    // Image rounds re-run corrected versions of earlier steps: the last one counts.
    let steps = last_of_each(steps, |s| s.output.clone());
    let decisions = last_of_each(decisions, |d| d.object.clone());
    crate::fs_atomic::write(
        &objtree.join(".xtask/last-executed.txt"),
        ([prepared.ran, cache.ran()].concat().join("\n") + "\n").as_bytes(),
    )?;
    let (units, wrong) = policy::verify(&objtree, &decisions);
    phases.push(timer.lap("verify"));
    let report = Report {
        arch: target.arch,
        lto: target.lto,
        config: target.config.to_string(),
        kernel_version: source.version.clone(),
        source: source.root.clone(),
        toolchain: toolchain.clone(),
        units,
        steps: counts,
        stages: stage_runs,
        thin_backends,
        backends_forked: fork_server.served(),
        phases,
        seconds: started.elapsed().as_secs_f64(),
        artifacts: report::artifacts(&objtree, &link::artifacts(&objtree, target.arch))?,
        policy_warnings: warnings.iter().map(|w| w.to_string()).collect(),
        plan_from,
        vmlinux_o_command: report::saved_command(&objtree, "vmlinux.o"),
        launcher: launcher.as_ref().map(|l| crate::engine::launcher::Report {
            command: l.line(),
            kind: l.kind,
            stats: l
                .stats()
                .zip(launcher_before)
                .map(|(after, before)| after.since(before)),
        }),
        shared_cache: shared.as_ref().map(SharedCache::finish),
    };
    let advice = launcher.as_ref().and_then(|l| {
        l.fell_back_advice(counts.fell_back, counts.launched, &toolchain.tool("clang"))
    });
    if let Some(advice) = advice {
        eprintln!("warning: {advice}");
    }
    let first = !objtree.join("build-report.json").exists();
    report.write(&objtree)?;
    if let (Some(trace), Some(path)) = (&trace, &options.trace) {
        trace
            .write(path)
            .with_context(|| format!("--trace {}", path.display()))?;
    }
    crate::build_log::record(&crate::build_log::Entry::xtask(
        &objtree,
        first,
        report.steps.planned,
        report.steps.executed,
        report.steps.restored,
        report.seconds,
    ))?;
    if !wrong.is_empty() {
        return Err(report::PolicyViolation(wrong).into());
    }
    Ok(Built {
        target: target.clone(),
        objtree,
        toolchain,
        report,
        steps,
    })
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

fn add(total: &mut Counts, phase: Counts) {
    total.planned += phase.planned;
    total.executed += phase.executed;
    total.cached += phase.cached;
    total.restored += phase.restored;
    total.launched += phase.launched;
    total.fell_back += phase.fell_back;
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

/// `vmlinux.a` and `KBUILD_VMLINUX_LIBS`, in link order.
fn archives(env: &BTreeMap<String, String>) -> Vec<String> {
    let mut list = vec!["vmlinux.a".to_string()];
    list.extend(
        env.get("KBUILD_VMLINUX_LIBS")
            .into_iter()
            .flat_map(|l| l.split_whitespace().map(String::from)),
    );
    list
}

/// Everything that decides the configuration and the plan, except Makefiles.
fn plan_key(
    target: &Target,
    source: &source::Source,
    toolchain: &Toolchain,
    kbuild: &Kbuild,
    recipe: &configure::Recipe,
) -> Result<String> {
    let metadata: Vec<String> = kbuild
        .metadata
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    Ok(plan::key(&[
        ("metadata", &metadata.join("\n")),
        ("format", plan::FORMAT),
        ("target", &target.name()),
        ("source", &source.root.display().to_string()),
        ("version", &source.version),
        ("clang", &toolchain.clang),
        ("lld", &toolchain.lld),
        ("configuration", &recipe.text()?),
    ]))
}

/// The Makefiles that shaped the plan (the top ones and one per planned
/// directory) and the Kconfig files that shaped the configuration.
fn makefiles_hash(srctree: &Path, objtree: &Path, steps: &[Step]) -> String {
    let mut dirs: Vec<&str> = steps.iter().map(Step::dir).collect();
    dirs.sort_unstable();
    dirs.dedup();
    let mut files: Vec<PathBuf> = vec![
        srctree.join("Makefile"),
        srctree.join("scripts/Makefile.build"),
        srctree.join("scripts/Makefile.lib"),
    ];
    for dir in dirs {
        files.push(srctree.join(dir).join("Makefile"));
        files.push(srctree.join(dir).join("Kbuild"));
    }
    files.extend(kconfig::sources(objtree).iter().map(|f| srctree.join(f)));
    plan::files_hash(files)
}

struct Timer(Stopwatch);

impl Timer {
    fn new() -> Timer {
        Timer(Stopwatch::start())
    }

    fn lap(&mut self, name: &str) -> Phase {
        let (seconds, cpu_seconds) = self.0.elapsed();
        self.0 = Stopwatch::start();
        Phase {
            name: name.into(),
            seconds,
            cpu_seconds,
        }
    }
}
