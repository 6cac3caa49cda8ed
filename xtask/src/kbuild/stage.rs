//! The stages of a build, in order, and how Kbuild is asked for each plan.
//!
//! A dry run prints only what is out of date, and some recipes are expanded
//! from files that earlier stages write (modpost reads `vmlinux.o`; the x86
//! image recipes embed file sizes with `$(shell ...)`). So a stage is planned
//! when the build reaches it, after the stages it reads from have run;
//! planning runs no step but the prepare stage's ([`Planning`]). Native
//! stages are the xtask's own work.

use std::{
    collections::HashSet,
    fs,
    path::{Path, PathBuf},
};

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::{dry_run, plan_tree::PlanTree, Kbuild, Step};
use crate::{kconfig::DotConfig, target::Arch};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// `make -n prepare0`, then `make -n prepare`, in the plan tree, each
    /// run as soon as it is planned: what comes after reads what it makes.
    Prepare,
    /// `make -n vmlinux [modules]` in the plan tree: the prepare stage, every
    /// compile and archive (planned with configure).
    Compile,
    /// Native: the initcall-order linker script from the archives' link order.
    InitcallOrder,
    /// `vmlinux_o`: the LTO link of the archives, then objtool. Under
    /// ThinLTO its link step becomes the three stages below.
    VmlinuxO,
    /// ThinLTO: the thin link, which writes the index shards (`lto::thin`).
    ThinLink,
    /// ThinLTO: one backend per bitcode object.
    Backends,
    /// ThinLTO: `ld -r` of the native objects, then objtool.
    FinalLink,
    /// modpost, and `init/version-timestamp.o` that link-vmlinux.sh would build.
    Modpost,
    /// `.vmlinux.export.o`, compiled from what modpost wrote.
    Export,
    /// The tree's own link-vmlinux.sh and postlink pass (kallsyms passes,
    /// final link, System.map, sorttable, relocations), as one native step.
    Vmlinux,
    /// Makefile.modfinal's compiles: each module's `.mod.o` (and
    /// `.module-common.o`, since 6.10).
    Modfinal,
    /// Native: the `.ko` links, Makefile.modfinal's own command for each.
    Modules,
    /// The boot image, round N: re-planned until a round plans what the
    /// round before it ran.
    ImageRound(u8),
    /// The boot image as the rounds settled it: what a rebuild for the same
    /// `vmlinux` runs.
    Image,
}

impl Stage {
    /// The name of the stage's plan file and progress label.
    pub fn file_name(self) -> String {
        match self {
            Stage::ImageRound(round) => format!("image-round-{round}"),
            other => serde_json::to_value(other)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
        }
    }
}

/// Outputs of the link stages, moved aside while their stage is planned.
const VMLINUX_O_OUTPUTS: &[&str] = &["vmlinux.o", "modules.builtin.modinfo", "modules.builtin"];
const MODPOST_OUTPUTS: &[&str] = &[
    "vmlinux.symvers",
    "Module.symvers",
    "modules-only.symvers",
    ".vmlinux.export.c",
    ".vmlinux.export.o",
    "init/version-timestamp.o",
];

/// The compile plan, made in a fresh plan tree in parts: the prepare
/// stage's parts run in the real tree before the next part is planned,
/// because make reads some of their outputs while it reads its Makefiles
/// (arm64's `-mstack-protector-guard-offset=` comes from `asm-offsets.h`,
/// which `prepare0` makes, and the vDSO that `prepare` builds is compiled
/// with it).
pub struct Planning {
    tree: PlanTree,
    /// Every step planned so far, in order.
    steps: Vec<Step>,
    /// How many of `steps` have their outputs in the plan tree: each part's
    /// outputs are brought in once, after it ran.
    brought_in: usize,
    /// Parallel sub-makes of each dry run.
    jobs: usize,
}

impl Planning {
    pub fn start(kbuild: &Kbuild, jobs: usize) -> Result<Planning> {
        Ok(Planning {
            tree: PlanTree::create(kbuild)?,
            steps: Vec::new(),
            brought_in: 0,
            jobs,
        })
    }

