//! `cargo xtask test-boot`: build if needed (a no-op when up to date), then
//! boot each requested firmware in QEMU, judge the proofs and print each
//! boot with the exit code it gives.

use std::{fs, path::PathBuf, time::Duration};

use anyhow::{ensure, Result};
use serde::Serialize;

use crate::{
    boot::{self, judge, BootFailure, BootInput, BootReport, Firmware, InitVariant},
    build::{self, Built, Options},
    error::boot_exit_code,
    target::Target,
    toolchain::{self, Tools},
};

/// `boot-report.json`: the boots of one target, with every proof flattened.
#[derive(Serialize)]
struct Combined<'a> {
    arch: crate::target::Arch,
    lto: crate::target::Lto,
    config: String,
    firmware: Vec<Firmware>,
    accel: Vec<String>,
    outcome: &'static str,
    seconds: f64,
    proofs: Vec<FirmwareProof<'a>>,
    boots: &'a [BootReport],
}

#[derive(Serialize)]
struct FirmwareProof<'a> {
    firmware: Firmware,
    #[serde(flatten)]
    proof: &'a boot::Proof,
}

/// The inputs of a boot from a finished build.
pub fn input(built: &Built, firmware: Firmware, timeout: Duration) -> BootInput {
    // The proof loads CONFIG_TEST_LKM's module: it needs no hardware, so its
    // init succeeds wherever its symbol versions are accepted. Other `=m`
    // drivers that olddefconfig picks (x86_pkg_temp_thermal) fail with ENODEV.
    let modules = crate::link::modules::order(&built.objtree)
        .into_iter()
        .filter(|m| m.ends_with("/test_module.o"))
        .map(|m| built.objtree.join(crate::link::modules::sibling(&m, ".ko")))
        .filter(|ko| ko.exists())
        .collect();
    let initcalls: PathBuf = built.objtree.join("initcalls.json");
    BootInput {
        target: built.target.clone(),
        obj_dir: built.objtree.clone(),
        clang: built.toolchain.tool("clang"),
        modules,
        initcalls: initcalls.exists().then_some(initcalls),
        firmware,
        timeout,
        cmdline: Vec::new(),
    }
}

/// Boots one target on each firmware; the first failure, or `None` for a pass.
pub fn run(
    target: &Target,
    options: &Options,
    firmwares: &[Firmware],
    timeout: Duration,
) -> Result<Option<BootFailure>> {
    toolchain::ensure_tools(&[Tools::Boot(target.arch)])?;
    let built = build::build(target, options)?;
    let mut reports = Vec::new();
    for &firmware in firmwares {
        let report = boot::boot(&input(&built, firmware, timeout))?;
        print_summary(&report);
        reports.push(report);
    }
    let failure = reports.iter().find_map(|r| r.failure);
    let combined = Combined {
        arch: target.arch,
        lto: target.lto,
        config: target.config.to_string(),
        firmware: firmwares.to_vec(),
        accel: reports.iter().map(|r| r.accel.to_string()).collect(),
        outcome: judge::outcome(failure),
        seconds: reports.iter().map(|r| r.seconds).sum(),
        proofs: reports
            .iter()
            .flat_map(|r| {
                r.proofs.iter().map(move |proof| FirmwareProof {
                    firmware: r.firmware,
                    proof,
                })
            })
            .collect(),
        boots: &reports,
    };
    crate::fs_atomic::write(
        &built.objtree.join("boot-report.json"),
        serde_json::to_string_pretty(&combined)?.as_bytes(),
    )?;
    Ok(failure)
}

/// A readable table of the report; on failure also the end of the log.
pub fn print_summary(report: &BootReport) {
    let status = match report.failure {
        None => "PASS".to_string(),
        Some(failure) => format!("FAIL ({failure}, exit {})", boot_exit_code(Some(failure))),
    };
    println!(
        "test-boot {}-{}-{} {} [{}{}]: {status} in {:.1} s: {}",
        report.arch,
        report.lto,
        report.config,
        report.firmware,
        report.accel,
        if report.init == InitVariant::Good {
            String::new()
        } else {
            format!(", init {}", report.init)
        },
        report.seconds,
        report.message,
    );
    if let Some(note) = &report.accel_note {
        println!("  note: {note}");
    }
    let width = report
        .proofs
        .iter()
        .map(|p| p.name.len())
        .max()
        .unwrap_or(0);
    for p in &report.proofs {
        println!("  {} {:width$}  {}", p.status, p.name, p.evidence);
    }
    println!("  log: {}", report.log.display());
    if report.failure.is_some() {
        let log = fs::read(&report.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        println!("  last lines of the serial log:");
        for line in judge::tail(&log, 30) {
            println!("  | {line}");
        }
    }
}

/// Boots the three broken inits and checks each fails its own way: a panic
/// (20), a timeout (21) and a missing marker (22), each with its message.
/// Real kernels, real inits. The panic and the silent init end the boot by
/// themselves, so they get `input.timeout`; the hang gets three times what
/// the good init's boot took (plus ten seconds), which reaches its init on
/// a slow day too without waiting out the whole timeout.
pub fn selftest_failure_modes(input: &BootInput) -> Result<()> {
    let good = boot::boot_with_init_variant(input, InitVariant::Good)?;
    ensure!(
        good.failure.is_none(),
        "the good init did not pass, so the failure modes prove nothing: {}",
        good.message
    );
    let hang = BootInput {
        timeout: Duration::from_secs_f64(good.seconds * 3.0 + 10.0).min(input.timeout),
        ..input.clone()
    };
    let cases = [
        (
            input,
            InitVariant::Exit,
            BootFailure::Panic,
            "Attempted to kill init",
        ),
        (
            &hang,
            InitVariant::Hang,
            BootFailure::Timeout,
            "init started",
        ),
        (
            input,
            InitVariant::Silent,
            BootFailure::NoMarker,
            "init started",
        ),
    ];
    let mut wrong = Vec::new();
    for (input, variant, expected, message) in cases {
        let report = boot::boot_with_init_variant(input, variant)?;
        print_summary(&report);
        // The exit code follows from the failure, so the failure is what to compare.
        if report.failure != Some(expected) || !report.message.contains(message) {
            wrong.push(format!(
                "init {variant}: expected {expected} (exit {}) with {message:?}, got {} (exit {}): {}",
                boot_exit_code(Some(expected)),
                judge::outcome(report.failure),
                boot_exit_code(report.failure),
                report.message
            ));
        }
    }
    ensure!(
        wrong.is_empty(),
        "failure modes not told apart:\n{}",
        wrong.join("\n")
    );
    Ok(())
}
