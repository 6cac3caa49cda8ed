//! `cargo xtask test-boot`: boot a built kernel in QEMU and prove each
//! LTO-sensitive feature from the serial log.
//!
//! The pieces, in the order a boot uses them:
//! - [`init`]: builds `init.c`, a freestanding static PID 1 that proves what
//!   only userspace can see and prints `XTASK-PROOF` lines and a marker;
//! - [`initramfs`]: a deterministic newc cpio with the init, /dev/console
//!   and the modules;
//! - [`qemu`]: the command line per arch and firmware, run with a timeout;
//! - [`judge`]: outcome from the log (pass, panic, timeout, no marker,
//!   proof failed), each with its own exit code;
//! - [`proofs`] (and [`initcalls`]): one verdict per feature, with the log
//!   line that shows it.
//!
//! Outputs, next to the kernel: `boot-<firmware>.log` (serial console) and
//! `boot-report-<firmware>.json`; scratch files go to `boot/`.

mod elf;
pub mod init;
pub mod initcalls;
pub mod initramfs;
pub mod judge;
pub mod ktap;
pub mod kunit;
pub mod proofs;
pub mod qemu;

use std::{
    collections::HashMap,
    fmt, fs,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{bail, ensure, Context, Result};
use clap::ValueEnum;
use serde::Serialize;

pub use init::InitVariant;
pub use judge::BootFailure;
pub use qemu::Accel;

use crate::{
    kconfig::DotConfig,
    render::{self, Notice},
    target::{Arch, Lto, Target},
};

/// How the kernel is started. For arm64, `bios` means QEMU's direct
/// `-kernel` boot without UEFI firmware.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Firmware {
    Bios,
    Uefi,
}

impl Firmware {
    pub const ALL: [Firmware; 2] = [Firmware::Bios, Firmware::Uefi];
}

impl fmt::Display for Firmware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Firmware::Bios => "bios",
            Firmware::Uefi => "uefi",
        })
    }
}

/// What to boot and how.
#[derive(Clone, Debug)]
pub struct BootInput {
    pub target: Target,
    /// The kernel object tree: vmlinux, the arch boot image, .config.
    pub obj_dir: PathBuf,
    /// The clang that builds the test init.
    pub clang: PathBuf,
    /// `.ko` files for the initramfs, loaded by the init in this order.
    pub modules: Vec<PathBuf>,
    /// `initcalls.json`: the link order of initcalls (proof profile).
    pub initcalls: Option<PathBuf>,
    pub firmware: Firmware,
    pub timeout: Duration,
    /// Kernel parameters after the arch's own (`kunit.filter_glob=...`).
    pub cmdline: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProofStatus {
    Pass,
    Fail,
    Skip,
}

impl fmt::Display for ProofStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProofStatus::Pass => "PASS",
            ProofStatus::Fail => "FAIL",
            ProofStatus::Skip => "SKIP",
        })
    }
}

/// One feature's verdict and the log line (or reason) behind it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Proof {
    pub name: String,
    pub status: ProofStatus,
    pub evidence: String,
}

/// The result of one boot, also written as `boot-report-<firmware>.json`.
#[derive(Clone, Debug, Serialize)]
pub struct BootReport {
    pub arch: Arch,
    pub lto: Lto,
    /// The preset, Kbuild target or `.config` file.
    pub config: String,
    pub firmware: Firmware,
    /// Which init ran: `good`, or a broken variant of the failure-mode tests.
    pub init: InitVariant,
    pub accel: Accel,
    /// Why TCG, when it is TCG (no KVM here, or KVM failed and we fell back).
    pub accel_note: Option<String>,
    /// `None` for a pass; written as `outcome`, `pass` or the failure.
    #[serde(rename = "outcome", serialize_with = "judge::serialize_outcome")]
    pub failure: Option<BootFailure>,
    /// The one-line reason for the outcome.
    pub message: String,
    pub seconds: f64,
    pub proofs: Vec<Proof>,
    pub qemu_command: String,
    pub log: PathBuf,
}

/// Boots the kernel with the real test init.
pub fn boot(input: &BootInput) -> Result<BootReport> {
    boot_with_init_variant(input, InitVariant::Good)
}

