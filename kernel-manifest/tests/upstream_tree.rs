//! The shipped UPSTREAM table against the real Linux 6.12 tree.
//!
//! The tree comes from `KERNEL_SRC`, defaulting to the one `cargo xtask build`
//! unpacks (`target/src/linux-source-6.12` of this workspace, or of
//! `CARGO_TARGET_DIR`). A missing tree fails this test: skipping would let the
//! table drift from the kernel unnoticed.

use std::collections::BTreeSet;
use std::path::PathBuf;

use kernel_manifest::{Arch, KbuildLto, Policy, UPSTREAM};

/// Where `cargo xtask` unpacks Debian's 6.12 source (xtask's `paths::target_dir`).
fn default_tree() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .expect("kernel-manifest is in the workspace")
                .join("target")
        });
    target.join("src/linux-source-6.12")
}

fn kernel_tree() -> PathBuf {
    let tree = std::env::var_os("KERNEL_SRC")
        .map(PathBuf::from)
        .unwrap_or_else(default_tree);
    assert!(
        tree.join("Makefile").is_file(),
        "no kernel source tree at {} (run `cargo xtask test`, which unpacks it, or set KERNEL_SRC)",
        tree.display()
    );
    tree
}

#[test]
fn every_upstream_unit_and_object_exists_in_the_tree() {
    let tree = kernel_tree();
    for entry in UPSTREAM {
        let dir = tree.join(entry.unit);
        assert!(
            dir.is_dir(),
            "{} is not a directory of {}",
            entry.unit,
            tree.display()
        );
        if let Some(object) = entry.object {
            let stem = object.strip_suffix(".o").expect("object names end in .o");
            let has_source = ["c", "S"]
                .iter()
                .any(|ext| dir.join(format!("{stem}.{ext}")).is_file());
            assert!(has_source, "{}/{object} has no .c or .S source", entry.unit);
        }
    }
}

#[test]
fn upstream_policy_validates_cleanly_against_the_tree() {
    let tree = kernel_tree();
    for arch in Arch::ALL {
        let policy = Policy::upstream(arch);
        // Claim everything is built so that only tree problems would warn.
        let built: BTreeSet<String> = policy.rules().iter().map(|r| r.unit.clone()).collect();
        let warnings = policy.validate(&tree, &built).unwrap();
        assert!(warnings.is_empty(), "{arch}: {warnings:?}");
    }
}

#[test]
fn kbuild_filters_lto_where_the_table_says_so() {
    // A `FiltersLtoFlags` entry must match a Makefile that names CC_FLAGS_LTO,
    // so the table cannot claim Kbuild behaviour that is not in the tree.
    let tree = kernel_tree();
    for entry in UPSTREAM
        .iter()
        .filter(|e| e.kbuild == KbuildLto::FiltersLtoFlags)
    {
        // A subdirectory without a Makefile (x86's vdso32) is built by its parent's.
        let dir = std::path::Path::new(entry.unit)
            .ancestors()
            .find(|d| tree.join(d).join("Makefile").is_file())
            .unwrap();
        let makefile = std::fs::read_to_string(tree.join(dir).join("Makefile")).unwrap();
        assert!(
            makefile.contains("$(CC_FLAGS_LTO)"),
            "{}/Makefile does not filter CC_FLAGS_LTO",
            entry.unit
        );
    }
}

#[test]
fn table_has_the_required_entries_and_reasons() {
    let has = |unit: &str, arch: Arch| {
        UPSTREAM
            .iter()
            .any(|e| e.unit == unit && e.arch.is_none_or(|a| a == arch))
    };
    assert!(has("arch/x86/entry/vdso", Arch::X86_64));
    assert!(has("arch/arm64/kernel/vdso", Arch::Arm64));
    assert!(has("drivers/firmware/efi/libstub", Arch::X86_64));
    assert!(has("drivers/firmware/efi/libstub", Arch::Arm64));
    assert!(has("arch/arm64/kvm/hyp/nvhe", Arch::Arm64));
    assert!(has("scripts/mod", Arch::X86_64));
    assert!(UPSTREAM.iter().any(|e| e.unit == "drivers/misc/lkdtm"
        && e.object == Some("rodata.o")
        && e.arch.is_none()));
    for e in UPSTREAM {
        assert!(
            e.reason.len() > 40 && e.reason.ends_with('.'),
            "weak reason for {}",
            e.unit
        );
    }
}

#[test]
fn no_entry_is_listed_twice_for_one_arch() {
    for arch in Arch::ALL {
        let policy = Policy::upstream(arch);
        let specs: BTreeSet<String> = policy.rules().iter().map(|r| r.spec()).collect();
        assert_eq!(specs.len(), policy.rules().len(), "{arch}");
    }
}

#[test]
fn a_typo_in_a_unit_suggests_the_nearest_directory() {
    let tree = kernel_tree();
    let mut policy = Policy::default();
    policy.add_command_line("kernel/tiem").unwrap();
    let err = policy
        .validate(&tree, &BTreeSet::new())
        .unwrap_err()
        .to_string();
    assert!(err.contains("did you mean kernel/time?"), "{err}");
}
