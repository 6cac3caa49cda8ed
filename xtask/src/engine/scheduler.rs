//! Execute: run the steps of a graph on a worker pool, critical path first,
//! skipping what the cache proves unchanged.
//!
//! Rayon has no notion of priority, and the order in which ready steps start
//! decides the wall time of a 2-core kernel build; a heap of ready steps behind
//! a mutex and a condition variable is all the scheduler needs.
//!
//! The scheduler prints nothing: workers send `Event`s, and the caller's
//! thread hands them to a `Reporter` (by default the progress bar).

use std::{
    cmp::Reverse,
    collections::{BTreeMap, BinaryHeap, HashSet},
    path::Path,
    process::Stdio,
    sync::{mpsc, Condvar, Mutex},
};

use anyhow::{anyhow, Result};

use crate::{
    engine::{
        cache::{Cache, Record},
        cache_status::CacheStatus,
        event::{Counts, Event, Progress, Reporter},
        fork_server::ForkServer,
        graph::{self, Graph},
        inputs,
        launcher::{Launcher, Ran},
        shared::{Lookup, Seen, SharedCache},
        shell,
        trace::Trace,
    },
    kbuild::{Step, StepKind},
};

/// What a stage does after one of its steps ran and before the step's
/// record is made, given the cache's file hash: bookkeeping the step's key
/// must see (the ThinLTO backends record what they read).
pub type AfterRun<'a> = &'a (dyn Fn(&Step, &dyn Fn(&str) -> String) -> Result<()> + Sync);

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
        let unit = if self.unit.is_empty() {
            "."
        } else {
            &self.unit
        };
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
    /// Goes before the compiler of every C and assembly compile that runs.
    pub launcher: Option<&'a Launcher>,
    /// Where steps that miss locally may be restored from, and are stored.
    pub shared: Option<&'a SharedCache>,
    /// Runs the ThinLTO backends as forks of one loaded clang.
    pub fork_server: Option<&'a ForkServer>,
    pub after_run: Option<AfterRun<'a>>,
}

struct State {
    ready: BinaryHeap<(u64, Reverse<usize>)>,
    waiting: Vec<usize>,
    running: usize,
    done: usize,
    failure: Option<StepFailed>,
    counts: Counts,
}

/// How a step that did not fail ended.
enum Outcome {
    Cached,
    Restored,
    Ran {
        stderr: String,
        launched: Option<Ran>,
    },
}

