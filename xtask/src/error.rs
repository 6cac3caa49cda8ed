//! The errors a user acts on, each with a stable exit code (README "Exit
//! codes"). The engine returns `anyhow` errors that carry these types; the
//! CLI turns them into an [`Error`] once, and the match below is exhaustive,
//! so a new kind of failure cannot silently exit 1. This is the only place
//! that maps anything to an exit code.

use crate::{
    boot::{kunit::KunitFailure, BootFailure},
    configure,
    engine::{lock::Locked, scheduler::StepFailed},
    report::PolicyViolation,
};

/// Stable process exit codes. `u8`, because that is all a process can exit
/// with and what `std::process::ExitCode::from` takes.
pub mod code {
    pub const OK: u8 = 0;
    pub const OTHER: u8 = 1;
    pub const STEP_FAILED: u8 = 10;
    pub const UNMET_CONFIG: u8 = 11;
    pub const POLICY_VIOLATION: u8 = 12;
    pub const BAD_POLICY: u8 = 13;
    pub const TREE_LOCKED: u8 = 14;
    pub const BOOT_PANIC: u8 = 20;
    pub const BOOT_TIMEOUT: u8 = 21;
    pub const BOOT_NO_MARKER: u8 = 22;
    pub const BOOT_PROOF_FAILED: u8 = 23;
    pub const KUNIT_FAILED: u8 = 24;
    pub const KUNIT_DIFFERS_ACROSS_LTO: u8 = 25;
    pub const KUNIT_NO_TESTS: u8 = 26;
}

#[derive(Debug)]
pub enum Error {
    /// A step failed: the unit, the command and its output.
    StepFailed(Box<StepFailed>),
    /// A requested Kconfig symbol did not land.
    Unmet(configure::UnmetRequests),
    /// An object contradicts the LTO policy.
    PolicyViolation(PolicyViolation),
    /// A bad `--lto-off` or policy file entry.
    Policy(Box<kernel_manifest::Error>),
    /// Another build holds the object tree and `--no-wait` was given.
    Locked(Locked),
    /// A boot failed.
    Boot(BootFailure),
    /// A KUnit run failed, or runs differ between LTO modes.
    Kunit(KunitFailure),
    Other(anyhow::Error),
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::StepFailed(_) => code::STEP_FAILED,
            Error::Unmet(_) => code::UNMET_CONFIG,
            Error::PolicyViolation(_) => code::POLICY_VIOLATION,
            Error::Policy(_) => code::BAD_POLICY,
            Error::Locked(_) => code::TREE_LOCKED,
            Error::Boot(failure) => match failure {
                BootFailure::Panic => code::BOOT_PANIC,
                BootFailure::Timeout => code::BOOT_TIMEOUT,
                BootFailure::NoMarker => code::BOOT_NO_MARKER,
                BootFailure::ProofFailed => code::BOOT_PROOF_FAILED,
            },
            // A crash or a hang mid-test is a failed boot, as for `test-boot`.
            Error::Kunit(failure) => match failure {
                KunitFailure::Crashed => code::BOOT_PANIC,
                KunitFailure::Hung => code::BOOT_TIMEOUT,
                KunitFailure::Failed => code::KUNIT_FAILED,
                KunitFailure::DiffersAcrossLto => code::KUNIT_DIFFERS_ACROSS_LTO,
                KunitFailure::NoTests => code::KUNIT_NO_TESTS,
            },
            Error::Other(_) => code::OTHER,
        }
    }
}

/// The code one boot gives `test-boot`: 0 for a pass.
pub fn boot_exit_code(failure: Option<BootFailure>) -> u8 {
    failure.map_or(code::OK, |failure| Error::Boot(failure).exit_code())
}

impl From<anyhow::Error> for Error {
    fn from(error: anyhow::Error) -> Error {
        let error = match error.downcast::<StepFailed>() {
            Ok(e) => return Error::StepFailed(Box::new(e)),
            Err(error) => error,
        };
        let error = match error.downcast::<configure::UnmetRequests>() {
            Ok(e) => return Error::Unmet(e),
            Err(error) => error,
        };
        let error = match error.downcast::<PolicyViolation>() {
            Ok(e) => return Error::PolicyViolation(e),
            Err(error) => error,
        };
        let error = match error.downcast::<Locked>() {
            Ok(e) => return Error::Locked(e),
            Err(error) => error,
        };
        match error.downcast::<kernel_manifest::Error>() {
            Ok(e) => Error::Policy(Box::new(e)),
            Err(error) => Error::Other(error),
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::StepFailed(e) => write!(f, "{e}"),
            Error::Unmet(e) => write!(f, "{e}"),
            Error::PolicyViolation(e) => write!(f, "{e}"),
            Error::Policy(e) => write!(f, "{e}"),
            Error::Locked(e) => write!(f, "{e}"),
            Error::Boot(failure) => write!(f, "boot failed: {failure} (see boot-report.json)"),
            Error::Kunit(failure) => write!(f, "kunit: {failure} (see kunit-report.json)"),
            Error::Other(e) => write!(f, "{e:#}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_failures_keep_their_codes_through_anyhow_context() {
        let failed = StepFailed {
            unit: "kernel".into(),
            output: "kernel/fork.o".into(),
            command: "clang".into(),
            log: "error".into(),
        };
        let error = anyhow::Error::from(failed).context("building x86_64-thin-tiny");
        assert_eq!(Error::from(error).exit_code(), code::STEP_FAILED);
        let violation = anyhow::Error::from(PolicyViolation(vec!["kernel/fork.o".into()]));
        assert_eq!(Error::from(violation).exit_code(), code::POLICY_VIOLATION);
        assert_eq!(
            Error::from(anyhow::anyhow!("disk full")).exit_code(),
            code::OTHER
        );
    }

    /// The numbers of the README's "Exit codes": scripts depend on them.
    #[test]
    fn boot_codes_are_stable() {
        let codes = [
            None,
            Some(BootFailure::Panic),
            Some(BootFailure::Timeout),
            Some(BootFailure::NoMarker),
            Some(BootFailure::ProofFailed),
        ]
        .map(boot_exit_code);
        assert_eq!(codes, [0, 20, 21, 22, 23]);
        let kunit = [
            KunitFailure::Crashed,
            KunitFailure::Hung,
            KunitFailure::Failed,
            KunitFailure::DiffersAcrossLto,
            KunitFailure::NoTests,
        ]
        .map(|failure| Error::Kunit(failure).exit_code());
        assert_eq!(kunit, [20, 21, 24, 25, 26]);
    }
}
