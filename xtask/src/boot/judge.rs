//! From a serial log to a pass or a [`BootFailure`]: pure functions over the
//! log text, so the judgement is unit-tested on real logs kept in `testdata/`.
//!
//! Precedence, most specific first: a kernel panic, then our timeout, then a
//! missing success marker, then a failed proof. Each has its own exit code,
//! chosen in `error.rs`.

use serde::Serializer;

use super::{Proof, ProofStatus};

/// The init prints this first: the kernel got as far as running /init.
pub const START_MARKER: &str = "XTASK-INIT-START";
/// The init prints this after its proofs, just before it resets the machine.
pub const OK_MARKER: &str = "XTASK-INIT-OK";
/// Each proof result from the init: `XTASK-PROOF <name> PASS|FAIL|SKIP <detail>`.
pub const PROOF_PREFIX: &str = "XTASK-PROOF ";
/// What `panic()` prints; with `panic=-1` the machine then resets.
pub const PANIC: &str = "Kernel panic - not syncing";

/// How a boot failed. A pass is the absence of a failure, so there is no
/// passing variant for anything to trip over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootFailure {
    Panic,
    Timeout,
    NoMarker,
    ProofFailed,
}

impl BootFailure {
    pub fn name(self) -> &'static str {
        match self {
            BootFailure::Panic => "panic",
            BootFailure::Timeout => "timeout",
            BootFailure::NoMarker => "no-marker",
            BootFailure::ProofFailed => "proof-failed",
        }
    }
}

impl std::fmt::Display for BootFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A report's `outcome`: `pass`, or the name of the failure.
pub fn outcome(failure: Option<BootFailure>) -> &'static str {
    failure.map_or("pass", BootFailure::name)
}

/// Writes [`outcome`] for serde's `serialize_with`.
pub fn serialize_outcome<S: Serializer>(
    failure: &Option<BootFailure>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(outcome(*failure))
}

/// How QEMU ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// QEMU exited by itself: the guest reset (or powered off) under `-no-reboot`.
    Exited,
    /// We killed it when the timeout expired.
    TimedOut,
}

/// The failure, if any, and the one-line reason a human needs first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub failure: Option<BootFailure>,
    pub message: String,
}

/// Judges a boot from its serial log, how QEMU ended and the proofs.
pub fn judge(log: &str, ending: Ending, proofs: &[Proof]) -> Verdict {
    let verdict = |failure, message: String| Verdict { failure, message };
    if let Some(line) = find(log, PANIC) {
        return verdict(
            Some(BootFailure::Panic),
            format!("the kernel panicked: {}", from(line, PANIC)),
        );
    }
    let started = find(log, START_MARKER).is_some();
    let ok = has_marker(log);
    if ending == Ending::TimedOut {
        let message = if ok {
            "init printed the success marker but QEMU did not exit: the reset did not end it"
                .to_string()
        } else if started {
            "init started but neither finished nor reset the machine".to_string()
        } else {
            format!(
                "the kernel never ran our init; last line: {}",
                last_line(log)
            )
        };
        return verdict(Some(BootFailure::Timeout), message);
    }
    if !ok {
        let message = if started {
            format!("init started, then the machine reset without {OK_MARKER}")
        } else if log.trim().is_empty() {
            "the serial log is empty: wrong console= or the kernel did not start".to_string()
        } else {
            format!(
                "QEMU exited before our init ran; last line: {}",
                last_line(log)
            )
        };
        return verdict(Some(BootFailure::NoMarker), message);
    }
    let failed: Vec<&str> = proofs
        .iter()
        .filter(|p| p.status == ProofStatus::Fail)
        .map(|p| p.name.as_str())
        .collect();
    if !failed.is_empty() {
        return verdict(
            Some(BootFailure::ProofFailed),
            format!("proof failed: {}", failed.join(", ")),
        );
    }
    let passed = proofs
        .iter()
        .filter(|p| p.status == ProofStatus::Pass)
        .count();
    verdict(
        None,
        format!(
            "booted to init; {passed} of {} proofs passed, the rest skipped",
            proofs.len()
        ),
    )
}

/// The success marker on a line of its own (the kernel's echo of the command
/// line or an init message mentioning it must not count).
pub fn has_marker(log: &str) -> bool {
    lines(log).any(|l| l.trim() == OK_MARKER)
}

/// Log lines without the `\r` the serial console adds.
pub fn lines(log: &str) -> impl DoubleEndedIterator<Item = &str> {
    log.lines().map(|l| l.trim_end_matches('\r'))
}

/// The first line containing `needle`.
pub fn find<'a>(log: &'a str, needle: &str) -> Option<&'a str> {
    lines(log).find(|l| l.contains(needle))
}

/// `line` from `needle` on, dropping a timestamp or other prefix.
pub fn from<'a>(line: &'a str, needle: &str) -> &'a str {
    line.find(needle).map_or(line, |i| &line[i..]).trim_end()
}