impl Runner<'_> {
    /// Runs the steps with a progress bar labelled `self.label`.
    pub fn run(&self, steps: &[Step], graph: &Graph) -> Result<Counts> {
        self.run_traced(steps, graph, None)
    }

    /// The same, with every step also noted in `trace`.
    pub fn run_traced(
        &self,
        steps: &[Step],
        graph: &Graph,
        trace: Option<&Trace>,
    ) -> Result<Counts> {
        let mut progress = Progress::new(steps.len(), self.label);
        let mut stage = trace.map(|t| t.stage(self.label));
        let counts = self.run_with(steps, graph, &mut |event: Event<'_>| {
            if let Some(stage) = &mut stage {
                stage.note(&event);
            }
            progress.report(event);
        });
        progress.finish();
        counts
    }

    /// Runs the steps, handing every event to `reporter` on this thread.
    pub fn run_with(
        &self,
        steps: &[Step],
        graph: &Graph,
        reporter: &mut dyn Reporter,
    ) -> Result<Counts> {
        let n = steps.len();
        let mut state = State {
            ready: BinaryHeap::new(),
            waiting: graph.deps.iter().map(Vec::len).collect(),
            running: 0,
            done: 0,
            failure: None,
            counts: Counts {
                planned: n,
                ..Counts::default()
            },
        };
        for i in 0..n {
            if state.waiting[i] == 0 {
                state.ready.push((graph.priority[i], Reverse(i)));
            }
        }
        let shared = (Mutex::new(state), Condvar::new());
        let phase_outputs: HashSet<&str> = steps.iter().map(|s| s.output.as_str()).collect();
        let (events, received) = mpsc::channel();
        std::thread::scope(|scope| {
            for _ in 0..self.jobs.max(1) {
                let (events, shared, phase_outputs) = (events.clone(), &shared, &phase_outputs);
                scope.spawn(move || self.worker(steps, graph, phase_outputs, shared, events));
            }
            drop(events);
            // Ends when the last worker returns and drops its sender.
            for event in received {
                reporter.report(event);
            }
        });
        self.cache.save()?;
        let state = shared.0.into_inner().unwrap();
        if let Some(failure) = state.failure {
            return Err(failure.into());
        }
        if state.done != n {
            return Err(anyhow!(
                "{} of {n} steps never became ready: the graph has a cycle",
                n - state.done
            ));
        }
        Ok(state.counts)
    }

    fn worker<'s>(
        &self,
        steps: &'s [Step],
        graph: &Graph,
        phase_outputs: &HashSet<&str>,
        shared: &(Mutex<State>, Condvar),
        events: mpsc::Sender<Event<'s>>,
    ) {
        let (lock, cvar) = shared;
        // A closed channel only means the reporter is gone; the build goes on.
        let send = |event| drop(events.send(event));
        loop {
            let i = {
                let mut state = lock.lock().unwrap();
                loop {
                    if state.failure.is_some() || state.done == steps.len() {
                        cvar.notify_all();
                        return;
                    }
                    if let Some((_, Reverse(i))) = state.ready.pop() {
                        state.running += 1;
                        break i;
                    }
                    if state.running == 0 {
                        // Nothing ready and nothing running: a cycle, reported by run_with().
                        cvar.notify_all();
                        return;
                    }
                    state = cvar.wait(state).unwrap();
                }
            };
            let step = &steps[i];
            send(Event::Started { step });
            let outcome = self.run_step(step, &graph.deps[i], steps, phase_outputs);
            let mut state = lock.lock().unwrap();
            state.running -= 1;
            match outcome {
                Ok(outcome) => {
                    match outcome {
                        Outcome::Cached => {
                            state.counts.cached += 1;
                            send(Event::Cached { step });
                        }
                        Outcome::Restored => {
                            state.counts.restored += 1;
                            send(Event::Cached { step });
                        }
                        Outcome::Ran { stderr, launched } => {
                            state.counts.executed += 1;
                            state.counts.launched += usize::from(launched.is_some());
                            state.counts.fell_back += usize::from(launched == Some(Ran::FellBack));
                            send(Event::Ran { step, stderr });
                        }
                    }
                    state.done += 1;
                    for &r in &graph.rdeps[i] {
                        state.waiting[r] -= 1;
                        if state.waiting[r] == 0 {
                            state.ready.push((graph.priority[r], Reverse(r)));
                        }
                    }
                }
                Err(failure) => {
                    send(Event::Failed { step });
                    if state.failure.is_none() {
                        state.failure = Some(failure);
                    }
                }
            }
            cvar.notify_all();
        }
    }

    /// Runs one step unless the cache proves it unchanged.
    fn run_step(
        &self,
        step: &Step,
        deps: &[usize],
        steps: &[Step],
        phase_outputs: &HashSet<&str>,
    ) -> Result<Outcome, StepFailed> {
        let upstream = Upstream::of(step, deps, steps, phase_outputs, self.cache);
        let tracked = self.cache.is_tracked(&step.output);
        if self.cache.status(
            &step.output,
            &step.command,
            &step.inputs,
            &upstream.for_key(tracked),
        ) == CacheStatus::Hit
        {
            return Ok(Outcome::Cached);
        }
        let shared = self.shared.filter(|_| SharedCache::shares(step));
        let mut manifest = None;
        if let Some(shared) = shared {
            let key_of = |seen: &Seen| {
                self.cache
                    .key(&step.command, &seen.inputs, &upstream.for_key(seen.tracked))
            };
            match shared.restore(self.objtree, step, key_of) {
                Lookup::Restored { seen, key } => {
                    let output_hash = self.cache.file_hash(Path::new(&step.output));
                    let record = Record {
                        output: step.output.clone(),
                        key,
                        output_hash,
                        inputs: seen.inputs,
                        tracked: seen.tracked,
                    };
                    self.cache.adopt(record).map_err(|e| {
                        self.failed(step, format!("recording the restored result: {e}"))
                    })?;
                    return Ok(Outcome::Restored);
                }
                Lookup::Missed(seens) => manifest = Some((shared, seens)),
            }
        }
        let (stderr, record, launched) = self.execute(step, &upstream)?;
        // Published before it is recorded here: a build killed in between
        // runs the step again on resume (and publishes it then), so the shared
        // cache never lacks a result this tree holds.
        if let Some((shared, seens)) = manifest {
            shared.publish(
                self.objtree,
                step,
                seens,
                Seen {
                    inputs: record.inputs.clone(),
                    tracked: record.tracked,
                },
                &record.key,
            );
        }
        self.cache
            .store(record)
            .map_err(|e| self.failed(step, format!("recording the result: {e}")))?;
        Ok(Outcome::Ran { stderr, launched })
    }

    fn failed(&self, step: &Step, log: String) -> StepFailed {
        StepFailed {
            unit: step.dir().to_string(),
            output: step.output.clone(),
            command: step.command.clone(),
            log,
        }
    }

    /// Runs the step's command; returns its stderr, the record to keep, and
    /// how the launcher ran it, if it did.
    fn execute(
        &self,
        step: &Step,
        upstream: &Upstream,
    ) -> Result<(String, Record, Option<Ran>), StepFailed> {
        let failed = |log: String| self.failed(step, log);
        // The key stays the plain command: the launcher is transparent.
        let cc = self.env.get("CC").map_or("clang", String::as_str);
        let launcher = self
            .launcher
            .filter(|l| step.is_compile() && l.takes(self.objtree, step));
        let wrapped = launcher.and_then(|l| l.wrap(&step.command, cc));
        let forked = self
            .fork_server
            .filter(|_| step.kind == StepKind::Backend)
            .and_then(|server| server.run(&step.command));
        let stderr = match forked {
            Some(done) => {
                let done = done.map_err(|e| failed(format!("the fork server: {e:#}")))?;
                if !done.status.success() {
                    return Err(failed(format!(
                        "{}{}",
                        done.output,
                        status_note(done.status)
                    )));
                }
                done.output
            }
            None => {
                let out = shell::sh(self.objtree, wrapped.as_deref().unwrap_or(&step.command))
                    .map_err(|e| failed(format!("{e:#}")))?
                    .envs(self.env)
                    .envs(launcher.into_iter().flat_map(|l| l.env().iter().cloned()))
                    .envs(sub_make_jobs(step, self.jobs))
                    .stdin(Stdio::null())
                    .output()
                    .map_err(|e| failed(format!("could not start sh: {e}")))?;
                let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
                if !out.status.success() {
                    return Err(failed(format!(
                        "{}{stderr}",
                        quiet(&String::from_utf8_lossy(&out.stdout))
                    )));
                }
                stderr
            }
        };
        if let Some(after_run) = self.after_run {
            after_run(step, &|file| self.cache.file_hash(Path::new(file)))
                .map_err(|e| failed(format!("{e:#}")))?;
        }
        let inputs = inputs::of(self.objtree, self.env.get("srctree").map(Path::new), step);
        let record = Record {
            output: step.output.clone(),
            key: self.cache.key(
                &step.command,
                &inputs.files,
                &upstream.for_key(inputs.tracked),
            ),
            output_hash: self.cache.file_hash(Path::new(&step.output)),
            inputs: inputs.files,
            tracked: inputs.tracked,
        };
        let (stderr, launched) = match launcher.filter(|_| wrapped.is_some()) {
            Some(launcher) => {
                let (ran, stderr) = launcher.ran(&stderr);
                (stderr, Some(ran))
            }
            None => (stderr, None),
        };
        Ok((stderr, record, launched))
    }
}

