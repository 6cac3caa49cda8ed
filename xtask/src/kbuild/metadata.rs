//! Reproducible by default: the build metadata Kbuild would take from the
//! clock, the user, the host and a counter in the object tree is fixed, so
//! two clean builds of the same inputs are byte-identical and "incremental
//! equals clean" is a sha256 comparison. A value the user exports wins.

use std::{path::Path, time::UNIX_EPOCH};

use crate::process;
use anyhow::{Context, Result};

/// The variables Kbuild reads, with their values: the user's, or fixed here.
pub fn variables(srctree: &Path) -> Result<Vec<(&'static str, String)>> {
    let mut all = Vec::new();
    for (name, value) in [
        ("KBUILD_BUILD_USER", Some("xtask".to_string())),
        ("KBUILD_BUILD_HOST", Some("xtask".to_string())),
        ("KBUILD_BUILD_VERSION", Some("1".to_string())),
        ("KBUILD_BUILD_TIMESTAMP", None),
    ] {
        let value = match (std::env::var(name), value) {
            (Ok(user), _) => user,
            (Err(_), Some(value)) => value,
            (Err(_), None) => timestamp(epoch(srctree)?)?,
        };
        all.push((name, value));
    }
    Ok(all)
}

/// `SOURCE_DATE_EPOCH`, or the time of the source's top Makefile (a release
/// tarball stamps it with the release).
pub fn epoch(srctree: &Path) -> Result<u64> {
    if let Ok(epoch) = std::env::var("SOURCE_DATE_EPOCH") {
        return epoch
            .trim()
            .parse()
            .with_context(|| format!("SOURCE_DATE_EPOCH={epoch} is not a number of seconds"));
    }
    let modified = std::fs::metadata(srctree.join("Makefile"))?.modified()?;
    Ok(modified
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()))
}

/// The form `date` prints, which is what Kbuild puts in `UTS_VERSION` and
/// hands back to `date -d`.
fn timestamp(epoch: u64) -> Result<String> {
    let out = process::stdout(
        process::command("date")
            .args(["-u", "-d", &format!("@{epoch}")])
            .env("LC_ALL", "C"),
    )?;
    Ok(out.trim().to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_are_in_dates_own_form() {
        assert_eq!(
            super::timestamp(1_700_000_000).unwrap(),
            "Tue Nov 14 22:13:20 UTC 2023"
        );
    }
}
