//! The one reader of `.config` and `include/config/auto.conf`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};

use super::lex::{is_symbol_name, number};

/// A parsed `.config` (or `include/config/auto.conf`): `CONFIG_FOO=y`,
/// `CONFIG_BAR="str"`, `# CONFIG_BAZ is not set`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DotConfig {
    /// Symbol (without `CONFIG_`) to value; strings are stored unquoted.
    values: BTreeMap<String, String>,
}

impl DotConfig {
    /// Reads and parses `path`; a missing file is an error.
    pub fn read(path: &Path) -> Result<DotConfig> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Ok(Self::parse(&text))
    }

    /// Like [`DotConfig::read`], but a file that does not exist (yet) reads
    /// as an empty config; any other error is still one.
    pub fn read_or_empty(path: &Path) -> Result<DotConfig> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Self::parse(&text)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(DotConfig::default()),
            Err(error) => Err(error).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Lines that are not settings are ignored: `.config` is written by
    /// Kconfig itself, so there is nothing useful to report about them.
    pub fn parse(text: &str) -> DotConfig {
        let mut values = BTreeMap::new();
        for line in text.lines() {
            if let Ok(Some((symbol, value))) = parse_setting(line) {
                if value == "n" {
                    values.remove(&symbol);
                } else {
                    values.insert(symbol, value);
                }
            }
        }
        DotConfig { values }
    }

    /// Value of `symbol` (given without `CONFIG_`), strings unquoted. `None`
    /// when unset or absent: "n" is never returned.
    pub fn get(&self, symbol: &str) -> Option<&str> {
        self.values.get(symbol).map(String::as_str)
    }

    /// Every set symbol (without `CONFIG_`) and its value as [`DotConfig::get`]
    /// returns it, in symbol order, so anything keyed on it is stable.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values
            .iter()
            .map(|(symbol, value)| (symbol.as_str(), value.as_str()))
    }

    /// The settings that take `self` to `after`, as fragment lines
    /// (`CONFIG_FOO=y`, `# CONFIG_BAR is not set`), in symbol order.
    pub fn changes_to(&self, after: &DotConfig) -> Vec<String> {
        self.changed(after)
            .into_iter()
            .map(|symbol| match after.get(&symbol) {
                Some(value) => format!("CONFIG_{symbol}={}", display_value(value)),
                None => format!("# CONFIG_{symbol} is not set"),
            })
            .collect()
    }

    /// The symbols (without `CONFIG_`) whose values differ in `after`.
    pub fn changed(&self, after: &DotConfig) -> std::collections::BTreeSet<String> {
        self.values
            .keys()
            .chain(after.values.keys())
            .filter(|symbol| self.get(symbol) != after.get(symbol))
            .cloned()
            .collect()
    }

    /// True when no symbol is set, e.g. for a file that does not exist yet.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// The settings of fragment text `earlier` with `later`'s on top, as
/// fragment lines in symbol order: how edits accumulate.
pub fn merge_settings(earlier: &str, later: &[String]) -> Vec<String> {
    let mut settings: BTreeMap<String, String> = BTreeMap::new();
    for line in earlier.lines().chain(later.iter().map(String::as_str)) {
        if let Ok(Some((symbol, value))) = parse_setting(line) {
            settings.insert(symbol, value);
        }
    }
    settings
        .into_iter()
        .map(|(symbol, value)| match value.as_str() {
            "n" => format!("# CONFIG_{symbol} is not set"),
            value => format!("CONFIG_{symbol}={}", display_value(value)),
        })
        .collect()
}

/// One `.config`-style line: `Ok(Some((symbol, value)))` for an assignment
/// (value `"n"` for `# CONFIG_FOO is not set`), `Ok(None)` for blank lines
/// and comments, `Err` for anything else.
pub(super) fn parse_setting(line: &str) -> Result<Option<(String, String)>, String> {
    let line = line.trim();
    if let Some(comment) = line.strip_prefix('#') {
        let not_set = comment
            .trim_start()
            .strip_prefix("CONFIG_")
            .and_then(|rest| rest.strip_suffix(" is not set"))
            .filter(|symbol| is_symbol_name(symbol));
        return Ok(not_set.map(|symbol| (symbol.to_string(), "n".to_string())));
    }
    if line.is_empty() {
        return Ok(None);
    }
    let Some((key, raw)) = line.split_once('=') else {
        return Err(format!("expected `CONFIG_NAME=value`, found `{line}`"));
    };
    let symbol = key
        .strip_prefix("CONFIG_")
        .filter(|symbol| is_symbol_name(symbol))
        .ok_or_else(|| format!("`{key}` is not a CONFIG_ symbol"))?;
    Ok(Some((symbol.to_string(), parse_value(raw)?)))
}

/// A setting's value: `y`/`m`/`n`, a number, or a quoted string (unquoted
/// here). Anything with spaces outside quotes, such as a trailing comment,
/// is rejected because Kconfig would not understand it either.
fn parse_value(raw: &str) -> Result<String, String> {
    if raw.starts_with('"') {
        return unquote(raw).ok_or_else(|| format!("badly quoted string `{raw}`"));
    }
    if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Ok(raw.to_string());
    }
    Err(format!(
        "unexpected value `{raw}` (want y, m, n, a number or a \"string\")"
    ))
}

/// `"a \"b\""` -> `a "b"`; `None` unless the whole of `raw` is one string.
fn unquote(raw: &str) -> Option<String> {
    let mut chars = raw.strip_prefix('"')?.chars();
    let mut out = String::new();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return chars.as_str().is_empty().then_some(out),
            _ => out.push(c),
        }
    }
    None
}

/// How a value is written in a setting: strings quoted, the rest bare.
pub(super) fn display_value(value: &str) -> String {
    let bare = matches!(value, "y" | "m" | "n") || number(value).is_some();
    if bare {
        value.to_string()
    } else {
        format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_config_values() {
        let config = DotConfig::parse(
            "#\n# Automatically generated\n#\nCONFIG_A=y\nCONFIG_B=m\n# CONFIG_C is not set\n\
             CONFIG_S=\"say \\\"hi\\\" \\\\o/\"\nCONFIG_N=0x10\nCONFIG_D=n\n",
        );
        assert_eq!(config.get("A"), Some("y"));
        assert_eq!(config.get("B"), Some("m"));
        assert_eq!(config.get("C"), None);
        assert_eq!(config.get("D"), None);
        assert_eq!(config.get("S"), Some("say \"hi\" \\o/"));
        assert_eq!(config.get("N"), Some("0x10"));
        assert_eq!(config.get("CONFIG_A"), None);
        let all: Vec<(&str, &str)> = config.iter().collect();
        assert_eq!(
            all,
            [
                ("A", "y"),
                ("B", "m"),
                ("N", "0x10"),
                ("S", "say \"hi\" \\o/")
            ]
        );
    }

    #[test]
    fn read_or_empty_only_forgives_a_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".config");
        let missing = DotConfig::read_or_empty(&path).unwrap();
        assert!(missing.is_empty());
        assert!(DotConfig::read(&path).is_err());
        std::fs::write(&path, "CONFIG_A=y\n").unwrap();
        assert_eq!(DotConfig::read_or_empty(&path).unwrap().get("A"), Some("y"));
        // A directory is not a missing file: that error still surfaces.
        assert!(DotConfig::read_or_empty(dir.path()).is_err());
    }
}