/// Boots with the given init; broken variants exist to test the failure
/// modes (their logs and reports get the variant in the name).
pub fn boot_with_init_variant(input: &BootInput, variant: InitVariant) -> Result<BootReport> {
    let name = match variant {
        InitVariant::Good => input.firmware.to_string(),
        broken => format!("{}-{broken}", input.firmware),
    };
    let (serial, modules) = run_with_init(input, variant, &name)?;
    let (run, log, text) = (serial.run, serial.log, serial.text);
    let modules: Vec<proofs::Module> = modules.into_iter().map(|m| m.module).collect();
    let proofs = prove(input, &modules, &text)?;
    let verdict = judge::judge(&text, run.ending, &proofs);

    let report = BootReport {
        arch: input.target.arch,
        lto: input.target.lto,
        config: input.target.config.to_string(),
        firmware: input.firmware,
        init: variant,
        accel: run.accel,
        accel_note: run.accel_note,
        failure: verdict.failure,
        message: verdict.message,
        seconds: (run.seconds * 100.0).round() / 100.0,
        proofs,
        qemu_command: run.command,
        log,
    };
    let json = input.obj_dir.join(format!("boot-report-{name}.json"));
    let text = serde_json::to_string_pretty(&report)? + "\n";
    crate::fs_atomic::write(&json, text.as_bytes())?;
    Ok(report)
}

/// A finished QEMU run and how it was made.
pub struct QemuRun {
    pub command: String,
    pub accel: Accel,
    pub accel_note: Option<String>,
    pub ending: judge::Ending,
    pub seconds: f64,
}

/// What a boot printed, for a judge to read.
pub struct Serial {
    pub run: QemuRun,
    /// `boot-<name>.log` in the object tree.
    pub log: PathBuf,
    pub text: String,
}

/// Boots the kernel with the real init and returns its serial log, judged
/// by nobody yet: `cargo xtask kunit` reads the KTAP in it.
pub fn run(input: &BootInput, name: &str) -> Result<Serial> {
    Ok(run_with_init(input, InitVariant::Good, name)?.0)
}

/// Builds the init and the initramfs, then boots; the log is `boot-<name>.log`.
fn run_with_init(
    input: &BootInput,
    variant: InitVariant,
    name: &str,
) -> Result<(Serial, Vec<ModuleFile>)> {
    check_kernel(input)?;
    let work = input.obj_dir.join("boot");
    let init = init::build(&input.clang, input.target.arch, variant, &work)?;
    let modules = read_modules(&input.modules)?;
    let initrd = write_initramfs(&work, variant, &init, &modules)?;
    let log = input.obj_dir.join(format!("boot-{name}.log"));
    let run = run_qemu(
        input,
        &initrd,
        &log,
        &work.join(format!("qemu-{name}.stderr")),
    )?;
    let bytes = fs::read(&log).with_context(|| format!("reading {}", log.display()))?;
    // Firmware writes escape sequences and the odd stray byte: be lenient.
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Ok((Serial { run, log, text }, modules))
}

/// Runs QEMU, with KVM when it should work; when KVM turns out not to work
/// (it can exist and still fail in a nested sandbox), again with TCG.
fn run_qemu(input: &BootInput, initrd: &Path, log: &Path, stderr_log: &Path) -> Result<QemuRun> {
    let (mut accel, mut accel_note) = qemu::choose_accel(&input.target);
    loop {
        let spec = qemu::Spec {
            target: input.target.clone(),
            firmware: input.firmware,
            accel,
            obj_dir: &input.obj_dir,
            initrd,
            serial_log: log,
            scratch: initrd.parent().unwrap_or(&input.obj_dir),
            cmdline: &input.cmdline,
        };
        let (program, args) = qemu::command(&spec)?;
        let command = qemu::display(&program, &args)?;
        render::notice(Notice::Doing(format!("$ {command}")));
        match qemu::run(&program, &args, accel, input.timeout, stderr_log) {
            Ok(run) => {
                let (ending, seconds) = (run.ending, run.seconds);
                return Ok(QemuRun {
                    command,
                    accel,
                    accel_note,
                    ending,
                    seconds,
                });
            }
            Err(e) => match e.downcast_ref::<qemu::KvmFailed>() {
                Some(qemu::KvmFailed(reason)) if accel == Accel::Kvm => {
                    render::notice(Notice::Doing(format!(
                        "KVM does not work here ({reason}): falling back to TCG"
                    )));
                    qemu::mark_kvm_broken(reason);
                    accel = Accel::Tcg;
                    accel_note = Some(format!("TCG: KVM failed ({reason})"));
                }
                _ => return Err(e),
            },
        }
    }
}

/// Every proof, from the log and what the build left in the object tree.
fn prove(input: &BootInput, modules: &[proofs::Module], log: &str) -> Result<Vec<Proof>> {
    let initcalls = input
        .initcalls
        .as_deref()
        .map(initcalls::load)
        .transpose()?;
    // Only the modversions proof needs vmlinux's CRCs; reading them is the
    // proof's business, so a failure to read them fails the proof, not the boot.
    let kernel_crcs = if input.target.config.is_proof() && !modules.is_empty() {
        let vmlinux = input.obj_dir.join("vmlinux");
        fs::read(&vmlinux)
            .map_err(anyhow::Error::from)
            .and_then(|bytes| elf::kernel_crcs(&bytes))
            .map_err(|e| format!("reading CRCs from {}: {e:#}", vmlinux.display()))
    } else {
        Ok(HashMap::new())
    };
    let cx = proofs::Context {
        target: input.target.clone(),
        firmware: input.firmware,
        initcalls: initcalls.as_deref(),
        modules,
        kernel_crcs: kernel_crcs.as_ref().map_err(String::as_str),
    };
    Ok(proofs::evaluate(&cx, log))
}

