//! `--trace FILE`: the build as Chrome's trace-event format, which Perfetto
//! (ui.perfetto.dev) and `chrome://tracing` open. One slice per step, on
//! the lane of the worker that had it, named by its output, with its stage
//! and whether the cache proved it unchanged: the critical path and how
//! busy the cores were, as a picture.
//!
//! It reads the scheduler's events as they arrive, on the thread that runs
//! the stage: a step takes the lowest lane no running step holds, so the
//! lanes are the workers as the scheduler kept them busy.

use std::{
    collections::HashMap,
    path::Path,
    sync::Mutex,
    time::{Duration, Instant},
};

use anyhow::Result;
use serde::Serialize;

use super::event::Event;
use crate::fs_atomic;

/// Every step of a build, as it ran.
pub struct Trace {
    started: Instant,
    slices: Mutex<Vec<Slice>>,
}

struct Slice {
    output: String,
    tag: String,
    stage: String,
    lane: usize,
    start: Duration,
    end: Duration,
    cached: bool,
}

/// One stage's steps as they start and end.
pub struct StageTrace<'t> {
    trace: &'t Trace,
    stage: String,
    /// Which step holds each lane, by output.
    lanes: Vec<Option<String>>,
    running: HashMap<String, (usize, Duration)>,
}

impl Trace {
    pub fn new() -> Trace {
        Trace {
            started: Instant::now(),
            slices: Mutex::new(Vec::new()),
        }
    }

    pub fn stage(&self, stage: &str) -> StageTrace<'_> {
        StageTrace {
            trace: self,
            stage: stage.into(),
            lanes: Vec::new(),
            running: HashMap::new(),
        }
    }

    /// Writes the trace: complete events (`"ph": "X"`) in microseconds,
    /// one thread per lane.
    pub fn write(&self, path: &Path) -> Result<()> {
        #[derive(Serialize)]
        struct Args<'a> {
            stage: &'a str,
            tag: &'a str,
            cached: bool,
        }
        #[derive(Serialize)]
        struct Complete<'a> {
            name: &'a str,
            cat: &'a str,
            ph: &'static str,
            ts: u128,
            dur: u128,
            pid: u32,
            tid: usize,
            args: Args<'a>,
        }
        #[derive(Serialize)]
        struct File<'a> {
            #[serde(rename = "traceEvents")]
            trace_events: Vec<Complete<'a>>,
            #[serde(rename = "displayTimeUnit")]
            display_time_unit: &'static str,
        }
        let slices = self.slices.lock().unwrap();
        let file = File {
            trace_events: slices
                .iter()
                .map(|s| Complete {
                    name: &s.output,
                    cat: &s.stage,
                    ph: "X",
                    ts: s.start.as_micros(),
                    dur: (s.end - s.start).as_micros(),
                    pid: 1,
                    tid: s.lane,
                    args: Args {
                        stage: &s.stage,
                        tag: &s.tag,
                        cached: s.cached,
                    },
                })
                .collect(),
            display_time_unit: "ms",
        };
        fs_atomic::write(path, &serde_json::to_vec(&file)?)
    }
}

impl Trace {
    /// How long since the build began.
    pub fn now(&self) -> Duration {
        self.started.elapsed()
    }

    /// A step the xtask ran itself on this thread (a link, the initcall
    /// order), begun at `start`: on lane 0, as no worker runs then.
    pub fn native(&self, output: &str, start: Duration, cached: bool) {
        self.slices.lock().unwrap().push(Slice {
            output: output.into(),
            tag: "NATIVE".into(),
            stage: "native".into(),
            lane: 0,
            start,
            end: self.now(),
            cached,
        });
    }
}

impl Default for Trace {
    fn default() -> Trace {
        Trace::new()
    }
}

impl StageTrace<'_> {
    pub fn note(&mut self, event: &Event<'_>) {
        let now = self.trace.started.elapsed();
        let (step, cached) = match event {
            Event::Started { step } => {
                let lane = match self.lanes.iter().position(Option::is_none) {
                    Some(free) => free,
                    None => {
                        self.lanes.push(None);
                        self.lanes.len() - 1
                    }
                };
                self.lanes[lane] = Some(step.output.clone());
                self.running.insert(step.output.clone(), (lane, now));
                return;
            }
            Event::Cached { step } => (step, true),
            Event::Ran { step, .. } | Event::Failed { step } => (step, false),
        };
        let Some((lane, start)) = self.running.remove(&step.output) else {
            return;
        };
        self.lanes[lane] = None;
        self.trace.slices.lock().unwrap().push(Slice {
            output: step.output.clone(),
            tag: step.tag.clone(),
            stage: self.stage.clone(),
            lane,
            start,
            end: now,
            cached,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kbuild::Step;

    #[test]
    fn steps_take_the_lowest_free_lane_and_keep_their_stage() {
        let trace = Trace::new();
        let step = |o: &str| Step::new("CC", false, o, &format!("cc -o {o}"));
        let (a, b, c) = (step("a.o"), step("b.o"), step("c.o"));
        let mut stage = trace.stage("compile");
        stage.note(&Event::Started { step: &a });
        stage.note(&Event::Started { step: &b });
        stage.note(&Event::Ran {
            step: &a,
            stderr: String::new(),
        });
        stage.note(&Event::Started { step: &c });
        stage.note(&Event::Cached { step: &c });
        stage.note(&Event::Ran {
            step: &b,
            stderr: String::new(),
        });
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trace.json");
        trace.write(&path).unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let events: Vec<(String, u64, bool)> = json["traceEvents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                assert_eq!((&e["ph"], &e["cat"]), (&"X".into(), &"compile".into()));
                (
                    e["name"].as_str().unwrap().to_string(),
                    e["tid"].as_u64().unwrap(),
                    e["args"]["cached"].as_bool().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            events,
            [
                ("a.o".to_string(), 0, false),
                ("c.o".to_string(), 0, true),
                ("b.o".to_string(), 1, false)
            ]
        );
    }
}
