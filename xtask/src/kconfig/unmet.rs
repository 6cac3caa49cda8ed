//! Which requests did not land in `.config`, and why.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;

use anyhow::Result;

use super::dotconfig::display_value;
use super::{DotConfig, Kconfig, Request};

/// A request that did not land, with the reasons found for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmet {
    pub request: Request,
    /// The value `.config` ended up with; `None` when not set.
    pub actual: Option<String>,
    pub reasons: Vec<String>,
}

/// Said when the Kconfig tree shows no unmet dependency.
const NO_REASON: &str =
    "no unmet dependency found; another symbol may select or exclude it (e.g. a choice)";

impl fmt::Display for Unmet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let request = &self.request;
        let actual = match &self.actual {
            None => "is not set".to_string(),
            Some(value) => format!("is {}", display_value(value)),
        };
        write!(
            f,
            "{} ({}:{}) did not land ({actual}): ",
            request.setting(),
            request.file.display(),
            request.line
        )?;
        if self.reasons.is_empty() {
            f.write_str(NO_REASON)
        } else {
            f.write_str(&self.reasons.join("; "))
        }
    }
}

/// Compares `requests` with the resulting `.config` and explains, using the
/// Kconfig tree at `srctree` for `srcarch`, the ones that did not land.
///
/// A value must match exactly (`y` asked and `m` obtained is a miss); an `n`
/// request is met by an absent symbol. When a symbol is requested several
/// times only the last request counts, as it is the one olddefconfig saw.
/// A tree this reader cannot follow does not hide the misses: each gets a
/// reason saying why it could not be explained.
pub fn verify(
    srctree: &Path,
    srcarch: &str,
    config: &DotConfig,
    requests: &[Request],
) -> Result<Vec<Unmet>> {
    let missing: Vec<(&Request, Option<&str>)> = last_requests(requests)
        .into_iter()
        .map(|request| (request, config.get(&request.symbol)))
        .filter(|(request, actual)| !landed(&request.value, *actual))
        .collect();
    if missing.is_empty() {
        // Reading the whole tree is the slow part; skip it when all is well.
        return Ok(Vec::new());
    }
    // The misses matter more than their explanation: when this reader cannot
    // follow the tree (say, a keyword from a newer kernel), still report them.
    let kconfig = Kconfig::load(srctree, srcarch);
    let requested: HashSet<&str> = requests.iter().map(|r| r.symbol.as_str()).collect();
    let explain = |request: &Request| match &kconfig {
        Ok(kconfig) => kconfig.explain(config, request, &requested),
        Err(error) => vec![format!(
            "cannot explain: reading the Kconfig tree failed: {error:#}"
        )],
    };
    Ok(missing
        .into_iter()
        .map(|(request, actual)| Unmet {
            reasons: explain(request),
            request: request.clone(),
            actual: actual.map(str::to_string),
        })
        .collect())
}

/// The settings among `settings` whose symbol no Kconfig file for `srcarch`
/// defines: a whole `.config` from the user may set anything its kernel
/// knew, and `olddefconfig` changes values freely, but a symbol this kernel
/// does not know is a typo or a file from another kernel. Only symbols
/// absent from `config` are looked up, so a good file costs no tree read.
pub fn undefined(
    srctree: &Path,
    srcarch: &str,
    config: &DotConfig,
    settings: &[Request],
) -> Result<Vec<Unmet>> {
    let absent: Vec<&Request> = settings
        .iter()
        .filter(|setting| config.get(&setting.symbol).is_none())
        .collect();
    if absent.is_empty() {
        return Ok(Vec::new());
    }
    let kconfig = Kconfig::load(srctree, srcarch)?;
    Ok(absent
        .into_iter()
        .filter(|setting| kconfig.definitions(&setting.symbol).is_empty())
        .map(|setting| Unmet {
            reasons: kconfig.explain(config, setting, &HashSet::new()),
            request: setting.clone(),
            actual: None,
        })
        .collect())
}

fn landed(requested: &str, actual: Option<&str>) -> bool {
    match actual {
        None => requested == "n",
        Some(actual) => actual == requested,
    }
}

/// The last request of each symbol, in fragment order.
fn last_requests(requests: &[Request]) -> Vec<&Request> {
    let last: HashMap<&str, usize> = requests
        .iter()
        .enumerate()
        .map(|(index, request)| (request.symbol.as_str(), index))
        .collect();
    requests
        .iter()
        .enumerate()
        .filter(|(index, request)| last[request.symbol.as_str()] == *index)
        .map(|(_, request)| request)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kconfig::fixture::{request, tree};

    #[test]
    fn landed_requests_are_not_reported() {
        let requests = [
            request("CONFIG_A=y"),
            request("# CONFIG_B is not set"),
            request("CONFIG_S=\"x\""),
        ];
        let config = DotConfig::parse("CONFIG_A=y\nCONFIG_S=\"x\"\n");
        // No tree is needed when everything landed.
        let unmet = verify(Path::new("/nonexistent"), "x86", &config, &requests).unwrap();
        assert!(unmet.is_empty(), "{unmet:?}");
    }

    #[test]
    fn only_the_last_request_of_a_symbol_counts() {
        let requests = [request("CONFIG_A=m"), request("CONFIG_A=y")];
        let config = DotConfig::parse("CONFIG_A=y\n");
        assert!(verify(Path::new("/nonexistent"), "x86", &config, &requests)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn undefined_symbols_of_a_whole_config() {
        let dir = tree();
        let settings = [
            request("CONFIG_BASE=y"),
            Request {
                line: 3,
                ..request("CONFIG_FOO=y")
            },
            request("# CONFIG_DEBUG is not set"),
        ];
        // BASE is set, DEBUG absent but defined: neither is reported.
        let config = DotConfig::parse("CONFIG_BASE=y\n");
        let unmet = undefined(dir.path(), "x86", &config, &settings).unwrap();
        let shown: Vec<String> = unmet.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            ["CONFIG_FOO=y (test.config:3) did not land (is not set): \
              CONFIG_FOO is not defined in any Kconfig file for SRCARCH=x86 \
              (misspelt, or not in this kernel version?)"]
        );
        // A file that sets only what the kernel keeps needs no tree at all.
        let good = [request("CONFIG_BASE=y")];
        assert!(undefined(Path::new("/nonexistent"), "x86", &config, &good)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn unreadable_tree_still_reports_the_miss() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Kconfig"), "frobnicate FOO\n").unwrap();
        let unmet = verify(
            dir.path(),
            "x86",
            &DotConfig::default(),
            &[request("CONFIG_A=y")],
        )
        .unwrap();
        assert_eq!(
            unmet[0].reasons,
            ["cannot explain: reading the Kconfig tree failed: \
              Kconfig:1: unknown Kconfig keyword `frobnicate`"]
        );
    }

    #[test]
    fn display() {
        let dir = tree();
        let requests = [
            Request {
                line: 7,
                ..request("CONFIG_UNDER_IF=y")
            },
            request("CONFIG_CMDLINE=\"quiet\""),
        ];
        let unmet = verify(
            dir.path(),
            "x86",
            &DotConfig::parse("CONFIG_CMDLINE=\"loud\"\n"),
            &requests,
        )
        .unwrap();
        let shown: Vec<String> = unmet.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "CONFIG_UNDER_IF=y (test.config:7) did not land (is not set): if DEBUG [=n] (Kconfig:19)",
                &format!("CONFIG_CMDLINE=\"quiet\" (test.config:1) did not land (is \"loud\"): {NO_REASON}"),
            ]
        );
    }
}
