//! Policy behaviour on small temporary kernel trees: precedence of rules,
//! the message of every bad input, and warnings.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use kernel_manifest::{Arch, Error, Origin, Policy, Rule, WarningKind};
use tempfile::TempDir;

/// A tiny kernel tree: a few directories with a few sources.
fn tree() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, body) in [
        ("kernel/fork.c", ""),
        ("kernel/time/ntp.c", ""),
        ("kernel/time/timekeeping.c", ""),
        ("kernel/time/vsyscall.S", ""),
        ("kernel/timex/a.c", ""),
        ("kernel/trace/trace.c", ""),
        ("kernel/sched/core.c", ""),
        ("mm/slub.c", ""),
        ("drivers/misc/lkdtm/rodata.c", ""),
        ("arch/arm64/kvm/hyp/nvhe/switch.c", ""),
    ] {
        let path = dir.path().join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, body).unwrap();
    }
    dir
}

fn built(units: &[&str]) -> BTreeSet<String> {
    units.iter().map(|u| u.to_string()).collect()
}

/// Writes an overlay file into `dir` and returns its path.
fn overlay(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("overlay.toml");
    fs::write(&path, text).unwrap();
    path
}

fn command_line(specs: &[&str]) -> Policy {
    let mut policy = Policy::default();
    for spec in specs {
        policy.add_command_line(spec).unwrap();
    }
    policy
}

fn validation_error(policy: &Policy, tree: &Path) -> String {
    policy.validate(tree, &built(&[])).unwrap_err().to_string()
}

// ---- rule_for precedence ----

#[test]
fn object_rule_beats_unit_rules() {
    let policy = command_line(&["kernel", "kernel/time", "kernel/time/ntp.o"]);
    assert_eq!(
        policy.rule_for("kernel/time/ntp.o").unwrap().spec(),
        "kernel/time/ntp.o"
    );
}

#[test]
fn deeper_unit_rule_beats_shallower_one_in_any_order() {
    let policy = command_line(&["kernel/time", "kernel"]);
    assert_eq!(
        policy.rule_for("kernel/time/timekeeping.o").unwrap().unit,
        "kernel/time"
    );
    assert_eq!(
        policy.rule_for("kernel/time/sub/x.o").unwrap().unit,
        "kernel/time"
    );
    assert_eq!(policy.rule_for("kernel/fork.o").unwrap().unit, "kernel");
}

#[test]
fn object_rule_governs_only_its_object() {
    let policy = command_line(&["kernel/time/ntp.o"]);
    assert!(policy.rule_for("kernel/time/timekeeping.o").is_none());
    assert!(policy.rule_for("kernel/time/sub/ntp.o").is_none());
}

#[test]
fn units_match_by_whole_components() {
    let policy = command_line(&["kernel/time"]);
    assert!(policy.rule_for("kernel/timex/a.o").is_none());
    assert!(policy.rule_for("kernel/time.o").is_none());
    assert!(policy.rule_for("./kernel/time/ntp.o").is_some());
}

#[test]
fn objects_named_through_dotdot_belong_to_the_building_unit() {
    // The nVHE Makefile builds `../entry.nvhe.o`; Kbuild names it below nvhe/.
    let policy = Policy::upstream(Arch::Arm64);
    let rule = policy
        .rule_for("arch/arm64/kvm/hyp/nvhe/../entry.nvhe.o")
        .unwrap();
    assert_eq!(rule.unit, "arch/arm64/kvm/hyp/nvhe");
    assert!(policy.rule_for("arch/arm64/kvm/hyp/entry.o").is_none());
}

#[test]
fn upstream_policy_is_filtered_by_arch() {
    let x86 = Policy::upstream(Arch::X86_64);
    let arm = Policy::upstream(Arch::Arm64);
    assert!(x86
        .rule_for("arch/x86/entry/vdso/vclock_gettime.o")
        .is_some());
    assert!(arm
        .rule_for("arch/x86/entry/vdso/vclock_gettime.o")
        .is_none());
    assert!(arm
        .rule_for("arch/arm64/kernel/vdso/vgettimeofday.o")
        .is_some());
    for policy in [&x86, &arm] {
        let rule = policy.rule_for("drivers/misc/lkdtm/rodata.o").unwrap();
        assert_eq!(rule.origin, Origin::Manifest);
        assert!(rule.upstream_entry().is_some());
        assert!(policy.rule_for("drivers/misc/lkdtm/core.o").is_none());
    }
}

