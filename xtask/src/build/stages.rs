//! The stages after planning, in the order they run: compiled → `vmlinux.o`
//! (thin or full) → `vmlinux` → modules → image. Each is planned when the
//! build reaches it, from what the stages before it made, and its plan is
//! kept in `.xtask/` under the key that decides it.

use anyhow::{Context, Result};

use super::{pipeline::Pipeline, planned::Planned};
use crate::{
    engine::{cache::Cache, fork_server::ForkServer, shared::SharedCache},
    kbuild::{
        bundle::Bundle,
        plan::{self, StagePlans},
        stage::{self, Stage},
        Step,
    },
    kconfig::DotConfig,
    link::{self, modules::Modfinal, vmlinux::VmlinuxLink},
    lto::thin,
    render::{self, Notice},
    report::PlanFrom,
    target::{Lto, Target},
};

/// A planned tree on its way through the stages.
pub(super) struct Stages<'a> {
    pub target: &'a Target,
    pub planned: &'a Planned,
    pub cache: &'a Cache,
    pub plans: &'a StagePlans,
    pub fork_server: &'a ForkServer,
    pub pipeline: Pipeline<'a>,
}

impl Stages<'_> {
    /// Every object of the compile plan; each step keyed by its own inputs.
    pub fn compiled(&mut self) -> Result<()> {
        self.pipeline
            .run(Stage::Compile, self.planned.plan.compile.clone())
    }

    /// `vmlinux.o`. Under LTO the initcall order is read from this build's
    /// archives first. ThinLTO runs as graph steps: the thin link, one
    /// backend per bitcode object, the final link. Returns why each backend
    /// ran, under ThinLTO.
    pub fn vmlinux_o(&mut self) -> Result<Option<Vec<thin::BackendRun>>> {
        let Planned {
            objtree,
            kbuild,
            plan,
            toolchain,
            ..
        } = self.planned;
        let env = &plan.env;
        if self.target.lto.is_lto() {
            let archives = archives(env);
            let nm = toolchain.tool("llvm-nm");
            self.pipeline.native(
                ".tmp_initcalls.lds",
                link::initcalls::COMMAND,
                &archives,
                || link::initcalls::write(objtree, &nm, &archives),
            )?;
        }
        let steps = self.plans.get(Stage::VmlinuxO, &plan.key, || {
            stage::plan_vmlinux_o(kbuild, env, &self.pipeline.steps)
        })?;
        let (Lto::Thin, Some(lto_flags)) = (self.target.lto, self.pipeline.setup.lto_flags) else {
            self.pipeline.run(Stage::VmlinuxO, steps)?;
            return Ok(None);
        };
        let (link, rest): (Vec<Step>, Vec<Step>) =
            steps.into_iter().partition(|s| s.output == "vmlinux.o");
        let link = link.first().context("Kbuild planned no vmlinux.o link")?;
        let link = thin::KbuildLink::parse(link, env.get("LD").map_or("ld.lld", String::as_str))?;
        let members = thin::Members::read(objtree, &toolchain.tool("llvm-ar"), &link)?;
        self.pipeline
            .run(Stage::ThinLink, vec![thin::thin_link(&link, &members)])?;
        let indexed = thin::indexed(objtree)?;
        let key = thin::backends_key(&indexed, lto_flags, &self.pipeline.steps);
        let backends = self.plans.get(Stage::Backends, &key, || {
            thin::backends(objtree, &indexed, lto_flags)
        })?;
        self.pipeline.run(Stage::Backends, backends)?;
        if let Some(why) = self.fork_server.failure() {
            render::notice(Notice::Warning(format!(
                "the ThinLTO backends ran as separate processes: {why}"
            )));
        }
        let backends = thin::why(objtree, &self.cache.ran());
        self.pipeline.run(
            Stage::FinalLink,
            vec![thin::final_link(objtree, &link, &members, &indexed)?],
        )?;
        self.pipeline.run(Stage::VmlinuxO, rest)?;
        Ok(Some(backends))
    }

    /// `vmlinux`: modpost, the module exports when modules are on, and
    /// the xtask's own link. Returns whether modules are on.
    pub fn vmlinux(&mut self) -> Result<bool> {
        let Planned {
            objtree,
            kbuild,
            plan,
            ..
        } = self.planned;
        let env = &plan.env;
        let config = DotConfig::read(&objtree.join("include/config/auto.conf"))?;
        let modules = config.get("MODULES") == Some("y");
        let steps = self.plans.get(Stage::Modpost, &plan.key, || {
            stage::plan_modpost(kbuild, env, &self.pipeline.steps, modules)
        })?;
        self.pipeline.run(Stage::Modpost, steps)?;
        if modules {
            let steps = self
                .plans
                .get(Stage::Export, &plan.key, || stage::plan_export(kbuild, env))?;
            self.pipeline.run(Stage::Export, steps)?;
        }
        let steps = self.plans.get(Stage::Vmlinux, &plan.key, || {
            stage::plan_vmlinux(kbuild, env)
        })?;
        let link = VmlinuxLink::new(objtree, env, &steps)?;
        self.pipeline
            .native("vmlinux", &link.key_command(), &link.inputs(), || {
                link.run()
            })?;
        Ok(modules)
    }

    /// The `.ko` files: modfinal's compiles, then the xtask's own links,
    /// keyed by the plan and the list of modules.
    pub fn modules(&mut self) -> Result<()> {
        let Planned {
            objtree,
            kbuild,
            plan,
            ..
        } = self.planned;
        let env = &plan.env;
        let srcarch = env.get("SRCARCH").map_or("", String::as_str);
        let modfinal = Modfinal::read(&kbuild.srctree, objtree, srcarch)?;
        let list = modfinal.modules.join("\n");
        let key = plan::key(&[("plan", &plan.key), ("modules", &list)]);
        let steps = self.plans.get(Stage::Modfinal, &key, || {
            stage::plan_modfinal(kbuild, env, &modfinal.compiled())
        })?;
        self.pipeline.run(Stage::Modfinal, steps)?;
        let links = self
            .plans
            .get(Stage::Modules, &key, || modfinal.plan(kbuild, env))?;
        for ko in &links {
            self.pipeline
                .native(&ko.output, &ko.command, &ko.inputs, || {
                    link::modules::link(objtree, env, ko)
                })?;
        }
        Ok(())
    }

    /// The boot image, keyed by `vmlinux`: the rounds that settled last
    /// time, or `link::image::settle` to find them.
    pub fn image(&mut self) -> Result<()> {
        let Planned { kbuild, .. } = self.planned;
        let vmlinux = self.cache.output_hash("vmlinux");
        if let Some(steps) = self.plans.stored_for(Stage::Image, &vmlinux) {
            return self.pipeline.run(Stage::Image, steps);
        }
        let (plans, arch) = (self.plans, self.target.arch);
        let pipeline = &mut self.pipeline;
        let env = pipeline.env;
        let settled = link::image::settle(
            |round, outputs| {
                let key = plan::key(&[("vmlinux", &vmlinux), ("previous round", outputs)]);
                plans.get(Stage::ImageRound(round), &key, || {
                    stage::plan_image(kbuild, env, arch, round)
                })
            },
            |round, steps| {
                pipeline.run(Stage::ImageRound(round), steps.to_vec())?;
                Ok(pipeline.outputs_key(steps))
            },
        )?;
        self.plans.store(Stage::Image, &vmlinux, &settled)
    }

    /// Every stage is planned now: a tree that planned shares its plans, and
    /// so does one that resumes a build killed before it could.
    pub fn share(&self, shared: &SharedCache) -> Result<()> {
        let Planned {
            objtree,
            plan,
            plan_from,
            ..
        } = self.planned;
        let share = match plan_from {
            PlanFrom::Planned | PlanFrom::Kept => true,
            PlanFrom::Tree => !Bundle::shared_as(objtree, &plan.key),
            PlanFrom::SharedCache => false,
        };
        if share && shared.store_document(&plan.key, &Bundle::collect(objtree)?.to_bytes()?) {
            Bundle::mark_shared(objtree, &plan.key)?;
        }
        Ok(())
    }
}

/// `vmlinux.a` and `KBUILD_VMLINUX_LIBS`, in link order.
fn archives(env: &std::collections::BTreeMap<String, String>) -> Vec<String> {
    let mut list = vec!["vmlinux.a".to_string()];
    list.extend(
        env.get("KBUILD_VMLINUX_LIBS")
            .into_iter()
            .flat_map(|l| l.split_whitespace().map(String::from)),
    );
    list
}
