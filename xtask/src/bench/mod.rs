//! `cargo xtask bench`: Kbuild and the xtask timed in one run, on the same
//! source and `.config`. Both build the private copy of the default tree
//! (`private_source`), so no edit ever reaches the user's trees. The xtask
//! builds the tree the end-to-end tests build, and Kbuild the reference tree
//! beside it (`private_source::kbuild_reference_dir`), so a run after the
//! tests starts warm.
//!
//! Each rep of a scenario: both trees are built first (not timed; before a
//! cold rep the xtask's is only configured and planned), the
//! scenario changes the source, each tool builds once, timed (which goes
//! first alternates), and the change is undone. The xtask runs as its own
//! binary, a child like make, so both are measured the same way (`measure`).
//! The no-op is also timed through `cargo xtask`, as users run it: cargo
//! checks the xtask's own sources first.

use std::{
    cell::RefCell,
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use testkit::CacheServer;

use crate::{
    configure::{Base, Recipe},
    engine::lock::TreeLock,
    kbuild::Kbuild,
    kconfig::DotConfig,
    process,
    target::{Arch, Target},
    toolchain::Llvm,
};

mod measure;
pub mod private_source;
mod scenario;
mod summary;

pub use scenario::{config_flip, Scenario};

use measure::Sample;
use private_source::PrivateSource;
use summary::{Pair, Report, Run, ScenarioSummary};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tool {
    Kbuild,
    Xtask,
    /// The same build as `Xtask`, through `cargo xtask`.
    CargoXtask,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Kbuild => "kbuild",
            Tool::Xtask => "xtask",
            Tool::CargoXtask => "cargo-xtask",
        }
    }
}

pub struct Options {
    pub target: Target,
    pub scenarios: Vec<Scenario>,
    pub reps: u32,
    /// Already resolved, and given to both tools.
    pub jobs: usize,
    /// The toolchain of both tools: first on Kbuild's `PATH`, `--llvm` for the xtask.
    pub llvm: Llvm,
    /// Fragments after the base, for both tools: `--fragment` for the
    /// xtask, appended before `olddefconfig` for Kbuild.
    pub fragments: Vec<PathBuf>,
}

pub fn run(options: &Options) -> Result<()> {
    let bench = Bench::new(options)?;
    let mut summaries: Vec<ScenarioSummary> = Vec::new();
    for &scenario in &options.scenarios {
        let mut runs = Vec::new();
        for rep in 1..=options.reps {
            runs.extend(bench.rep(scenario, rep)?);
        }
        summaries.push(ScenarioSummary::new(scenario, runs));
        // After every scenario, so that a later failure keeps what was measured.
        bench.write_report(&summaries)?;
    }
    print!(
        "{}",
        summary::table(&options.target, options.jobs, options.reps, &summaries)
    );
    println!("report: {}", bench.report_path().display());
    Ok(())
}

struct Bench {
    exe: PathBuf,
    target: Target,
    jobs: usize,
    reps: u32,
    llvm: Llvm,
    fragments: Vec<PathBuf>,
    source: PrivateSource,
    xtask_tree: PathBuf,
    /// Kbuild in its own tree, for comparison only.
    kbuild: Kbuild,
    /// First on make's `PATH` (shown in the report).
    llvm_bin: PathBuf,
    dir: PathBuf,
    /// Kbuild's tree is the bench's alone while it runs; the xtask's is
    /// locked by each of its builds.
    _kbuild_lock: TreeLock,
    /// The shared caches a cold build of this run filled.
    warmed: RefCell<Vec<String>>,
    /// The HTTP cache of `cached-http`.
    server: RefCell<Option<CacheServer>>,
}

