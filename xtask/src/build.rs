//! `cargo xtask build`: source, configure, prepare, plan, policy, execute,
//! link, image, verify, report. Each planning phase is cached under the
//! object tree's `.xtask/` and reused while its inputs are unchanged, so a
//! no-op build only proves, step by step, that nothing changed.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::{
    configure,
    engine::{
        cache::{self, Cache},
        graph::Graph,
        scheduler::{Counts, Runner},
    },
    fs_atomic,
    kbuild::{cmd_file, dry_run, Kbuild, Step},
    kconfig::DotConfig,
    link,
    lto::policy,
    report::{self, Phase, Report},
    source,
    target::{Arch, Target},
    toolchain::{self, Toolchain},
};

/// Bumped whenever the shape of a cached plan changes.
const PLAN_FORMAT: &str = "xtask-plan-v4";

#[derive(Clone, Debug, Default)]
pub struct Options {
    pub source: Option<PathBuf>,
    pub jobs: usize,
    pub lto_off: Vec<String>,
    pub overlays: Vec<PathBuf>,
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

/// The cached result of configure, prepare and the dry runs.
#[derive(Serialize, Deserialize)]
struct Plan {
    key: String,
    makefiles: String,
    env: BTreeMap<String, String>,
    compile: Vec<Step>,
    /// The link stage, planned phase by phase as the build reaches it.
    link: Vec<Vec<Step>>,
    /// Later stages (`export`, `modfinal`, `image`), planned once their inputs exist.
    #[serde(default)]
    stages: BTreeMap<String, Vec<Step>>,
}

/// Everything known before the first step runs.
struct Planned {
    toolchain: Toolchain,
    source: source::Source,
    objtree: PathBuf,
    kbuild: Kbuild,
    jobs: usize,
    plan: Plan,
    policy: kernel_manifest::Policy,
    warnings: Vec<kernel_manifest::Warning>,
    lto_flags: Option<String>,
}

/// Source, toolchain, policy, and the plan (cached, or configure + prepare + dry run).
fn planned(target: Target, options: &Options, phases: &mut Vec<Phase>, timer: &mut Timer) -> Result<Planned> {
    let toolchain = toolchain::ensure()?;
    let source = source::resolve(options.source.as_deref())?;
    // Bad overrides are rejected before anything is configured or removed.
    let policy = policy::load(target.arch.manifest(), &options.lto_off, &options.overlays)?;
    policy.validate(&source.root, &Default::default())?;
    let objtree = target.obj_dir();
    fs::create_dir_all(&objtree)?;
    let objtree = objtree.canonicalize()?;
    let kbuild = Kbuild::new(&source.root, &objtree, target.arch, &toolchain);
    let jobs = if options.jobs == 0 { std::thread::available_parallelism().map_or(2, |n| n.get()) } else { options.jobs };
    phases.push(timer.lap("source"));

    let key = plan_key(&target, &source, &toolchain)?;
    let plan_path = objtree.join(".xtask/plan.json");
    let plan = match fs_atomic::read_json::<Plan>(&plan_path) {
        Ok(plan) if plan.key == key && plan.makefiles == makefiles_hash(&source.root, &plan.compile) => plan,
        _ => {
            // A dry run prints only what is out of date; a complete plan needs an
            // object tree without objects. A new configuration starts from scratch.
            if objtree.join(".config").exists() {
                eprintln!("configuration inputs changed: starting {} afresh", objtree.display());
                fs::remove_dir_all(&objtree)?;
                fs::create_dir_all(&objtree)?;
            }
            eprintln!("configuring {target} in {}", objtree.display());
            configure::configure(&kbuild, &target, jobs)?;
            phases.push(timer.lap("configure"));
            kbuild.run("prepare", jobs)?;
            phases.push(timer.lap("prepare"));
            let env = step_env(&kbuild, &toolchain)?;
            let compile = plan_compile(&kbuild)?;
            let plan = Plan {
                key: key.clone(),
                makefiles: makefiles_hash(&source.root, &compile),
                env,
                compile,
                link: Vec::new(),
                stages: BTreeMap::new(),
            };
            fs_atomic::write_json(&plan_path, &plan)?;
            phases.push(timer.lap("plan"));
            plan
        }
    };

    let warnings = policy
        .validate(&source.root, &policy::built_units(&plan.compile))?
        .into_iter()
        // Only the user's own rules deserve a warning when their unit is not built.
        .filter(|w| !w.to_string().contains("(manifest)"))
        .collect();
    let lto_flags = plan.env.get("CC_FLAGS_LTO").filter(|_| target.lto.is_lto()).cloned();
    if target.lto.is_lto() && lto_flags.is_none() {
        bail!("LTO is on but Kbuild exported no CC_FLAGS_LTO");
    }
    Ok(Planned { toolchain, source, objtree, kbuild, jobs, plan, policy, warnings, lto_flags })
}

/// The units of a target as planned, with object formats if it was built.
pub fn units(target: Target, options: &Options) -> Result<(Vec<policy::Unit>, kernel_manifest::Policy)> {
    let planned = planned(target, options, &mut Vec::new(), &mut Timer::new())?;
    let mut steps = planned.plan.compile.clone();
    steps.extend(planned.plan.link.iter().flatten().cloned());
    steps.extend(planned.plan.stages.values().flatten().cloned());
    let mut decisions = policy::apply(&mut steps, &planned.policy, planned.lto_flags.as_deref());
    decisions.extend(policy::prepared_objects(&planned.objtree, &planned.policy, &decisions));
    Ok((policy::verify(&planned.objtree, &decisions).0, planned.policy))
}

pub fn build(target: Target, options: &Options) -> Result<Built> {
    let started = Instant::now();
    let mut phases = Vec::new();
    let mut timer = Timer::new();
    let Planned { toolchain, source, objtree, kbuild, jobs, mut plan, policy, warnings, lto_flags } =
        planned(target, options, &mut phases, &mut timer)?;
    let plan_path = objtree.join(".xtask/plan.json");
    let plan_path = &plan_path;
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    let mut compile = plan.compile.clone();
    let mut decisions = policy::apply(&mut compile, &policy, lto_flags.as_deref());

    let cache = Cache::open(&objtree)?;
    let runner = |label: &'static str| Runner { objtree: &objtree, env: &plan.env, jobs, cache: &cache, label };
    let mut counts = Counts::default();
    add(&mut counts, runner("compile").run(&compile, &Graph::new(&compile))?);
    phases.push(timer.lap("compile"));

    // The initcall order must reflect this build's archives before vmlinux.o links.
    if target.lto.is_lto() {
        initcalls(&objtree, &toolchain, &plan.env, &cache)?;
    }
    let mut link_steps = Vec::new();
    for stage in [LinkStage::VmlinuxO, LinkStage::Modpost] {
        let index = stage as usize;
        if plan.link.len() <= index {
            let earlier: Vec<Step> = plan.compile.iter().chain(plan.link.iter().flatten()).cloned().collect();
            let config = DotConfig::read(&objtree.join("include/config/auto.conf"))?;
            plan.link.push(link_plan(&kbuild, stage, &earlier, config.get("MODULES") == Some("y"))?);
            fs_atomic::write_json(plan_path, &plan)?;
        }
        let mut steps = plan.link[index].clone();
        decisions.extend(policy::apply(&mut steps, &policy, lto_flags.as_deref()));
        add(&mut counts, runner("link").run(&steps, &Graph::new(&steps))?);
        link_steps.extend(steps);
    }
    let config = DotConfig::read(&objtree.join("include/config/auto.conf"))?;
    let env = plan.env.clone();
    let modules = config.get("MODULES") == Some("y");
    let mut later_steps = Vec::new();
    let mut stage = |name: &str, planner: &dyn Fn() -> Result<Vec<Step>>| -> Result<Counts> {
        if !plan.stages.contains_key(name) {
            // `kind@input-hash` stages keep only the plan for the current input.
            if let Some((kind, _)) = name.split_once('@') {
                plan.stages.retain(|other, _| !other.starts_with(&format!("{kind}@")));
            }
            plan.stages.insert(name.to_string(), planner()?);
            fs_atomic::write_json(plan_path, &plan)?;
        }
        let mut steps = plan.stages[name].clone();
        decisions.extend(policy::apply(&mut steps, &policy, lto_flags.as_deref()));
        let counts = Runner { objtree: &objtree, env: &env, jobs, cache: &cache, label: "link" }
            .run(&steps, &Graph::new(&steps))?;
        later_steps.extend(steps);
        Ok(counts)
    };
    if modules {
        // modpost wrote .vmlinux.export.c; Makefile.vmlinux compiles it.
        add(&mut counts, stage("export", &|| plan_in_objtree(&objtree, &env, "scripts/Makefile.vmlinux", &[".vmlinux.export.o"]))?);
    }
    link_vmlinux(&objtree, &env, &config, &cache)?;
    if modules {
        let list = module_list(&objtree)?;
        add(&mut counts, stage("modfinal", &|| {
            let mut goals: Vec<String> = list.iter().map(|m| m.replace(".o", ".mod.o")).collect();
            goals.push(".module-common.o".into());
            for goal in &goals {
                let _ = fs::remove_file(objtree.join(goal));
            }
            let goals: Vec<&str> = goals.iter().map(String::as_str).collect();
            plan_in_objtree(&objtree, &env, "scripts/Makefile.modfinal", &goals)
        })?);
        for module in &list {
            link_module(&objtree, &env, &cache, module)?;
        }
    }
    phases.push(timer.lap("link"));

    let arch = target.arch;
    // The image recipes embed sizes of files made from vmlinux (x86's
    // `size_append`), so their plan is tied to this vmlinux and made by
    // running the dry run to a fixed point.
    let image_stage = format!("image@{}", cache.output_hash("vmlinux"));
    let image_runner = Runner { objtree: &objtree, env: &env, jobs, cache: &cache, label: "image" };
    add(&mut counts, stage(&image_stage, &|| image_fixpoint(&objtree, &env, arch, &image_runner))?);
    phases.push(timer.lap("image"));

    fs::write(objtree.join(".xtask/last-executed.txt"), cache.ran().join("\n") + "\n")?;
    decisions.extend(policy::prepared_objects(&objtree, &policy, &decisions));
    let (units, wrong) = policy::verify(&objtree, &decisions);
    phases.push(timer.lap("verify"));
    let steps: Vec<Step> = compile.into_iter().chain(link_steps).chain(later_steps).collect();
    let report = Report {
        arch: target.arch,
        lto: target.lto,
        profile: target.profile,
        kernel_version: source.version.clone(),
        source: source.root.clone(),
        toolchain: toolchain.clone(),
        units,
        steps: counts,
        phases,
        seconds: started.elapsed().as_secs_f64(),
        artifacts: report::artifacts(&objtree, &link::artifacts(&objtree, target.arch))?,
        policy_warnings: warnings.iter().map(|w| w.to_string()).collect(),
        vmlinux_o_command: report::saved_command(&objtree, "vmlinux.o"),
    };
    report.write(&objtree)?;
    if !wrong.is_empty() {
        return Err(report::PolicyViolation(wrong).into());
    }
    Ok(Built { target, objtree, toolchain, report, steps })
}

fn add(total: &mut Counts, phase: Counts) {
    total.planned += phase.planned;
    total.executed += phase.executed;
    total.cached += phase.cached;
}

/// The environment every step runs in: what the top Makefile exports, with
/// the LLVM tools first on `PATH`.
fn step_env(kbuild: &Kbuild, toolchain: &Toolchain) -> Result<BTreeMap<String, String>> {
    let mut env = kbuild.exported_env()?;
    // Captured under `make -s`, which exports `quiet=silent_`; the plan parser
    // needs the quiet tags that Kbuild prints by default.
    env.insert("quiet".into(), "quiet_".into());
    env.insert("Q".into(), "@".into());
    env.insert("PATH".into(), toolchain.path_env().to_string_lossy().into_owned());
    Ok(env)
}

fn archives(env: &BTreeMap<String, String>) -> Vec<&str> {
    let mut list = vec!["vmlinux.a"];
    list.extend(env.get("KBUILD_VMLINUX_LIBS").map(|l| l.split_whitespace().collect::<Vec<_>>()).unwrap_or_default());
    list
}

/// Outputs of the link stages, removed before a re-plan so that every dry
/// run sees them missing and prints their full recipe.
const VMLINUX_O_OUTPUTS: &[&str] = &["vmlinux.o", "modules.builtin.modinfo", "modules.builtin"];
const MODPOST_OUTPUTS: &[&str] = &[
    "vmlinux.symvers",
    "Module.symvers",
    "modules-only.symvers",
    ".vmlinux.export.c",
    ".vmlinux.export.o",
    "init/version-timestamp.o",
];

/// `make -n vmlinux`: every compile and archive. Without `vmlinux.a` the dry
/// run stops at `vmlinux_o`; that matters, because Makefile.vmlinux's link
/// recipe is marked `+` and make would run it even under `-n`.
fn plan_compile(kbuild: &Kbuild) -> Result<Vec<Step>> {
    for output in ["vmlinux.a", "vmlinux"].iter().chain(VMLINUX_O_OUTPUTS).chain(MODPOST_OUTPUTS) {
        let _ = fs::remove_file(kbuild.objtree.join(output));
    }
    let config = DotConfig::read(&kbuild.objtree.join(".config"))?;
    // With modules, one descent compiles built-in and modular objects alike.
    let goals: &[&str] = if config.get("MODULES") == Some("y") { &["vmlinux", "modules"] } else { &["vmlinux"] };
    let steps = dry_run::parse(&kbuild.dry_run(goals)?);
    if kbuild.objtree.join("vmlinux").exists() {
        bail!("make linked vmlinux during a dry run; refusing to use this plan");
    }
    if !steps.iter().any(|s| s.output == "vmlinux.a") {
        bail!("Kbuild's dry run of vmlinux planned no vmlinux.a");
    }
    Ok(steps)
}

/// The link stage as Kbuild would run it, planned in two dry runs because
/// Makefile.modpost looks for `vmlinux.o` when it is read: `vmlinux_o` once
/// the archives exist (the LTO link with objtool), then `modpost` and
/// `init/version-timestamp.o` (which link-vmlinux.sh would have make build)
/// once `vmlinux.o` exists. Steps the compile phase already holds are dropped.
///
/// A dry run only prints what is out of date, so the stage's outputs from an
/// earlier configuration are removed first: the plan is then the full recipe.
fn link_plan(kbuild: &Kbuild, stage: LinkStage, earlier: &[Step], modules: bool) -> Result<Vec<Step>> {
    let (goals, outputs): (&[&str], &[&str]) = match stage {
        LinkStage::VmlinuxO => (&["vmlinux_o"], VMLINUX_O_OUTPUTS),
        // KBUILD_MODULES=1 is what `make modules` sets; without it modpost ignores modules.order.
        LinkStage::Modpost if modules => (&["modpost", "init/version-timestamp.o", "KBUILD_MODULES=1"], MODPOST_OUTPUTS),
        LinkStage::Modpost => (&["modpost", "init/version-timestamp.o"], MODPOST_OUTPUTS),
    };
    for output in outputs {
        let _ = fs::remove_file(kbuild.objtree.join(output));
    }
    let mut steps = Vec::new();
    match stage {
        LinkStage::VmlinuxO => steps.extend(dry_run::parse(&kbuild.dry_run(goals)?)),
        LinkStage::Modpost => {
            // The single-object goal cannot share a make invocation with modpost.
            let (single, rest): (Vec<&str>, Vec<&str>) = goals.iter().partition(|g| g.ends_with(".o"));
            steps.extend(dry_run::parse(&kbuild.dry_run(&rest)?));
            steps.extend(dry_run::parse(&kbuild.dry_run(&single)?));
        }
    }
    // The initcall order is generated natively before this phase runs.
    steps.retain(|s| s.output != ".tmp_initcalls.lds");
    let mut seen: std::collections::HashSet<(String, String)> =
        earlier.iter().map(|s| (s.output.clone(), s.command.clone())).collect();
    steps.retain(|s| seen.insert((s.output.clone(), s.command.clone())));
    let required = match stage {
        LinkStage::VmlinuxO => "vmlinux.o",
        LinkStage::Modpost => "init/version-timestamp.o",
    };
    if !steps.iter().any(|s| s.output == required) {
        bail!("Kbuild's dry run of the link stage planned no {required}");
    }
    Ok(steps)
}

#[derive(Clone, Copy)]
enum LinkStage {
    VmlinuxO,
    Modpost,
}

/// The boot image: what the arch Makefile's `$(build)=arch/*/boot` recursion
/// would run, planned with the same environment once vmlinux exists.
fn image_plan(objtree: &Path, env: &BTreeMap<String, String>, arch: Arch) -> Result<Vec<Step>> {
    let (dir, image) = match arch {
        Arch::X86_64 => ("arch/x86/boot", "arch/x86/boot/bzImage"),
        Arch::Arm64 => ("arch/arm64/boot", "arch/arm64/boot/Image"),
    };
    plan_in_objtree(objtree, env, "scripts/Makefile.build", &[&format!("obj={dir}"), image])
}

/// Plans and runs the image until Kbuild's dry run has nothing left to do:
/// a recipe evaluated before its input existed shows up again, corrected.
fn image_fixpoint(objtree: &Path, env: &BTreeMap<String, String>, arch: Arch, runner: &Runner) -> Result<Vec<Step>> {
    let mut merged: Vec<Step> = Vec::new();
    for _ in 0..4 {
        let steps = image_plan(objtree, env, arch)?;
        if steps.iter().all(|s| merged.contains(s)) {
            return Ok(merged);
        }
        runner.run(&steps, &Graph::new(&steps))?;
        for step in steps {
            match merged.iter_mut().find(|m| m.output == step.output) {
                Some(existing) => *existing = step,
                None => merged.push(step),
            }
        }
    }
    bail!("the image plan did not settle after 4 dry runs")
}

/// `make -n -f <srctree>/<makefile> GOALS` in the object tree, with the
/// environment the top Makefile exports: how Kbuild's own recursion runs them.
fn plan_in_objtree(objtree: &Path, env: &BTreeMap<String, String>, makefile: &str, goals: &[&str]) -> Result<Vec<Step>> {
    let srctree = env.get("srctree").context("Kbuild exported no srctree")?;
    let out = std::process::Command::new("make")
        .args(["-n", "-f", &format!("{srctree}/{makefile}")])
        .args(goals)
        .current_dir(objtree)
        .env_clear()
        .envs(env)
        .output()
        .context("running make -n")?;
    if !out.status.success() {
        bail!("make -n -f {makefile} {} failed:\n{}", goals.join(" "), String::from_utf8_lossy(&out.stderr));
    }
    Ok(dry_run::parse(&String::from_utf8_lossy(&out.stdout)))
}

/// The modules of this build, from `modules.order` (`lib/test_module.o`).
fn module_list(objtree: &Path) -> Result<Vec<String>> {
    let text = fs::read_to_string(objtree.join("modules.order")).unwrap_or_default();
    Ok(text.lines().filter(|l| l.ends_with(".o")).map(String::from).collect())
}

/// Makefile.modfinal's `.ko` link, natively: its recipe is marked `+`, so a
/// dry run would execute it. The `.cmd` file is written as Kbuild writes it.
fn link_module(objtree: &Path, env: &BTreeMap<String, String>, cache: &Cache, module: &str) -> Result<()> {
    let var = |name: &str| env.get(name).map_or("", String::as_str);
    let arch_lds = format!("arch/{}/module.lds", var("SRCARCH"));
    let lds = ["scripts/module.lds", arch_lds.as_str()]
        .into_iter()
        .find(|p| objtree.join(p).exists())
        .context("no module linker script (scripts/module.lds)")?;
    let ko = module.replace(".o", ".ko");
    let inputs = [module.to_string(), module.replace(".o", ".mod.o"), ".module-common.o".to_string()];
    let command = format!(
        "{} -r {} {} {} -T {lds} -o {ko} {}",
        var("LD"),
        var("KBUILD_LDFLAGS"),
        var("KBUILD_LDFLAGS_MODULE"),
        var("LDFLAGS_MODULE"),
        inputs.join(" ")
    );
    native_step(cache, &ko, &command, &inputs, || {
        link::sh(objtree, env, &command)?;
        fs::write(objtree.join(cmd_file::path(&ko)), format!("savedcmd_{ko} := {command}\n"))?;
        Ok(())
    })
}

/// The initcall order, regenerated when an archive changed.
fn initcalls(objtree: &Path, toolchain: &Toolchain, env: &BTreeMap<String, String>, cache: &Cache) -> Result<()> {
    let archives = archives(env);
    let inputs: Vec<String> = archives.iter().map(|a| a.to_string()).collect();
    native_step(cache, ".tmp_initcalls.lds", "xtask initcall-order", &inputs, || {
        link::write_initcalls(objtree, &toolchain.tool("llvm-nm"), &archives)
    })
}

/// Runs a step the xtask performs itself, unless its inputs are unchanged.
fn native_step(cache: &Cache, output: &str, command: &str, inputs: &[String], run: impl FnOnce() -> Result<()>) -> Result<()> {
    let key = cache.key(command, &[], inputs);
    if let Some(record) = cache.record(output) {
        if record.key == key && cache.file_hash(Path::new(output)) == record.output_hash {
            return Ok(());
        }
    }
    run()?;
    cache.store(cache::Record { output: output.into(), key, output_hash: cache.file_hash(Path::new(output)), inputs: Vec::new() })?;
    cache.save()
}

/// link-vmlinux.sh, natively, when any of its inputs changed.
fn link_vmlinux(objtree: &Path, env: &BTreeMap<String, String>, config: &DotConfig, cache: &Cache) -> Result<()> {
    let mut inputs = vec!["vmlinux.o".to_string(), "init/version-timestamp.o".to_string()];
    if config.get("MODULES") == Some("y") {
        inputs.push(".vmlinux.export.o".into());
    }
    if let Some(lds) = env.get("KBUILD_LDS") {
        inputs.push(lds.clone());
    }
    let command = format!(
        "xtask link-vmlinux {} | {} | {}",
        env.get("LD").map_or("", |s| s),
        env.get("KBUILD_LDFLAGS").map_or("", |s| s),
        env.get("XTASK_LDFLAGS_vmlinux").map_or("", |s| s)
    );
    native_step(cache, "vmlinux", &command, &inputs, || link::VmlinuxLink { objtree, env, config }.run())
}

/// Everything that decides the configuration and the plan, except Makefiles.
fn plan_key(target: &Target, source: &source::Source, toolchain: &Toolchain) -> Result<String> {
    let mut hasher = blake3::Hasher::new();
    for part in [
        PLAN_FORMAT,
        &target.name(),
        &source.root.display().to_string(),
        &source.version,
        &toolchain.clang,
        &toolchain.lld,
        &configure::inputs(target)?,
    ] {
        hasher.update(part.as_bytes());
        hasher.update(b"\0");
    }
    Ok(hasher.finalize().to_hex().to_string())
}

/// The Makefiles that shaped the plan: the top ones and one per planned directory.
fn makefiles_hash(srctree: &Path, steps: &[Step]) -> String {
    let mut dirs: Vec<&str> = steps.iter().map(Step::dir).collect();
    dirs.sort_unstable();
    dirs.dedup();
    let mut hasher = blake3::Hasher::new();
    let mut files: Vec<PathBuf> = vec![srctree.join("Makefile"), srctree.join("scripts/Makefile.build"), srctree.join("scripts/Makefile.lib")];
    for dir in dirs {
        files.push(srctree.join(dir).join("Makefile"));
        files.push(srctree.join(dir).join("Kbuild"));
    }
    for file in files {
        hasher.update(file.as_os_str().as_encoded_bytes());
        match fs::read(&file) {
            Ok(bytes) => hasher.update(&bytes),
            Err(_) => hasher.update(b"\0absent"),
        };
    }
    hasher.finalize().to_hex().to_string()
}

struct Timer(Instant);

impl Timer {
    fn new() -> Timer {
        Timer(Instant::now())
    }

    fn lap(&mut self, name: &str) -> Phase {
        let seconds = self.0.elapsed().as_secs_f64();
        self.0 = Instant::now();
        Phase { name: name.into(), seconds }
    }
}
