//! The one place that writes progress to stderr: notices (what the xtask is
//! doing, and warnings) and the bar of the stage that runs. The build, the
//! engine and the steps below them send here and print nothing themselves.
//!
//! A notice sent while a bar is drawn goes above it, whole. When stderr is
//! not a terminal, no bar is drawn and a stage that ran something ends with
//! one plain line instead.

use std::{fmt, io::IsTerminal, sync::Mutex, time::Duration};

use indicatif::{ProgressBar, ProgressStyle};

/// Something the user is told beside the steps' own output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// What the xtask is about to do, when it takes a while or is not the usual.
    Doing(String),
    /// Something the user may want to act on; the work goes on.
    Warning(String),
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::Doing(text) => f.write_str(text),
            Notice::Warning(text) => write!(f, "warning: {text}"),
        }
    }
}

/// The bar being drawn, which a notice must print above.
static DRAWN: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Says `notice` on stderr, above the bar if one is drawn.
pub fn notice(notice: Notice) {
    say(&notice.to_string());
}

/// A step's own stderr (a compiler's warnings), passed on as it printed it.
pub fn step_output(text: &str) {
    let text = text.trim_end();
    if !text.is_empty() {
        say(text);
    }
}

fn say(text: &str) {
    match &*DRAWN.lock().unwrap() {
        Some(bar) => bar.suspend(|| eprintln!("{text}")),
        None => eprintln!("{text}"),
    }
}

/// The progress of one stage: a tick per finished step, the last step that
/// ran as its message.
pub struct Bar {
    bar: ProgressBar,
    label: String,
    ran: usize,
}

impl Bar {
    pub fn new(steps: usize, label: &str) -> Bar {
        let bar = ProgressBar::new(steps as u64);
        bar.set_style(
            ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} {elapsed} {wide_msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        *DRAWN.lock().unwrap() = Some(bar.clone());
        Bar {
            bar,
            label: label.into(),
            ran: 0,
        }
    }

    pub fn cached(&mut self) {
        self.bar.inc(1);
    }

    /// `tag` and `output` name the step, as Kbuild's quiet lines do.
    pub fn ran(&mut self, tag: &str, output: &str) {
        self.ran += 1;
        self.bar.set_message(format!("{tag:<7} {output}"));
        self.bar.inc(1);
    }

    /// Removes the bar; what was printed through it stays.
    pub fn finish(self) {
        *DRAWN.lock().unwrap() = None;
        self.bar.finish_and_clear();
        let ran = self.ran;
        if ran > 0 && !std::io::stderr().is_terminal() {
            let steps = self.bar.length().unwrap_or(0);
            eprintln!("{:>8}: {ran} of {steps} steps ran", self.label);
        }
    }
}
