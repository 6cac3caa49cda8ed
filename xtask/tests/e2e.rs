//! End-to-end: real kernels built by the real `xtask` binary with the real
//! toolchain, from a private copy of the kernel source (`common::source`).
//! Each takes minutes, so they are `#[ignore]`d for `cargo test` and run by
//! `cargo xtask test` (`--ignored --test-threads=1`), which is what CI calls.
//! Every test builds what it needs itself (a no-op when another test left the
//! tree warm), so none depends on another having run; the names only make
//! the cheapest order the one libtest picks.

mod common;

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use common::{read_json, Edit, Xtask};
use xtask::{
    engine::launcher::Kind,
    lto::policy::{LtoState, Unit},
    report::{PlanFrom, Report},
    toolchain::Llvm,
    units::Listing,
};

fn build(arch: &str, lto: &str) -> Report {
    Xtask::new("build").selection(arch, lto, "tiny").run();
    report(arch, lto)
}

fn objtree(arch: &str, lto: &str) -> PathBuf {
    common::objtree(arch, lto, "tiny")
}

fn report(arch: &str, lto: &str) -> Report {
    read_report(&objtree(arch, lto))
}

/// A tree's `build-report.json`, read as the type the build wrote: a field
/// renamed or dropped fails here.
fn read_report(tree: &Path) -> Report {
    let path = tree.join("build-report.json");
    serde_json::from_value(read_json(&path))
        .unwrap_or_else(|e| panic!("{} does not read as a Report: {e}", path.display()))
}

fn unit<'a>(report: &'a Report, path: &str) -> &'a Unit {
    report
        .units
        .iter()
        .find(|u| u.path == path)
        .unwrap_or_else(|| panic!("no unit {path} in the report"))
}

/// The report is complete and the policy held: opted-out units are all ELF,
/// LTO'd units have bitcode (their assembly objects are ELF by nature).
fn check_report(report: &Report, arch: &str, lto: &str) {
    assert_eq!(report.arch.to_string(), arch);
    assert_eq!(report.lto.to_string(), lto);
    assert!(report.toolchain.clang.contains("clang version"));
    assert!(!report.config.is_empty() && !report.kernel_version.is_empty());
    assert!(!report.phases.is_empty() && report.steps.planned > 0);
    let mut lto_units = 0;
    for u in &report.units {
        assert_eq!(
            u.bitcode + u.elf,
            u.objects,
            "every object of {} is bitcode or ELF",
            u.path
        );
        if u.lto == LtoState::Off {
            // Only its LTO'd exceptions (x86's vma.o beside the vDSO objects) may be bitcode.
            let lto_exceptions = u.exceptions.iter().filter(|e| e.bitcode).count();
            assert!(
                u.bitcode <= lto_exceptions,
                "opted-out unit {} holds {} bitcode objects: {u:?}",
                u.path,
                u.bitcode
            );
        } else {
            lto_units += 1;
            assert!(u.bitcode > 0, "LTO'd unit {} holds no bitcode", u.path);
        }
    }
    if lto == "none" {
        assert_eq!(lto_units, 0, "with --lto none nothing is bitcode");
    } else {
        assert!(
            lto_units * 10 >= report.units.len() * 8,
            "only {lto_units} of {} units are LTO'd",
            report.units.len()
        );
    }
    let images: Vec<&Path> = report.artifacts.iter().map(|a| a.path.as_path()).collect();
    assert!(images.iter().any(|p| p.ends_with("vmlinux")), "{images:?}");
    let image = if arch == "x86_64" {
        "arch/x86/boot/bzImage"
    } else {
        "arch/arm64/boot/Image"
    };
    assert!(
        images.iter().any(|p| p.ends_with(image)),
        "no {image} in {images:?}"
    );
}

/// `test-boot` boots the tiny kernel with the test init: the kernel reaches
/// "Run /init", the init prints its marker, QEMU exits by itself.
fn boots_to_init(arch: &str, lto: &str) {
    boots_with(arch, lto, &[]);
}

/// The same, of the tiny kernel built with `extra` options.
fn boots_with(arch: &str, lto: &str, extra: &[&str]) {
    Xtask::new("test-boot")
        .selection(arch, lto, "tiny")
        .args(extra)
        .args(&["--firmware", "bios", "--timeout", "240"])
        .run();
    let report = read_json(&objtree(arch, lto).join("boot-report.json"));
    assert_eq!(report["outcome"], "pass", "{report:#}");
    let log = report["boots"][0]["log"].as_str().unwrap();
    let log = fs::read_to_string(log).unwrap();
    assert!(
        log.contains("Run /init as init process"),
        "{arch} {lto} did not reach init:\n{}",
        tail(&log)
    );
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

#[test]
#[ignore = "builds a kernel: run with `cargo xtask test`"]
fn t02_x86_64_thin_builds_boots_and_rebuilds_nothing() {
    let report = build("x86_64", "thin");
    check_report(&report, "x86_64", "thin");
    // The vDSO's own objects are native; vma.o and friends are LTO'd as in Kbuild.
    let vdso = unit(&report, "arch/x86/entry/vdso");
    assert!(vdso.elf >= 3 && vdso.bitcode >= 1, "{vdso:?}");
    boots_to_init("x86_64", "thin");

    // Booting built the tree again and left the proof that nothing has
    // changed since: this build checks the disk and plans nothing.
    Xtask::new("build")
        .selection("x86_64", "thin", "tiny")
        .run();
    let proved = read_report(&objtree("x86_64", "thin"));
    let phases: Vec<&str> = proved.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(phases, [xtask::build::UP_TO_DATE], "not proved up to date");
    assert_eq!(proved.steps.executed, 0);
    assert_eq!(proved.steps.cached, proved.steps.planned);

    // How fast is the bench's business (`noop`), not a test's: a timed
    // assertion fails on a busy machine and proves nothing on an idle one.
    // A trace needs every step's key: this no-op checks each one.
    let trace = objtree("x86_64", "thin").join("trace.json");
    Xtask::new("build")
        .selection("x86_64", "thin", "tiny")
        .args(&["--trace", trace.to_str().unwrap()])
        .run();
    let again = read_report(&objtree("x86_64", "thin"));
    assert_eq!(
        again.steps.executed, 0,
        "a no-op build ran steps: {:?}",
        again.steps
    );
    // Its trace holds every step, each cached, on at most two lanes (-j 2).
    let slices = read_json(&trace)["traceEvents"].as_array().unwrap().clone();
    assert_eq!(
        slices.len(),
        again.steps.planned,
        "a step is missing from the trace"
    );
    assert!(slices
        .iter()
        .all(|s| s["ph"] == "X" && s["args"]["cached"] == true && s["tid"].as_u64() < Some(2)));
}

/// arm64 ThinLTO: tiny builds (the vDSO native, as Kbuild builds it) and
/// boots. Its proof profile is a second cold build CI cannot hold: `t18`,
/// in `cargo xtask test --full`.
#[test]
#[ignore = "builds a kernel: run with `cargo xtask test`"]
fn t05_arm64_thin_builds_and_boots() {
    let report = build("arm64", "thin");
    check_report(&report, "arm64", "thin");
    assert_eq!(unit(&report, "arch/arm64/kernel/vdso").lto, LtoState::Off);
    boots_to_init("arm64", "thin");
}

/// Without LTO, t14's configuration builds and boots with its vDSO proof
/// (`t09` checks the policy report of the same tree). A cold build of a
/// configuration nothing else in CI builds: `cargo xtask test --full`.
#[test]
#[ignore = "builds a kernel: run with `cargo xtask test --full`"]
fn t07_x86_64_without_lto_builds_and_boots() {
    let own = own_configuration("none");
    let config: Vec<&str> = own.iter().map(String::as_str).collect();
    Xtask::new("test-boot")
        .args(&config)
        .args(&["--firmware", "bios", "--timeout", "240"])
        .run();
    let tree = common::objtree("x86_64", "none", "tinyconfig");
    check_report(&read_report(&tree), "x86_64", "none");
    assert_proofs(&tree, &["vdso"]);
}

/// Every named proof passed in `boot-report.json`.
fn assert_proofs(tree: &Path, required: &[&str]) {
    let report = read_json(&tree.join("boot-report.json"));
    assert_eq!(report["outcome"], "pass", "{report:#}");
    let proofs = report["proofs"].as_array().unwrap();
    for name in required {
        let passed = proofs
            .iter()
            .any(|p| p["name"] == *name && p["status"] == "pass");
        assert!(passed, "proof {name} did not pass: {proofs:#?}");
    }
}

/// Every proof of the x86_64 proof profile: `nvhe` is arm64's.
const X86_64_PROOFS: &[&str] = &[
    "vdso",
    "efi",
    "lkdtm_exec_rodata",
    "ftrace_mcount",
    "ftrace_call",
    "initcall_order",
    "modversions",
];

/// Every proof of the arm64 proof profile.
const ARM64_PROOFS: &[&str] = &[
    "vdso",
    "efi",
    "nvhe",
    "lkdtm_exec_rodata",
    "ftrace_mcount",
    "ftrace_call",
    "initcall_order",
    "modversions",
];

/// x86_64 ThinLTO: the proof profile passes every proof under both firmwares.
#[test]
#[ignore = "builds and boots a kernel: run with `cargo xtask test`"]
fn t08_x86_64_thin_proof_passes_every_proof() {
    proof_profile_passes("x86_64", "thin", X86_64_PROOFS);
    kunit_runs_on_the_proof_tree();
    a_config_flip_recompiles_no_module();
}

/// `bench`'s config flip on `t08`'s tree (which has modules), and back: the
/// plan is kept, and modfinal, planned again because its key names the
/// module list, finds every module's `.mod.o` as it left it.
fn a_config_flip_recompiles_no_module() {
    let tree = common::objtree("x86_64", "thin", "proof");
    let config = xtask::kconfig::DotConfig::read(&tree.join(".config")).unwrap();
    let fragment = tree.join("config-flip-t08.config");
    fs::write(&fragment, xtask::bench::config_flip(&config)).unwrap();
    let fragment = fragment.to_str().unwrap();
    for args in [&["--fragment", fragment][..], &[]] {
        Xtask::new("build")
            .selection("x86_64", "thin", "proof")
            .args(args)
            .run();
        let report = read_report(&tree);
        assert_eq!(report.plan_from, PlanFrom::Kept, "{:?}", report.phases);
        let modfinal = report
            .stages
            .iter()
            .find(|s| s.stage == xtask::kbuild::stage::Stage::Modfinal)
            .expect("the proof profile has modules");
        assert!(
            modfinal.counts.planned > 0 && modfinal.counts.executed == 0,
            "a flip recompiled modules: {modfinal:?}"
        );
    }
}

/// `cargo xtask kunit` on `t08`'s tree, whose profile carries lib/kunit's
/// suites, so the run compiles nothing: a whole run read back from
/// `--json`; a filter; a kernel that panics in a test (`oops=panic`, and
/// the `kunit_fault` suite's deliberate NULL dereference) names the case
/// that was running; a suite whose dependency is missing fails before
/// building.
fn kunit_runs_on_the_proof_tree() {
    let tree = common::objtree("x86_64", "thin", "proof");
    let kunit = || {
        Xtask::new("kunit")
            .selection("x86_64", "thin", "proof")
            .args(&["--kunitconfig", "lib/kunit", "--timeout", "240"])
    };
    let json = tree.join("kunit-t08.json");
    kunit().arg(&format!("--json={}", json.display())).run();
    let runs = common::read_json(&json);
    let run = &runs[0];
    assert_eq!(run["outcome"], "pass", "{run:#}");
    let suites: Vec<&str> = run["results"]["subtests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    for suite in ["kunit-try-catch-test", "example"] {
        assert!(suites.contains(&suite), "no {suite} in {suites:?}");
    }
    assert!(run["counts"]["pass"].as_u64().unwrap() >= 20, "{run:#}");
    let report = common::read_json(&tree.join("build-report.json"));
    let compile = report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "compile")
        .unwrap();
    assert_eq!(
        compile["executed"], 0,
        "lib/kunit's suites are the profile's own: {compile}"
    );

    kunit().arg("example.example_simple_test").run();
    let report = common::read_json(&tree.join("kunit-report.json"));
    assert_eq!(report["counts"]["pass"], 1, "{report:#}");

    let (code, error) = kunit()
        .args(&["--kernel-args", "oops=panic", "kunit_fault"])
        .fails();
    assert_eq!(code, 20, "{error}");
    let report = common::read_json(&tree.join("kunit-report.json"));
    assert_eq!(report["outcome"], "crashed", "{report:#}");
    let message = report["message"].as_str().unwrap();
    assert!(
        message.starts_with("the kernel panicked during kunit_fault, case 1 of 1 (at ")
            && message.contains("kunit_test_null_dereference")
            && message.ends_with(": Kernel panic - not syncing: Fatal exception"),
        "{message}"
    );

    let (code, error) = kunit()
        .args(&["--kconfig-add", "CONFIG_LONGEST_SYM_KUNIT_TEST=y"])
        .fails();
    assert_eq!(code, 11, "{error}");
    assert!(
        error.contains("CONFIG_LONGEST_SYM_KUNIT_TEST=y") && error.contains("KPROBES"),
        "{error}"
    );
}