#[test]
fn rule_spec_and_origin_display() {
    let rule = Rule {
        unit: "kernel/time".into(),
        object: Some("ntp.o".into()),
        reason: "r".into(),
        origin: Origin::Overlay {
            file: "o.toml".into(),
            line: 3,
        },
    };
    assert_eq!(rule.spec(), "kernel/time/ntp.o");
    assert_eq!(rule.origin.to_string(), "o.toml:3");
    assert_eq!(Origin::Manifest.to_string(), "manifest");
    assert_eq!(Origin::CommandLine.to_string(), "--lto-off");
    let policy = command_line(&["kernel/time"]);
    assert_eq!(policy.rules()[0].reason, "requested with --lto-off");
}

// ---- bad input ----

#[test]
fn parent_dir_is_rejected() {
    let err = Policy::default()
        .add_command_line("../x")
        .unwrap_err()
        .to_string();
    assert!(err.contains("--lto-off ../x"), "{err}");
    assert!(err.contains("`..`"), "{err}");
    assert!(
        err.contains("relative to the top of the kernel tree"),
        "{err}"
    );
}

#[test]
fn absolute_path_is_rejected() {
    let err = Policy::default()
        .add_command_line("/abs")
        .unwrap_err()
        .to_string();
    assert!(err.contains("--lto-off /abs"), "{err}");
    assert!(err.contains("is absolute"), "{err}");
}

#[test]
fn empty_path_is_rejected() {
    let err = Policy::default()
        .add_command_line("")
        .unwrap_err()
        .to_string();
    assert!(err.contains("is empty"), "{err}");
    let err = Policy::default()
        .add_command_line("ntp.o")
        .unwrap_err()
        .to_string();
    assert!(err.contains("--lto-off ntp.o: the path is empty"), "{err}");
}

#[test]
fn escaping_path_in_overlay_names_file_and_line() {
    let tree = tree();
    let path = overlay(
        tree.path(),
        "[[lto-off]]\nunit = \"kernel/../../etc\"\nreason = \"x\"\n",
    );
    let err = Policy::default()
        .add_overlay(&path)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("{}:2: kernel/../../etc", path.display())),
        "{err}"
    );
}

#[test]
fn missing_unit_suggests_the_nearest_one() {
    let tree = tree();
    let err = validation_error(&command_line(&["kernel/tme"]), tree.path());
    assert!(err.contains("--lto-off kernel/tme"), "{err}");
    assert!(err.contains("kernel/tme is not a directory"), "{err}");
    assert!(err.contains("did you mean kernel/time?"), "{err}");
}

#[test]
fn suggestion_repairs_several_components() {
    let tree = tree();
    let err = validation_error(&command_line(&["krnel/tme"]), tree.path());
    assert!(err.contains("did you mean kernel/time?"), "{err}");
    // Nothing close below `kernel`: the deepest existing ancestor.
    let err = validation_error(&command_line(&["kernel/zzzzzzzz"]), tree.path());
    assert!(err.contains("did you mean kernel?"), "{err}");
    let err = validation_error(&command_line(&["zzzzzzzz"]), tree.path());
    assert!(err.contains("name a unit that exists"), "{err}");
}

