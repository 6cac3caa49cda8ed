//! "Did you mean ...?" for unit paths and object names that do not exist.

use std::fs;
use std::path::Path;

/// The most edits a suggestion may be away from what the user typed; further
/// than this it is another name, not a typo (hubris's xtask uses the same 3).
const MAX_DISTANCE: usize = 3;

/// The edits, by characters, between what was typed and a candidate:
/// insertions, deletions, substitutions and swaps of two neighbours, so the
/// common transposition `tiem` is one edit from `time`.
fn distance(typed: &str, candidate: &str) -> usize {
    strsim::osa_distance(typed, candidate)
}

/// The candidate closest to `wanted`, if it is close enough to be a typo
/// rather than a different name: at most a third of `wanted` (at least one
/// edit, `tme` -> `time`) and at most [`MAX_DISTANCE`]. Ties go to the
/// alphabetically first.
pub fn closest<'a>(wanted: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (wanted.chars().count() / 3).clamp(1, MAX_DISTANCE);
    candidates
        .into_iter()
        .map(|c| (distance(wanted, c), c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, c)| c)
}

/// The names of the subdirectories of `dir` (without hidden ones), or none if
/// it cannot be read.
fn child_dirs(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| !name.starts_with('.'))
        .collect()
}

/// Every directory below `dir` down to `depth` levels, as `/`-separated paths
/// relative to `dir` (`time`, `time/vdso`).
fn dirs_below(dir: &Path, depth: usize) -> Vec<String> {
    let mut found = Vec::new();
    let mut level = vec![String::new()];
    for _ in 0..depth {
        let next: Vec<String> = level
            .iter()
            .flat_map(|parent| {
                child_dirs(&dir.join(parent))
                    .into_iter()
                    .map(move |name| match parent.as_str() {
                        "" => name,
                        parent => format!("{parent}/{name}"),
                    })
            })
            .collect();
        found.extend(next.iter().cloned());
        level = next;
    }
    found
}

/// The existing unit nearest to `unit`, which does not exist.
///
/// The part of `unit` below its deepest existing ancestor is compared as a
/// whole with every directory below that ancestor, as deep as the part plus
/// one level, so a typo anywhere in it is repaired (`kernel/tiem` ->
/// `kernel/time`, `drivers/msic/lkdtm` -> `drivers/misc/lkdtm`). If none is
/// close, the ancestor itself is the suggestion; `None` if that is the top
/// of the tree.
pub(crate) fn nearest_unit(srctree: &Path, unit: &str) -> Option<String> {
    let components: Vec<&str> = unit.split('/').collect();
    let existing = (0..components.len())
        .rev()
        .find(|&n| srctree.join(components[..n].join("/")).is_dir())
        .unwrap_or(0);
    let (ancestor, rest) = (
        components[..existing].join("/"),
        components[existing..].join("/"),
    );
    let candidates = dirs_below(&srctree.join(&ancestor), components.len() - existing + 1);
    match closest(&rest, candidates.iter().map(String::as_str)) {
        Some(found) if ancestor.is_empty() => Some(found.to_string()),
        Some(found) => Some(format!("{ancestor}/{found}")),
        None => (!ancestor.is_empty()).then_some(ancestor),
    }
}

/// The object in `unit` whose `.c` or `.S` source name is closest to `stem`,
/// as an object name (`ntp.o`).
pub(crate) fn nearest_object(srctree: &Path, unit: &str, stem: &str) -> Option<String> {
    let entries = fs::read_dir(srctree.join(unit)).ok()?;
    let stems: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|name| source_stem(&name).map(str::to_string))
        .collect();
    closest(stem, stems.iter().map(String::as_str)).map(|s| format!("{s}.o"))
}

/// `foo` for `foo.c` or `foo.S`, the sources Kbuild compiles into `foo.o`.
pub(crate) fn source_stem(file: &str) -> Option<&str> {
    file.strip_suffix(".c").or_else(|| file.strip_suffix(".S"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_respects_the_limit_and_ties() {
        assert_eq!(closest("tme", ["time", "trace", "sched"]), Some("time"));
        assert_eq!(closest("zzzzzz", ["time", "trace"]), None);
        assert_eq!(closest("ab", ["ac", "aa"]), Some("aa"));
    }

    #[test]
    fn a_swap_of_neighbours_is_one_edit() {
        assert_eq!(closest("tiem", ["time", "timex", "trace"]), Some("time"));
    }

    #[test]
    fn long_names_stop_at_max_distance() {
        // A third of 16 characters would allow 5 edits; the cap is 3.
        assert_eq!(closest("abcdefghijklmnop", ["abcdefghijklWXYZ"]), None);
        assert_eq!(
            closest("abcdefghijklmnop", ["abcdefghijklmXYZ"]),
            Some("abcdefghijklmXYZ")
        );
    }
}
