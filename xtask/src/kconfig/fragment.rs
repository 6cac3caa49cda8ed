//! Fragment files: each setting becomes a [`Request`] that remembers its
//! file and line, so a miss can point at the line that asked for it.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::dotconfig::{display_value, parse_setting};

/// One line of a fragment file: `CONFIG_FOO=y`, `CONFIG_FOO=m`,
/// `CONFIG_FOO="x"` or `# CONFIG_FOO is not set` (a request for n).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Without the `CONFIG_` prefix.
    pub symbol: String,
    /// `"n"` for not set; strings unquoted, as [`DotConfig::get`] returns them.
    pub value: String,
    pub file: PathBuf,
    /// 1-based.
    pub line: usize,
}

impl Request {
    /// `CONFIG_FOO=y`, `CONFIG_BAR="x"`.
    pub(super) fn setting(&self) -> String {
        format!("CONFIG_{}={}", self.symbol, display_value(&self.value))
    }
}

/// The requests of a fragment file. Comments and blank lines are ignored;
/// any other line that is not a setting is an error naming file and line.
pub fn parse_fragment(path: &Path) -> Result<Vec<Request>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_fragment_text(&text, path)
}

fn parse_fragment_text(text: &str, file: &Path) -> Result<Vec<Request>> {
    let mut requests = Vec::new();
    for (index, line) in text.lines().enumerate() {
        match parse_setting(line) {
            Ok(Some((symbol, value))) => requests.push(Request {
                symbol,
                value,
                file: file.to_path_buf(),
                line: index + 1,
            }),
            Ok(None) => {}
            Err(message) => bail!("{}:{}: {message}", file.display(), index + 1),
        }
    }
    Ok(requests)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragment_lines() {
        let text = "# comment\n\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=\"x y\"\nCONFIG_D=m\n";
        let requests = parse_fragment_text(text, Path::new("f.config")).unwrap();
        let got: Vec<(&str, &str, usize)> = requests
            .iter()
            .map(|r| (r.symbol.as_str(), r.value.as_str(), r.line))
            .collect();
        assert_eq!(
            got,
            [("A", "y", 3), ("B", "n", 4), ("C", "x y", 5), ("D", "m", 6)]
        );
        assert_eq!(requests[0].file, Path::new("f.config"));
    }

    #[test]
    fn fragment_errors_name_file_and_line() {
        for bad in [
            "A=y",
            "CONFIG_A=y # on",
            "CONFIG_A",
            "CONFIG_A=\"open",
            "CONFIG_A=",
        ] {
            let error = parse_fragment_text(&format!("# ok\n{bad}\n"), Path::new("f.config"))
                .expect_err(bad)
                .to_string();
            assert!(error.starts_with("f.config:2: "), "{bad}: {error}");
        }
    }
}
