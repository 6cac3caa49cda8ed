//! What the scheduler reports (each step's events, and the counts of a
//! phase), and the progress bar that shows it.
//!
//! Workers never touch the terminal: they send an `Event` for each thing that
//! happens to a step, and the thread that called `Runner::run` hands each one
//! to a `Reporter`. A step's stderr is printed through the bar, so a line is
//! never torn by a tick.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::kbuild::Step;

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

/// The progress bar of one phase: a tick per finished step, the last step that
/// ran as its message, and step stderr printed above it.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    pub fn new(steps: usize, label: &str) -> Progress {
        let bar = ProgressBar::new(steps as u64);
        bar.set_style(
            ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} {elapsed} {wide_msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress { bar }
    }

    /// Removes the bar; what was printed through it stays.
    pub fn finish(self) {
        self.bar.finish_and_clear();
    }
}

impl Reporter for Progress {
    fn report(&mut self, event: Event<'_>) {
        match event {
            Event::Started { .. } | Event::Failed { .. } => {}
            Event::Cached { .. } => self.bar.inc(1),
            Event::Ran { step, stderr } => {
                let stderr = stderr.trim_end();
                if !stderr.is_empty() {
                    self.bar.suspend(|| eprintln!("{stderr}"));
                }
                self.bar
                    .set_message(format!("{:<7} {}", step.tag, step.output));
                self.bar.inc(1);
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
