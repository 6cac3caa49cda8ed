//! The typed per-unit LTO policy of a Linux kernel build.
//!
//! With Clang LTO every kernel object is LLVM bitcode until the final link.
//! Some objects cannot be: they are linked into something other than
//! `vmlinux` (the vDSO, the decompressor, the kexec purgatory), or rewritten
//! with `objcopy` (the EFI stub, arm64's early-boot `pi` code, the nVHE
//! hypervisor), or read as ELF by a build tool (`scripts/mod/empty.o`).
//! This crate says which, and why, as data that rust-analyzer can complete and
//! document:
//!
//! - [`UPSTREAM`] is the shipped table of opt-outs, researched in Linux 6.12.
//! - A [`Policy`] starts from that table ([`Policy::upstream`]) and takes the
//!   user's additions from `--lto-off UNIT[/OBJ.o]`
//!   ([`Policy::add_command_line`]) and from TOML overlay files
//!   ([`Policy::add_overlay`]).
//! - [`Policy::validate`] checks every rule against a kernel source tree and
//!   [`Policy::rule_for`] answers "is this object built without LTO, and why".
//!
//! A *unit* is a kernel source directory relative to the top of the tree, such
//! as `kernel/time`. A unit rule covers the whole subtree below that directory
//! (the deepest rule wins); an object rule covers one object in it, such as
//! `drivers/misc/lkdtm/rodata.o`.

#![deny(missing_docs)]
// `Error` carries the rule's origin, spec and suggestion so that messages can
// name the fix; it is built a handful of times per build, so its size does not
// matter and boxing it would only make matching on it clumsier.
#![allow(clippy::result_large_err)]

mod error;
mod overlay;
mod path;
mod policy;
pub mod suggest;
mod upstream;
mod validate;

use std::fmt;
use std::path::PathBuf;

pub use error::Error;
pub use policy::Policy;
pub use upstream::{KbuildLto, OptOut, UPSTREAM};

/// A target architecture the kernel is built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arch {
    /// 64-bit x86 (`ARCH=x86`, `CONFIG_X86_64`).
    X86_64,
    /// 64-bit Arm (`ARCH=arm64`).
    Arm64,
}

impl Arch {
    /// Every supported architecture, in a stable order.
    pub const ALL: [Arch; 2] = [Arch::X86_64, Arch::Arm64];

    /// The name users type and reports print: `x86_64` or `arm64`.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "arm64",
        }
    }

    /// The kernel's `SRCARCH`: the directory under `arch/` (`x86` or `arm64`).
    pub fn srcarch(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86",
            Arch::Arm64 => "arm64",
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a [`Rule`] came from, so messages can point the user at it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The shipped [`UPSTREAM`] table. Displays as `manifest`.
    Manifest,
    /// A `--lto-off` command-line argument. Displays as `--lto-off`.
    CommandLine,
    /// An entry of a TOML overlay file. Displays as `<file>:<line>`.
    Overlay {
        /// The overlay file, as the user named it.
        file: PathBuf,
        /// The 1-based line of the entry's `unit` key.
        line: usize,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Manifest => f.write_str("manifest"),
            Origin::CommandLine => f.write_str("--lto-off"),
            Origin::Overlay { file, line } => write!(f, "{}:{line}", file.display()),
        }
    }
}

/// One opt-out in a [`Policy`]: build `unit` (or only `object` in it) as
/// native ELF instead of LLVM bitcode.
#[derive(Clone, Debug)]
pub struct Rule {
    /// The source directory, relative to the top of the kernel tree
    /// (`kernel/time`). Without `object`, the rule covers the whole subtree.
    pub unit: String,
    /// One object file name in `unit` (`ntp.o`), or `None` for the whole unit.
    pub object: Option<String>,
    /// Why the unit must be native code.
    pub reason: String,
    /// Where the rule was declared.
    pub origin: Origin,
}

impl Rule {
    /// The rule as a user writes it for `--lto-off`: `unit` or `unit/object`.
    pub fn spec(&self) -> String {
        match &self.object {
            // An object without a unit is invalid, but still show it as written.
            Some(object) if self.unit.is_empty() => object.clone(),
            Some(object) => format!("{}/{object}", self.unit),
            None => self.unit.clone(),
        }
    }

    /// The [`UPSTREAM`] entry this rule was made from, if it came from the
    /// manifest (for reports that say how Kbuild itself treats the unit).
    pub fn upstream_entry(&self) -> Option<&'static OptOut> {
        if self.origin != Origin::Manifest {
            return None;
        }
        UPSTREAM
            .iter()
            .find(|o| o.unit == self.unit && o.object == self.object.as_deref())
    }
}

/// What a [`Warning`] is about, so callers can filter warnings by type
/// rather than by their text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WarningKind {
    /// A valid rule covers nothing that this configuration compiles, so it
    /// has no effect.
    NotBuilt,
    /// A user rule that a shallower unit rule already covers; it can go.
    Redundant,
    /// A manifest entry whose unit or object source this kernel tree lacks
    /// (the manifest was written for Linux 6.12), so it has no effect.
    MissingFromTree,
}

/// A problem that does not stop the build, such as an opt-out of a unit that
/// this configuration does not build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// Where the rule the warning is about was declared. For
    /// [`WarningKind::Redundant`] that is the redundant (user's) rule, not
    /// the rule that already covers it.
    pub origin: Origin,
    /// What the warning is about.
    pub kind: WarningKind,
    /// The whole message, as [`Display`](fmt::Display) prints it.
    pub message: String,
}

impl Warning {
    /// A warning about `rule`, which gives the warning its origin.
    pub(crate) fn about(rule: &Rule, kind: WarningKind, message: String) -> Warning {
        Warning {
            origin: rule.origin.clone(),
            kind,
            message,
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