    /// Plans `goals` beside what is planned so far, whose outputs stand in
    /// the plan tree as the real tree has them now (some compiles need a
    /// file another make invocation of the prepare stage makes: arm64's
    /// `vdso-wrap.o` needs `vdso/vdso.so`, a `.dtb.o` needs `scripts/dtc/dtc`;
    /// without it a dry run finds "no rule"); returns the new steps.
    pub fn plan(&mut self, kbuild: &Kbuild, goals: &[&str]) -> Result<Vec<Step>> {
        self.tree
            .bring_in(&self.steps[self.brought_in..], &kbuild.objtree)?;
        self.brought_in = self.steps.len();
        let planned = self.tree.into_real(
            &self.tree.kbuild.dry_run(goals, self.jobs)?,
            &kbuild.objtree,
        )?;
        // Kbuild makes object directories while it reads its Makefiles.
        self.tree.mirror_dirs(&kbuild.objtree)?;
        let made: HashSet<&str> = self.steps.iter().map(|s| s.output.as_str()).collect();
        let new: Vec<Step> = planned
            .into_iter()
            .filter(|s| !made.contains(s.output.as_str()))
            .collect();
        self.steps.extend(new.iter().cloned());
        Ok(new)
    }

    /// `make -n vmlinux [modules]`, once the prepare stage ran: every compile
    /// and archive, however warm the real tree is. Without `vmlinux.a` the
    /// dry run stops at `vmlinux_o`; that matters, because Makefile.vmlinux's
    /// link recipe is marked `+` and make would run it even under `-n`.
    /// Returns every step planned, the prepare stage's first.
    pub fn finish(mut self, kbuild: &Kbuild) -> Result<Vec<Step>> {
        let config = DotConfig::read(&kbuild.objtree.join(".config"))?;
        // With modules, one descent compiles built-in and modular objects alike.
        let goals: &[&str] = if config.get("MODULES") == Some("y") {
            &["vmlinux", "modules"]
        } else {
            &["vmlinux"]
        };
        self.plan(kbuild, goals)?;
        if self.tree.kbuild.objtree.join("vmlinux").exists() {
            bail!("make linked vmlinux during a dry run; refusing to use this plan");
        }
        if !self.steps.iter().any(|s| s.output == "vmlinux.a") {
            bail!("Kbuild's dry run of vmlinux planned no vmlinux.a");
        }
        Ok(self.steps)
    }
}

/// The parts of the prepare stage, in order: `prepare0` makes what the
/// arch's own `prepare` hooks read (`asm-offsets.h`, `bounds.h`).
pub const PREPARE_PARTS: &[&str] = &["prepare0", "prepare"];

/// `vmlinux_o` once the archives exist: the LTO link with objtool.
pub fn plan_vmlinux_o(kbuild: &Kbuild, env: &Env, earlier: &[Step]) -> Result<Vec<Step>> {
    let _aside = Aside::new(&kbuild.objtree, VMLINUX_O_OUTPUTS);
    // The top Makefile's `vmlinux_o` is this sub-make; asked directly, with
    // the environment the top Makefile exports, make skips re-reading the
    // top Makefile and its hundred compiler probes (seconds per stage).
    let steps =
        dry_run::parse(&kbuild.dry_run_in_objtree(env, "scripts/Makefile.vmlinux_o", &[])?);
    link_steps(steps, earlier, "vmlinux.o")
}

/// modpost (Makefile.modpost looks for `vmlinux.o` when it is read) and
/// `init/version-timestamp.o`, once `vmlinux.o` exists: the sub-makes the top
/// Makefile's `modpost` and `link-vmlinux.sh` run.
pub fn plan_modpost(
    kbuild: &Kbuild,
    env: &Env,
    earlier: &[Step],
    modules: bool,
) -> Result<Vec<Step>> {
    let _aside = Aside::new(&kbuild.objtree, MODPOST_OUTPUTS);
    // KBUILD_MODULES=1 is what `make modules` sets; without it modpost ignores modules.order.
    let modpost: &[&str] = if modules { &["KBUILD_MODULES=1"] } else { &[] };
    let mut steps =
        dry_run::parse(&kbuild.dry_run_in_objtree(env, "scripts/Makefile.modpost", modpost)?);
    steps.extend(dry_run::parse(&kbuild.dry_run_in_objtree(
        env,
        "scripts/Makefile.build",
        &["obj=init", "init/version-timestamp.o"],
    )?));
    link_steps(steps, earlier, "init/version-timestamp.o")
}

