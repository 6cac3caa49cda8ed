//! The command line: clap types, the values derived from them, and one
//! `run` per subcommand that hands over to its phase. Errors become
//! [`Error`]s with stable exit codes.

use std::{path::PathBuf, time::Duration};

use anyhow::Result;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::{
    bench::{self, Scenario},
    boot::Firmware,
    build::{self, Options},
    config_edit::Editor,
    error::Error,
    target::{Arch, Config, Lto, Profile, Target},
    toolchain::Llvm,
};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "Build Linux with Clang LTO through a Cargo-native build graph"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Configure, plan and build the kernel, then verify the LTO policy.
    Build(BuildArgs),
    /// Build if needed, then boot in QEMU and prove each LTO-sensitive feature.
    TestBoot(TestBootArgs),
    /// Write compile_commands.json for clangd, from the build graph.
    Compdb(CompdbArgs),
    /// List every build unit with its LTO policy and the reason.
    Units(UnitsArgs),
    /// Open Kbuild's menuconfig on the tree a build would use; the changes are kept for later builds.
    Menuconfig(EditArgs),
    /// Like menuconfig, with Kbuild's nconfig.
    Nconfig(EditArgs),
    /// Write the tree's configuration as a minimal defconfig (`make savedefconfig`).
    Savedefconfig(SavedefconfigArgs),
    /// Run the whole test suite: cargo test, then the end-to-end builds.
    Test {
        /// Also the tests CI's time cannot hold: arm64's proof profile and
        /// opt-out, full LTO's proof profile, Debian's 6.1, KUnit under
        /// every LTO mode, LLVM 22's proofs and its fidelity to Kbuild.
        #[arg(long)]
        full: bool,
    },
    /// Time Kbuild and the xtask on the same source and .config, scenario by scenario.
    Bench(BenchArgs),
    /// Build with KUnit suites, boot, and judge the kernel's own unit tests
    /// by their KTAP; with --lto all, compare the results across LTO modes.
    Kunit(KunitArgs),
}

