//! `include/config/auto.conf.cmd`: the Kconfig files `syncconfig` read, as
//! make's `deps_config` list. A change to any of them (a new default) must
//! configure again.

use std::{fs, path::Path};

/// The Kconfig files of the last `syncconfig`, relative to the source tree;
/// empty when the tree was never configured.
pub fn sources(objtree: &Path) -> Vec<String> {
    fs::read_to_string(objtree.join("include/config/auto.conf.cmd"))
        .map(|text| parse(&text))
        .unwrap_or_default()
}

fn parse(text: &str) -> Vec<String> {
    let mut lines = text
        .lines()
        .skip_while(|l| !l.starts_with("deps_config :="));
    let Some(first) = lines.next() else {
        return Vec::new();
    };
    let mut files = Vec::new();
    let mut continued = first.trim_end().ends_with('\\');
    for line in lines {
        if !continued {
            break;
        }
        continued = line.trim_end().ends_with('\\');
        files.extend(
            line.trim()
                .trim_end_matches('\\')
                .split_whitespace()
                .map(String::from),
        );
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deps_config_list_ends_at_its_last_continuation() {
        let text = "autoconfig := include/config/auto.conf\n\ndeps_config := \\\n\tKconfig \\\n\tinit/Kconfig \\\n\tarch/x86/Kconfig\n\n$(autoconfig): $(deps_config)\n";
        assert_eq!(parse(text), ["Kconfig", "init/Kconfig", "arch/x86/Kconfig"]);
        assert!(parse("nothing here\n").is_empty());
    }
}
