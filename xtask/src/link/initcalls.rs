//! The initcall order, as Kbuild's `scripts/generate_initcall_order.pl`
//! computes it: LTO may reorder initcalls within a level, so a linker script
//! pins them to the order of the archives' members.

use std::{collections::BTreeMap, fs, path::Path};

use crate::process;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// One initcall, in the order the LTO link will place it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Initcall {
    pub level: String,
    pub function: String,
    /// The section name suffix: `<module>__<counter>_<line>_<function>`.
    pub section: String,
}

/// Reads the initcalls of each archive member in link order, as
/// `generate_initcall_order.pl` does: LTO may reorder initcalls within a level,
/// so the link script pins them to the order of the archives.
pub fn initcall_order(objtree: &Path, nm: &Path, archives: &[String]) -> Result<Vec<Initcall>> {
    let mut order = Vec::new();
    for archive in archives {
        let listing = process::stdout(
            process::command(nm)
                .arg("--defined-only")
                .arg(archive)
                .current_dir(objtree),
        )?;
        order.extend(parse_nm_initcalls(&listing)?);
    }
    if order.is_empty() {
        bail!("no initcalls found in {}", archives.join(" "));
    }
    Ok(order)
}

/// Within one object, initcalls are ordered by their `__COUNTER__`.
fn parse_nm_initcalls(nm_output: &str) -> Result<Vec<Initcall>> {
    let mut all = Vec::new();
    let mut member: BTreeMap<u64, Initcall> = BTreeMap::new();
    for line in nm_output.lines() {
        if line.ends_with(':') {
            all.extend(std::mem::take(&mut member).into_values());
            continue;
        }
        let Some(name) = line
            .split_whitespace()
            .nth(2)
            .or_else(|| line.split_whitespace().nth(1))
        else {
            continue;
        };
        let Some(rest) = name.strip_prefix("__initcall__") else {
            continue;
        };
        let Some((module, counter, src_line, symbol)) = split_initcall(rest) else {
            continue;
        };
        let (function, level) =
            split_level(symbol).with_context(|| format!("invalid initcall name {symbol}"))?;
        member.insert(
            counter,
            Initcall {
                level: level.into(),
                function: function.into(),
                section: format!("{module}__{counter}_{src_line}_{function}"),
            },
        );
    }
    all.extend(member.into_values());
    Ok(all)
}

/// `<module>__<counter>_<line>_<function><level>` -> its four parts. The
/// function may hold `__` itself (`e820__register_nvs_regions`), so the
/// split is at the last `__` followed by `<digits>_<digits>_`, as the Perl
/// original's greedy `(\S*)__(\d+)_(\d+)_(.*)` takes it.
fn split_initcall(rest: &str) -> Option<(&str, u64, &str, &str)> {
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    (0..rest.len())
        .rev()
        .filter(|&at| rest.as_bytes()[at..].starts_with(b"__"))
        .find_map(|at| {
            let mut parts = rest[at + 2..].splitn(3, '_');
            let (counter, src_line, symbol) = (parts.next()?, parts.next()?, parts.next()?);
            if !digits(counter) || !digits(src_line) || symbol.is_empty() {
                return None;
            }
            Some((&rest[..at], counter.parse().ok()?, src_line, symbol))
        })
}

/// `foo_init6s` -> (`foo_init`, `6s`). As in the Perl original the function
/// name is greedy, so the shortest level suffix wins (`populate_rootfsrootfs`).
fn split_level(symbol: &str) -> Option<(&str, &str)> {
    let is_level = |l: &str| {
        matches!(l, "early" | "rootfs" | "con")
            || (l.len() == 1 && l.as_bytes()[0].is_ascii_digit())
    };
    (1..=symbol.len().min(7))
        .map(|n| symbol.len() - n)
        .filter(|&i| symbol.is_char_boundary(i))
        .find(|&i| {
            let level = &symbol[i..];
            is_level(level) || level.strip_suffix('s').is_some_and(is_level)
        })
        .map(|i| (&symbol[..i], &symbol[i..]))
}

/// The linker script that pins the order, byte-compatible with Kbuild's.
pub fn initcall_lds(order: &[Initcall]) -> String {
    let mut levels: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for call in order {
        levels.entry(&call.level).or_default().push(&call.section);
    }
    let mut lds = String::from("SECTIONS {\n");
    for (level, sections) in levels {
        let section = if level == "con" {
            ".con_initcall.init".to_string()
        } else {
            format!(".initcall{level}.init")
        };
        lds += &format!("\t{section} : {{\n");
        for name in sections {
            lds += &format!("\t\t*({section}..{name}) ;\n");
        }
        lds += "\t}\n";
    }
    lds + "}\n"
}

/// The native step's command, in its key: bumped when the order it computes
/// changes, so that trees written by an older xtask are ordered again.
pub const COMMAND: &str = "xtask initcall-order v2";

/// Writes `.tmp_initcalls.lds` and `initcalls.json` (for the boot proof).
pub fn write(objtree: &Path, nm: &Path, archives: &[String]) -> Result<()> {
    let order = initcall_order(objtree, nm, archives)?;
    fs::write(objtree.join(".tmp_initcalls.lds"), initcall_lds(&order))?;
    crate::fs_atomic::write_json(&objtree.join("initcalls.json"), &order)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initcalls_follow_member_order_then_counter() {
        let nm = "vmlinux.a:\n\ninit/main.o:\n\
0000000000000008 d __initcall__kmod_main__300_1200_second_init6\n\
0000000000000000 d __initcall__kmod_main__299_1100_first_initearly\n\
00000000 T not_an_initcall\n\
kernel/fork.o:\n\
0000000000000000 d __initcall__kmod_fork__512_3300_fork_init1s\n\
init/initramfs.o:\n\
0000000000000000 d __initcall__kmod_initramfs__9_755_populate_rootfsrootfs\n\
drivers/tty/vt.o:\n\
0000000000000000 d __initcall__kmod_vt__7_10_con_initcon\n\
arch/x86/kernel/e820.o:\n\
---------------- t __initcall__kmod_e820__528_792_e820__register_nvs_regions1\n";
        let calls = parse_nm_initcalls(nm).unwrap();
        let names: Vec<_> = calls
            .iter()
            .map(|c| (c.level.as_str(), c.function.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("early", "first_init"),
                ("6", "second_init"),
                ("1s", "fork_init"),
                ("rootfs", "populate_rootfs"),
                ("con", "con_init"),
                ("1", "e820__register_nvs_regions")
            ]
        );
        let lds = initcall_lds(&calls);
        assert!(
            lds.contains(
                "\t.con_initcall.init : {\n\t\t*(.con_initcall.init..kmod_vt__7_10_con_init) ;\n"
            ),
            "{lds}"
        );
        assert!(
            lds.contains(".initcall1s.init..kmod_fork__512_3300_fork_init) ;"),
            "{lds}"
        );
        let level_order: Vec<_> = lds.lines().filter(|l| l.ends_with(": {")).collect();
        assert!(
            lds.contains(
                "\t\t*(.initcall1.init..kmod_e820__528_792_e820__register_nvs_regions) ;\n"
            ),
            "{lds}"
        );
        assert_eq!(level_order.len(), 6);
        assert!(
            level_order[0].contains("initcall1.") && level_order[5].contains("initcallrootfs"),
            "{lds}"
        );
    }
}
