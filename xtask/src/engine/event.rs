//! What the scheduler reports (each step's events, and the counts of a
//! phase), and the progress bar that shows it.
//!
//! Workers never touch the terminal: they send an `Event` for each thing that
//! happens to a step, and the thread that called `Runner::run` hands each one
//! to a `Reporter`; the progress bar is one, and `render` draws it.

use crate::{
    kbuild::Step,
    render::{self, Bar},
};

#[derive(Debug)]
pub enum Event<'a> {
    /// A worker took the step off the ready heap; `Cached`, `Ran` or `Failed` follows.
    Started { step: &'a Step },
    /// The cache proved the step unchanged; it did not run.
    Cached { step: &'a Step },
    /// The step ran and succeeded; `stderr` is what it printed there (often empty).
    Ran { step: &'a Step, stderr: String },
    /// The step failed; `Runner::run` returns the `StepFailed` with its output.
    Failed { step: &'a Step },
}

/// Consumes events on the thread that called `Runner::run`, in the order they happened.
pub trait Reporter {
    fn report(&mut self, event: Event<'_>);
}

/// Any closure is a reporter (tests collect events this way).
impl<F: FnMut(Event<'_>)> Reporter for F {
    fn report(&mut self, event: Event<'_>) {
        self(event)
    }
}

/// The bar of one stage (`render::Bar`), fed by its events. A step's
/// stderr goes through the renderer, so a line is never torn by a tick.
pub struct Progress {
    bar: Bar,
}

impl Progress {
    pub fn new(steps: usize, label: &str) -> Progress {
        Progress {
            bar: Bar::new(steps, label),
        }
    }

    /// Removes the bar; what was printed through it stays.
    pub fn finish(self) {
        self.bar.finish();
    }
}

impl Reporter for Progress {
    fn report(&mut self, event: Event<'_>) {
        match event {
            Event::Started { .. } | Event::Failed { .. } => {}
            Event::Cached { .. } => self.bar.cached(),
            Event::Ran { step, stderr } => {
                render::step_output(&stderr);
                self.bar.ran(&step.tag, &step.output);
            }
        }
    }
}

/// How a phase went.
#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Counts {
    pub planned: usize,
    pub executed: usize,
    pub cached: usize,
    /// Restored from the shared cache instead of run.
    pub restored: usize,
    /// Of those executed, the compiles run through `--launcher`.
    pub launched: usize,
    /// Of those launched, the ones the launcher compiled here after failing
    /// to hand them on (distcc's quiet fallback).
    pub fell_back: usize,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, phase: Counts) {
        self.planned += phase.planned;
        self.executed += phase.executed;
        self.cached += phase.cached;
        self.restored += phase.restored;
        self.launched += phase.launched;
        self.fell_back += phase.fell_back;
    }
}