/// `.vmlinux.export.o`: modpost wrote `.vmlinux.export.c`; Makefile.vmlinux compiles it.
pub fn plan_export(kbuild: &Kbuild, env: &Env) -> Result<Vec<Step>> {
    let _aside = Aside::new(&kbuild.objtree, &[".vmlinux.export.o"]);
    Ok(dry_run::parse(&kbuild.dry_run_in_objtree(
        env,
        "scripts/Makefile.vmlinux",
        &[".vmlinux.export.o"],
    )?))
}

/// The final link as the tree itself does it: Makefile.vmlinux's
/// `cmd_link_vmlinux`, which runs the tree's `scripts/link-vmlinux.sh` (the
/// kallsyms passes, System.map, sorttable; BTF) and then the arch's
/// postlink pass (x86's relocation table). Each kernel version brings its
/// own script and helpers, so nothing here follows a version. The recipe is
/// marked `+`, so make is asked for the command rather than a dry run.
pub fn plan_vmlinux(kbuild: &Kbuild, env: &Env) -> Result<Vec<Step>> {
    // Kbuild exports LDFLAGS_vmlinux to this sub-make only.
    let ldflags = env.get("XTASK_LDFLAGS_vmlinux").map_or("", String::as_str);
    let command = kbuild.recipe_command(
        env,
        "scripts/Makefile.vmlinux",
        &[format!("LDFLAGS_vmlinux={ldflags}")],
        "link_vmlinux",
        "vmlinux",
        "scripts/link-vmlinux.sh",
    )?;
    Ok(vec![Step::new("LD", false, "vmlinux", &command)])
}

/// Makefile.modfinal's compiles of `goals` (`link::modules::Modfinal::compiled`).
pub fn plan_modfinal(kbuild: &Kbuild, env: &Env, goals: &[String]) -> Result<Vec<Step>> {
    let _aside = Aside::new(&kbuild.objtree, goals);
    let goals: Vec<&str> = goals.iter().map(String::as_str).collect();
    Ok(dry_run::parse(&kbuild.dry_run_in_objtree(
        env,
        "scripts/Makefile.modfinal",
        &goals,
    )?))
}

/// The boot image: what the arch Makefile's `$(build)=arch/*/boot` recursion
/// would run, planned with the same environment once vmlinux exists. All of
/// it (`-B`), in make's order: make's timestamps say little in a tree the
/// cache keeps up to date, and a complete plan runs the same way every time.
///
/// Except x86's round 0, which is only `compressed/vmlinux.bin`: the
/// payload's recipe appends that file's size, which `size_append` reads with
/// `$(shell ...)` when make expands it. Planned before the file exists, the
/// payload comes out wrong, and the next round redoes it and the ten steps
/// after it.
pub fn plan_image(kbuild: &Kbuild, env: &Env, arch: Arch, round: u8) -> Result<Vec<Step>> {
    let (dir, goal) = match (arch, round) {
        (Arch::X86_64, 0) => (
            "arch/x86/boot/compressed",
            "arch/x86/boot/compressed/vmlinux.bin",
        ),
        (Arch::X86_64, _) => ("arch/x86/boot", "arch/x86/boot/bzImage"),
        (Arch::Arm64, _) => ("arch/arm64/boot", "arch/arm64/boot/Image"),
    };
    Ok(dry_run::parse(&kbuild.full_dry_run_in_objtree(
        env,
        "scripts/Makefile.build",
        &[&format!("obj={dir}"), goal],
    )?))
}

type Env = std::collections::BTreeMap<String, String>;