impl Bench {
    fn new(options: &Options) -> Result<Bench> {
        let toolchain = crate::toolchain::ensure(&options.llvm)?;
        let tools: Vec<_> = options.scenarios.iter().filter_map(|s| s.tools()).collect();
        crate::toolchain::ensure_tools(&tools)?;
        let source = PrivateSource::open()?;
        let xtask_tree = options
            .target
            .obj_dir(Some(source.root()), options.llvm.tree_tag().as_deref());
        let kbuild_tree = private_source::kbuild_reference_dir(&xtask_tree);
        let lock = TreeLock::acquire(&kbuild_tree, |holder| {
            eprintln!("waiting for {}: {holder}", kbuild_tree.display());
            Ok(())
        })?;
        let mut kbuild = Kbuild::new(source.root(), &kbuild_tree, options.target.arch, &toolchain)?;
        kbuild.llvm = options.llvm.clone();
        let dir = crate::paths::target_dir().join("bench");
        fs::create_dir_all(dir.join("logs"))?;
        // Filled afresh by each run that needs them.
        remove_dir(&dir.join("shared-cache"))?;
        remove_dir(&dir.join("ccache"))?;
        // Resolved now: if the binary is rebuilt during a long run, the path
        // still names it, while /proc/self/exe would name a deleted file.
        let exe = std::env::current_exe().context("finding the xtask binary")?;
        Ok(Bench {
            exe,
            target: options.target.clone(),
            jobs: options.jobs,
            reps: options.reps,
            llvm: options.llvm.clone(),
            fragments: options.fragments.clone(),
            source,
            xtask_tree,
            kbuild,
            llvm_bin: toolchain.bin,
            dir,
            _kbuild_lock: lock,
            warmed: RefCell::default(),
            server: RefCell::default(),
        })
    }

    fn rep(&self, scenario: Scenario, rep: u32) -> Result<Vec<Run>> {
        eprintln!(
            "{scenario} {rep}/{}: building both trees first (not timed)",
            self.reps
        );
        self.settle(scenario)?;
        let order = if rep % 2 == 1 {
            [Tool::Kbuild, Tool::Xtask]
        } else {
            [Tool::Xtask, Tool::Kbuild]
        };
        let change = scenario.change(&self.source)?;
        let mut runs = Vec::new();
        // Cargo's check matters beside a build that takes milliseconds; it
        // goes last, as it only adds to the binary's no-op.
        let through_cargo = (scenario == Scenario::Noop).then_some(Tool::CargoXtask);
        for (i, tool) in order.into_iter().chain(through_cargo).enumerate() {
            let sample = self.timed(scenario, tool, &format!("{scenario}-{rep}"))?;
            eprintln!(
                "{scenario} {rep}/{}: {:<6} {:>8.2} s wall {:>8.2} s CPU",
                self.reps,
                tool.name(),
                sample.wall_s,
                sample.cpu_s
            );
            runs.push(Run {
                tool,
                rep,
                first: i == 0,
                sample,
            });
        }
        drop(change);
        if scenario == Scenario::Config {
            let (ours, theirs) = (
                self.xtask_tree.join(".config"),
                self.kbuild.objtree.join(".config"),
            );
            if DotConfig::read(&ours)? != DotConfig::read(&theirs)? {
                bail!("the flipped .configs differ ({} against {}): the two builds were not comparable", ours.display(), theirs.display());
            }
        }
        self.refresh_kbuild(scenario)?;
        Ok(runs)
    }

    /// Both trees built from the unchanged source, so that the timed builds
    /// see only the scenario's change. Before `cold` only the xtask's: its
    /// `.config` is what Kbuild's cold run must arrive at.
    fn settle(&self, scenario: Scenario) -> Result<()> {
        // A cold rep removes the tree it would have built: configuring and
        // planning it (`units`) gives the `.config` at a fraction of a build,
        // which at defconfig scale is half an hour.
        let mut settle = if scenario.is_cold() {
            self.xtask("units")
        } else {
            self.xtask_build()?
        };
        measure::run(&mut settle, &self.log("settle", Tool::Xtask))?;
        if let Some(cache) = self.cache_of(scenario)? {
            if !self.warmed.borrow().contains(&cache) {
                // A cold build fills it, once per run and cache.
                self.remove_xtask_tree()?;
                measure::run(
                    &mut self.xtask_build_with(scenario)?,
                    &self.log("fill-cache", Tool::Xtask),
                )?;
                self.warmed.borrow_mut().push(cache);
            }
        }
        if !scenario.is_cold() {
            self.configure_kbuild()?;
            measure::run(&mut self.kbuild_build()?, &self.log("settle", Tool::Kbuild))?;
        }
        Ok(())
    }

