//! [`Policy`]: the opt-outs of one build, from the manifest and from the user.

use std::collections::BTreeSet;
use std::path::Path;

use crate::{overlay, path, validate, Arch, Error, Origin, Rule, Warning, UPSTREAM};

/// The LTO opt-outs of one build: which units and objects are built as native
/// ELF instead of LLVM bitcode, and why.
///
/// Rules are kept in the order they were added: the manifest first, then the
/// user's, so that a duplicate is reported at its later declaration.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    rules: Vec<Rule>,
}

impl Policy {
    /// The shipped [`UPSTREAM`] opt-outs that apply to `arch`.
    pub fn upstream(arch: Arch) -> Policy {
        let rules = UPSTREAM
            .iter()
            .filter(|o| o.arch.is_none_or(|a| a == arch))
            .map(|o| Rule {
                unit: o.unit.to_string(),
                object: o.object.map(str::to_string),
                reason: o.reason.to_string(),
                origin: Origin::Manifest,
            })
            .collect();
        Policy { rules }
    }

    /// Every rule, in the order it was added.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Adds `--lto-off UNIT[/OBJ.o]` from the command line, with the reason
    /// "requested with --lto-off". A last component ending in `.o` names one
    /// object; anything else is a unit. A path that leaves the tree is
    /// rejected at once; whether it exists is checked by
    /// [`validate`](Policy::validate).
    pub fn add_command_line(&mut self, spec: &str) -> Result<(), Error> {
        let (unit, object) = path::split_spec(spec);
        let rule = Rule {
            unit,
            object,
            reason: "requested with --lto-off".to_string(),
            origin: Origin::CommandLine,
        };
        validate::check_syntax(&rule)?;
        self.rules.push(rule);
        Ok(())
    }

    /// Adds every entry of a TOML overlay file, which has the same power as
    /// `--lto-off` but carries a reason:
    ///
    /// ```toml
    /// [[lto-off]]
    /// unit = "kernel/time"
    /// object = "ntp.o"        # optional
    /// reason = "why"          # required, non-empty
    /// ```
    ///
    /// Unknown keys, a missing or empty `reason` and TOML syntax errors are
    /// reported with the file and line, as are paths that leave the tree.
    /// Nothing is added if the file has an error.
    pub fn add_overlay(&mut self, path: &Path) -> Result<(), Error> {
        let rules = overlay::load(path)?;
        rules.iter().try_for_each(validate::check_syntax)?;
        self.rules.extend(rules);
        Ok(())
    }

    /// Checks every rule against the kernel source tree at `srctree`.
    ///
    /// Errors (all of them, one per line if several): a path that escapes the
    /// tree (absolute, `..`, empty), a unit that is not a directory of the
    /// tree (with the nearest existing unit as a suggestion), an object
    /// without a `.c` or `.S` source in its unit, and the same unit or object
    /// opted out twice (naming both places). Manifest rules never conflict
    /// with each other, but a user rule that repeats one is an error, so the
    /// user learns it is already off.
    ///
    /// `built_units` holds every directory with at least one compiled object
    /// in this configuration. Each [`Warning`] carries the [`Origin`] of the
    /// rule it is about and a [`WarningKind`](crate::WarningKind): `NotBuilt`
    /// for a valid rule with nothing built under it, `Redundant` for a user
    /// rule already covered by a shallower unit rule, and `MissingFromTree`
    /// for a manifest entry that this (non-6.12) tree lacks.
    pub fn validate(
        &self,
        srctree: &Path,
        built_units: &BTreeSet<String>,
    ) -> Result<Vec<Warning>, Error> {
        validate::validate(&self.rules, srctree, built_units)
    }

    /// The rule that governs `object`, a path relative to the top of the tree
    /// such as `drivers/misc/lkdtm/rodata.o`: a rule for exactly that object
    /// if there is one, else the deepest unit rule whose directory contains
    /// the object's directory (by whole components, so `kernel/time` does not
    /// govern `kernel/timex/a.o`). `None` means the object follows the build's
    /// LTO mode.
    pub fn rule_for(&self, object: &str) -> Option<&Rule> {
        let object = path::normalize(object);
        let (dir, file) = object.rsplit_once('/').unwrap_or(("", object.as_str()));
        let exact = self
            .rules
            .iter()
            .find(|r| r.unit == dir && r.object.as_deref() == Some(file));
        exact.or_else(|| self.deepest_unit_rule(dir))
    }

    /// The unit rule with the most components that contains `dir`; the first
    /// declared wins a tie (which [`validate`](Policy::validate) reports).
    fn deepest_unit_rule(&self, dir: &str) -> Option<&Rule> {
        self.rules
            .iter()
            .filter(|r| r.object.is_none() && path::is_within(dir, &r.unit))
            .fold(None, |best: Option<&Rule>, r| match best {
                Some(b) if path::depth(&b.unit) >= path::depth(&r.unit) => Some(b),
                _ => Some(r),
            })
    }
}