impl Command {
    pub fn run(&self) -> Result<(), Error> {
        match self {
            Command::Build(args) => Ok(args.run()?),
            Command::TestBoot(args) => args.run(),
            Command::Compdb(args) => Ok(args.run()?),
            Command::Units(args) => Ok(args.run()?),
            Command::Menuconfig(args) => Ok(args.run(Editor::Menuconfig)?),
            Command::Nconfig(args) => Ok(args.run(Editor::Nconfig)?),
            Command::Savedefconfig(args) => Ok(args.run()?),
            Command::Test { full } => Ok(crate::selftest::run(*full)?),
            Command::Bench(args) => Ok(args.run()?),
            Command::Kunit(args) => args.run(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ArchChoice {
    #[value(name = "x86_64")]
    X86_64,
    Arm64,
    All,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LtoChoice {
    None,
    Thin,
    Full,
    /// none, thin and full, one tree each.
    All,
}

#[derive(Args, Clone, Debug)]
pub struct Selection {
    #[arg(long, value_enum, default_value = "x86_64")]
    pub arch: ArchChoice,
    #[arg(long, value_enum, default_value = "thin")]
    pub lto: LtoChoice,
    /// A preset: tinyconfig plus the fragments in targets/.
    #[arg(long, value_enum, default_value = "tiny")]
    pub profile: Profile,
    /// Instead of a preset: a Kbuild config target (defconfig, tinyconfig,
    /// x86_64_defconfig...) or, with a slash, a whole .config file
    /// (./my.config). The tree is named after it.
    #[arg(long, value_name = "NAME|PATH", value_parser = Config::parse, conflicts_with = "profile")]
    pub config: Option<Config>,
}

impl Selection {
    pub fn config(&self) -> Config {
        self.config.clone().unwrap_or(Config::Preset(self.profile))
    }

    pub fn targets(&self) -> Vec<Target> {
        let arches: Vec<Arch> = match self.arch {
            ArchChoice::X86_64 => vec![Arch::X86_64],
            ArchChoice::Arm64 => vec![Arch::Arm64],
            ArchChoice::All => Arch::ALL.to_vec(),
        };
        let modes: Vec<Lto> = match self.lto {
            LtoChoice::None => vec![Lto::None],
            LtoChoice::Thin => vec![Lto::Thin],
            LtoChoice::Full => vec![Lto::Full],
            LtoChoice::All => vec![Lto::None, Lto::Thin, Lto::Full],
        };
        arches
            .into_iter()
            .flat_map(|arch| {
                modes.iter().map(move |&lto| Target {
                    arch,
                    lto,
                    config: self.config(),
                })
            })
            .collect()
    }
}

#[derive(Args, Clone, Debug)]
pub struct BuildArgs {
    #[command(flatten)]
    pub selection: Selection,
    /// A kernel source tree to build instead of Debian's linux-source-6.12.
    #[arg(long)]
    pub source: Option<PathBuf>,
    /// Parallel jobs (0: the number of CPUs).
    #[arg(short, long, default_value_t = 0)]
    pub jobs: usize,
    /// Build UNIT (a kernel directory) or UNIT/OBJ.o without LTO. Repeatable.
    #[arg(long = "lto-off", value_name = "UNIT[/OBJ]")]
    pub lto_off: Vec<String>,
    /// A TOML overlay with `[[lto-off]]` entries, like --lto-off with reasons.
    #[arg(long = "policy", value_name = "FILE")]
    pub overlays: Vec<PathBuf>,
    /// Exit with code 14 instead of waiting when another build holds the object tree.
    #[arg(long)]
    pub no_wait: bool,
    /// A Kconfig fragment applied after the profile's, in order; a bare
    /// NAME.config is looked up in the kernel's kernel/configs and
    /// arch/*/configs. The object tree stays the profile's: flipping a
    /// symbol rebuilds only what it touches. Repeatable.
    #[arg(long = "fragment", value_name = "FILE")]
    pub fragments: Vec<PathBuf>,
    /// A compiler launcher before every kernel C and assembly compile, as
    /// Kbuild's CC="ccache clang": ccache, sccache, distcc, icecc or any
    /// command. It is not part of any cache key. Empty: none.
    #[arg(long, value_name = "CMD", env = "XTASK_LAUNCHER")]
    pub launcher: Option<String>,
    /// A shared cache of compiles and ThinLTO backends for other trees,
    /// checkouts and machines: a directory, or the URL of a Bazel HTTP remote
    /// cache (bazel-remote, nginx with WebDAV PUT). Empty: none.
    #[arg(long, value_name = "DIR|URL", env = "XTASK_CACHE")]
    pub cache: Option<String>,
    /// The shared directory's size limit, least recently used out first
    /// (`5G`, `500M`). Default: 5G.
    #[arg(long, value_name = "SIZE", env = "XTASK_CACHE_SIZE")]
    pub cache_size: Option<String>,
    /// Writes the build's steps to FILE in Chrome's trace-event format, for
    /// Perfetto or chrome://tracing: one slice per step on its worker, with
    /// its stage and whether it was cached.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    #[command(flatten)]
    pub llvm: LlvmArg,
}

/// The toolchain, shared by every command that builds.
#[derive(Args, Clone, Debug)]
pub struct LlvmArg {
    /// The LLVM to build with, as Kbuild's LLVM= takes it: 1 (LLVM 19), a
    /// version suffix (-22: Debian's clang-22, installed when missing), or a
    /// directory holding clang and ld.lld (/usr/lib/llvm-22/bin/). Each
    /// toolchain has its own object tree.
    #[arg(
        long,
        value_name = "1|-N|DIR/",
        env = "LLVM",
        default_value = "1",
        allow_hyphen_values = true,
        value_parser = Llvm::parse
    )]
    pub llvm: Llvm,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FirmwareChoice {
    Bios,
    Uefi,
    All,
}

#[derive(Args, Clone, Debug)]
pub struct TestBootArgs {
    #[command(flatten)]
    pub build: BuildArgs,
    /// bios: PVH vmlinux (x86_64) or direct -kernel (arm64); uefi: OVMF/AAVMF.
    #[arg(long, value_enum, default_value = "bios")]
    pub firmware: FirmwareChoice,
    /// Seconds before a boot counts as hung.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
}

impl TestBootArgs {
    fn firmwares(&self) -> Vec<Firmware> {
        match self.firmware {
            FirmwareChoice::Bios => vec![Firmware::Bios],
            FirmwareChoice::Uefi => vec![Firmware::Uefi],
            FirmwareChoice::All => Firmware::ALL.to_vec(),
        }
    }

    /// Boots every target; the first failed boot decides the exit code.
    pub fn run(&self) -> Result<(), Error> {
        let mut first_failure = None;
        for target in self.build.selection.targets() {
            let failure = crate::test_boot::run(
                &target,
                &self.build.options(),
                &self.firmwares(),
                Duration::from_secs(self.timeout),
            )?;
            first_failure = first_failure.or(failure);
        }
        match first_failure {
            Some(failure) => Err(Error::Boot(failure)),
            None => Ok(()),
        }
    }
}

#[derive(Args, Clone, Debug)]
pub struct KunitArgs {
    #[command(flatten)]
    pub build: BuildArgs,
    /// Only the tests matching this `suite.case` glob (`list*`,
    /// `overflow.DEFINE_FLEX_test`), as kunit.py takes it.
    #[arg(value_name = "FILTER")]
    pub filter: Option<String>,
    /// A .kunitconfig, or a directory holding one (lib/kunit), as given or
    /// in the kernel source. Repeatable. Default: targets/common/kunit.config.
    #[arg(long = "kunitconfig", value_name = "PATH")]
    pub kunitconfigs: Vec<PathBuf>,
    /// A Kconfig line after the .kunitconfig files (CONFIG_X=y). Repeatable.
    #[arg(long = "kconfig-add", value_name = "CONFIG_X=y")]
    pub kconfig_add: Vec<String>,
    /// A kernel parameter for the boot (oops=panic). Repeatable.
    #[arg(long = "kernel-args", value_name = "ARG")]
    pub kernel_args: Vec<String>,
    /// Seconds before a boot counts as hung.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    /// Also write every run's results as JSON: to FILE, or to stdout
    /// without one (each tree keeps its kunit-report.json either way).
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-")]
    pub json: Option<PathBuf>,
    /// Print the serial log as the kernel wrote it, KTAP and all.
    #[arg(long)]
    pub raw_output: bool,
}

impl KunitArgs {
    /// Runs every target; the exit code is the first failure's, or 25 when
    /// modes differ.
    pub fn run(&self) -> Result<(), Error> {
        let request = crate::kunit::Request {
            kunitconfigs: self.kunitconfigs.clone(),
            kconfig_add: self.kconfig_add.clone(),
            filter: self.filter.clone(),
            kernel_args: self.kernel_args.clone(),
            timeout: Duration::from_secs(self.timeout),
            raw_output: self.raw_output,
            print_to_stderr: self.json.as_deref() == Some(std::path::Path::new("-")),
        };
        let outcome = crate::kunit::run(
            &self.build.selection.targets(),
            &self.build.options(),
            &request,
        )?;
        if let Some(json) = &self.json {
            crate::kunit::write_json(&outcome.runs, json)?;
        }
        match outcome.failure {
            Some(failure) => Err(Error::Kunit(failure)),
            None => Ok(()),
        }
    }
}

#[derive(Args, Clone, Debug)]
pub struct CompdbArgs {
    #[command(flatten)]
    pub build: BuildArgs,
    /// Also symlink compile_commands.json into the kernel source root.
    #[arg(long)]
    pub link_into_source: bool,
}

impl CompdbArgs {
    /// Builds (a no-op when up to date), then writes the commands that ran.
    pub fn run(&self) -> Result<()> {
        for target in self.build.selection.targets() {
            crate::editor::compdb::run(
                &build::build(&target, &self.build.options())?,
                self.link_into_source,
            )?;
        }
        Ok(())
    }
}

#[derive(Args, Clone, Debug)]
pub struct EditArgs {
    #[command(flatten)]
    pub build: BuildArgs,
}

impl EditArgs {
    fn run(&self, editor: Editor) -> Result<()> {
        for target in self.build.selection.targets() {
            crate::config_edit::edit(&target, &self.build.options(), editor)?;
        }
        Ok(())
    }
}

#[derive(Args, Clone, Debug)]
pub struct SavedefconfigArgs {
    #[command(flatten)]
    pub build: BuildArgs,
    /// Where to write it.
    #[arg(short, long, default_value = "defconfig")]
    pub output: PathBuf,
}

impl SavedefconfigArgs {
    fn run(&self) -> Result<()> {
        let targets = self.build.selection.targets();
        if targets.len() > 1 {
            anyhow::bail!("savedefconfig writes one file: choose --arch x86_64 or --arch arm64");
        }
        for target in targets {
            crate::config_edit::savedefconfig(&target, &self.build.options(), &self.output)?;
        }
        Ok(())
    }
}

#[derive(Args, Clone, Debug)]
pub struct UnitsArgs {
    #[command(flatten)]
    pub build: BuildArgs,
    /// Print JSON for scripts instead of the table.
    #[arg(long)]
    pub json: bool,
}

impl UnitsArgs {
    pub fn run(&self) -> Result<()> {
        for target in self.build.selection.targets() {
            crate::units::run(&target, &self.build.options(), self.json)?;
        }
        Ok(())
    }
}

/// `-j`, resolved: 0 means every CPU.
pub fn jobs(requested: usize) -> usize {
    match requested {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        jobs => jobs,
    }
}

impl BuildArgs {
    pub fn options(&self) -> Options {
        Options {
            source: self.source.clone(),
            jobs: jobs(self.jobs),
            lto_off: self.lto_off.clone(),
            overlays: self.overlays.clone(),
            no_wait: self.no_wait,
            fragments: self.fragments.clone(),
            launcher: self.launcher.clone(),
            cache: self.cache.clone(),
            cache_size: self.cache_size.clone(),
            trace: self.trace.clone(),
            llvm: self.llvm.llvm.clone(),
        }
    }

    pub fn run(&self) -> Result<()> {
        for target in self.selection.targets() {
            let options = self.options();
            let (objtree, report) = match build::up_to_date(&target, &options)? {
                Some(done) => done,
                None => {
                    let built = build::build(&target, &options)?;
                    (built.objtree, built.report)
                }
            };
            crate::report::print_summary(&report, &objtree);
        }
        Ok(())
    }
}

#[derive(Args, Clone, Debug)]
pub struct BenchArgs {
    #[arg(long, value_enum, default_value = "x86_64")]
    pub arch: Arch,
    #[arg(long, value_enum, default_value = "thin")]
    pub lto: Lto,
    #[arg(long, value_enum, default_value = "tiny")]
    pub profile: Profile,
    /// Instead of a preset: a Kbuild config target or a .config file (see `build --config`).
    #[arg(long, value_name = "NAME|PATH", value_parser = Config::parse, conflicts_with = "profile")]
    pub config: Option<Config>,
    /// A Kconfig fragment after the base, as `build --fragment` takes it
    /// (`virt.config`), for both tools. Repeatable.
    #[arg(long = "fragment", value_name = "FILE")]
    pub fragments: Vec<PathBuf>,
    /// Comma-separated, run in this order: cold, noop, touch, edit, comment,
    /// reword, header, config (the default), and cached, cached-http, ccache
    /// (cold builds reusing a cache that an extra cold build fills first).
    #[arg(long, value_delimiter = ',', value_parser = Scenario::parse, default_value = "cold,noop,touch,edit,comment,reword,header,config")]
    pub scenarios: Vec<Scenario>,
    /// Timed builds of each tool per scenario.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub reps: u32,
    /// Parallel jobs, the same for both tools (0: the number of CPUs).
    #[arg(short, long, default_value_t = 0)]
    pub jobs: usize,
    #[command(flatten)]
    pub llvm: LlvmArg,
}

impl BenchArgs {
    pub fn run(&self) -> Result<()> {
        let mut scenarios = Vec::new();
        for &scenario in &self.scenarios {
            if !scenarios.contains(&scenario) {
                scenarios.push(scenario);
            }
        }
        let target = Target {
            arch: self.arch,
            lto: self.lto,
            config: self.config.clone().unwrap_or(Config::Preset(self.profile)),
        };
        bench::run(&bench::Options {
            target,
            scenarios,
            reps: self.reps,
            jobs: jobs(self.jobs),
            llvm: self.llvm.llvm.clone(),
            fragments: self.fragments.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn bench(args: &[&str]) -> Result<BenchArgs, clap::Error> {
        match Cli::try_parse_from(["cargo xtask", "bench"].iter().chain(args))?.command {
            Command::Bench(args) => Ok(args),
            _ => unreachable!("bench parses as bench"),
        }
    }

    #[test]
    fn bench_runs_every_scenario_without_a_shared_cache_three_times_by_default() {
        let args = bench(&[]).unwrap();
        assert_eq!(args.scenarios, Scenario::ALL[..8]);
        assert!(!args.scenarios.contains(&Scenario::Cached));
        assert_eq!((args.reps, args.arch, args.jobs), (3, Arch::X86_64, 0));
        assert_eq!(
            bench(&["--scenarios", "noop", "--reps", "1"])
                .unwrap()
                .scenarios,
            [Scenario::Noop]
        );
    }

    #[test]
    fn llvm_takes_kbuilds_spellings_with_a_hyphen_too() {
        let build = |args: &[&str]| match Cli::try_parse_from(
            ["cargo xtask", "build"].iter().chain(args),
        ) {
            Ok(Cli {
                command: Command::Build(args),
            }) => Ok(args.llvm.llvm),
            Ok(_) => unreachable!("build parses as build"),
            Err(error) => Err(error.to_string()),
        };
        assert_eq!(build(&["--llvm", "-22"]), Ok(Llvm::Release(22)));
        assert_eq!(build(&["--llvm=-22"]), Ok(Llvm::Release(22)));
        assert_eq!(
            build(&["--llvm", "/usr/lib/llvm-14/bin/"]),
            Ok(Llvm::Release(14))
        );
        let error = build(&["--llvm", "22"]).unwrap_err();
        assert!(error.contains("a version suffix such as -22"), "{error}");
        assert_eq!(
            bench(&["--llvm", "-22"]).unwrap().llvm.llvm,
            Llvm::Release(22)
        );
    }

    #[test]
    fn kunit_takes_kunit_pys_shapes() {
        let kunit =
            |args: &[&str]| match Cli::try_parse_from(["cargo xtask", "kunit"].iter().chain(args))
                .unwrap()
                .command
            {
                Command::Kunit(args) => args,
                _ => unreachable!("kunit parses as kunit"),
            };
        let args = kunit(&[
            "list*",
            "--kunitconfig",
            "lib/kunit",
            "--kconfig-add",
            "CONFIG_LIST_KUNIT_TEST=y",
            "--lto",
            "all",
            "--json",
        ]);
        assert_eq!(args.filter.as_deref(), Some("list*"));
        assert_eq!(args.kunitconfigs, [PathBuf::from("lib/kunit")]);
        assert_eq!(
            args.json,
            Some(PathBuf::from("-")),
            "--json alone is stdout"
        );
        let targets = args.build.selection.targets();
        let modes: Vec<Lto> = targets.iter().map(|t| t.lto).collect();
        assert_eq!(modes, [Lto::None, Lto::Thin, Lto::Full]);
        let args = kunit(&["--json=out.json", "--arch", "all"]);
        assert_eq!(args.json, Some(PathBuf::from("out.json")));
        assert_eq!(args.filter, None);
        assert_eq!(args.build.selection.targets().len(), 2);
    }

    #[test]
    fn clap_reads_the_environments_launcher_and_cache() {
        let cli = Cli::command();
        let build = cli.find_subcommand("build").unwrap();
        let env = |id: &str| {
            let arg = build.get_arguments().find(|a| a.get_id() == id).unwrap();
            arg.get_env().and_then(|e| e.to_str()).map(String::from)
        };
        assert_eq!(env("launcher").as_deref(), Some("XTASK_LAUNCHER"));
        assert_eq!(env("cache").as_deref(), Some("XTASK_CACHE"));
        assert_eq!(env("cache_size").as_deref(), Some("XTASK_CACHE_SIZE"));
        assert_eq!(env("llvm").as_deref(), Some("LLVM"), "as Kbuild reads it");
    }

    #[test]
    fn bench_refuses_unknown_scenarios_zero_reps_and_two_arches() {
        assert_eq!(
            bench(&["--scenarios", "noop,config"]).unwrap().scenarios,
            [Scenario::Noop, Scenario::Config]
        );
        let error = bench(&["--scenarios", "nop"]).unwrap_err().to_string();
        assert!(error.contains("did you mean `noop`?"), "{error}");
        assert!(bench(&["--reps", "0"]).is_err());
        assert!(bench(&["--arch", "all"]).is_err());
    }
}