/// arm64 ThinLTO: the proof profile under both firmwares; `nvhe` is arm64's
/// own, and ftrace's patch sites are the patchable function entries the
/// link keeps. A second cold build: `cargo xtask test --full`.
#[test]
#[ignore = "builds and boots a kernel: run with `cargo xtask test --full`"]
fn t18_arm64_thin_proof_passes_every_proof() {
    proof_profile_passes("arm64", "thin", ARM64_PROOFS);
}

/// Full LTO: the proof profile under both firmwares, one in-process link of
/// the whole kernel. A second cold build: `cargo xtask test --full`.
#[test]
#[ignore = "builds and boots a kernel: run with `cargo xtask test --full`"]
fn t19_x86_64_full_lto_proof_passes_every_proof() {
    proof_profile_passes("x86_64", "full", X86_64_PROOFS);
}

/// LLVM 22 (Debian's newest) on both arches, under ThinLTO and full LTO:
/// the proof profile passes every proof under both firmwares, in trees of
/// its own (`-llvm22`) whose reports name clang 22. Four cold builds:
/// `cargo xtask test --full`.
#[test]
#[ignore = "builds and boots four kernels: run with `cargo xtask test --full`"]
fn t21_llvm22_passes_every_proof_on_both_arches_and_lto_modes() {
    for (arch, proofs) in [("x86_64", X86_64_PROOFS), ("arm64", ARM64_PROOFS)] {
        for lto in ["thin", "full"] {
            let report = proof_profile_passes_with(arch, lto, &llvm_22(), proofs);
            assert_built_with_llvm_22(&report);
        }
    }
}

/// `test-boot --profile proof --firmware all` passes, and so does each of `required`.
fn proof_profile_passes(arch: &str, lto: &str, required: &[&str]) {
    proof_profile_passes_with(arch, lto, &Llvm::Default, required);
}

/// [`proof_profile_passes`] with `--llvm`; the report it checked.
fn proof_profile_passes_with(arch: &str, lto: &str, llvm: &Llvm, required: &[&str]) -> Report {
    Xtask::new("test-boot")
        .selection(arch, lto, "proof")
        .args(&["--firmware", "all", "--timeout", "400"])
        .arg(&format!("--llvm={llvm}"))
        .run();
    let tree = common::objtree_of_toolchain(arch, lto, "proof", llvm.tree_tag().as_deref());
    let report = read_report(&tree);
    check_report(&report, arch, lto);
    assert_proofs(&tree, required);
    report
}

/// A kernel that panics, one that hangs and an init that never prints its
/// marker fail with their own exit codes: real kernels, real broken inits.
#[test]
#[ignore = "boots kernels: run with `cargo xtask test`"]
fn t11_boot_failures_are_told_apart() {
    build("x86_64", "thin");
    use xtask::target::{Arch, Config, Lto, Profile, Target};
    let target = Target {
        arch: Arch::X86_64,
        lto: Lto::Thin,
        config: Config::Preset(Profile::Tiny),
    };
    let options = xtask::build::Options {
        source: Some(common::source().into()),
        jobs: 2,
        ..Default::default()
    };
    let built = xtask::build::build(&target, &options).unwrap();
    let input = xtask::test_boot::input(
        &built,
        xtask::boot::Firmware::Bios,
        std::time::Duration::from_secs(240),
    );
    xtask::test_boot::selftest_failure_modes(&input).unwrap();
}

/// Every compile command equals the one Kbuild runs for the same `.config`
/// (from its `.cmd` files), except objects whose policy the manifest changes;
/// vmlinux has Kbuild's global symbols; Kbuild itself finds nothing to compile
/// in our object tree; and `make` was only ever asked to configure or plan
/// (and to build objtool, whose build system is not Kbuild's).
#[test]
#[ignore = "builds a kernel twice: run with `cargo xtask test`"]
fn t01_x86_64_thin_matches_kbuild_and_make_never_builds() {
    let ours = objtree("x86_64", "thin");
    let log = logging_make_build(&ours);
    for invocation in log.lines().filter(|l| l.starts_with("0 ")) {
        // Only objtool is built by make: its own build system, one step of ours.
        let objtool = invocation.contains(" subdir=tools -C ") && invocation.ends_with(" objtool");
        // `xtask-expand`: make prints the final link's recipe and runs only `:`.
        let asked = [" xtask-env", " kernelrelease", "config", " xtask-expand"]
            .iter()
            .any(|end| invocation.ends_with(end));
        let allowed = invocation.contains(" -n ") || asked || objtool;
        assert!(allowed, "the xtask asked make to build: {invocation}");
    }
    assert!(
        log.lines()
            .any(|l| l.starts_with("0 ") && l.contains(" -n ")),
        "no dry run was logged:\n{log}"
    );

    let kbuild = xtask::bench::private_source::kbuild_reference_dir(&ours);
    kbuild_build(&ours, &kbuild, &Llvm::Default);
    matches_kbuild(&ours, &kbuild, &Llvm::Default);
}

/// t01's comparison with LLVM 22, against Kbuild's own `make LLVM=-22` of
/// the same `.config`: its `.cmd` files name `clang-22`, the binary the
/// xtask runs as `clang` from `/usr/lib/llvm-22/bin`. A tree of its own
/// and a cold build: `cargo xtask test --full`.
#[test]
#[ignore = "builds a kernel twice: run with `cargo xtask test --full`"]
fn t22_x86_64_thin_llvm22_matches_kbuild() {
    let llvm = llvm_22();
    let ours = common::objtree_of_toolchain("x86_64", "thin", "tiny", llvm.tree_tag().as_deref());
    // Its compiles add to the ccache t01's builds share, which Kbuild's reads.
    Xtask::new("build")
        .selection("x86_64", "thin", "tiny")
        .arg(&format!("--llvm={llvm}"))
        .envs(ccache_env())
        .args(&["--launcher", "ccache"])
        .run();
    let kbuild = xtask::bench::private_source::kbuild_reference_dir(&ours);
    kbuild_build(&ours, &kbuild, &llvm);
    matches_kbuild(&ours, &kbuild, &llvm);
}

