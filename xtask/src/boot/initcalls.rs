//! The initcall-order proof: under LTO the link stage must keep initcalls in
//! link order within each level (what `scripts/generate_initcall_order.pl`
//! does for Kbuild). With `initcall_debug` the kernel prints
//! `calling  foo_init+0x0/0x30 @ 1` before each call; the order of those
//! lines, per level, must match the order the build recorded in
//! `initcalls.json`.

use std::{collections::HashMap, fs, path::Path};

use anyhow::{Context, Result};
use serde::Deserialize;

use super::judge::lines;

/// One entry of `initcalls.json`, in link order. Extra fields are allowed:
/// the link stage may record more (the object file, say).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Initcall {
    pub level: String,
    pub function: String,
}

pub fn load(path: &Path) -> Result<Vec<Initcall>> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The functions the kernel called, in order, from `initcall_debug` lines.
/// Module init functions (`foo [mod] @ 1`) are not vmlinux initcalls.
pub fn observed(log: &str) -> Vec<&str> {
    const CALLING: &str = "calling  ";
    lines(log)
        .filter_map(|l| Some(&l[l.find(CALLING)? + CALLING.len()..]))
        .filter(|rest| !rest.contains(" ["))
        .filter_map(|rest| rest.split_once('+').map(|(name, _)| name))
        .collect()
}

/// ThinLTO promotes static functions with a `.llvm.<hash>` suffix; the
/// build's list may or may not carry it.
fn base_name(name: &str) -> &str {
    name.split_once(".llvm.").map_or(name, |(base, _)| base)
}

/// Checks the observed order against the expected one. Ok(evidence) or
/// Err(the first mismatch). Names that occur more than once in the list
/// (several static `init` functions) cannot be placed and are skipped.
pub fn check(expected: &[Initcall], log: &str) -> Result<String, String> {
    // name -> (level, position within the level), None when ambiguous.
    let mut position: HashMap<&str, Option<(&str, usize)>> = HashMap::new();
    let mut per_level: HashMap<&str, usize> = HashMap::new();
    for call in expected {
        let index = per_level.entry(&call.level).or_insert(0);
        position
            .entry(base_name(&call.function))
            .and_modify(|p| *p = None)
            .or_insert(Some((call.level.as_str(), *index)));
        *index += 1;
    }
    let ambiguous = position.values().filter(|p| p.is_none()).count();

    let calls = observed(log);
    if calls.is_empty() {
        return Err("no `calling  <fn>+0x...` lines: is initcall_debug on the command line and KALLSYMS on?".into());
    }
    // Per level: the last matched call, as (name, position).
    let mut last: HashMap<&str, (&str, usize)> = HashMap::new();
    let mut matched = 0;
    for name in &calls {
        let Some(Some((level, index))) = position.get(base_name(name)) else {
            continue;
        };
        if let Some(&(previous, previous_index)) = last.get(level) {
            if *index < previous_index {
                return Err(format!(
                    "level {level}: {name} (link order #{index}) was called after {previous} (link order #{previous_index})"
                ));
            }
        }
        last.insert(level, (name, *index));
        matched += 1;
    }
    if matched == 0 {
        return Err(format!(
            "none of the {} called initcalls is in initcalls.json ({} entries)",
            calls.len(),
            expected.len()
        ));
    }
    Ok(format!(
        "{matched} initcalls in {} levels called in link order ({} calls logged, {} entries in initcalls.json, {ambiguous} ambiguous names skipped)",
        last.len(),
        calls.len(),
        expected.len(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calls(list: &[(&str, &str)]) -> Vec<Initcall> {
        list.iter()
            .map(|(l, f)| Initcall {
                level: l.to_string(),
                function: f.to_string(),
            })
            .collect()
    }

    const LOG: &str = "\
[    0.1] calling  a_init+0x0/0x20 @ 1\r
[    0.1] initcall a_init+0x0/0x20 returned 0 after 0 usecs\r
[    0.2] calling  b_init.llvm.123+0x0/0x20 @ 1\r
[    0.3] calling  x_init+0x0/0x20 @ 1\r
[    0.4] calling  c_init+0x0/0x20 @ 1\r
[    0.5] calling  test_module_init+0x0/0xff0 [test_module] @ 1\r
";

    #[test]
    fn parses_calling_lines() {
        assert_eq!(
            observed(LOG),
            ["a_init", "b_init.llvm.123", "x_init", "c_init"]
        );
    }

    #[test]
    fn same_order_passes() {
        let expected = calls(&[
            ("1", "a_init"),
            ("1", "b_init"),
            ("6", "c_init"),
            ("6", "not_called"),
        ]);
        let evidence = check(&expected, LOG).unwrap();
        assert!(
            evidence.starts_with("3 initcalls in 2 levels"),
            "{evidence}"
        );
    }

    #[test]
    fn swapped_order_fails_with_both_positions() {
        let expected = calls(&[("1", "b_init"), ("1", "a_init")]);
        let err = check(&expected, LOG).unwrap_err();
        assert_eq!(
            err,
            "level 1: b_init.llvm.123 (link order #0) was called after a_init (link order #1)"
        );
    }

    #[test]
    fn ambiguous_names_are_skipped() {
        let expected = calls(&[("1", "b_init"), ("1", "a_init"), ("3", "a_init")]);
        assert!(check(&expected, LOG).unwrap().contains("1 ambiguous"));
    }

    #[test]
    fn no_initcall_debug_fails() {
        assert!(check(&calls(&[("1", "a_init")]), "Linux version 6.12\n")
            .unwrap_err()
            .contains("initcall_debug"));
    }

    #[test]
    fn reads_the_json_format() {
        let list: Vec<Initcall> =
            serde_json::from_str(r#"[{"level": "6", "function": "foo_init"}]"#).unwrap();
        assert_eq!(list, calls(&[("6", "foo_init")]));
    }
}