/// The init's own line for proof `name`: (status word, detail).
pub fn init_proof<'a>(log: &'a str, name: &str) -> Option<(&'a str, &'a str)> {
    let prefix = format!("{PROOF_PREFIX}{name} ");
    let line = find(log, &prefix)?;
    let rest = &from(line, &prefix)[prefix.len()..];
    Some(rest.split_once(' ').unwrap_or((rest, "")))
}

/// The last non-empty line of the log, for messages.
pub fn last_line(log: &str) -> &str {
    lines(log)
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("(empty log)")
}

/// The last `n` lines of the log, for failure summaries.
pub fn tail(log: &str, n: usize) -> Vec<&str> {
    let all: Vec<&str> = lines(log).collect();
    all[all.len().saturating_sub(n)..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real serial logs: the good init and the broken ones on tiny kernels.
    const PASS_LOG: &str = include_str!("testdata/x86_64-tiny-pass.log");
    const PANIC_LOG: &str = include_str!("testdata/x86_64-tiny-panic.log");
    const SILENT_LOG: &str = include_str!("testdata/x86_64-tiny-no-marker.log");
    const HANG_LOG: &str = include_str!("testdata/x86_64-tiny-hang.log");
    const ARM64_PASS_LOG: &str = include_str!("testdata/arm64-tiny-pass.log");
    const ARM64_PANIC_LOG: &str = include_str!("testdata/arm64-tiny-panic.log");
    const ARM64_SILENT_LOG: &str = include_str!("testdata/arm64-tiny-no-marker.log");

    fn proof(name: &str, status: ProofStatus) -> Proof {
        Proof {
            name: name.into(),
            status,
            evidence: String::new(),
        }
    }

    #[test]
    fn passing_log_passes() {
        for log in [PASS_LOG, ARM64_PASS_LOG] {
            let v = judge(log, Ending::Exited, &[proof("vdso", ProofStatus::Pass)]);
            assert_eq!(v.failure, None, "{}", v.message);
        }
    }

    #[test]
    fn lkdtm_oops_is_not_a_panic() {
        let log = include_str!("testdata/x86_64-proof-bios.log");
        assert!(log.contains("Oops"));
        assert_eq!(judge(log, Ending::Exited, &[]).failure, None);
    }

    #[test]
    fn a_failed_proof_fails_a_good_boot() {
        let proofs = [
            proof("vdso", ProofStatus::Pass),
            proof("efi", ProofStatus::Fail),
        ];
        let v = judge(PASS_LOG, Ending::Exited, &proofs);
        assert_eq!(
            (v.failure, v.message.as_str()),
            (Some(BootFailure::ProofFailed), "proof failed: efi")
        );
    }

    #[test]
    fn marker_without_exit_is_a_timeout() {
        let v = judge(PASS_LOG, Ending::TimedOut, &[]);
        assert_eq!(v.failure, Some(BootFailure::Timeout));
        assert!(v.message.contains("did not exit"), "{}", v.message);
    }

    #[test]
    fn panic_log_panics() {
        for log in [PANIC_LOG, ARM64_PANIC_LOG] {
            let v = judge(log, Ending::Exited, &[]);
            assert_eq!(v.failure, Some(BootFailure::Panic));
            let expected = "the kernel panicked: Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000000";
            assert_eq!(v.message, expected);
        }
    }

    #[test]
    fn hang_log_times_out_in_init() {
        let v = judge(HANG_LOG, Ending::TimedOut, &[]);
        assert_eq!(v.failure, Some(BootFailure::Timeout));
        assert!(v.message.contains("init started"), "{}", v.message);
    }

    #[test]
    fn silent_init_has_no_marker() {
        for log in [SILENT_LOG, ARM64_SILENT_LOG] {
            let v = judge(log, Ending::Exited, &[]);
            assert_eq!(v.failure, Some(BootFailure::NoMarker));
            assert_eq!(
                v.message,
                "init started, then the machine reset without XTASK-INIT-OK"
            );
        }
    }

    #[test]
    fn early_exit_and_empty_log_are_no_marker() {
        let v = judge("", Ending::Exited, &[]);
        assert_eq!(v.failure, Some(BootFailure::NoMarker));
        assert!(v.message.contains("empty"));
        let v = judge(
            "Linux version 6.12\r\nreboot: Restarting system\r\n",
            Ending::Exited,
            &[],
        );
        assert!(v.message.contains("before our init ran"), "{}", v.message);
    }

    #[test]
    fn marker_must_be_a_line_of_its_own() {
        assert!(!has_marker(
            "Kernel command line: console=ttyS0 XTASK-INIT-OK\n"
        ));
        assert!(has_marker("foo\r\nXTASK-INIT-OK\r\nbar\n"));
    }

    #[test]
    fn reads_init_proof_lines() {
        let log = "[    1.0] x\r\nXTASK-PROOF vdso PASS __vdso_clock_gettime: 1 ns\r\n";
        assert_eq!(
            init_proof(log, "vdso"),
            Some(("PASS", "__vdso_clock_gettime: 1 ns"))
        );
        assert_eq!(init_proof(log, "vds"), None);
    }
}