/// The outputs a step's key may cover besides its own inputs: what it
/// waits for in its phase, and what its command names from earlier phases
/// (the archives `vmlinux.o` links, the native initcall script).
struct Upstream<'s> {
    step: &'s Step,
    waits: Vec<&'s str>,
    /// Only earlier phases' outputs: in this phase the graph says what is an
    /// input (a relative `printf` name may look like another output).
    earlier: Vec<String>,
}

impl<'s> Upstream<'s> {
    fn of(
        step: &'s Step,
        deps: &[usize],
        steps: &'s [Step],
        phase_outputs: &HashSet<&str>,
        cache: &Cache,
    ) -> Upstream<'s> {
        let waits = deps.iter().map(|&d| steps[d].output.as_str()).collect();
        let earlier = graph::tokens(&step.command)
            .filter(|t| !phase_outputs.contains(t) && cache.has_output(t))
            .map(String::from)
            .collect();
        Upstream {
            step,
            waits,
            earlier,
        }
    }

    /// A step whose record lists all it read (fixdep's) waits for the
    /// directory barrier's steps only to be ordered: a regenerated header it
    /// never reads does not rerun it. Any other step is keyed by all of them.
    fn for_key(&self, tracked: bool) -> Vec<String> {
        let mut list: Vec<String> = if tracked {
            let names: HashSet<&str> = graph::tokens(&self.step.command)
                .chain(self.step.needs.iter().map(String::as_str))
                .collect();
            self.waits
                .iter()
                .filter(|o| names.contains(*o))
                .map(|o| o.to_string())
                .collect()
        } else {
            self.waits.iter().map(|o| o.to_string()).collect()
        };
        list.extend(self.earlier.iter().cloned());
        list.sort_unstable();
        list.dedup();
        list
    }
}

/// A recursive make (objtool's) would build its tree one file at a time:
/// Kbuild's own make hands it the jobserver, here it gets the pool's width.
/// It runs alone in its stage, so nothing is oversubscribed. Not in the key:
/// `-j` changes how fast, not what.
fn sub_make_jobs(step: &Step, jobs: usize) -> Option<(&'static str, String)> {
    (step.kind == StepKind::SubMake).then(|| ("MAKEFLAGS", format!("-j{}", jobs.max(1))))
}

/// What a forked job's wait status adds to its output: `sh` would print
/// nothing for an exit code, but a signal is worth naming.
fn status_note(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status.signal() {
        Some(signal) => format!("\n(killed by signal {signal})\n"),
        None => String::new(),
    }
}

/// Drops Kbuild's own quiet echo lines from a failed step's output.
fn quiet(stdout: &str) -> String {
    stdout
        .lines()
        .filter(|l| !l.starts_with("  "))
        .map(|l| format!("{l}\n"))
        .collect()
}
