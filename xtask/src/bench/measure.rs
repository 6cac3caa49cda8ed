//! One timed command: wall time, CPU time and peak RSS.
//!
//! CPU and RSS come from `wait4` on the child's pid: the kernel hands back
//! the rusage of that child and of every descendant it waited for, so each
//! run is measured on its own. (`getrusage(RUSAGE_CHILDREN)` deltas would do
//! for CPU, but its `ru_maxrss` is a running maximum over all children ever
//! waited for, so a later, smaller run would inherit an earlier peak.)
//! Linux starts a child's `ru_maxrss` at the RSS of the process that spawned
//! it (the parent's pages are the child's until exec): the bench's own few
//! MiB are a floor, the same for both tools.

use std::{
    fs::File,
    io,
    os::unix::process::ExitStatusExt,
    path::Path,
    process::{Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use serde::Serialize;

/// What one run cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Sample {
    pub wall_s: f64,
    /// User + system time of the command and every process it waited for.
    pub cpu_s: f64,
    /// `ru_maxrss`: the largest single process of the run, not their sum.
    pub max_rss_kib: u64,
}

impl Sample {
    /// Two commands run one after the other, as one.
    pub fn then(self, next: Sample) -> Sample {
        Sample {
            wall_s: self.wall_s + next.wall_s,
            cpu_s: self.cpu_s + next.cpu_s,
            max_rss_kib: self.max_rss_kib.max(next.max_rss_kib),
        }
    }
}

/// Runs `cmd` with its output in `log` and measures it; a failure shows the
/// end of the log.
pub fn run(cmd: &mut Command, log: &Path) -> Result<Sample> {
    let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    let started = Instant::now();
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {}", describe(cmd)))?;
    // Reaped here, not by `Child::wait`: `child` is only dropped (which never waits or kills).
    let (status, usage) =
        wait4(child.id()).with_context(|| format!("waiting for {}", describe(cmd)))?;
    let wall = started.elapsed();
    if !status.success() {
        bail!(
            "`{}` failed ({status}); the end of {}:\n{}",
            describe(cmd),
            log.display(),
            tail(log, 30)
        );
    }
    Ok(Sample {
        wall_s: wall.as_secs_f64(),
        cpu_s: (seconds(usage.ru_utime) + seconds(usage.ru_stime)).as_secs_f64(),
        // Linux counts ru_maxrss in KiB.
        max_rss_kib: usage.ru_maxrss.max(0) as u64,
    })
}

fn wait4(pid: u32) -> io::Result<(ExitStatus, libc::rusage)> {
    let pid = pid as libc::pid_t;
    let mut status = 0;
    // SAFETY: `rusage` is a plain C struct, for which all zeroes is valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: both pointers are to live locals that wait4 only writes.
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if reaped == pid {
            return Ok((ExitStatus::from_raw(status), usage));
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

fn seconds(time: libc::timeval) -> Duration {
    Duration::from_secs(time.tv_sec.max(0) as u64)
        + Duration::from_micros(time.tv_usec.max(0) as u64)
}

/// `make -C /src O=/obj ARCH=x86_64 LLVM=1 -j2 bzImage`: the program and its arguments.
pub fn describe(cmd: &Command) -> String {
    let words = std::iter::once(cmd.get_program()).chain(cmd.get_args());
    words
        .map(|w| w.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn tail(log: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, log: &Path) -> Result<Sample> {
        run(Command::new("sh").args(["-c", script]), log)
    }

    #[test]
    fn each_run_has_its_own_peak_not_the_largest_so_far() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        // The allocation is in a grandchild: the peak is the largest descendant's.
        let big = sh("python3 -c 'b = b\"x\" * (384 << 20)'", &log).unwrap();
        assert!(big.max_rss_kib >= 384 * 1024, "{big:?}");
        // Above the floor (the test process's RSS at the spawn), below the earlier peak.
        let small = sh("true", &log).unwrap();
        assert!(small.max_rss_kib < 256 * 1024, "{small:?}");
        assert!(
            small.wall_s > 0.0 && small.wall_s < big.wall_s + 5.0,
            "{small:?}"
        );
    }

    #[test]
    fn cpu_time_counts_the_descendants() {
        let dir = tempfile::tempdir().unwrap();
        let sample = sh(
            "sh -c 'i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done'",
            &dir.path().join("log"),
        )
        .unwrap();
        assert!(sample.cpu_s > 0.02, "{sample:?}");
        assert!(
            sample.cpu_s <= sample.wall_s * 1.5 + 0.05,
            "one busy process cannot use much more CPU than wall time: {sample:?}"
        );
    }

    #[test]
    fn a_failure_names_the_command_and_shows_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let error = sh(
            "echo compiling; echo 'kernel/fork.c: error' >&2; exit 2",
            &dir.path().join("log"),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("`sh -c echo compiling;"), "{error}");
        assert!(error.contains("exit status: 2"), "{error}");
        assert!(error.contains("compiling\nkernel/fork.c: error"), "{error}");
    }

    #[test]
    fn two_commands_add_up_and_keep_the_larger_peak() {
        let a = Sample {
            wall_s: 1.0,
            cpu_s: 2.0,
            max_rss_kib: 10,
        };
        let b = Sample {
            wall_s: 3.0,
            cpu_s: 1.0,
            max_rss_kib: 7,
        };
        assert_eq!(
            a.then(b),
            Sample {
                wall_s: 4.0,
                cpu_s: 3.0,
                max_rss_kib: 10
            }
        );
    }
}
