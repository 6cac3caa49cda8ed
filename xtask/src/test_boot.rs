//! `cargo xtask test-boot`: build if needed (a no-op when up to date), then
//! boot each requested firmware in QEMU and judge the proofs.

use std::{path::PathBuf, time::Duration};

use anyhow::Result;
use serde::Serialize;

use crate::{
    boot::{self, BootInput, BootReport, Firmware, Outcome},
    build::{self, Built, Options},
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
    outcome: String,
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
    }
}

/// Boots one target on each firmware; the outcome of the first failure, or a pass.
pub fn run(
    target: &Target,
    options: &Options,
    firmwares: &[Firmware],
    timeout: Duration,
) -> Result<Outcome> {
    toolchain::ensure_tools(&[Tools::Boot(target.arch)])?;
    let built = build::build(target, options)?;
    let mut reports = Vec::new();
    for &firmware in firmwares {
        let report = boot::boot(&input(&built, firmware, timeout))?;
        boot::print_summary(&report);
        reports.push(report);
    }
    let failed = reports.iter().find(|r| r.exit_code() != 0);
    let combined = Combined {
        arch: target.arch,
        lto: target.lto,
        config: target.config.to_string(),
        firmware: firmwares.to_vec(),
        accel: reports.iter().map(|r| r.accel.to_string()).collect(),
        outcome: failed.map_or("pass".to_string(), |r| r.outcome.to_string()),
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
    Ok(failed.map_or(Outcome::Pass, |r| r.outcome))
}