#[test]
fn missing_unit_suggests_the_nearest_path_not_the_parent() {
    let tree = tree();
    // Two swapped letters are one edit.
    let err = validation_error(&command_line(&["kernel/tiem"]), tree.path());
    assert!(err.contains("did you mean kernel/time?"), "{err}");
    // A typo in a middle component, below the deepest existing ancestor.
    let err = validation_error(&command_line(&["drivers/msic/lkdtm"]), tree.path());
    assert!(err.contains("did you mean drivers/misc/lkdtm?"), "{err}");
    let err = validation_error(&command_line(&["arch/arm64/kvm/hpy/nvhe"]), tree.path());
    assert!(
        err.contains("did you mean arch/arm64/kvm/hyp/nvhe?"),
        "{err}"
    );
    // An object rule's unit gets the same suggestion.
    let err = validation_error(&command_line(&["kernel/tiem/ntp.o"]), tree.path());
    assert!(err.contains("did you mean kernel/time?"), "{err}");
}

#[test]
fn suggestion_of_a_long_name_is_bounded() {
    let tree = tree();
    // Four edits from `drivers/misc/lkdtm`: too far to be a typo.
    let err = validation_error(&command_line(&["drivers/misc/lkdtmzzzz"]), tree.path());
    assert!(err.contains("did you mean drivers/misc?"), "{err}");
}

#[test]
fn a_file_is_not_a_unit() {
    let tree = tree();
    let err = validation_error(&command_line(&["kernel/fork.c"]), tree.path());
    assert!(err.contains("kernel/fork.c is not a directory"), "{err}");
}

#[test]
fn object_without_source_is_rejected() {
    let tree = tree();
    let err = validation_error(&command_line(&["kernel/time/ntpp.o"]), tree.path());
    assert!(err.contains("--lto-off kernel/time/ntpp.o"), "{err}");
    assert!(err.contains("neither ntpp.c nor ntpp.S"), "{err}");
    assert!(err.contains("did you mean ntp.o?"), "{err}");
    // An assembler source counts.
    command_line(&["kernel/time/vsyscall.o"])
        .validate(tree.path(), &built(&["kernel/time"]))
        .unwrap();
}

#[test]
fn bad_object_name_in_overlay() {
    let tree = tree();
    let path = overlay(
        tree.path(),
        "[[lto-off]]\nunit = \"kernel\"\nobject = \"time/ntp.c\"\nreason = \"x\"\n",
    );
    let err = Policy::default()
        .add_overlay(&path)
        .unwrap_err()
        .to_string();
    assert!(err.contains(&format!("{}:2", path.display())), "{err}");
    assert!(
        err.contains("`time/ntp.c` is not an object file name"),
        "{err}"
    );
}

#[test]
fn duplicate_inside_one_overlay_names_both_lines() {
    let tree = tree();
    let path = overlay(
        tree.path(),
        "[[lto-off]]\nunit = \"kernel/time\"\nreason = \"a\"\n\n[[lto-off]]\nunit = \"kernel/time/\"\nreason = \"b\"\n",
    );
    let mut policy = Policy::default();
    policy.add_overlay(&path).unwrap();
    let err = validation_error(&policy, tree.path());
    let file = path.display();
    assert!(
        err.contains(&format!(
            "kernel/time is opted out twice: at {file}:2 and at {file}:6"
        )),
        "{err}"
    );
    assert!(err.contains("remove one of them"), "{err}");
}

#[test]
fn duplicate_between_command_line_and_overlay_names_both() {
    let tree = tree();
    let path = overlay(
        tree.path(),
        "\n\n[[lto-off]]\nunit = \"kernel/time\"\nreason = \"a\"\n",
    );
    let mut policy = command_line(&["kernel/time"]);
    policy.add_overlay(&path).unwrap();
    let err = validation_error(&policy, tree.path());
    assert!(
        err.contains(&format!(
            "kernel/time is opted out twice: at --lto-off and at {}:4",
            path.display()
        )),
        "{err}"
    );
}

#[test]
fn duplicate_of_a_manifest_entry_says_it_is_already_off() {
    let tree = tree();
    let mut policy = Policy::upstream(Arch::X86_64);
    policy
        .add_command_line("drivers/misc/lkdtm/rodata.o")
        .unwrap();
    // The temp tree lacks most upstream units: those only warn.
    let err = validation_error(&policy, tree.path());
    assert!(
        err.contains(
            "drivers/misc/lkdtm/rodata.o is opted out twice: at manifest and at --lto-off"
        ),
        "{err}"
    );
    assert!(err.contains("already builds it without LTO"), "{err}");
}

