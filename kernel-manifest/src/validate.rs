//! Checking a policy's rules against a kernel source tree and configuration.
//!
//! User rules that do not fit the tree are errors: the user can fix them.
//! Manifest rules that do not fit are warnings: the table was researched in
//! Linux 6.12 (where a test keeps it exact), and another tree given with
//! `--source` may lack a unit without that being the user's mistake.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::suggest::{nearest_object, nearest_unit};
use crate::{path, Error, Origin, Rule, Warning, WarningKind};

/// All checks of [`Policy::validate`](crate::Policy::validate).
pub(crate) fn validate(
    rules: &[Rule],
    srctree: &Path,
    built_units: &BTreeSet<String>,
) -> Result<Vec<Warning>, Error> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut valid = Vec::new();
    for rule in rules {
        match check_in_tree(rule, srctree) {
            Ok(None) => valid.push(rule),
            Ok(Some(warning)) => warnings.push(warning),
            Err(error) => errors.push(error),
        }
    }
    errors.extend(duplicates(rules));
    if let Some(error) = Error::from_list(errors) {
        return Err(error);
    }
    let built: BTreeSet<String> = built_units.iter().map(|u| path::normalize(u)).collect();
    warnings.extend(valid.iter().filter_map(|r| not_built(r, &built)));
    warnings.extend(redundant(rules));
    Ok(warnings)
}

/// The checks that need no file system: the unit stays inside the tree and
/// the object is a plain `.o` name.
pub(crate) fn check_syntax(rule: &Rule) -> Result<(), Error> {
    if let Some(problem) = path::escape_problem(&rule.unit) {
        return Err(Error::OutsideTree {
            origin: rule.origin.clone(),
            spec: rule.spec(),
            problem,
        });
    }
    match &rule.object {
        Some(object) if !path::is_object_name(object) => Err(Error::BadObject {
            origin: rule.origin.clone(),
            spec: rule.spec(),
            object: object.clone(),
        }),
        _ => Ok(()),
    }
}

/// Checks that the unit is a directory of the tree and the object has a
/// source in it. A manifest rule that does not fit gives a warning instead.
fn check_in_tree(rule: &Rule, srctree: &Path) -> Result<Option<Warning>, Error> {
    check_syntax(rule)?;
    let problem = if !srctree.join(&rule.unit).is_dir() {
        Error::NotInTree {
            origin: rule.origin.clone(),
            spec: rule.spec(),
            unit: rule.unit.clone(),
            srctree: srctree.to_path_buf(),
            suggestion: nearest_unit(srctree, &rule.unit),
        }
    } else if let Some(stem) = missing_source(rule, srctree) {
        Error::NoSource {
            origin: rule.origin.clone(),
            spec: rule.spec(),
            unit: rule.unit.clone(),
            suggestion: nearest_object(srctree, &rule.unit, &stem),
            stem,
        }
    } else {
        return Ok(None);
    };
    if rule.origin == Origin::Manifest {
        Ok(Some(Warning::about(
            rule,
            WarningKind::MissingFromTree,
            format!(
                "{problem} (the manifest was written for Linux 6.12; this entry has no effect here)"
            ),
        )))
    } else {
        Err(problem)
    }
}

/// The stem of the rule's object if neither `stem.c` nor `stem.S` exists.
fn missing_source(rule: &Rule, srctree: &Path) -> Option<String> {
    let stem = rule.object.as_deref()?.strip_suffix(".o")?;
    let dir = srctree.join(&rule.unit);
    let exists = ["c", "S"]
        .iter()
        .any(|ext| dir.join(format!("{stem}.{ext}")).is_file());
    (!exists).then(|| stem.to_string())
}

/// Every rule that repeats an earlier rule's unit and object. Manifest
/// entries never conflict with each other (one entry per architecture may
/// share a unit).
fn duplicates(rules: &[Rule]) -> Vec<Error> {
    let mut first_seen: BTreeMap<(&str, Option<&str>), &Rule> = BTreeMap::new();
    let mut errors = Vec::new();
    for rule in rules {
        let key = (rule.unit.as_str(), rule.object.as_deref());
        match first_seen.get(&key) {
            None => {
                first_seen.insert(key, rule);
            }
            Some(first) if first.origin == Origin::Manifest && rule.origin == Origin::Manifest => {}
            Some(first) => errors.push(Error::Duplicate {
                spec: rule.spec(),
                first: first.origin.clone(),
                second: rule.origin.clone(),
            }),
        }
    }
    errors
}

/// A warning if nothing the rule covers is compiled in this configuration:
/// for a unit rule, no built directory at or below the unit; for an object
/// rule, the object's own directory is not built.
fn not_built(rule: &Rule, built: &BTreeSet<String>) -> Option<Warning> {
    let is_built = match rule.object {
        Some(_) => built.contains(&rule.unit),
        None => built.iter().any(|dir| path::is_within(dir, &rule.unit)),
    };
    (!is_built).then(|| {
        Warning::about(
            rule,
            WarningKind::NotBuilt,
            format!(
                "{} is not built in this configuration ({}), so its LTO opt-out has no effect",
                rule.spec(),
                rule.origin
            ),
        )
    })
}

/// A warning for each user rule that a shallower unit rule already covers,
/// so the user can drop it.
fn redundant(rules: &[Rule]) -> Vec<Warning> {
    let covers = |outer: &Rule, inner: &Rule| {
        outer.object.is_none()
            && path::is_within(&inner.unit, &outer.unit)
            && (inner.unit != outer.unit || inner.object.is_some())
    };
    rules
        .iter()
        .filter(|inner| inner.origin != Origin::Manifest)
        .filter_map(|inner| {
            let outer = rules.iter().find(|outer| covers(outer, inner))?;
            Some(Warning::about(
                inner,
                WarningKind::Redundant,
                format!(
                    "{} ({}) is already built without LTO by the rule for {} ({}); \
                     remove the redundant entry",
                    inner.spec(),
                    inner.origin,
                    outer.spec(),
                    outer.origin
                ),
            ))
        })
        .collect()
}