    /// Undoing an edit links the pristine file back with its old mtime, which
    /// make takes for "unchanged": Kbuild would keep the edited objects. A
    /// touch makes it rebuild them from the pristine file (not timed). The
    /// xtask goes by content and rebuilds them in the next `settle`.
    fn refresh_kbuild(&self, scenario: Scenario) -> Result<()> {
        let Some(file) = scenario.changes_objects_of() else {
            return Ok(());
        };
        let _touch = self.source.touch(file)?;
        measure::run(&mut self.kbuild_build()?, &self.log("undo", Tool::Kbuild))?;
        Ok(())
    }

    /// One timed build; an xtask build's `build-report.json` is kept beside
    /// its log (`<name>-xtask.report.json`), since the next build overwrites it.
    fn timed(&self, scenario: Scenario, tool: Tool, name: &str) -> Result<Sample> {
        let sample = self.timed_build(scenario, tool, name)?;
        if tool != Tool::Kbuild {
            let kept = self.log(name, tool).with_extension("report.json");
            fs::copy(self.xtask_tree.join("build-report.json"), &kept)
                .with_context(|| format!("keeping the build's report as {}", kept.display()))?;
        }
        Ok(sample)
    }

    fn timed_build(&self, scenario: Scenario, tool: Tool, name: &str) -> Result<Sample> {
        let log = self.log(name, tool);
        match (scenario, tool) {
            (
                Scenario::Cold | Scenario::Cached | Scenario::CachedHttp | Scenario::Ccache,
                Tool::Xtask,
            ) => {
                self.remove_xtask_tree()?;
                measure::run(&mut self.xtask_build_with(scenario)?, &log)
            }
            (
                Scenario::Cold | Scenario::Cached | Scenario::CachedHttp | Scenario::Ccache,
                Tool::Kbuild,
            ) => {
                let config = self.configure_kbuild_from_nothing(name)?;
                let mut build = self.kbuild_build()?;
                if scenario == Scenario::Ccache {
                    build
                        .arg("CC=ccache clang")
                        .env("CCACHE_DIR", self.ccache_dir());
                }
                Ok(config.then(measure::run(&mut build, &log)?))
            }
            (Scenario::Config, Tool::Xtask) => {
                let fragment = self.dir.join("flip.config");
                let config = DotConfig::read(&self.xtask_tree.join(".config"))?;
                fs::write(&fragment, scenario::config_flip(&config))?;
                measure::run(self.xtask_build()?.arg("--fragment").arg(&fragment), &log)
            }
            (Scenario::Config, Tool::Kbuild) => {
                let dot_config = self.kbuild.objtree.join(".config");
                let mut text = fs::read_to_string(&dot_config)?;
                text += &scenario::config_flip(&DotConfig::parse(&text));
                fs::write(&dot_config, text)?;
                let config = measure::run(
                    &mut self.kbuild.reference_config("olddefconfig"),
                    &self.log(&format!("{name}-olddefconfig"), tool),
                )?;
                Ok(config.then(measure::run(&mut self.kbuild_build()?, &log)?))
            }
            (_, Tool::Xtask) => measure::run(&mut self.xtask_build()?, &log),
            (_, Tool::CargoXtask) => measure::run(&mut self.cargo_xtask_build(), &log),
            (_, Tool::Kbuild) => measure::run(&mut self.kbuild_build()?, &log),
        }
    }

    /// What a cold scenario's xtask build reuses: the `--cache` of a cached
    /// scenario (a directory of this run, or the URL of nginx on loopback,
    /// started on first use), or ccache's directory.
    fn cache_of(&self, scenario: Scenario) -> Result<Option<String>> {
        Ok(match scenario {
            Scenario::Cached => Some(self.dir.join("shared-cache").display().to_string()),
            Scenario::CachedHttp => {
                let mut server = self.server.borrow_mut();
                if server.is_none() {
                    *server = Some(CacheServer::start()?);
                }
                server.as_ref().map(CacheServer::url)
            }
            Scenario::Ccache => Some(self.ccache_dir().display().to_string()),
            _ => None,
        })
    }

