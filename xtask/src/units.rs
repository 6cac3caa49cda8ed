//! `cargo xtask units`: every build unit and its LTO policy, with the reason,
//! and after a build the number of bitcode and ELF objects it produced.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::{
    build::{self, Options},
    kbuild::plan::StagePlans,
    lto::policy::{self, LtoState, Unit},
    target::Target,
};

/// What `units --json` prints.
#[derive(Debug, Serialize, Deserialize)]
pub struct Listing {
    pub target: String,
    pub built: bool,
    pub units: Vec<Unit>,
    /// Every rule of the policy, including those whose unit this config does not build.
    pub rules: Vec<Rule>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Rule {
    pub spec: String,
    pub reason: String,
    pub source: String,
}

/// The units of a target as planned, with object formats if it was built.
fn units(target: &Target, options: &Options) -> Result<(Vec<Unit>, kernel_manifest::Policy)> {
    let planned = build::plan_only(target, options)?;
    let mut steps = planned.plan.compile.clone();
    steps.extend(StagePlans::open(&planned.objtree)?.stored()?);
    let decisions = policy::apply(&mut steps, &planned.policy, planned.lto_flags.as_deref());
    Ok((
        policy::verify(&planned.objtree, &decisions).0,
        planned.policy,
    ))
}

pub fn run(target: &Target, options: &Options, json: bool) -> Result<()> {
    let (units, policy) = units(target, options)?;
    let built = units.iter().any(|u| u.bitcode + u.elf > 0);
    if json {
        let rules = policy
            .rules()
            .iter()
            .map(|r| Rule {
                spec: r.spec(),
                reason: r.reason.clone(),
                source: policy::origin(&r.origin),
            })
            .collect();
        let listing = Listing {
            target: target.name(),
            built,
            units,
            rules,
        };
        println!("{}", serde_json::to_string_pretty(&listing)?);
        return Ok(());
    }
    print!("{}", table(&units, built));
    if !built {
        println!("(not built yet: `cargo xtask build` fills in the bitcode/ELF counts)");
    }
    Ok(())
}

/// The terminal table: opted-out units first, then the rest.
pub fn table(units: &[Unit], built: bool) -> String {
    let width = units.iter().map(|u| u.path.len()).max().unwrap_or(4).max(4);
    let mut out = format!(
        "{:<width$}  {:>4}  {:<3}  {:>7}  {:>4}  {:<24}  REASON\n",
        "UNIT", "OBJS", "LTO", "BITCODE", "ELF", "SOURCE"
    );
    let mut sorted: Vec<&Unit> = units.iter().collect();
    sorted.sort_by_key(|u| (u.lto == LtoState::On, u.path.clone()));
    for unit in sorted {
        let (bitcode, elf) = if built {
            (unit.bitcode.to_string(), unit.elf.to_string())
        } else {
            ("-".into(), "-".into())
        };
        out += &format!(
            "{:<width$}  {:>4}  {:<3}  {:>7}  {:>4}  {:<24}  {}\n",
            if unit.path.is_empty() {
                "."
            } else {
                &unit.path
            },
            unit.objects,
            unit.lto,
            bitcode,
            elf,
            unit.source,
            unit.reason
        );
        for exception in &unit.exceptions {
            out += &format!(
                "{:<width$}  {:>4}  {:<3}  {:>7}  {:>4}  {:<24}  {}\n",
                format!(
                    "  {}",
                    exception.object.rsplit('/').next().unwrap_or_default()
                ),
                1,
                LtoState::from(exception.lto),
                "",
                "",
                exception.source,
                exception.reason
            );
        }
    }
    out
}
