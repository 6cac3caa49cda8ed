//! Errors in an LTO policy. Every message says where the bad entry is (the
//! overlay file and line, or the `--lto-off` argument) and how to fix it.

use std::io;
use std::path::PathBuf;

use crate::Origin;

/// Something wrong with an overlay file or a rule of a [`Policy`](crate::Policy).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An overlay file could not be read.
    ///
    /// The message includes the I/O error, so it is not also the
    /// [`source`](std::error::Error::source) (a chain printer such as
    /// anyhow's `{:#}` would show it twice); the field still holds it.
    #[error(
        "cannot read LTO overlay {}: {error}; check the path given to --policy",
        .path.display()
    )]
    ReadOverlay {
        /// The overlay file.
        path: PathBuf,
        /// Why reading failed.
        error: io::Error,
    },

    /// An overlay file is not valid TOML or does not fit the schema
    /// (unknown key, missing `unit` or `reason`, wrong type).
    #[error(
        "{}:{line}: {message}; an overlay holds `[[lto-off]]` tables with \
         `unit = \"dir\"`, optional `object = \"file.o\"` and `reason = \"why\"`",
        .file.display()
    )]
    OverlaySyntax {
        /// The overlay file.
        file: PathBuf,
        /// The 1-based line the TOML parser points at.
        line: usize,
        /// The parser's message.
        message: String,
    },

    /// An overlay entry gives no reason.
    #[error(
        "{}:{line}: `reason` is empty; say in a sentence why this unit must be \
         built without LTO",
        .file.display()
    )]
    EmptyReason {
        /// The overlay file.
        file: PathBuf,
        /// The 1-based line of the `reason` key.
        line: usize,
    },

    /// A unit path is empty, absolute or contains `..`.
    #[error(
        "{}: the path {problem}; name a directory relative to the top of the \
         kernel tree, like kernel/time (or kernel/time/ntp.o for one object)",
        at(.origin, .spec)
    )]
    OutsideTree {
        /// Where the rule was declared.
        origin: Origin,
        /// The rule as written (`unit` or `unit/object`).
        spec: String,
        /// What is wrong with the path.
        problem: &'static str,
    },

    /// A unit path does not name a directory of the kernel tree.
    #[error(
        "{}: {unit} is not a directory in the kernel tree {}; {}",
        at(.origin, .spec), .srctree.display(), did_you_mean(.suggestion, "a unit")
    )]
    NotInTree {
        /// Where the rule was declared.
        origin: Origin,
        /// The rule as written.
        spec: String,
        /// The unit that does not exist.
        unit: String,
        /// The kernel tree it was looked up in.
        srctree: PathBuf,
        /// The nearest existing unit, if one is close.
        suggestion: Option<String>,
    },

    /// An object name is not a plain file name ending in `.o`.
    #[error(
        "{}: `{object}` is not an object file name; write a file name ending in \
         .o that is built in the unit's directory, like ntp.o, and put any \
         directories into the unit",
        at(.origin, .spec)
    )]
    BadObject {
        /// Where the rule was declared.
        origin: Origin,
        /// The rule as written.
        spec: String,
        /// The offending object name.
        object: String,
    },

    /// An object rule names an object that has no `.c` or `.S` source.
    #[error(
        "{}: {unit} has neither {stem}.c nor {stem}.S, so it builds no {stem}.o; {}",
        at(.origin, .spec), did_you_mean(.suggestion, "an object")
    )]
    NoSource {
        /// Where the rule was declared.
        origin: Origin,
        /// The rule as written.
        spec: String,
        /// The unit directory that was searched.
        unit: String,
        /// The object name without `.o`.
        stem: String,
        /// The closest object that does have a source, if one is close.
        suggestion: Option<String>,
    },

    /// The same unit or object is opted out by two rules.
    #[error("{spec} is opted out twice: at {first} and at {second}; {}", remove_duplicate(.first, .second))]
    Duplicate {
        /// The rule as written.
        spec: String,
        /// The earlier declaration.
        first: Origin,
        /// The later declaration.
        second: Origin,
    },

    /// More than one of the above, one per line.
    #[error("{} problems in the LTO policy:\n{}", .0.len(), list(.0))]
    Several(Vec<Error>),
}

/// Names the place of a rule: `--lto-off SPEC`, `FILE:LINE: SPEC` or
/// `manifest entry SPEC`.
fn at(origin: &Origin, spec: &str) -> String {
    match origin {
        Origin::CommandLine => format!("--lto-off {spec}"),
        Origin::Overlay { .. } => format!("{origin}: {spec}"),
        Origin::Manifest => format!("manifest entry {spec}"),
    }
}

fn did_you_mean(suggestion: &Option<String>, what: &str) -> String {
    match suggestion {
        Some(s) => format!("did you mean {s}?"),
        None => format!("name {what} that exists in the kernel source tree"),
    }
}

fn remove_duplicate(first: &Origin, second: &Origin) -> String {
    if *first == Origin::Manifest {
        format!(
            "the upstream manifest already builds it without LTO, so remove the entry at {second}"
        )
    } else {
        "remove one of them".to_string()
    }
}

fn list(errors: &[Error]) -> String {
    errors
        .iter()
        .map(|e| format!("  - {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Error {
    /// One error for a list of problems: `None` if empty, the problem itself
    /// if alone, else [`Error::Several`].
    pub(crate) fn from_list(mut errors: Vec<Error>) -> Option<Error> {
        match errors.len() {
            0 => None,
            1 => errors.pop(),
            _ => Some(Error::Several(errors)),
        }
    }
}