    fn ccache_dir(&self) -> PathBuf {
        self.dir.join("ccache")
    }

    /// The scenario's xtask build: with its cache or its launcher.
    fn xtask_build_with(&self, scenario: Scenario) -> Result<Command> {
        let mut cmd = self.xtask_build()?;
        match (scenario, self.cache_of(scenario)?) {
            (Scenario::Ccache, Some(dir)) => {
                cmd.args(["--launcher", "ccache"]).env("CCACHE_DIR", dir)
            }
            (_, Some(cache)) => cmd.args(["--cache", &cache]),
            (_, None) => &mut cmd,
        };
        Ok(cmd)
    }

    /// This very binary, run as a user runs it.
    fn xtask_build(&self) -> Result<Command> {
        Ok(self.xtask("build"))
    }

    /// The same build through `cargo xtask`, from the workspace, as its
    /// users run it.
    fn cargo_xtask_build(&self) -> Command {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = process::command(cargo);
        cmd.current_dir(crate::paths::workspace_root())
            .arg("xtask")
            .args(self.xtask_args("build"));
        cmd
    }

    /// A subcommand that takes `build`'s options, on the bench's tree.
    fn xtask(&self, subcommand: &str) -> Command {
        let mut cmd = process::command(&self.exe);
        cmd.args(self.xtask_args(subcommand));
        cmd
    }

    fn xtask_args(&self, subcommand: &str) -> Vec<std::ffi::OsString> {
        let Target { arch, lto, config } = &self.target;
        let mut args: Vec<std::ffi::OsString> = vec![
            subcommand.into(),
            "--source".into(),
            self.source.root().into(),
        ];
        args.extend(
            ["--arch", &arch.to_string(), "--lto", &lto.to_string()]
                .into_iter()
                .map(Into::into),
        );
        args.extend(config.args().into_iter().map(Into::into));
        args.extend(["-j".into(), self.jobs.to_string().into()]);
        args.push(format!("--llvm={}", self.llvm).into());
        for fragment in &self.fragments {
            args.extend(["--fragment".into(), fragment.into()]);
        }
        args
    }

    /// The boot image, and the modules when the `.config` has them.
    fn kbuild_build(&self) -> Result<Command> {
        let config = DotConfig::read(&self.xtask_tree.join(".config"))?;
        let mut goals = vec![image_goal(self.target.arch)];
        if config.get("MODULES") == Some("y") {
            goals.push("modules");
        }
        Ok(self.kbuild.reference_build(&goals, self.jobs))
    }

    /// Kbuild's tree holds the xtask's configuration: its `.config` after
    /// `olddefconfig`. A tree with another one gets the xtask's (after the
    /// `config` scenario, incrementally, as Kbuild's users change theirs); a
    /// tree without one starts afresh.
    fn configure_kbuild(&self) -> Result<()> {
        let ours = DotConfig::read(&self.xtask_tree.join(".config"))?;
        let theirs = self.kbuild.objtree.join(".config");
        if DotConfig::read_or_empty(&theirs)? == ours {
            return Ok(());
        }
        eprintln!(
            "configuring {} with the xtask's .config",
            self.kbuild.objtree.display()
        );
        if theirs.exists() {
            fs::copy(self.xtask_tree.join(".config"), &theirs)
                .context("copying the xtask's .config")?;
        } else {
            self.fresh_kbuild_tree()?;
        }
        measure::run(
            &mut self.kbuild.reference_config("olddefconfig"),
            &self.log("olddefconfig", Tool::Kbuild),
        )?;
        if DotConfig::read(&self.kbuild.objtree.join(".config"))? != ours {
            bail!(
                "olddefconfig changed the xtask's .config ({} against {}): the two builds would differ",
                self.kbuild.objtree.join(".config").display(),
                self.xtask_tree.join(".config").display()
            );
        }
        Ok(())
    }