#[test]
fn several_problems_are_reported_together() {
    let tree = tree();
    let err = validation_error(&command_line(&["kernel/tme", "mm/slob.o"]), tree.path());
    assert!(err.starts_with("2 problems"), "{err}");
    assert!(
        err.contains("kernel/tme") && err.contains("mm/slob.o"),
        "{err}"
    );
}

#[test]
fn unknown_overlay_field_names_file_and_line() {
    let tree = tree();
    let path = overlay(
        tree.path(),
        "[[lto-off]]\nunit = \"kernel/time\"\nreason = \"x\"\nreasn = \"typo\"\n",
    );
    let err = Policy::default().add_overlay(&path).unwrap_err();
    assert!(
        matches!(err, Error::OverlaySyntax { line: 4, .. }),
        "{err:?}"
    );
    let err = err.to_string();
    assert!(err.contains(&format!("{}:4", path.display())), "{err}");
    assert!(err.contains("unknown field `reasn`"), "{err}");
}

#[test]
fn unknown_top_level_table_is_rejected() {
    let tree = tree();
    let path = overlay(
        tree.path(),
        "[[lto_off]]\nunit = \"kernel/time\"\nreason = \"x\"\n",
    );
    let err = Policy::default()
        .add_overlay(&path)
        .unwrap_err()
        .to_string();
    assert!(err.contains(&format!("{}:1", path.display())), "{err}");
    assert!(err.contains("lto_off"), "{err}");
}

#[test]
fn missing_reason_names_file_and_line() {
    let tree = tree();
    let path = overlay(
        tree.path(),
        "# opt-outs\n[[lto-off]]\nunit = \"kernel/time\"\n",
    );
    let err = Policy::default().add_overlay(&path).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, Error::OverlaySyntax { line: 2 | 3, .. }),
        "{err:?}"
    );
    assert!(text.contains("missing field `reason`"), "{text}");
}

#[test]
fn empty_reason_names_file_and_line() {
    let tree = tree();
    let path = overlay(
        tree.path(),
        "[[lto-off]]\nunit = \"kernel/time\"\nreason = \"  \"\n",
    );
    let err = Policy::default()
        .add_overlay(&path)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("{}:3: `reason` is empty", path.display())),
        "{err}"
    );
}

#[test]
fn toml_syntax_error_names_file_and_line() {
    let tree = tree();
    let path = overlay(
        tree.path(),
        "[[lto-off]]\nunit = \"kernel/time\nreason = \"x\"\n",
    );
    let err = Policy::default()
        .add_overlay(&path)
        .unwrap_err()
        .to_string();
    assert!(err.contains(&format!("{}:2", path.display())), "{err}");
}

#[test]
fn unreadable_overlay_names_the_path() {
    let err = Policy::default()
        .add_overlay(Path::new("/nonexistent/o.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent/o.toml"), "{err}");
}

#[test]
fn missing_overlay_prints_the_os_error_once() {
    let path = Path::new("/nonexistent/o.toml");
    let os_error = fs::read_to_string(path).unwrap_err().to_string();
    let err = Policy::default().add_overlay(path).unwrap_err();
    let chain = format!("{:#}", anyhow::Error::from(err));
    assert_eq!(chain.matches(&os_error).count(), 1, "{chain}");
    assert!(chain.contains("/nonexistent/o.toml"), "{chain}");
    assert!(
        chain.contains("check the path given to --policy"),
        "{chain}"
    );
}

#[test]
fn overlay_with_an_error_adds_nothing() {
    let tree = tree();
    let path = overlay(
        tree.path(),
        "[[lto-off]]\nunit = \"kernel/time\"\nreason = \"x\"\n[[lto-off]]\nunit = \"/abs\"\nreason = \"y\"\n",
    );
    let mut policy = Policy::default();
    policy.add_overlay(&path).unwrap_err();
    assert!(policy.rules().is_empty());
}

// ---- warnings ----

