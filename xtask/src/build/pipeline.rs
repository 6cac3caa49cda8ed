//! Runs stages: planned steps through the LTO policy and the scheduler,
//! native stages through the cache. Collects what ran, the decisions and
//! the counts.

use std::{collections::BTreeMap, path::Path};

use anyhow::Result;

use crate::{
    engine::{
        cache::Cache,
        event::Counts,
        fork_server::ForkServer,
        graph::Graph,
        launcher::Launcher,
        native::{self, Native},
        scheduler::Runner,
        shared::SharedCache,
        trace::Trace,
    },
    kbuild::{plan, stage::Stage, Step},
    lto::{
        policy::{self, Decision},
        thin,
    },
    report::{self, Stopwatch},
};

pub(super) struct Pipeline<'a> {
    pub objtree: &'a Path,
    pub env: &'a BTreeMap<String, String>,
    cache: &'a Cache,
    pub setup: Setup<'a>,
    pub decisions: Vec<Decision>,
    pub steps: Vec<Step>,
    pub counts: Counts,
    pub stages: Vec<report::StageRun>,
}

/// How a pipeline runs its steps, whatever tree and plan.
#[derive(Clone, Copy)]
pub(super) struct Setup<'a> {
    pub jobs: usize,
    pub policy: &'a kernel_manifest::Policy,
    pub lto_flags: Option<&'a str>,
    pub launcher: Option<&'a Launcher>,
    pub shared: Option<&'a SharedCache>,
    pub fork_server: Option<&'a ForkServer>,
    pub trace: Option<&'a Trace>,
}

impl<'a> Pipeline<'a> {
    pub fn new(
        objtree: &'a Path,
        env: &'a BTreeMap<String, String>,
        cache: &'a Cache,
        setup: Setup<'a>,
    ) -> Self {
        Pipeline {
            objtree,
            env,
            cache,
            setup,
            decisions: Vec::new(),
            steps: Vec::new(),
            counts: Counts::default(),
            stages: Vec::new(),
        }
    }

    /// Stage runs made elsewhere (the prepare stage, run while planning), in order.
    pub fn adopt(&mut self, runs: Vec<report::StageRun>) {
        for run in runs {
            self.counts += run.counts;
            self.stages.push(run);
        }
    }

    pub fn into_stage_runs(self) -> Vec<report::StageRun> {
        self.stages
    }

    pub fn run(&mut self, stage: Stage, mut steps: Vec<Step>) -> Result<()> {
        self.decisions.extend(policy::apply(
            &mut steps,
            self.setup.policy,
            self.setup.lto_flags,
        ));
        let label = stage.file_name();
        let runner = Runner {
            objtree: self.objtree,
            env: self.env,
            jobs: self.setup.jobs,
            cache: self.cache,
            label: &label,
            launcher: self.setup.launcher,
            shared: self.setup.shared,
            fork_server: self.setup.fork_server,
            after_run: Some(&|step, hash| thin::after_run(self.objtree, step, hash)),
        };
        let stopwatch = Stopwatch::start();
        let forked = self.setup.fork_server.map_or(0.0, ForkServer::cpu_seconds);
        let counts = runner.run_traced(&steps, &Graph::new(&steps), self.setup.trace)?;
        self.counts += counts;
        let (seconds, cpu_seconds) = stopwatch.elapsed();
        let forked = self.setup.fork_server.map_or(0.0, ForkServer::cpu_seconds) - forked;
        let cpu_seconds = cpu_seconds + forked;
        self.stages.push(report::StageRun {
            stage,
            counts,
            seconds,
            cpu_seconds,
        });
        self.steps.extend(steps);
        Ok(())
    }

    /// A step the xtask runs itself (`run`), cached like any other.
    pub fn native(
        &mut self,
        output: &str,
        command: &str,
        inputs: &[String],
        run: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        let start = self.setup.trace.map(Trace::now);
        let status = native::step(self.cache, output, command, inputs, run)?;
        if let (Some(trace), Some(start)) = (self.setup.trace, start) {
            trace.native(output, start, status == Native::Cached);
        }
        self.counts.planned += 1;
        match status {
            Native::Ran => self.counts.executed += 1,
            Native::Cached => self.counts.cached += 1,
        }
        Ok(())
    }

    /// The outputs of `steps` as they are now, for keying what is planned from them.
    pub fn outputs_key(&self, steps: &[Step]) -> String {
        let hashes: Vec<String> = steps
            .iter()
            .map(|s| format!("{}={}", s.output, self.cache.output_hash(&s.output)))
            .collect();
        plan::key(&[("outputs", &hashes.join("\n"))])
    }
}
