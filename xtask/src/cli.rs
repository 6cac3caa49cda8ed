//! The command line: thin over the engine. Errors map to stable exit codes.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::{
    build::{self, Options},
    target::{Arch, Lto, Profile, Target},
};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Build Linux with Clang LTO through a Cargo-native build graph")]
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
    /// Run the whole test suite: cargo test, then the end-to-end builds.
    Test,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ArchChoice {
    #[value(name = "x86_64")]
    X86_64,
    Arm64,
    All,
}

#[derive(Args, Clone, Debug)]
pub struct Selection {
    #[arg(long, value_enum, default_value = "x86_64")]
    pub arch: ArchChoice,
    #[arg(long, value_enum, default_value = "thin")]
    pub lto: Lto,
    #[arg(long, value_enum, default_value = "tiny")]
    pub profile: Profile,
}

impl Selection {
    pub fn targets(&self) -> Vec<Target> {
        let arches: Vec<Arch> = match self.arch {
            ArchChoice::X86_64 => vec![Arch::X86_64],
            ArchChoice::Arm64 => vec![Arch::Arm64],
            ArchChoice::All => Arch::ALL.to_vec(),
        };
        arches.into_iter().map(|arch| Target { arch, lto: self.lto, profile: self.profile }).collect()
    }
}

#[derive(Args, Clone, Debug)]
pub struct BuildArgs {
    #[command(flatten)]
    pub selection: Selection,
    /// A kernel source tree to build instead of Debian's linux-source-6.12.
    #[arg(long)]
    pub source: Option<PathBuf>,
    /// Parallel jobs (default: the number of CPUs).
    #[arg(short, long, default_value_t = 0)]
    pub jobs: usize,
    /// Build UNIT (a kernel directory) or UNIT/OBJ.o without LTO. Repeatable.
    #[arg(long = "lto-off", value_name = "UNIT[/OBJ]")]
    pub lto_off: Vec<String>,
    /// A TOML overlay with `[[lto-off]]` entries, like --lto-off with reasons.
    #[arg(long = "policy", value_name = "FILE")]
    pub overlays: Vec<PathBuf>,
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

/// Returns the exit code of the first failed boot (stable: 20 panic,
/// 21 timeout, 22 no marker, 23 a proof failed).
pub fn test_boot(args: &TestBootArgs) -> Result<i32> {
    use crate::boot::Firmware;
    let firmwares = match args.firmware {
        FirmwareChoice::Bios => vec![Firmware::Bios],
        FirmwareChoice::Uefi => vec![Firmware::Uefi],
        FirmwareChoice::All => Firmware::ALL.to_vec(),
    };
    let mut code = 0;
    for target in args.build.selection.targets() {
        let result = crate::test_boot::run(target, &args.build.options(), &firmwares, std::time::Duration::from_secs(args.timeout))?;
        if code == 0 {
            code = result;
        }
    }
    Ok(code)
}

#[derive(Args, Clone, Debug)]
pub struct CompdbArgs {
    #[command(flatten)]
    pub build: BuildArgs,
    /// Also symlink compile_commands.json into the kernel source root.
    #[arg(long)]
    pub link_into_source: bool,
}

/// Builds (a no-op when up to date), then writes the commands that ran.
pub fn compdb(args: &CompdbArgs) -> Result<()> {
    for target in args.build.selection.targets() {
        let built = build::build(target, &args.build.options())?;
        let (path, entries) = crate::editor::compdb::write(&built.objtree, &built.steps)?;
        println!("{} ({entries} entries)", path.display());
        if args.link_into_source {
            println!("{}", crate::editor::compdb::link_into_source(&built.objtree, &built.report.source)?.display());
        }
        match crate::editor::compdb::write_rust_project(&built.objtree, &built.report.source) {
            Ok(Some(path)) => println!("{}", path.display()),
            Ok(None) => {}
            Err(error) => eprintln!("warning: no rust-project.json: {error:#}"),
        }
    }
    Ok(())
}

#[derive(Args, Clone, Debug)]
pub struct UnitsArgs {
    #[command(flatten)]
    pub build: BuildArgs,
    /// Print JSON for scripts instead of the table.
    #[arg(long)]
    pub json: bool,
}

pub fn units(args: &UnitsArgs) -> Result<()> {
    for target in args.build.selection.targets() {
        crate::units::run(target, &args.build.options(), args.json)?;
    }
    Ok(())
}

impl BuildArgs {
    pub fn options(&self) -> Options {
        Options {
            source: self.source.clone(),
            jobs: self.jobs,
            lto_off: self.lto_off.clone(),
            overlays: self.overlays.clone(),
        }
    }
}

pub fn build(args: &BuildArgs) -> Result<()> {
    for target in args.selection.targets() {
        let built = build::build(target, &args.options())?;
        crate::report::print_summary(&built.report, &built.objtree);
    }
    Ok(())
}
