//! Execute: run the steps of a graph on a worker pool, critical path first,
//! skipping what the cache proves unchanged.
//!
//! Rayon has no notion of priority, and the order in which ready steps start
//! decides the wall time of a 2-core kernel build; a heap of ready steps behind
//! a mutex and a condition variable is all the scheduler needs.

use std::{
    collections::{BTreeMap, BinaryHeap, HashSet},
    path::Path,
    process::{Command, Stdio},
    sync::{Condvar, Mutex},
    time::{Duration, Instant},
};

use anyhow::{anyhow, Result};
use indicatif::{ProgressBar, ProgressStyle};

use crate::{
    engine::{
        cache::{self, Cache, Record},
        graph::{self, Graph},
    },
    kbuild::Step,
};

/// How a phase went.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Counts {
    pub planned: usize,
    pub executed: usize,
    pub cached: usize,
}

/// A step that failed: the unit, the command and what it printed.
#[derive(Debug)]
pub struct StepFailed {
    pub unit: String,
    pub output: String,
    pub command: String,
    pub log: String,
}

impl std::fmt::Display for StepFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = if self.unit.is_empty() { "." } else { &self.unit };
        write!(
            f,
            "building {} failed in unit {unit}\n  command: {}\n--- output ---\n{}",
            self.output,
            self.command.trim(),
            self.log.trim_end()
        )
    }
}

impl std::error::Error for StepFailed {}

/// The environment and tree the steps run in.
pub struct Runner<'a> {
    pub objtree: &'a Path,
    pub env: &'a BTreeMap<String, String>,
    pub jobs: usize,
    pub cache: &'a Cache,
    pub label: &'a str,
}

struct State {
    ready: BinaryHeap<(u64, std::cmp::Reverse<usize>)>,
    waiting: Vec<usize>,
    running: usize,
    done: usize,
    failure: Option<StepFailed>,
    counts: Counts,
}

impl Runner<'_> {
    pub fn run(&self, steps: &[Step], graph: &Graph) -> Result<Counts> {
        let n = steps.len();
        let mut state = State {
            ready: BinaryHeap::new(),
            waiting: graph.deps.iter().map(Vec::len).collect(),
            running: 0,
            done: 0,
            failure: None,
            counts: Counts { planned: n, ..Counts::default() },
        };
        for i in 0..n {
            if state.waiting[i] == 0 {
                state.ready.push((graph.priority[i], std::cmp::Reverse(i)));
            }
        }
        let bar = progress_bar(n as u64, self.label);
        let shared = (Mutex::new(state), Condvar::new());
        let phase_outputs: HashSet<&str> = steps.iter().map(|s| s.output.as_str()).collect();
        std::thread::scope(|scope| {
            for _ in 0..self.jobs.max(1) {
                scope.spawn(|| self.worker(steps, graph, &phase_outputs, &shared, &bar));
            }
        });
        bar.finish_and_clear();
        self.cache.save()?;
        let state = shared.0.into_inner().unwrap();
        if let Some(failure) = state.failure {
            return Err(failure.into());
        }
        if state.done != n {
            return Err(anyhow!("{} of {n} steps never became ready: the graph has a cycle", n - state.done));
        }
        Ok(state.counts)
    }

    fn worker(
        &self,
        steps: &[Step],
        graph: &Graph,
        phase_outputs: &HashSet<&str>,
        shared: &(Mutex<State>, Condvar),
        bar: &ProgressBar,
    ) {
        let (lock, cvar) = shared;
        loop {
            let i = {
                let mut state = lock.lock().unwrap();
                loop {
                    if state.failure.is_some() || state.done == steps.len() {
                        cvar.notify_all();
                        return;
                    }
                    if let Some((_, std::cmp::Reverse(i))) = state.ready.pop() {
                        state.running += 1;
                        break i;
                    }
                    if state.running == 0 {
                        return; // nothing ready and nothing running: a cycle, reported by run()
                    }
                    state = cvar.wait(state).unwrap();
                }
            };
            let step = &steps[i];
            let outcome = self.run_step(step, &graph.deps[i], steps, phase_outputs);
            let mut state = lock.lock().unwrap();
            state.running -= 1;
            match outcome {
                Ok(ran) => {
                    if ran {
                        state.counts.executed += 1;
                        bar.set_message(format!("{:<7} {}", step.tag, step.output));
                    } else {
                        state.counts.cached += 1;
                    }
                    state.done += 1;
                    bar.inc(1);
                    for &r in &graph.rdeps[i] {
                        state.waiting[r] -= 1;
                        if state.waiting[r] == 0 {
                            state.ready.push((graph.priority[r], std::cmp::Reverse(r)));
                        }
                    }
                }
                Err(failure) => {
                    if state.failure.is_none() {
                        state.failure = Some(failure);
                    }
                }
            }
            cvar.notify_all();
        }
    }

    /// Runs one step unless the cache proves it unchanged; true when it ran.
    fn run_step(
        &self,
        step: &Step,
        deps: &[usize],
        steps: &[Step],
        phase_outputs: &HashSet<&str>,
    ) -> Result<bool, StepFailed> {
        // What this step waits for in its phase, and what its command names
        // from earlier phases (the archives `vmlinux.o` links, the native
        // initcall script): a change in any of them must rerun it.
        let mut upstream: Vec<String> = deps.iter().map(|&d| steps[d].output.clone()).collect();
        // Only earlier phases' outputs: in this phase the graph says what is
        // an input (a relative `printf` name may look like another output).
        upstream.extend(
            graph::tokens(&step.command)
                .filter(|t| !phase_outputs.contains(t) && self.cache.has_output(t))
                .map(String::from),
        );
        upstream.sort_unstable();
        upstream.dedup();
        if let Some(record) = self.cache.record(&step.output) {
            let key = self.cache.key(&step.command, &record.inputs, &upstream);
            let output_intact = record.output_hash == cache::ABSENT
                || self.cache.file_hash(Path::new(&step.output)) == record.output_hash;
            if key == record.key && output_intact {
                return Ok(false);
            }
        }
        let failed = |log: String| StepFailed {
            unit: step.dir().to_string(),
            output: step.output.clone(),
            command: step.command.clone(),
            log,
        };
        let out = Command::new("sh")
            .arg("-c")
            .arg(&step.command)
            .current_dir(self.objtree)
            .env_clear()
            .envs(self.env)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| failed(format!("could not start sh: {e}")))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            return Err(failed(format!("{}{stderr}", quiet(&String::from_utf8_lossy(&out.stdout)))));
        }
        if !stderr.trim().is_empty() {
            eprintln!("{}", stderr.trim_end());
        }
        let inputs = cache::cmd_file_inputs(self.objtree, &step.output);
        let record = Record {
            output: step.output.clone(),
            key: self.cache.key(&step.command, &inputs, &upstream),
            output_hash: self.cache.file_hash(Path::new(&step.output)),
            inputs,
        };
        self.cache.store(record).map_err(|e| failed(format!("recording the result: {e}")))?;
        Ok(true)
    }
}

/// Drops Kbuild's own quiet echo lines from a failed step's output.
fn quiet(stdout: &str) -> String {
    stdout.lines().filter(|l| !l.starts_with("  ")).map(|l| format!("{l}\n")).collect()
}

fn progress_bar(len: u64, label: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} {elapsed} {wide_msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(label.to_string());
    bar.enable_steady_tick(Duration::from_millis(200));
    let _ = Instant::now();
    bar
}