/// Every compile command of `ours` equals Kbuild's in `kbuild` but for what
/// the manifest changes, vmlinux has the same global symbols, and make run
/// as the xtask runs it finds nothing to compile in `ours`.
fn matches_kbuild(ours: &Path, kbuild: &Path, llvm: &Llvm) {
    let report = read_report(ours);
    let changed: BTreeSet<String> = report
        .units
        .iter()
        .flat_map(|u| {
            let unit_changed = u.source == "manifest" || u.source == "--lto-off";
            let exceptions = u
                .exceptions
                .iter()
                .filter(|e| e.source == "manifest")
                .map(|e| e.object.clone());
            let prefix = if unit_changed {
                vec![u.path.clone() + "/"]
            } else {
                vec![]
            };
            prefix.into_iter().chain(exceptions)
        })
        .collect();
    let theirs: std::collections::BTreeMap<String, String> =
        saved_commands(kbuild, llvm).into_iter().collect();
    let mut compared = 0;
    for (object, command) in saved_commands(ours, llvm) {
        if changed
            .iter()
            .any(|c| object.starts_with(c.as_str()) || &object == c)
        {
            continue;
        }
        let Some(expected) = theirs.get(&object) else {
            panic!("Kbuild did not build {object}");
        };
        assert_eq!(
            &command, expected,
            "{object}: our command differs from Kbuild's"
        );
        compared += 1;
    }
    assert!(compared > 500, "only {compared} commands compared");

    let symbols = |tree: &Path| -> BTreeSet<String> {
        let out = Command::new("/usr/lib/llvm-19/bin/llvm-nm")
            .arg("--extern-only")
            .arg("--defined-only")
            .arg(tree.join("vmlinux"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().nth(2))
            .map(String::from)
            .collect()
    };
    let (a, b) = (symbols(ours), symbols(kbuild));
    assert!(a.len() > 300, "only {} global symbols in vmlinux", a.len());
    assert_eq!(
        a.symmetric_difference(&b).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "global symbols differ"
    );

    // Kbuild's own state stays valid: make finds no object to compile.
    let out = run_make(reference(ours, llvm).reference_build(&["vmlinux"], 2));
    // Kbuild rebuilds init/version-timestamp.o on every link by design (the
    // timestamp), and recompiles what our policy changed (its flags differ).
    let compiled: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("  CC ") || l.starts_with("  AS "))
        .map(|l| l[8..].trim())
        .filter(|o| {
            *o != "init/version-timestamp.o" && !changed.iter().any(|c| o.starts_with(c.as_str()))
        })
        .collect();
    assert!(
        compiled.is_empty(),
        "Kbuild recompiled objects in our tree: {compiled:?}"
    );
}

/// Builds with a `make` on `PATH` that logs `MAKELEVEL argv` and then runs the real one.
fn logging_make_build(objtree: &Path) -> String {
    let dir = xtask::paths::target_dir().join("logging-make");
    fs::create_dir_all(&dir).unwrap();
    let log = dir.join("make.log");
    let _ = fs::remove_file(&log);
    let wrapper = dir.join("make");
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho \"${{MAKELEVEL:-0}} $*\" >> {}\nexec /usr/bin/make \"$@\"\n",
            log.display()
        ),
    )
    .unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut fs::metadata(&wrapper).unwrap().permissions(),
        0o755,
    );
    Command::new("chmod")
        .arg("755")
        .arg(&wrapper)
        .status()
        .unwrap();
    // A fresh object tree, so configure and the dry runs all happen.
    let _ = fs::remove_dir_all(objtree);
    let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap());
    // Its compiles fill the ccache that Kbuild's reference build reads.
    let _ = fs::remove_dir_all(ccache_dir());
    Xtask::new("build")
        .selection("x86_64", "thin", "tiny")
        .env("PATH", &path)
        .envs(ccache_env())
        .args(&["--launcher", "ccache"])
        .run();
    fs::read_to_string(log).unwrap()
}

/// Kbuild's own build of our `.config`, for comparison, with the same fixed
/// build metadata (so a bench run afterwards finds this tree warm). Its
/// compiles go through ccache, warm from our build (`logging_make_build`):
/// the same commands on the same source give the same objects, and the
/// comparison is of commands, symbols and Kbuild's own state, not of how
/// long Kbuild took. A compiler that is ccache stands first on `PATH`, as
/// ccache's users set it up, so Kbuild's `.cmd` files name the compiler
/// `LLVM=` names (`clang`, or `clang-22` for `LLVM=-22`).
fn kbuild_build(ours: &Path, kbuild: &Path, llvm: &Llvm) {
    let _ = fs::remove_dir_all(kbuild);
    fs::create_dir_all(kbuild).unwrap();
    fs::copy(ours.join(".config"), kbuild.join(".config")).unwrap();
    let mut reference = reference(kbuild, llvm);
    reference.llvm = llvm.clone();
    run_make(reference.reference_config("olddefconfig"));
    let before = ccache_stats();
    let started = std::time::Instant::now();
    reference.path = format!(
        "{}:{}",
        ccache_masquerade(&kbuild_compiler(llvm)).display(),
        reference.path.to_str().unwrap()
    )
    .into();
    let mut build = reference.reference_build(&["bzImage"], 2);
    build.envs(ccache_env());
    run_make(build);
    let after = ccache_stats();
    let (hits, misses) = (after.hits - before.hits, after.misses - before.misses);
    eprintln!("Kbuild's reference build: {hits} ccache hits, {misses} misses");
    xtask::build_log::record(&xtask::build_log::Entry {
        tool: xtask::build_log::Tool::Kbuild,
        tree: kbuild.file_name().unwrap().to_string_lossy().into_owned(),
        cold: hits < misses,
        steps_executed: hits + misses,
        seconds: started.elapsed().as_secs_f64(),
    })
    .unwrap();
}

/// The ccache both builds of the fidelity test share, emptied by the first.
fn ccache_dir() -> PathBuf {
    xtask::paths::target_dir().join("tests/ccache")
}

