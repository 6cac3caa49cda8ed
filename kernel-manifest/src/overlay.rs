//! TOML overlay files: the user's opt-outs, with the same power as `--lto-off`.
//!
//! ```toml
//! [[lto-off]]
//! unit = "kernel/time"
//! object = "ntp.o"        # optional
//! reason = "why"          # required, non-empty
//! ```
//!
//! Values are read as [`toml::Spanned`] so that every rule and every error can
//! point at its line.

use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::{path, Error, Origin, Rule};

/// The whole file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OverlayFile {
    #[serde(rename = "lto-off", default)]
    lto_off: Vec<Entry>,
}

/// One `[[lto-off]]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    unit: Spanned<String>,
    object: Option<Spanned<String>>,
    reason: Spanned<String>,
}

/// Reads and parses the overlay at `file` into rules, in file order.
pub(crate) fn load(file: &Path) -> Result<Vec<Rule>, Error> {
    let text = std::fs::read_to_string(file).map_err(|error| Error::ReadOverlay {
        path: file.to_path_buf(),
        error,
    })?;
    parse(file, &text)
}

/// Parses overlay `text`; `file` is only used to name places in messages.
pub(crate) fn parse(file: &Path, text: &str) -> Result<Vec<Rule>, Error> {
    let parsed: OverlayFile = toml::from_str(text).map_err(|e| Error::OverlaySyntax {
        file: file.to_path_buf(),
        line: e.span().map_or(1, |span| line_of(text, span)),
        message: e.message().trim_end().to_string(),
    })?;
    parsed
        .lto_off
        .into_iter()
        .map(|entry| to_rule(file, text, entry))
        .collect()
}

fn to_rule(file: &Path, text: &str, entry: Entry) -> Result<Rule, Error> {
    let reason = entry.reason.get_ref().trim();
    if reason.is_empty() {
        return Err(Error::EmptyReason {
            file: file.to_path_buf(),
            line: line_of(text, entry.reason.span()),
        });
    }
    Ok(Rule {
        unit: path::normalize(entry.unit.get_ref()),
        // Normalized like units, so `./ntp.o` and `ntp.o` are one object.
        object: entry.object.map(|o| path::normalize(o.get_ref())),
        reason: reason.to_string(),
        origin: Origin::Overlay {
            file: file.to_path_buf(),
            line: line_of(text, entry.unit.span()),
        },
    })
}

/// The 1-based line on which a byte span starts.
fn line_of(text: &str, span: Range<usize>) -> usize {
    let start = span.start.min(text.len());
    text.as_bytes()[..start]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_one_based() {
        let text = "a\nbb\nccc";
        assert_eq!(line_of(text, 0..1), 1);
        assert_eq!(line_of(text, 2..3), 2);
        assert_eq!(line_of(text, 5..6), 3);
        assert_eq!(line_of(text, 99..100), 3);
    }

    #[test]
    fn parses_entries_with_their_lines() {
        let text = "[[lto-off]]\nunit = \"kernel/time\"\nobject = \"ntp.o\"\nreason = \"r\"\n\n\
                    [[lto-off]]\nreason = \"s\"\nunit = \"mm/\"\n";
        let rules = parse(Path::new("o.toml"), text).unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].spec(), "kernel/time/ntp.o");
        assert_eq!(rules[0].origin.to_string(), "o.toml:2");
        assert_eq!(rules[1].spec(), "mm");
        assert_eq!(rules[1].origin.to_string(), "o.toml:8");
    }

    #[test]
    fn empty_file_has_no_rules() {
        assert!(parse(Path::new("o.toml"), "").unwrap().is_empty());
    }
}
