//! The syntax of unit paths, object names and `--lto-off` specs.
//!
//! Paths are compared as written, component by component, and never resolved
//! against the file system: Kbuild names an object after the Makefile that
//! builds it, even when its source lives elsewhere (the nVHE Makefile builds
//! `arch/arm64/kvm/hyp/nvhe/../entry.nvhe.o`), and that object belongs to the
//! building unit. So `..` is kept in object paths, and only `.` and empty
//! components are dropped.

/// Drops `.` and empty components (`./kernel//time/` is `kernel/time`), but
/// keeps a leading `/` so that absolute paths are still recognisable.
pub(crate) fn normalize(path: &str) -> String {
    let body = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/");
    if path.starts_with('/') {
        format!("/{body}")
    } else {
        body
    }
}

/// Splits `--lto-off` syntax into unit and object: a last component ending in
/// `.o` names an object in the directory before it.
pub(crate) fn split_spec(spec: &str) -> (String, Option<String>) {
    let spec = normalize(spec);
    match spec.rsplit_once('/') {
        Some((unit, file)) if is_object_name(file) => (unit.to_string(), Some(file.to_string())),
        None if is_object_name(&spec) => (String::new(), Some(spec)),
        _ => (spec, None),
    }
}

/// Why a unit path cannot name a directory inside the kernel tree, if it
/// cannot. The text completes "the path ...".
pub(crate) fn escape_problem(unit: &str) -> Option<&'static str> {
    if unit.is_empty() {
        Some("is empty")
    } else if unit.starts_with('/') {
        Some("is absolute")
    } else if unit.split('/').any(|c| c == "..") {
        Some("contains `..`, which leaves the directory it names")
    } else {
        None
    }
}

/// Whether `name` is a plain object file name such as `ntp.o`.
pub(crate) fn is_object_name(name: &str) -> bool {
    name.len() > 2 && name.ends_with(".o") && !name.contains('/')
}

/// Whether directory `dir` is `unit` or lies below it, by whole components
/// (`kernel/timex` is not below `kernel/time`).
pub(crate) fn is_within(dir: &str, unit: &str) -> bool {
    match dir.strip_prefix(unit) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// The number of components of a normalized relative path.
pub(crate) fn depth(unit: &str) -> usize {
    unit.split('/').count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_drops_dots_and_empty_components() {
        assert_eq!(normalize("./kernel//time/"), "kernel/time");
        assert_eq!(normalize("/abs/x"), "/abs/x");
        assert_eq!(normalize("./"), "");
        assert_eq!(normalize("a/../b"), "a/../b");
    }

    #[test]
    fn split_spec_recognises_objects() {
        assert_eq!(split_spec("kernel/time"), ("kernel/time".into(), None));
        assert_eq!(
            split_spec("kernel/time/ntp.o"),
            ("kernel/time".into(), Some("ntp.o".into()))
        );
        assert_eq!(split_spec("ntp.o"), (String::new(), Some("ntp.o".into())));
    }

    #[test]
    fn within_compares_whole_components() {
        assert!(is_within("kernel/time", "kernel/time"));
        assert!(is_within("kernel/time/sub", "kernel/time"));
        assert!(!is_within("kernel/timex", "kernel/time"));
        assert!(!is_within("kernel", "kernel/time"));
    }

    #[test]
    fn escape_problems() {
        assert!(escape_problem("").is_some());
        assert!(escape_problem("/abs").is_some());
        assert!(escape_problem("../x").is_some());
        assert!(escape_problem("a/../../x").is_some());
        assert!(escape_problem("kernel/time").is_none());
        assert!(escape_problem("x..y").is_none());
    }
}
