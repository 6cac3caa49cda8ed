//! The initcall-order proof: under LTO the link stage must keep initcalls in
//! link order within each level (what `scripts/generate_initcall_order.pl`
//! does for Kbuild). With `initcall_debug` the kernel prints
//! `calling  foo_init+0x0/0x30 @ 1` before each call; the order of those
//! lines, per level, must match the order the build recorded in
//! `initcalls.json`.
//!
//! Under LTO the kernel calls a stub instead (include/linux/init.h), named
//! `__initstub__kmod_<module>__<counter>_<line>_<function><level>`, e.g.
//! `__initstub__kmod_vt__320_3687_con_initcon`: we match those by
//! function and level, which is also less ambiguous than the name alone.

use std::{collections::HashMap, path::Path};

use anyhow::Result;

use super::judge::lines;
use crate::link::Initcall;

/// The link order [`crate::link::write_initcalls`] recorded.
pub fn load(path: &Path) -> Result<Vec<Initcall>> {
    crate::fs_atomic::read_json(path)
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

/// For an LTO initcall stub, `<function><level>`; None for a plain function.
fn stub_key(name: &str) -> Option<&str> {
    let iid = name.strip_prefix("__initstub__kmod_")?;
    // After the module name: `__<counter>_<line>_`.
    iid.match_indices("__").find_map(|(i, _)| {
        let mut parts = iid[i + 2..].splitn(3, '_');
        let (counter, line, rest) = (parts.next()?, parts.next()?, parts.next()?);
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        (digits(counter) && digits(line) && !rest.is_empty()).then_some(rest)
    })
}

/// Checks the observed order against the expected one. Ok(evidence) or
/// Err(the first mismatch). Names that occur more than once in the list
/// (several static `init` functions) cannot be placed and are skipped.
pub fn check(expected: &[Initcall], log: &str) -> Result<String, String> {
    // Plain name, or `<function><level>` for stubs -> (level, position
    // within the level); None when ambiguous.
    type Positions<'a> = HashMap<String, Option<(&'a str, usize)>>;
    let (mut by_name, mut by_stub): (Positions, Positions) = Default::default();
    let mut per_level: HashMap<&str, usize> = HashMap::new();
    for call in expected {
        let index = per_level.entry(&call.level).or_insert(0);
        let function = base_name(&call.function);
        for (map, key) in [
            (&mut by_name, function.to_string()),
            (&mut by_stub, format!("{function}{}", call.level)),
        ] {
            map.entry(key)
                .and_modify(|p| *p = None)
                .or_insert(Some((call.level.as_str(), *index)));
        }
        *index += 1;
    }

    let calls = observed(log);
    if calls.is_empty() {
        return Err("no `calling  <fn>+0x...` lines: is initcall_debug on the command line and KALLSYMS on?".into());
    }
    // Per level: the last matched call, as (name, position).
    let mut last: HashMap<&str, (&str, usize)> = HashMap::new();
    let (mut matched, mut ambiguous) = (0, 0);
    for name in &calls {
        let found = match stub_key(name) {
            Some(key) => by_stub.get(key),
            None => by_name.get(base_name(name)),
        };
        let (level, index) = match found {
            Some(Some(position)) => position,
            Some(None) => {
                ambiguous += 1;
                continue;
            }
            None => continue,
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
        "{matched} initcalls in {} levels called in link order ({} calls logged, {} entries in initcalls.json, {ambiguous} calls with ambiguous names skipped)",
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
                section: String::new(),
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
        assert!(check(&expected, LOG)
            .unwrap()
            .contains("1 calls with ambiguous"));
    }

    #[test]
    fn lto_stubs_match_by_function_and_level() {
        assert_eq!(
            stub_key("__initstub__kmod_vt__320_3687_con_initcon"),
            Some("con_initcon")
        );
        assert_eq!(stub_key("__initstub__kmod_a__b__1_2_f6"), Some("f6"));
        assert_eq!(stub_key("foo_init"), None);
        let log = "calling  __initstub__kmod_x__1_10_init6+0x0/0x10 @ 1\n\
                   calling  __initstub__kmod_y__2_20_init6+0x0/0x10 @ 1\n\
                   calling  __initstub__kmod_z__3_30_other_init6+0x0/0x10 @ 1\n";
        // "init" is ambiguous at level 6, but other_init is not.
        let expected = calls(&[
            ("6", "init"),
            ("6", "init"),
            ("6", "other_init"),
            ("7", "init"),
        ]);
        let evidence = check(&expected, log).unwrap();
        assert!(
            evidence.starts_with("1 initcalls in 1 levels"),
            "{evidence}"
        );
        let swapped = calls(&[("6", "other_init"), ("6", "late"), ("6", "init")]);
        let log = log.replace("other_init6", "late6");
        let err = check(&swapped, &log).unwrap_err();
        assert!(err.contains("was called after"), "{err}");
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
            serde_json::from_str(r#"[{"level": "6", "function": "foo_init", "section": ""}]"#)
                .unwrap();
        assert_eq!(list, calls(&[("6", "foo_init")]));
    }
}
