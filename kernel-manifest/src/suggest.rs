//! "Did you mean ...?" for unit paths and object names that do not exist.

use std::fs;
use std::path::Path;

/// The candidate closest to `wanted`, if it is close enough to be a typo
/// rather than a different name. Ties go to the alphabetically first.
fn closest<'a>(wanted: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    // A third of the name, at least one edit: `tme` -> `time`, `drivrs` -> `drivers`.
    let limit = (wanted.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(wanted, c), c))
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

/// The existing unit nearest to `unit`, which does not exist: walk down from
/// the top of the tree, keeping each component that exists and replacing a
/// missing one by the closest sibling directory, until no sibling is close.
/// The result is at least the deepest existing ancestor; `None` if not even
/// the first component is close to anything.
pub(crate) fn nearest_unit(srctree: &Path, unit: &str) -> Option<String> {
    let mut found: Vec<String> = Vec::new();
    for wanted in unit.split('/') {
        let dir = srctree.join(found.join("/"));
        if dir.join(wanted).is_dir() {
            found.push(wanted.to_string());
            continue;
        }
        let children = child_dirs(&dir);
        match closest(wanted, children.iter().map(String::as_str)) {
            Some(child) => found.push(child.to_string()),
            None => break,
        }
    }
    (!found.is_empty()).then(|| found.join("/"))
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
}