#[test]
fn unit_that_is_not_built_warns() {
    let tree = tree();
    let mut policy = command_line(&["arch/arm64/kvm/hyp/nvhe", "kernel/time"]);
    policy
        .add_command_line("drivers/misc/lkdtm/rodata.o")
        .unwrap();
    let warnings = policy
        .validate(tree.path(), &built(&["kernel/time/sub", "kernel/sched"]))
        .unwrap();
    let text: Vec<String> = warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(text.len(), 2, "{text:?}");
    assert!(
        text[0].starts_with("arch/arm64/kvm/hyp/nvhe is not built in this configuration"),
        "{text:?}"
    );
    assert!(
        text[1].starts_with("drivers/misc/lkdtm/rodata.o is not built"),
        "{text:?}"
    );
}

#[test]
fn built_units_match_by_whole_components() {
    let tree = tree();
    let policy = command_line(&["kernel/time"]);
    let warnings = policy
        .validate(tree.path(), &built(&["kernel/timex"]))
        .unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
}

#[test]
fn redundant_user_rule_warns() {
    let tree = tree();
    let policy = command_line(&["kernel", "kernel/time/ntp.o"]);
    let warnings = policy
        .validate(tree.path(), &built(&["kernel", "kernel/time"]))
        .unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0]
            .message
            .contains("already built without LTO by the rule for kernel"),
        "{warnings:?}"
    );
}

#[test]
fn manifest_entries_missing_from_another_tree_only_warn() {
    let tree = tree();
    let policy = Policy::upstream(Arch::Arm64);
    let warnings = policy
        .validate(tree.path(), &built(&["drivers/misc/lkdtm"]))
        .unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.message.contains("manifest entry arch/arm64/kernel/vdso")),
        "{warnings:?}"
    );
}

#[test]
fn warnings_carry_the_origin_and_kind_of_their_rule() {
    let tree = tree();
    let mut policy = Policy::upstream(Arch::Arm64);
    // The manifest already opts out all of nvhe.
    policy
        .add_command_line("arch/arm64/kvm/hyp/nvhe/switch.o")
        .unwrap();
    let warnings = policy
        .validate(tree.path(), &built(&["arch/arm64/kvm/hyp/nvhe"]))
        .unwrap();

    let redundant: Vec<_> = warnings
        .iter()
        .filter(|w| w.kind == WarningKind::Redundant)
        .collect();
    assert_eq!(redundant.len(), 1, "{warnings:?}");
    // The user's rule, even though the message names the manifest rule.
    assert_eq!(redundant[0].origin, Origin::CommandLine, "{warnings:?}");
    assert!(redundant[0].message.contains("(manifest)"), "{warnings:?}");
    assert_eq!(redundant[0].to_string(), redundant[0].message);

    let not_built: Vec<_> = warnings
        .iter()
        .filter(|w| w.kind == WarningKind::NotBuilt)
        .collect();
    assert_eq!(not_built.len(), 1, "{warnings:?}");
    assert_eq!(not_built[0].origin, Origin::Manifest, "{warnings:?}");
    assert!(
        not_built[0]
            .message
            .starts_with("drivers/misc/lkdtm/rodata.o is not built"),
        "{warnings:?}"
    );

    // The manifest units this tiny tree lacks.
    assert!(warnings
        .iter()
        .filter(|w| w.kind == WarningKind::MissingFromTree)
        .all(|w| w.origin == Origin::Manifest && w.message.contains("manifest entry")));
    assert!(warnings
        .iter()
        .any(|w| w.kind == WarningKind::MissingFromTree));
}

#[test]
fn a_user_rule_not_built_warns_with_its_own_origin() {
    let tree = tree();
    let path = overlay(tree.path(), "[[lto-off]]\nunit = \"mm\"\nreason = \"x\"\n");
    let mut policy = Policy::default();
    policy.add_overlay(&path).unwrap();
    let warnings = policy.validate(tree.path(), &built(&["kernel"])).unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].kind, WarningKind::NotBuilt);
    assert_eq!(
        warnings[0].origin,
        Origin::Overlay {
            file: path.clone(),
            line: 2
        }
    );
}