/// Both builds' ccache settings. Depend mode takes a compile's headers from
/// the `-MMD` file the compiler writes anyway; ccache's default mode runs the
/// preprocessor again on every miss, a third more per compile here (0.90 s
/// plain, 1.16 s through ccache, 0.86 s in depend mode for `kernel/fork.o`).
fn ccache_env() -> [(&'static str, String); 2] {
    [
        ("CCACHE_DIR", ccache_dir().to_str().unwrap().to_string()),
        ("CCACHE_DEPEND", "1".to_string()),
    ]
}

fn ccache_stats() -> xtask::engine::launcher::Stats {
    std::env::set_var("CCACHE_DIR", ccache_dir());
    let ccache =
        xtask::engine::launcher::Launcher::resolve("ccache").unwrap_or_else(|e| panic!("{e}"));
    ccache.stats().expect("ccache --print-stats")
}

/// A directory whose `compiler` is ccache, which runs the next `compiler`
/// on `PATH`.
fn ccache_masquerade(compiler: &str) -> PathBuf {
    let dir = xtask::paths::target_dir().join("tests/ccache-bin");
    fs::create_dir_all(&dir).unwrap();
    let link = dir.join(compiler);
    if fs::symlink_metadata(&link).is_err() {
        std::os::unix::fs::symlink("/usr/bin/ccache", &link).unwrap();
    }
    dir
}

/// The compiler `make LLVM=<llvm>` runs: `clang-22` for `-22`.
fn kbuild_compiler(llvm: &Llvm) -> String {
    match llvm {
        Llvm::Release(release) => format!("clang-{release}"),
        Llvm::Default | Llvm::Dir(_) => "clang".into(),
    }
}

/// `command` with Kbuild's `LLVM=-N` names of the tools (`clang-22`) as
/// the xtask's makes name them (`clang`, first on `PATH`): the same binaries.
fn without_release_suffix(command: &str, llvm: &Llvm) -> String {
    let Llvm::Release(release) = llvm else {
        return command.to_string();
    };
    command
        .split(' ')
        .map(|word| {
            xtask::toolchain::llvm::TOOLS
                .iter()
                .find(|tool| word == format!("{tool}-{release}"))
                .map_or(word, |tool| tool)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Kbuild on its own in `objtree` with `llvm`'s tools first on `PATH` and
/// `LLVM=1`, as the xtask runs make (a reference build sets `llvm` itself).
fn reference(objtree: &Path, llvm: &Llvm) -> xtask::kbuild::Kbuild {
    let toolchain = xtask::toolchain::ensure(llvm).unwrap();
    xtask::kbuild::Kbuild::new(
        common::source(),
        objtree,
        xtask::target::Arch::X86_64,
        &toolchain,
    )
    .unwrap()
}

fn run_make(mut command: Command) -> String {
    let out = command.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{command:?} failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// `savedcmd_<object> := <command>` of every compiled kernel object in a tree.
fn saved_commands(tree: &Path, llvm: &Llvm) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut stack = vec![tree.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() && !path.is_symlink() && name != "tools" && name != ".xtask" {
                stack.push(path);
            } else if name.ends_with(".o.cmd") {
                let object = path
                    .strip_prefix(tree)
                    .unwrap()
                    .with_file_name(&name[1..name.len() - 4]);
                let object = object.to_str().unwrap();
                let command = xtask::kbuild::cmd_file::CmdFile::read(tree, object)
                    .and_then(|f| f.command)
                    .map(|c| without_release_suffix(&c, llvm))
                    .unwrap_or_default();
                if command.starts_with("clang ") && !object.starts_with("scripts/") {
                    found.push((object.to_string(), command));
                }
            }
        }
    }
    found.sort();
    found
}

/// A user opt-out of a unit that is LTO'd by default makes all its objects
/// ELF; that kernel still links and boots. `then` runs on that tree.
/// Removing the opt-out restores bitcode.
fn opt_out_kernel_time(arch: &str, then: impl FnOnce(&[&str])) {
    let opt_out = ["--lto-off", "kernel/time"];
    boots_with(arch, "thin", &opt_out);
    let report = report(arch, "thin");
    check_report(&report, arch, "thin");
    let time = unit(&report, "kernel/time");
    assert_eq!(time.lto, LtoState::Off);
    assert_eq!(time.source, "--lto-off");
    assert_eq!(time.bitcode, 0);
    then(&opt_out);
    let report = build(arch, "thin");
    assert_eq!(unit(&report, "kernel/time").lto, LtoState::On);
}

/// The opt-out, and its tree's native objects compiled through distcc.
#[test]
#[ignore = "builds a kernel: run with `cargo xtask test`"]
fn t04_x86_64_opt_out_boots_and_compiles_through_distcc() {
    opt_out_kernel_time("x86_64", |opt_out| {
        let args = [
            &["--arch", "x86_64", "--lto", "thin", "--profile", "tiny"],
            opt_out,
        ]
        .concat();
        distcc_compiles_what_a_local_build_did(&args, &objtree("x86_64", "thin"), "kernel/time/");
    });
}

#[test]
#[ignore = "builds a kernel: run with `cargo xtask test`"]
fn t06_arm64_opt_out_of_kernel_time_boots() {
    opt_out_kernel_time("arm64", |_| {});
}

/// With `--lto none` the policy is still reported, but nothing is stripped:
/// a manifest unit is off because the whole build is. On t14's
/// configuration without LTO.
#[test]
#[ignore = "configures and plans a kernel: run with `cargo xtask test`"]
fn t09_lto_none_reports_policy_without_stripping() {
    let own = own_configuration("none");
    let config: Vec<&str> = own.iter().map(String::as_str).collect();
    let rm = realmode_unit(&config);
    assert_eq!(rm.source, "manifest");
    assert!(
        rm.reason.contains("LTO is off for the whole build"),
        "{rm:?}"
    );
}

/// `units --json` of the configuration `args` names: the listing of
/// `arch/x86/realmode/rm`, once the rules are seen to include one this
/// configuration does not build (`drivers/firmware/efi/libstub`).
fn realmode_unit(args: &[&str]) -> Unit {
    let out = Xtask::new("units").args(args).arg("--json").run();
    let listing: Listing = serde_json::from_slice(&out.stdout).unwrap();
    assert!(listing
        .rules
        .iter()
        .any(|r| r.spec == "drivers/firmware/efi/libstub"));
    listing
        .units
        .into_iter()
        .find(|u| u.path == "arch/x86/realmode/rm")
        .unwrap_or_else(|| panic!("no arch/x86/realmode/rm in the listing"))
}

/// Bad overrides are rejected with exit code 13 and a message that names the fix.
#[test]
#[ignore = "needs the unpacked kernel source: run with `cargo xtask test`"]
fn t10_bad_overrides_are_rejected_before_configuring() {
    let run = |extra: &[&str]| {
        Xtask::new("build")
            .selection("x86_64", "thin", "tiny")
            .args(extra)
            .fails()
    };
    let (code, err) = run(&["--lto-off", "kernel/tme"]);
    assert_eq!(code, 13, "{err}");
    assert!(err.contains("kernel/time"), "no suggestion: {err}");
    // The nearest existing unit, not the parent directory.
    let (code, err) = run(&["--lto-off", "kernel/tiem"]);
    assert_eq!(code, 13, "{err}");
    assert!(err.contains("did you mean kernel/time?"), "{err}");
    // A missing policy file: the OS error once, the file and the fix named.
    let (code, err) = run(&["--policy", "/nonexistent/policy.toml"]);
    assert_eq!(code, 13, "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    assert!(
        err.contains("/nonexistent/policy.toml") && err.contains("--policy"),
        "{err}"
    );
    let (code, err) = run(&["--lto-off", "../etc"]);
    assert_eq!(code, 13, "{err}");
    let (code, err) = run(&["--lto-off", "/usr"]);
    assert_eq!(code, 13, "{err}");
    let (code, err) = run(&["--lto-off", "kernel/time", "--lto-off", "kernel/time"]);
    assert_eq!(code, 13, "{err}");
    assert!(err.contains("twice"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let overlay = dir.path().join("policy.toml");
    fs::write(
        &overlay,
        "[[lto-off]]\nunit = \"kernel/time\"\nreason = \"test\"\nbogus = 1\n",
    )
    .unwrap();
    let (code, err) = run(&["--policy", overlay.to_str().unwrap()]);
    assert_eq!(code, 13, "{err}");
    assert!(err.contains("policy.toml:4"), "{err}");

    // The toolchain, as Kbuild spells it: a bad spelling is a usage error,
    // and an LLVM older than the kernel's own minimum is refused, quoting
    // the kernel's script, before its tree exists.
    let (code, err) = run(&["--llvm", "22"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("a version suffix such as -22"), "{err}");
    let old = tempfile::tempdir().unwrap();
    for tool in ["clang", "ld.lld", "llvm-ar", "llvm-nm", "llvm-objcopy"] {
        let path = old.path().join(tool);
        fs::write(&path, "#!/bin/sh\necho 'clang version 12.0.1'\n").unwrap();
        fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    let llvm = format!("{}/", old.path().display());
    let (code, err) = run(&["--llvm", &llvm]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("LLVM 12.0.1 is older than 13.0.1, the oldest this kernel supports")
            && err.contains("scripts/min-tool-version.sh llvm"),
        "{err}"
    );
    let tag = xtask::toolchain::Llvm::parse(&llvm).unwrap().tree_tag();
    let tree = objtree("x86_64", "thin");
    let name = format!(
        "x86_64-thin-tiny-{}-src-",
        tag.as_deref().expect("a directory has a tag")
    );
    let created: Vec<_> = fs::read_dir(tree.parent().unwrap())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&name))
        .collect();
    assert!(created.is_empty(), "a tree was made: {created:?}");
}

/// One build per object tree: while another process holds the tree, a build
/// with `--no-wait` exits 14 naming the holder, and one without waits for it.
#[test]
#[ignore = "builds a kernel: run with `cargo xtask test`"]
fn t12_a_second_build_of_a_tree_waits_or_exits_with_no_wait() {
    build("x86_64", "thin");
    let tree = objtree("x86_64", "thin");
    let held = xtask::engine::lock::TreeLock::acquire(&tree, |_| {
        panic!("no build should hold the tree now")
    })
    .unwrap();
    let (code, err) = Xtask::new("build")
        .selection("x86_64", "thin", "tiny")
        .arg("--no-wait")
        .fails();
    assert_eq!(code, 14, "{err}");
    assert!(
        err.contains(&format!("pid {}", std::process::id())) && err.contains("--no-wait"),
        "{err}"
    );
    let stderr = xtask::paths::target_dir().join("tests/t12-waiter.stderr");
    fs::create_dir_all(stderr.parent().unwrap()).unwrap();
    let mut waiter = Xtask::new("build")
        .selection("x86_64", "thin", "tiny")
        .spawn_logged(&stderr);
    let holder = format!("pid {}", std::process::id());
    let said = || {
        let text = fs::read_to_string(&stderr).unwrap_or_default();
        text.contains("waiting for") && text.contains(&holder)
    };
    common::wait_until(
        "the second build to say it waits for the lock",
        std::time::Duration::from_secs(120),
        || said() || waiter.try_wait().unwrap().is_some(),
    );
    assert!(
        waiter.try_wait().unwrap().is_none(),
        "the second build did not wait for the lock:\n{}",
        fs::read_to_string(&stderr).unwrap()
    );
    drop(held);
    let status = waiter.wait().unwrap();
    assert!(
        status.success(),
        "the waiting build failed ({status}):\n{}",
        fs::read_to_string(&stderr).unwrap()
    );
}

/// Incremental equals clean, bit for bit. A sequence of edits, each built
/// incrementally and booted to init: a `.c` change, a header change, a
/// syscall's entry point (a prepare-stage input), a Makefile adding an
/// object (planned again, not configured again), then in one re-plan a
/// fragment and a Kconfig default each changing a symbol (the embedded
/// `.config` follows: ClangBuiltLinux #2021), then the Makefile and the
/// Kconfig default taken back, then the fragment, whose change no Makefile
/// reads: the plan is kept, no dry run. Then the final state is built in an emptied tree through ccache, killed
/// three times on the way and resumed: every artifact has the same sha256. That build fills a shared cache, which
/// then serves another tree and this one, emptied again. The edits are
/// undone even if the test fails.
#[test]
#[ignore = "builds a kernel many times: run with `cargo xtask test`"]
fn t13_incremental_builds_equal_a_killed_clean_build() {
    let tree = objtree("x86_64", "thin");
    let fragment = log_buf_fragment();
    let step = |what: &str, with: bool, cache: Option<&str>| -> (Report, Vec<String>) {
        let mut args: Vec<&str> = if with {
            vec!["--fragment", &fragment]
        } else {
            vec![]
        };
        args.extend(cache.iter().flat_map(|url| ["--cache", *url]));
        Xtask::new("build")
            .selection("x86_64", "thin", "tiny")
            .args(&args)
            .run();
        // Read before test-boot, whose no-op build writes the list again.
        let ran = fs::read_to_string(tree.join(".xtask/last-executed.txt")).unwrap();
        let report = report("x86_64", "thin");
        Xtask::new("test-boot")
            .selection("x86_64", "thin", "tiny")
            .args(&args)
            .args(&["--firmware", "bios", "--timeout", "240"])
            .run();
        let boot = read_json(&tree.join("boot-report.json"));
        assert_eq!(boot["outcome"], "pass", "after {what}: {boot:#}");
        (report, ran.lines().map(String::from).collect())
    };
    build("x86_64", "thin");
    assert!(
        embedded_config(&tree).contains("CONFIG_LOG_BUF_SHIFT=17\n"),
        "the embedded config is not this build's"
    );

    let _c = Edit::append(
        "kernel/sys_ni.c",
        "\nint xtask_c_edit(void);\nint xtask_c_edit(void) { return 14; }\n",
    );
    let (report, ran) = step("a .c change", false, None);
    one_object_rebuilt_and_relinked(&report, &ran, "kernel/sys_ni.o");

    let _h = Edit::append(
        "kernel/sched/sched.h",
        "\nextern int xtask_header_edit(void);\n",
    );
    let (_, ran) = step("a header change", false, None);
    assert!(
        ran.iter()
            .any(|o| o.starts_with("kernel/sched/") && o.ends_with(".o")),
        "no sched object recompiled: {ran:?}"
    );
    assert!(
        !ran.contains(&"kernel/fork.o".to_string()),
        "an object not including the header recompiled"
    );

    // An existing row's entry point: the table `syscalls_64.h` and its one
    // user follow, while `unistd_64.h`, which holds only numbers and names,
    // is generated again with the same bytes and none of its hundreds of
    // users recompiles (early cut-off).
    let _syscall = Edit::replace(
        "arch/x86/entry/syscalls/syscall_64.tbl",
        "sys_lsm_list_modules",
        "sys_ni_syscall",
    );
    let (_, ran) = step("a syscall's entry point", false, None);
    let table =
        fs::read_to_string(tree.join("arch/x86/include/generated/asm/syscalls_64.h")).unwrap();
    assert!(
        table.contains("__SYSCALL(461, sys_ni_syscall)"),
        "syscalls_64.h lacks the new entry point"
    );
    for expected in [
        "arch/x86/include/generated/uapi/asm/unistd_64.h",
        "arch/x86/include/generated/asm/syscalls_64.h",
        "arch/x86/entry/syscall_64.o",
    ] {
        assert!(
            ran.contains(&expected.to_string()),
            "{expected} was not rebuilt: {ran:?}"
        );
    }
    let compiled: Vec<&String> = ran
        .iter()
        .filter(|o| {
            o.ends_with(".o") && !o.starts_with(".xtask/thin/") && !o.starts_with("arch/x86/boot/")
        })
        .filter(|o| {
            ![
                "arch/x86/entry/syscall_64.o",
                "init/version-timestamp.o",
                "vmlinux.o",
            ]
            .contains(&o.as_str())
        })
        .collect();
    assert!(
        compiled.is_empty(),
        "unistd_64.h kept its bytes, yet objects recompiled: {compiled:?}"
    );

    // A Makefile adding an object: planned again, not configured again
    // (`configure::is_current`).
    let symbols = || -> String {
        let out = Command::new("/usr/lib/llvm-19/bin/llvm-nm")
            .arg(tree.join("vmlinux"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let new_c = Edit::create(
        "kernel/xtask_probe.c",
        "int xtask_new_object(void);\nint xtask_new_object(void) { return 12; }\n",
    );
    let makefile = Edit::append("kernel/Makefile", "\nobj-y += xtask_probe.o\n");
    // A run stopped before the object's removal below left it, and an
    // object that matches its record is rightly not compiled again.
    let _ = fs::remove_file(tree.join("kernel/xtask_probe.o"));
    let (report, ran) = step("a Makefile adding an object", false, None);
    let phases: Vec<&str> = report.phases.iter().map(|p| p.name.as_str()).collect();
    assert!(
        phases.contains(&"plan") && !phases.contains(&"configure"),
        "a Makefile change configured the tree again: {phases:?}"
    );
    assert!(ran.contains(&"kernel/xtask_probe.o".to_string()), "{ran:?}");
    assert!(
        symbols().contains(" xtask_new_object"),
        "the new object is not linked"
    );

    // One re-plan for two changes to the configuration: a fragment
    // (`LOG_BUF_SHIFT` 17 to 16, and `PRINTK_TIME`, which was not set) and
    // a Kconfig default (the clocksource watchdog's skew, 125 to 250 us).
    // `PRINTK_TIME` adds a line to `autoconf.h`, whose padding keeps its
    // length (`kconfig::autoconf`), so `lto::policy::AUTOCONF_SIZE` holds:
    // only each symbol's reader recompiles (fixdep's `include/config/`
    // files name them), and the tree is kept. No symbol is named in a
    // header `fork.c` reads. `kernel/configs.o` embeds `config_data.gz` with
    // `.incbin`, which LLVM's ThinLTO cache key ignores: its bitcode does
    // not change, yet its backend must run, or `vmlinux` embeds the old
    // config.
    let configs = fs::read(tree.join("kernel/configs.o")).unwrap();
    let autoconf = tree.join(xtask::kconfig::autoconf::PATH);
    let autoconf_before = fs::read_to_string(&autoconf).unwrap();
    let kconfig = Edit::replace(
        "kernel/time/Kconfig",
        "range 50 1000\n\tdefault 125",
        "range 50 1000\n\tdefault 250",
    );
    let (report, ran) = step("a fragment and a Kconfig default", true, None);
    let autoconf_after = fs::read_to_string(&autoconf).unwrap();
    assert!(
        autoconf_after.contains("#define CONFIG_PRINTK_TIME 1\n")
            && autoconf_after.len() == autoconf_before.len(),
        "autoconf.h went from {} to {} bytes: every bitcode object rebuilt",
        autoconf_before.len(),
        autoconf_after.len()
    );
    let dot_config = fs::read_to_string(tree.join(".config")).unwrap();
    let embedded = embedded_config(&tree);
    for (value, reader) in [
        ("CONFIG_PRINTK_TIME=y\n", "kernel/printk/printk.o"),
        ("CONFIG_LOG_BUF_SHIFT=16\n", "kernel/printk/printk.o"),
        (
            "CONFIG_CLOCKSOURCE_WATCHDOG_MAX_SKEW_US=250\n",
            "kernel/time/clocksource.o",
        ),
    ] {
        assert!(dot_config.contains(value), "{value} did not land");
        assert!(
            ran.iter().any(|o| o == reader),
            "{reader}, which reads {value}, did not rebuild: {ran:?}"
        );
        assert!(embedded.contains(value), "vmlinux embeds the old config");
    }
    assert!(
        fs::read(tree.join("kernel/configs.o")).unwrap() == configs,
        "the bitcode of kernel/configs.o changed: the test proves nothing"
    );
    assert!(
        ran.iter().any(|o| o == ".xtask/thin/kernel/configs.o"),
        "the backend of kernel/configs.o did not run: {ran:?}"
    );
    assert!(
        !ran.contains(&"kernel/fork.o".to_string()),
        "fork.o reads neither symbol, yet rebuilt: was the tree kept?"
    );
    assert!(
        report.steps.cached > 500,
        "the tree was not kept: {:?}",
        report.steps
    );
    // The Makefile and the Kconfig default taken back, the fragment kept:
    // planned again (the Makefiles changed), and the removed object is gone.
    drop((makefile, new_c, kconfig));
    let (_, ran) = step(
        "that object removed and the Kconfig default taken back",
        true,
        None,
    );
    assert!(
        !symbols().contains(" xtask_new_object"),
        "the removed object is still linked"
    );
    assert!(
        ran.iter().any(|o| o == "kernel/time/clocksource.o"),
        "kernel/time/clocksource.o, which reads the skew, did not rebuild: {ran:?}"
    );
    assert!(embedded_config(&tree).contains(
        "CONFIG_CLOCKSOURCE_WATCHDOG_MAX_SKEW_US=125
"
    ));
    // The fragment taken back: the configuration is the one the walk
    // started from. No Makefile or script names either symbol, and the
    // prepare stage makes the same files, so the plan is kept: no dry run.
    // The clean build below can take every compile the walk did not touch
    // from ccache, but its comparison no longer sees a configuration input
    // that a key of ours misses (the stale output would be the first one
    // again): the checks of the steps above stand for it. What it does
    // prove is that a kept plan builds what a clean plan builds.
    let (report, ran) = step("the fragment taken back", false, None);
    assert_eq!(report.plan_from, PlanFrom::Kept, "{:?}", report.phases);
    let embedded = embedded_config(&tree);
    for value in [
        "# CONFIG_PRINTK_TIME is not set\n",
        "CONFIG_LOG_BUF_SHIFT=17\n",
    ] {
        assert!(
            ran.iter().any(|o| o == "kernel/printk/printk.o"),
            "kernel/printk/printk.o, which reads {value}, did not rebuild: {ran:?}"
        );
        assert!(embedded.contains(value), "vmlinux embeds the edited config");
    }
    assert!(
        !ran.contains(&"kernel/fork.o".to_string()),
        "fork.o reads neither symbol, yet rebuilt"
    );

    let incremental = artifacts(&tree);
    fs::remove_dir_all(&tree).unwrap();
    // The clean build fills a shared cache: Bazel's HTTP protocol, served by
    // nginx on loopback. It is killed three times and resumed. Its compiles
    // go through the fidelity test's ccache, as Kbuild's reference build
    // does: the configuration is that test's, so only what the walk edited
    // misses. ccache keys a compile by its own reading of the command, the
    // compiler and every file the compiler read, none of ours: a key of ours
    // that misses an input leaves the walk's object stale, while ccache
    // compiles it again, and the kernels differ.
    let server = testkit::CacheServer::start().unwrap_or_else(|e| panic!("{e}"));
    let url = server.url();
    // Nor does it take its base `.config` from those the walk's trees made
    // (`configure::bases`): they are set aside while it configures.
    let kernel = tree.parent().unwrap();
    let (bases, aside) = (kernel.join(".bases"), kernel.join(".bases-aside"));
    let _ = fs::remove_dir_all(&aside);
    let _ = fs::rename(&bases, &aside);
    kill_three_times(&tree, || {
        Xtask::new("build")
            .selection("x86_64", "thin", "tiny")
            .envs(ccache_env())
            .args(&["--launcher", "ccache", "--cache", &url])
    });
    step(
        "a clean build of the final state, killed three times",
        false,
        Some(&url),
    );
    let _ = fs::remove_dir_all(&bases);
    let _ = fs::rename(&aside, &bases);
    assert_eq!(
        artifacts(&tree),
        incremental,
        "the incremental build differs from a killed and resumed clean one"
    );

    // A second tree with the same source and configuration (another name:
    // the configuration comes as a file) restores every compile and backend:
    // a killed build left nothing out of the cache.
    let config = xtask::paths::target_dir().join("tests/shared-cache/tiny.config");
    fs::create_dir_all(config.parent().unwrap()).unwrap();
    fs::copy(tree.join(".config"), &config).unwrap();
    let config = config.to_str().unwrap();
    let second = common::objtree("x86_64", "thin", config);
    let _ = fs::remove_dir_all(&second);
    Xtask::new("build")
        .args(&[
            "--arch", "x86_64", "--lto", "thin", "--config", config, "--cache", &url,
        ])
        .run();
    let report = read_report(&second);
    let shared = report
        .shared_cache
        .expect("a --cache build reports its cache");
    assert_eq!(
        (shared.misses, shared.corrupt),
        (0, 0),
        "a compile or backend ran: {shared:?}"
    );
    assert!(shared.hits > 500 && shared.error.is_none(), "{shared:?}");
    let ran = fs::read_to_string(second.join(".xtask/last-executed.txt")).unwrap();
    assert!(
        !ran.lines()
            .any(|o| o.starts_with(xtask::lto::thin::DIR) && o.ends_with(".o")),
        "a backend ran: {ran}"
    );
    assert_eq!(
        artifacts(&second),
        incremental,
        "a tree restored from the shared cache differs from a clean build"
    );
    assert!(server
        .requests()
        .iter()
        .any(|r| r.starts_with("GET /cache/cas/") && r.ends_with(" 200")));
    fs::remove_dir_all(&second).unwrap();

    // The first tree, removed and built again with the cache, takes its
    // configuration and every plan from the bundle its clean build stored:
    // no configure, no dry run; the same kernel.
    fs::remove_dir_all(&tree).unwrap();
    Xtask::new("build")
        .selection("x86_64", "thin", "tiny")
        .args(&["--cache", &url])
        .run();
    let again = read_report(&tree);
    assert_eq!(again.plan_from, PlanFrom::SharedCache, "{:?}", again.phases);
    let shared = again
        .shared_cache
        .expect("a --cache build reports its cache");
    assert_eq!(shared.misses, 0, "{shared:?}");
    assert_eq!(
        artifacts(&tree),
        incremental,
        "a tree configured from the shared cache differs from a clean build"
    );
}

/// An edited C file recompiles that object, its archives and the link,
/// nothing else: ThinLTO backends run only for the edited object and those
/// that import from it, as forks of one clang; the image is re-planned for
/// the new `vmlinux`.
fn one_object_rebuilt_and_relinked(report: &Report, ran: &[String], object: &str) {
    let unit = object.rsplit_once('/').unwrap().0;
    let backend = format!("{}/{object}", xtask::lto::thin::DIR);
    for expected in [
        object,
        &format!("{unit}/built-in.a"),
        "vmlinux.o",
        "vmlinux",
        &backend,
    ] {
        assert!(
            ran.iter().any(|o| o == expected),
            "{expected} was not rebuilt: {ran:?}"
        );
    }
    let backends = ran
        .iter()
        .filter(|o| o.starts_with(xtask::lto::thin::DIR) && o.ends_with(".o"))
        .count();
    assert!(
        backends <= 10,
        "{backends} backends ran for one edited file: {ran:?}"
    );
    assert_eq!(
        report.backends_forked,
        Some(true),
        "the backends did not run as forks of one clang (see the build's warning)"
    );
    let stray: Vec<&String> = ran
        .iter()
        .filter(|o| {
            o.ends_with(".o")
                && !o.starts_with("arch/x86/boot/")
                && !o.starts_with(xtask::lto::thin::DIR)
        })
        .filter(|o| ![object, "init/version-timestamp.o", "vmlinux.o"].contains(&o.as_str()))
        .collect();
    assert!(stray.is_empty(), "other objects were rebuilt: {stray:?}");
    let executed = report.steps.executed;
    assert!(
        executed < 60,
        "{executed} steps ran for one edited file: {ran:?}"
    );
}

/// A fragment that sets `CONFIG_LOG_BUF_SHIFT` (17 in the tiny preset) to
/// 16, and `CONFIG_PRINTK_TIME`, which the preset leaves unset.
fn log_buf_fragment() -> String {
    let fragment = xtask::paths::target_dir().join("tests/log-buf-shift.config");
    fs::create_dir_all(fragment.parent().unwrap()).unwrap();
    fs::write(&fragment, "CONFIG_LOG_BUF_SHIFT=16\nCONFIG_PRINTK_TIME=y\n").unwrap();
    fragment.to_str().unwrap().to_string()
}

/// The `.config` that `scripts/extract-ikconfig` finds in the tree's `vmlinux`.
fn embedded_config(tree: &Path) -> String {
    let script = common::source().join("scripts/extract-ikconfig");
    let out = Command::new("sh")
        .arg(script)
        .arg(tree.join("vmlinux"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "extract-ikconfig found no config:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `path sha256` of every artifact the report lists, the path relative to the tree.
fn artifacts(tree: &Path) -> Vec<String> {
    let report = read_report(tree);
    let relative = |path: &Path| {
        path.strip_prefix(tree)
            .unwrap_or_else(|_| panic!("{} is not in {}", path.display(), tree.display()))
            .display()
            .to_string()
    };
    let list: Vec<String> = report
        .artifacts
        .iter()
        .map(|a| format!("{} {}", relative(&a.path), a.sha256))
        .collect();
    assert!(list.len() >= 3, "{list:?}");
    list
}

/// Whether a build has reached a point, from what it left in its tree.
type Reached = fn(&Path) -> bool;

/// A point to kill a build at, and what to do when the build had already
/// ended when the kill landed: remove these outputs, so the build has that
/// work again, and kill at the earlier point.
struct KillPoint {
    when: &'static str,
    reached: Reached,
    too_late: Option<(&'static [&'static str], Reached)>,
}

/// Starts `build` in the emptied x86_64 ThinLTO `tree` and SIGKILLs it at
/// three points: compiling, in the ThinLTO backends, in the image. A kill
/// counts only if it found the build running; each time the steps it was
/// running finish as orphans before the next start.
fn kill_three_times(tree: &Path, build: impl Fn() -> Xtask) {
    let compiling = |t: &Path| {
        t.join("kernel").read_dir().is_ok_and(|d| {
            d.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "o"))
                .count()
                >= 5
        })
    };
    let in_backends = |t: &Path| {
        t.join(".xtask/thin/kernel")
            .read_dir()
            .is_ok_and(|d| d.flatten().count() >= 3)
    };
    let in_image = |t: &Path| t.join("arch/x86/boot/compressed/vmlinux.bin").exists();
    let image_started = |t: &Path| t.join("arch/x86/boot/compressed").exists();
    let points = [
        KillPoint {
            when: "compiling",
            reached: compiling,
            too_late: None,
        },
        KillPoint {
            when: "in the backends",
            reached: in_backends,
            too_late: None,
        },
        KillPoint {
            when: "in the image",
            reached: in_image,
            too_late: Some((&["arch/x86/boot"], image_started)),
        },
    ];
    for point in points {
        let (mut reached, mut retried) = (point.reached, false);
        loop {
            let child = build().spawn();
            let started = std::time::Instant::now();
            common::wait_until(point.when, std::time::Duration::from_secs(900), || {
                reached(tree) || child_ended(&child)
            });
            assert!(
                reached(tree),
                "the build ended before it was {}",
                point.when
            );
            let killed = kill_and_drain(child);
            if killed {
                eprintln!(
                    "killed {} after {:.1}s",
                    point.when,
                    started.elapsed().as_secs_f64()
                );
                break;
            }
            let (outputs, earlier) = point
                .too_late
                .unwrap_or_else(|| panic!("the build ended before the kill {} landed", point.when));
            assert!(!retried, "the kill {} came too late twice", point.when);
            eprintln!(
                "the kill {} came too late: removing {outputs:?}, killing earlier",
                point.when
            );
            for output in outputs {
                fs::remove_dir_all(tree.join(output)).unwrap();
            }
            (reached, retried) = (earlier, true);
        }
    }
}

/// Whether the child has exited (it is not reaped: `kill_and_drain` reads its status).
fn child_ended(child: &std::process::Child) -> bool {
    // WNOWAIT leaves it a zombie, so its status is still there to read.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let ret = unsafe {
        libc::waitid(
            libc::P_PID,
            child.id(),
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    ret == 0 && unsafe { info.si_pid() } != 0
}

/// SIGKILLs the build and waits until every step it started has finished
/// as an orphan (its process group is empty). Whether the kill found it
/// running: a build that had already exited was not killed.
fn kill_and_drain(mut child: std::process::Child) -> bool {
    use std::os::unix::process::ExitStatusExt;
    let _ = child.kill();
    let status = child.wait().unwrap();
    let group = format!("-{}", child.id());
    common::wait_until(
        "the killed build's steps to finish",
        std::time::Duration::from_secs(300),
        || {
            !Command::new("kill")
                .args(["-0", "--", &group])
                .stderr(std::process::Stdio::null())
                .status()
                .unwrap()
                .success()
        },
    );
    status.signal() == Some(libc::SIGKILL)
}

/// A configuration of the user's own, as a kernel engineer gives it: a
/// Kbuild target, a fragment of the kernel's own found by name, and fragment
/// files, here with full LTO (one in-process link of the whole kernel,
/// Kbuild's own recipe) and LLVM 22, Debian's newest: the tree is named
/// after both (`-llvm22`), and the report names clang 22. It boots with
/// its vDSO proof; its `.config` holds what was asked; the same `.config`
/// given back as a file with `--config PATH` configures to the same
/// `.config`; `savedefconfig` writes a minimal file. Typos fail before
/// anything is configured, each with the nearest name. (A changed Kconfig
/// default is `t13`'s; the proof profile under full LTO is `t19`, in
/// `cargo xtask test --full`.)
#[test]
#[ignore = "builds a kernel: run with `cargo xtask test`"]
fn t14_any_configuration_builds_boots_and_round_trips() {
    let dir = xtask::paths::target_dir().join("tests/t14");
    let mut own = own_configuration("full");
    // The one tree CI builds with LLVM 22 (the rest use the default, 19).
    own.push(format!("--llvm={LLVM_22}"));
    let config: Vec<&str> = own.iter().map(String::as_str).collect();
    let (code, error) = Xtask::new("build").args(&["--config", "defconifg"]).fails();
    assert!(
        error.contains("did you mean `defconfig`?"),
        "exit {code}: {error}"
    );
    let (code, error) = Xtask::new("build")
        .args(&config)
        .args(&["--fragment", "nopm_.config"])
        .fails();
    assert!(
        error.contains("did you mean nopm.config?"),
        "exit {code}: {error}"
    );

    Xtask::new("test-boot")
        .args(&config)
        .args(&["--firmware", "bios", "--timeout", "240"])
        .run();
    let tree = common::objtree_of_toolchain("x86_64", "full", "tinyconfig", Some("llvm22"));
    assert!(
        tree.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("x86_64-full-tinyconfig-llvm22-src-"),
        "{}",
        tree.display()
    );
    assert_proofs(&tree, &["vdso"]);
    let report = read_report(&tree);
    assert_eq!(report.config, "tinyconfig");
    check_report(&report, "x86_64", "full");
    assert_built_with_llvm_22(&report);
    let dot_config = xtask::kconfig::DotConfig::read(&tree.join(".config")).unwrap();
    for (symbol, value) in [
        ("PRINTK_TIME", Some("y")),
        ("LOCALVERSION", Some("-t14")),
        ("SERIAL_8250_CONSOLE", Some("y")),
        ("LTO_CLANG_FULL", Some("y")),
        ("PM", None),
    ] {
        assert_eq!(
            dot_config.get(symbol),
            value,
            "CONFIG_{symbol} in {}",
            tree.join(".config").display()
        );
    }

    let given = dir.join("given.config");
    fs::copy(tree.join(".config"), &given).unwrap();
    // The listing names each unit's policy and where it comes from.
    let given_args = [
        "--lto",
        "full",
        "--config",
        given.to_str().unwrap(),
        &format!("--llvm={LLVM_22}"),
    ];
    let rm = realmode_unit(&given_args);
    // Kbuild's Makefile opts it out too: `manifest+kbuild-makefile`.
    assert!(
        rm.lto == LtoState::Off && rm.source.starts_with("manifest"),
        "{rm:?}"
    );
    let file_tree =
        common::objtree_of_toolchain("x86_64", "full", given.to_str().unwrap(), Some("llvm22"));
    assert!(
        file_tree
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("x86_64-full-given-"),
        "{}",
        file_tree.display()
    );
    assert_eq!(
        xtask::kconfig::DotConfig::read(&file_tree.join(".config")).unwrap(),
        dot_config,
        "--config PATH gave another .config"
    );

    let saved = dir.join("defconfig");
    Xtask::new("savedefconfig")
        .args(&config)
        .args(&["--output", saved.to_str().unwrap()])
        .run();
    let saved_text = fs::read_to_string(&saved).unwrap();
    assert!(
        saved_text.contains("CONFIG_PRINTK_TIME=y\n"),
        "{saved_text}"
    );
    assert!(
        saved_text.len() * 4 < fs::read_to_string(tree.join(".config")).unwrap().len(),
        "savedefconfig is not minimal"
    );
}

/// The release `t14`, `t21` and `t22` build with (`--llvm=-22`): `.ci/run`
/// installs it.
const LLVM_22: &str = "-22";

fn llvm_22() -> Llvm {
    Llvm::parse(LLVM_22).unwrap()
}

/// The report names Debian's clang 22 from its own directory.
fn assert_built_with_llvm_22(report: &Report) {
    assert!(
        report.toolchain.clang.contains("clang version 22.")
            && report.toolchain.bin.ends_with("llvm-22/bin"),
        "{:?}",
        report.toolchain
    );
}

/// t14's configuration: `tinyconfig`, the kernel's `nopm.config`, the
/// tiny preset's fragments and one of the user's, under `lto`.
fn own_configuration(lto: &str) -> Vec<String> {
    let dir = xtask::paths::target_dir().join("tests/t14");
    fs::create_dir_all(&dir).unwrap();
    let mine = dir.join("mine.config");
    fs::write(
        &mine,
        "CONFIG_PRINTK_TIME=y\nCONFIG_LOCALVERSION=\"-t14\"\n",
    )
    .unwrap();
    let targets = xtask::paths::targets_dir();
    let fragments = [
        targets.join("common/tiny.config"),
        targets.join("x86_64/tiny.config"),
        mine,
    ];
    let mut args: Vec<String> = [
        "--lto",
        lto,
        "--config",
        "tinyconfig",
        "--fragment",
        "nopm.config",
    ]
    .map(String::from)
    .into();
    for fragment in fragments {
        args.push("--fragment".into());
        args.push(fragment.to_str().unwrap().into());
    }
    args
}

/// `--launcher distcc`: Debian's distccd on loopback, with no quiet local
/// fallback, compiles again the C objects of `tree` under `unit`, removed
/// first, with `kernel/configs.o`. They must be native: a remote compile
/// makes an ELF object byte for byte as a local one does (bitcode differs:
/// docs/distcc.md says why). `kernel/configs.o` pulls `config_data.gz` in with
/// `.incbin`, which the server would not have, so it is compiled here.
/// distccd's log counts every compile the launcher ran, and each object and
/// the kernel are as the local build made them.
fn distcc_compiles_what_a_local_build_did(args: &[&str], tree: &Path, unit: &str) {
    Xtask::new("build").args(args).run();
    let local = artifacts(tree);
    let removed: Vec<(String, Vec<u8>)> = planned(tree, "compile_c")
        .into_iter()
        .filter(|o| o.starts_with(unit) || o == "kernel/configs.o")
        .map(|o| {
            let bytes = fs::read(tree.join(&o)).unwrap();
            fs::remove_file(tree.join(&o)).unwrap();
            (o, bytes)
        })
        .collect();
    assert!(
        removed.len() > 5 && removed.iter().any(|(o, _)| o == "kernel/configs.o"),
        "{} objects: {:?}",
        removed.len(),
        removed.iter().map(|(o, _)| o).collect::<Vec<_>>()
    );

    let path = format!("/usr/lib/llvm-19/bin:{}", std::env::var("PATH").unwrap());
    let server = testkit::DistccServer::start(&path).unwrap_or_else(|e| panic!("{e}"));
    server
        .client_env()
        .iter()
        .fold(Xtask::new("build").args(args), |x, (k, v)| x.env(k, v))
        .args(&["--launcher", "distcc"])
        .run();
    let report = read_report(tree);
    let launcher = report
        .launcher
        .as_ref()
        .expect("a --launcher build reports it");
    assert_eq!(launcher.kind, Kind::Distcc, "{launcher:?}");
    let c_compiles = compiles_run(tree, "compile_c");
    let launched = report.steps.launched;
    assert!(
        c_compiles == removed.len() && launched + 1 == c_compiles,
        "{} removed, {c_compiles} compiled: {:?}",
        removed.len(),
        report.steps
    );
    assert_eq!(
        server.compiled(launched),
        launched,
        "C compiles the launcher ran did not reach distccd:\n{}",
        server.log()
    );
    for (object, bytes) in &removed {
        assert!(
            fs::read(tree.join(object)).unwrap() == *bytes,
            "{object} compiled through distcc differs from the local compile"
        );
    }
    assert_eq!(
        artifacts(tree),
        local,
        "the kernel differs from the local build"
    );
}

/// The outputs of every step of `kind` (`compile_c`, ...) that the tree
/// plans: its compile plan and stage plans, each output once.
fn planned(tree: &Path, kind: &str) -> BTreeSet<String> {
    let mut steps = read_json(&tree.join(".xtask/plan.json"))["compile"]
        .as_array()
        .unwrap()
        .clone();
    for plan in fs::read_dir(tree.join(".xtask/plans")).unwrap() {
        let plan = read_json(&plan.unwrap().path());
        steps.extend(plan["steps"].as_array().unwrap().iter().cloned());
    }
    steps
        .iter()
        .filter(|s| s["kind"] == kind)
        .map(|s| s["output"].as_str().unwrap().to_string())
        .collect()
}

/// How many steps of `kind` the tree's last build ran.
fn compiles_run(tree: &Path, kind: &str) -> usize {
    let ran = fs::read_to_string(tree.join(".xtask/last-executed.txt")).unwrap();
    let ran: std::collections::HashSet<&str> = ran.lines().collect();
    planned(tree, kind)
        .iter()
        .filter(|o| ran.contains(o.as_str()))
        .count()
}

/// Another kernel version, as a new user would build it: Debian's 6.1
/// through `--source`. Its link runs 6.1's own link-vmlinux.sh (whose
/// mksysmap is a shell script, not 6.12's sed script) and its tools make
/// ignores `-n`; the kernel boots to init.
#[test]
#[ignore = "builds a kernel: run with `cargo xtask test`"]
fn t16_debian_6_1_builds_with_thin_lto_and_boots() {
    let source = xtask::source::unpack_debian("6.1").unwrap();
    let source = source.to_str().unwrap();
    Xtask::bare("test-boot")
        .args(&["--source", source])
        .selection("x86_64", "thin", "tiny")
        .args(&["--firmware", "bios", "--timeout", "240"])
        .run();
    let tree = {
        use xtask::target::{Arch, Config, Lto, Profile, Target};
        let target = Target {
            arch: Arch::X86_64,
            lto: Lto::Thin,
            config: Config::Preset(Profile::Tiny),
        };
        target.obj_dir(Some(Path::new(source)), None)
    };
    let report = read_report(&tree);
    check_report(&report, "x86_64", "thin");
    let version = &report.kernel_version;
    assert!(version.starts_with("6.1."), "{version}");
    let boot = read_json(&tree.join("boot-report.json"));
    assert_eq!(boot["outcome"], "pass", "{boot:#}");
    let log = fs::read_to_string(boot["boots"][0]["log"].as_str().unwrap()).unwrap();
    assert!(log.contains("Linux version 6.1."), "{}", tail(&log));
    assert!(log.contains("Run /init as init process"), "{}", tail(&log));
    // The tree's own script linked it: it leaves its fixdep record naming itself.
    let record = fs::read_to_string(tree.join(".vmlinux.d")).unwrap();
    assert!(
        record.contains(&format!("{source}/scripts/link-vmlinux.sh")),
        "{record}"
    );
}

/// `cargo xtask menuconfig` as a user drives it: Kbuild's own mconf in a
/// terminal (`script` gives it a pseudo-terminal), a search, one symbol set,
/// save on exit. The change is kept for the tree and applied each time it
/// is configured again.
#[test]
#[ignore = "configures a kernel: run with `cargo xtask test`"]
fn t17_menuconfig_edits_are_kept_for_the_next_build() {
    let config = [
        "--arch",
        "x86_64",
        "--lto",
        "thin",
        "--config",
        "allnoconfig",
    ];
    let tree = common::objtree("x86_64", "thin", "allnoconfig");
    let edits = xtask::configure::edits_path(&tree);
    let _ = fs::remove_file(&edits);
    let saved = xtask::paths::target_dir().join("tests/t17-defconfig");
    fs::create_dir_all(saved.parent().unwrap()).unwrap();
    // Configuring is all either command needs: savedefconfig is the cheapest.
    let savedefconfig = || {
        Xtask::new("savedefconfig")
            .args(&config)
            .args(&["--output", saved.to_str().unwrap()])
            .run()
    };
    savedefconfig();
    assert_eq!(
        xtask::kconfig::DotConfig::read(&tree.join(".config"))
            .unwrap()
            .get("IKCONFIG"),
        None
    );

    let mut terminal = Terminal::start(
        &[
            &["menuconfig", "--source", common::source().to_str().unwrap()][..],
            &config,
        ]
        .concat(),
    );
    // Each key is sent once the screen shows that the one before was taken,
    // so no two keys arrive together: two `<Esc><Esc>` in one read are no
    // `<Esc><Esc>` at all to mconf.
    terminal.wait_for("the main menu", |s| s.contains("Arrow keys navigate"));
    terminal.send("/");
    terminal.wait_for("the search", |s| {
        s.contains("Search Configuration Parameter")
    });
    terminal.send("^IKCONFIG$\n");
    terminal.wait_for("the result", |s| {
        s.contains("Symbol: IKCONFIG") && s.contains("(1)")
    });
    // The first result's jump key opens its menu with it selected.
    terminal.send("1");
    terminal.wait_for("General setup", |s| {
        s.contains("Kernel .config support") && !s.contains("Symbol: IKCONFIG")
    });
    terminal.send("y");
    terminal.wait_for("IKCONFIG set", |s| s.contains("[*] Kernel .config support"));
    // `<Esc><Esc>` climbs one level (the menu, the search results, the main
    // menu) until the save dialog shows; a screen that changed shows that
    // the pair before was taken.
    for _ in 0..4 {
        let before = terminal.contents();
        if before.contains("save your new configuration") {
            break;
        }
        terminal.send("\x1b\x1b");
        terminal.wait_for("<Esc><Esc> to be taken", |s| s != before);
    }
    terminal.wait_for("the save dialog", |s| {
        s.contains("save your new configuration")
    });
    terminal.send("\n");
    let screen = terminal.finish();
    assert!(screen.contains("1 setting(s) changed"), "{screen}");

    let kept = fs::read_to_string(&edits).unwrap();
    assert!(kept.contains("CONFIG_IKCONFIG=y\n"), "{kept}");
    // The next configure of the tree applies it after its recipe.
    savedefconfig();
    let dot_config = xtask::kconfig::DotConfig::read(&tree.join(".config")).unwrap();
    assert_eq!(dot_config.get("IKCONFIG"), Some("y"));
    let saved_text = fs::read_to_string(&saved).unwrap();
    assert!(saved_text.contains("CONFIG_IKCONFIG=y\n"), "{saved_text}");
    fs::remove_file(&edits).unwrap();
}

/// A program in a pseudo-terminal of 40x120 (util-linux's `script`), fed
/// keys through it. Its output goes through a terminal emulator (`vt100`),
/// so a test reads the screen as it is drawn, and into a transcript with
/// the escape sequences removed.
struct Terminal {
    child: std::process::Child,
    input: std::process::ChildStdin,
    screen: std::sync::Arc<std::sync::Mutex<(vt100::Parser, String)>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Terminal {
    fn start(args: &[&str]) -> Terminal {
        use std::{io::Read, num::NonZeroU16, process::Stdio};
        let exe = env!("CARGO_BIN_EXE_xtask");
        let command = std::iter::once(exe)
            .chain(args.iter().copied())
            .map(|a| shlex::try_quote(a).unwrap().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        let mut child = Command::new("script")
            .args(["-q", "-e", "-c"])
            .arg(format!("stty rows 40 cols 120; exec {command}"))
            .arg("/dev/null")
            .env("TERM", "xterm")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("script (util-linux): apt-get install bsdutils");
        let input = child.stdin.take().unwrap();
        let mut output = child.stdout.take().unwrap();
        let screen = std::sync::Arc::new(std::sync::Mutex::new((
            vt100::Parser::new(
                NonZeroU16::new(40).unwrap(),
                NonZeroU16::new(120).unwrap(),
                0,
            ),
            String::new(),
        )));
        let collected = screen.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = output.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let (parser, transcript) = &mut *collected.lock().unwrap();
                parser.process(&buf[..n]);
                transcript.push_str(&strip_escapes(&String::from_utf8_lossy(&buf[..n])));
            }
        });
        Terminal {
            child,
            input,
            screen,
            reader: Some(reader),
        }
    }

    /// The screen as drawn now.
    fn contents(&self) -> String {
        self.screen.lock().unwrap().0.screen().contents()
    }

    /// Waits until the screen shows `what`, by `shows`; two minutes at most.
    fn wait_for(&mut self, what: &str, shows: impl Fn(&str) -> bool) {
        let started = std::time::Instant::now();
        while !shows(&self.contents()) {
            if started.elapsed().as_secs() >= 120 {
                let _ = self.child.kill();
                panic!(
                    "waited 120 s for {what}; the screen showed:\n{}",
                    self.contents()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    fn send(&mut self, keys: &str) {
        use std::io::Write;
        self.input.write_all(keys.as_bytes()).unwrap();
        self.input.flush().unwrap();
    }

    /// Waits for the program to end successfully; the transcript of what it showed.
    fn finish(mut self) -> String {
        let status = self.child.wait().unwrap();
        self.reader.take().unwrap().join().unwrap();
        let transcript = self.screen.lock().unwrap().1.clone();
        assert!(status.success(), "exited with {status}:\n{transcript}");
        transcript
    }
}

/// Text without the terminal's control sequences (CSI `ESC [ ... final`,
/// two-byte `ESC x` and charset `ESC ( B`).
fn strip_escapes(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => match chars.next() {
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                Some('(' | ')') => {
                    chars.next();
                }
                _ => {}
            },
            c if c.is_control() && c != '\n' => {}
            c => out.push(c),
        }
    }
    out
}

/// KUnit's default suites (`targets/common/kunit.config`) under none, thin
/// and full LTO on both arches: six kernels, each booted once, and every
/// case compared across the modes of its arch. No case may differ (exit 25
/// would say one did); the runs of one arch report the same cases with the
/// same results. Any failure is the configuration's or the compiler's, the
/// same in every mode (the README lists them). Six builds: `--full`, and
/// last, since it reconfigures the tiny trees the other tests share.
#[test]
#[ignore = "builds and boots six kernels: run with `cargo xtask test --full`"]
fn t20_kunit_gives_the_same_results_under_every_lto_mode() {
    let json = xtask::paths::target_dir().join("tests/t20-kunit.json");
    fs::create_dir_all(json.parent().unwrap()).unwrap();
    let out = Xtask::new("kunit")
        .args(&["--arch", "all", "--lto", "all", "--timeout", "400"])
        .arg(&format!("--json={}", json.display()))
        .output();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let code = out.status.code();
    assert!(
        code == Some(0) || code == Some(24),
        "exit {code:?}: a case differs, crashed or nothing ran:\n{stdout}"
    );
    for arch in ["x86_64", "arm64"] {
        assert!(
            stdout.contains(&format!("kunit {arch} across LTO modes none, thin, full: "))
                && stdout.contains("cases, the same result in every mode"),
            "{stdout}"
        );
    }
    let runs = common::read_json(&json);
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 6);
    for run in runs {
        assert!(
            run["counts"]["pass"].as_u64().unwrap() > 250,
            "{}-{}: {}",
            run["arch"],
            run["lto"],
            run["counts"]
        );
        let first = runs.iter().find(|r| r["arch"] == run["arch"]).unwrap();
        assert_eq!(run["counts"], first["counts"], "{run:#}");
    }
}