/// What QEMU's `-kernel` loads, relative to the object tree. Under x86's
/// BIOS, `vmlinux` through its PVH entry point when the kernel has one
/// (`CONFIG_PVH`, the presets), else the bzImage (defconfig).
pub fn kernel_image(obj_dir: &Path, arch: Arch, firmware: Firmware) -> &'static str {
    let pvh = || DotConfig::read(&obj_dir.join(".config")).is_ok_and(|c| c.get("PVH") == Some("y"));
    match (arch, firmware) {
        (Arch::X86_64, Firmware::Bios) if pvh() => "vmlinux",
        (Arch::X86_64, _) => "arch/x86/boot/bzImage",
        (Arch::Arm64, _) => "arch/arm64/boot/Image",
    }
}

/// Fails early, with the fix, when the kernel cannot be booted as asked.
fn check_kernel(input: &BootInput) -> Result<()> {
    let t = &input.target;
    let image = input
        .obj_dir
        .join(kernel_image(&input.obj_dir, t.arch, input.firmware));
    ensure!(
        image.exists(),
        "{} does not exist: build first (cargo xtask build --arch {} --lto {} {})",
        image.display(),
        t.arch,
        t.lto,
        t.config.args().join(" ")
    );
    if input.firmware == Firmware::Uefi {
        let config = DotConfig::read(&input.obj_dir.join(".config"))?;
        if config.get("EFI_STUB") != Some("y") {
            bail!("{} has no EFI stub (CONFIG_EFI_STUB), so UEFI cannot boot it: use --firmware bios or --profile proof", t);
        }
    }
    Ok(())
}

/// A module as it goes into the initramfs.
struct ModuleFile {
    module: proofs::Module,
    bytes: Vec<u8>,
}

fn read_modules(paths: &[PathBuf]) -> Result<Vec<ModuleFile>> {
    paths
        .iter()
        .map(|path| {
            let bytes =
                fs::read(path).with_context(|| format!("reading module {}", path.display()))?;
            let versions = elf::module_versions(&bytes)
                .with_context(|| format!("reading {}", path.display()))?;
            let file = path
                .file_name()
                .context("module path without a file name")?
                .to_string_lossy()
                .into_owned();
            Ok(ModuleFile {
                module: proofs::Module { file, versions },
                bytes,
            })
        })
        .collect()
}

/// The initramfs: /init, /dev/console (no devtmpfs in a tiny kernel), mount
/// points, and the modules with `lib/modules/order` saying which to load.
fn write_initramfs(
    work: &Path,
    variant: InitVariant,
    init: &Path,
    modules: &[ModuleFile],
) -> Result<PathBuf> {
    let mut archive = initramfs::Archive::new();
    archive
        .dir("proc")
        .dir("sys")
        .dir("debugfs")
        .dir("tracing")
        .dir("lib/modules")
        .char_dev("dev/console", 0o600, 5, 1)
        .file(
            "init",
            0o755,
            fs::read(init).with_context(|| format!("reading {}", init.display()))?,
        );
    if !modules.is_empty() {
        let mut order = String::new();
        for m in modules {
            archive.file(
                &format!("lib/modules/{}", m.module.file),
                0o644,
                m.bytes.clone(),
            );
            order += &format!("{}\n", m.module.file);
        }
        archive.file("lib/modules/order", 0o644, order);
    }
    let path = work.join(format!("initramfs-{variant}.cpio"));
    fs::write(&path, archive.to_bytes()).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scripts and the end-to-end tests read `outcome` by name: a pass is
    /// `pass`, even though it is the absence of a failure here.
    #[test]
    fn report_outcome_names_pass_and_each_failure() {
        let report = |failure| BootReport {
            arch: Arch::X86_64,
            lto: Lto::Thin,
            config: "tiny".into(),
            firmware: Firmware::Bios,
            init: InitVariant::Good,
            accel: Accel::Tcg,
            accel_note: None,
            failure,
            message: String::new(),
            seconds: 1.0,
            proofs: Vec::new(),
            qemu_command: String::new(),
            log: PathBuf::from("boot-bios.log"),
        };
        let outcome = |failure| serde_json::to_value(report(failure)).unwrap()["outcome"].clone();
        assert_eq!(outcome(None), "pass");
        assert_eq!(outcome(Some(BootFailure::NoMarker)), "no-marker");
        assert_eq!(outcome(Some(BootFailure::ProofFailed)), "proof-failed");
        let text = serde_json::to_string(&report(None)).unwrap();
        assert!(text.contains(r#""accel_note":null,"outcome":"pass","message""#));
    }
}