    /// A new Kbuild tree configured as Kbuild's user would make the xtask's
    /// configuration: the recipe's base (`make tinyconfig` for a preset, or
    /// the user's file), the same fragments appended, `make olddefconfig`.
    /// Timed, as the xtask's cold build makes its `.config` too.
    fn configure_kbuild_from_nothing(&self, name: &str) -> Result<Sample> {
        let recipe = Recipe::resolve(
            &self.target,
            self.source.root(),
            &self.xtask_tree,
            &self.fragments,
        )?;
        let tree = &self.kbuild.objtree;
        remove_dir(tree)?;
        fs::create_dir_all(tree)?;
        let dot_config = tree.join(".config");
        let base = match recipe.base() {
            Base::Kbuild(target) => measure::run(
                &mut self.kbuild.reference_config(target),
                &self.log(&format!("{name}-{target}"), Tool::Kbuild),
            )?,
            Base::File(path) => {
                fs::copy(path, &dot_config)
                    .with_context(|| format!("copying {}", path.display()))?;
                Sample::default()
            }
        };
        recipe.append_overlay(&dot_config)?;
        let olddefconfig = measure::run(
            &mut self.kbuild.reference_config("olddefconfig"),
            &self.log(&format!("{name}-olddefconfig"), Tool::Kbuild),
        )?;
        if DotConfig::read(&dot_config)? != DotConfig::read(&self.xtask_tree.join(".config"))? {
            bail!(
                "Kbuild made another .config than the xtask from the same recipe ({} against {}): the two builds would differ",
                dot_config.display(),
                self.xtask_tree.join(".config").display()
            );
        }
        Ok(base.then(olddefconfig))
    }

    /// An empty Kbuild tree holding a copy of the xtask's `.config`.
    fn fresh_kbuild_tree(&self) -> Result<()> {
        let tree = &self.kbuild.objtree;
        remove_dir(tree)?;
        fs::create_dir_all(tree)?;
        fs::copy(self.xtask_tree.join(".config"), tree.join(".config"))
            .context("copying the xtask's .config")?;
        Ok(())
    }

    fn remove_xtask_tree(&self) -> Result<()> {
        let _lock = TreeLock::acquire(&self.xtask_tree, |holder| {
            eprintln!("waiting for {}: {holder}", self.xtask_tree.display());
            Ok(())
        })?;
        remove_dir(&self.xtask_tree)
    }

    /// `target/bench/logs/edit-2-kbuild.log`: the output of one build.
    fn log(&self, name: &str, tool: Tool) -> PathBuf {
        self.dir
            .join("logs")
            .join(format!("{name}-{}.log", tool.name()))
    }

    fn report_path(&self) -> PathBuf {
        self.dir.join("bench-report.json")
    }

    fn write_report(&self, summaries: &[ScenarioSummary]) -> Result<()> {
        let metadata: Vec<String> = self
            .kbuild
            .metadata
            .iter()
            .map(|(k, v)| format!("{k}='{v}'"))
            .collect();
        let kbuild = format!(
            "LC_ALL=C PATH={}:$PATH {} {}",
            self.llvm_bin.display(),
            metadata.join(" "),
            measure::describe(&self.kbuild_build()?)
        );
        let Target { arch, lto, config } = &self.target;
        let report = Report {
            arch: *arch,
            lto: *lto,
            config: config.to_string(),
            fragments: &self.fragments,
            jobs: self.jobs,
            reps: self.reps,
            kernel_version: crate::source::kernel_version(self.source.root())?,
            source: self.source.root(),
            trees: Pair {
                kbuild: &self.kbuild.objtree,
                xtask: &self.xtask_tree,
            },
            commands: Pair {
                kbuild,
                xtask: measure::describe(&self.xtask_build()?),
            },
            notes: summary::notes(summaries),
            scenarios: summaries,
        };
        crate::fs_atomic::write(&self.report_path(), &serde_json::to_vec_pretty(&report)?)
    }
}

/// The boot image `make` builds by default on each arch.
fn image_goal(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "bzImage",
        Arch::Arm64 => "Image",
    }
}

fn remove_dir(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            Err(error).with_context(|| format!("removing {}", dir.display()))
        }
        _ => Ok(()),
    }
}