/// Outputs moved aside while a dry run plans the steps that make them: make
/// prints the recipe of a target it finds missing. Put back when dropped, so
/// that the cache finds them as their steps left them and a re-plan reruns
/// nothing (deleting them instead made every re-plan of modfinal recompile
/// each module's `.mod.o`); after a crash in between they are missing, and
/// their steps rerun.
struct Aside {
    moved: Vec<(PathBuf, PathBuf)>,
}

impl Aside {
    fn new(objtree: &Path, outputs: &[impl AsRef<str>]) -> Aside {
        let moved = outputs
            .iter()
            .map(|output| {
                let path = objtree.join(output.as_ref());
                let aside = path.with_file_name(format!(
                    ".{}.xtask-aside",
                    path.file_name().unwrap().to_string_lossy()
                ));
                (path, aside)
            })
            .filter(|(path, aside)| fs::rename(path, aside).is_ok())
            .collect();
        Aside { moved }
    }
}

impl Drop for Aside {
    fn drop(&mut self) {
        for (path, aside) in &self.moved {
            let _ = fs::rename(aside, path);
        }
    }
}

/// Drops the initcall order (native) and every step whose output an earlier
/// stage makes: a dry run re-prints a link whose `.cmd` record differs from
/// its own recipe (the xtask's ThinLTO `vmlinux.o`), and that output is not
/// this stage's to make. Insists on the stage's own output.
fn link_steps(steps: Vec<Step>, earlier: &[Step], required: &str) -> Result<Vec<Step>> {
    let made: HashSet<&str> = earlier.iter().map(|s| s.output.as_str()).collect();
    let kept: Vec<Step> = steps
        .into_iter()
        .filter(|s| s.output != ".tmp_initcalls.lds" && !made.contains(s.output.as_str()))
        .collect();
    if !kept.iter().any(|s| s.output == required) {
        bail!("Kbuild's dry run of the link stage planned no {required}");
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_stage_keeps_only_outputs_no_earlier_stage_makes() {
        let earlier = [Step::new(
            "LD",
            false,
            "vmlinux.o",
            "ld.lld -r -o vmlinux.o .xtask/thin/init/main.o",
        )];
        let printed = vec![
            Step::new(
                "LD",
                false,
                "vmlinux.o",
                "ld.lld -r -o vmlinux.o --whole-archive vmlinux.a",
            ),
            Step::new(
                "GEN",
                false,
                ".tmp_initcalls.lds",
                "perl generate_initcall_order.pl",
            ),
            Step::new(
                "MODPOST",
                false,
                "vmlinux.symvers",
                "scripts/mod/modpost vmlinux.o",
            ),
        ];
        let kept = link_steps(printed.clone(), &earlier, "vmlinux.symvers").unwrap();
        assert_eq!(kept, [printed[2].clone()]);
        assert!(link_steps(printed, &earlier, "init/version-timestamp.o").is_err());
    }

    #[test]
    fn stage_names_are_stable_file_names() {
        assert_eq!(Stage::VmlinuxO.file_name(), "vmlinux_o");
        assert_eq!(Stage::InitcallOrder.file_name(), "initcall_order");
        assert_eq!(Stage::ImageRound(2).file_name(), "image-round-2");
        assert_eq!(Stage::Image.file_name(), "image");
    }

    #[test]
    fn outputs_are_aside_only_while_make_plans() {
        let objtree = tempfile::tempdir().unwrap();
        let module = objtree.path().join("fs/fat/fat.mod.o");
        fs::create_dir_all(module.parent().unwrap()).unwrap();
        fs::write(&module, b"module bytes").unwrap();
        let mtime = fs::metadata(&module).unwrap().modified().unwrap();
        {
            let _aside = Aside::new(objtree.path(), &["fs/fat/fat.mod.o", "absent.mod.o"]);
            assert!(!module.exists(), "make must find the output missing");
        }
        assert_eq!(fs::read(&module).unwrap(), b"module bytes");
        assert_eq!(fs::metadata(&module).unwrap().modified().unwrap(), mtime);
        assert!(!objtree.path().join("absent.mod.o").exists());
        let left: Vec<_> = fs::read_dir(module.parent().unwrap()).unwrap().collect();
        assert_eq!(left.len(), 1, "nothing left aside");
    }
}
