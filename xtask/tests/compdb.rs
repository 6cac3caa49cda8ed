//! `cargo xtask compdb` on a real x86_64 ThinLTO build: one entry per
//! compiled object, the commands that really ran (the objects' formats agree
//! with their LTO flags), and clangd 19 parses an LTO'd unit and an opted-out
//! vDSO source with them without an error.
//!
//! `clangd --check` prints `E[time] ...` lines for errors (an unknown flag is
//! `[drv_unknown_argument]`), ends with `All checks completed, N errors` and
//! exits non-zero when N > 0. It falls back to a generic `clang FILE` command
//! when the database has no entry, so the test also requires "Compile command
//! from CDB". `--check-locations=0` skips clangd's per-token feature tests
//! (about 50 s for kernel/fork.c on two cores) that exercise clangd, not the
//! commands.

mod common;

use std::{
    collections::{BTreeMap, HashSet},
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use common::{read_json, Xtask};
use xtask::{
    editor::compdb::Entry,
    lto::policy::{format_of, Format},
};

const CLANGD: &str = "/usr/lib/llvm-19/bin/clangd";

fn xtask(command: &str, extra: &[&str]) -> Output {
    Xtask::new(command)
        .selection("x86_64", "thin", "tiny")
        .args(extra)
        .run()
}

fn clangd_check(objtree: &Path, source: &Path) {
    assert!(
        Path::new(CLANGD).is_file(),
        "{CLANGD} is missing: apt-get install clangd-19"
    );
    let out = Command::new(CLANGD)
        .arg(format!("--check={}", source.display()))
        .arg(format!("--compile-commands-dir={}", objtree.display()))
        .arg("--check-locations=0")
        .current_dir(objtree)
        .output()
        .expect("run clangd");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("E[")).collect();
    assert!(
        out.status.success() && errors.is_empty(),
        "clangd --check {} failed ({}):\n{}",
        source.display(),
        out.status,
        errors.join("\n")
    );
    assert!(
        log.contains("Compile command from CDB is:"),
        "clangd did not use the database for {}:\n{log}",
        source.display()
    );
    assert!(log.contains("All checks completed, 0 errors"), "{log}");
}

fn entry<'a>(entries: &'a [Entry], output: &str) -> &'a Entry {
    entries
        .iter()
        .find(|e| e.output == output)
        .unwrap_or_else(|| panic!("no entry for {output}"))
}

#[test]
#[ignore = "needs a built kernel: run with cargo xtask test"]
fn x86_64_thin_compile_commands_are_complete_true_and_serve_clangd() {
    xtask("build", &[]);
    let out = xtask("compdb", &[]);
    let objtree = common::objtree("x86_64", "thin", "tiny")
        .canonicalize()
        .unwrap();
    let path = objtree.join("compile_commands.json");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(path.to_str().unwrap()),
        "compdb did not print {}:\n{stdout}",
        path.display()
    );
    let entries: Vec<Entry> = serde_json::from_str(&fs::read_to_string(&path).unwrap())
        .expect("valid compile_commands.json");
    let report = read_json(&objtree.join("build-report.json"));
    let srctree = PathBuf::from(report["source"].as_str().unwrap());

    // One entry per compiled object: per unit exactly the report's count; the
    // boot image's objects (not policy units) may come on top.
    let mut per_unit: BTreeMap<&str, u64> = BTreeMap::new();
    let mut outputs = HashSet::new();
    for e in &entries {
        assert!(outputs.insert(e.output.as_str()), "{} twice", e.output);
        *per_unit
            .entry(e.output.rsplit_once('/').map_or("", |(d, _)| d))
            .or_default() += 1;
    }
    let mut objects = 0;
    for unit in report["units"].as_array().unwrap() {
        let (path, count) = (
            unit["path"].as_str().unwrap(),
            unit["objects"].as_u64().unwrap(),
        );
        objects += count;
        assert_eq!(
            per_unit.remove(path),
            Some(count),
            "entries for unit {path}"
        );
    }
    assert!(
        per_unit.keys().all(|dir| dir.starts_with("arch/x86/boot")),
        "entries for objects outside the report's units: {per_unit:?}"
    );
    eprintln!(
        "{} entries for {objects} objects in the report's units (+{:?} boot image)",
        entries.len(),
        per_unit
    );
    assert!(objects > 500, "only {objects} objects");

    // The commands are the ones that ran: each object's format follows its flags.
    for e in &entries {
        assert_eq!(Path::new(&e.directory), objtree);
        let file = Path::new(&e.file);
        assert!(
            file.is_absolute() && file.is_file(),
            "{}: no source {}",
            e.output,
            e.file
        );
        assert!(
            e.arguments.iter().any(|a| a == "-c"),
            "{}: {:?}",
            e.output,
            e.arguments
        );
        assert!(
            e.arguments
                .windows(2)
                .any(|w| w[0] == "-o" && w[1] == e.output),
            "{}: {:?}",
            e.output,
            e.arguments
        );
        assert!(
            !e.arguments
                .iter()
                .any(|a| a.contains("objtool") || a.contains("fixdep")),
            "{}: {:?}",
            e.output,
            e.arguments
        );
        let lto = e.arguments.iter().any(|a| a == "-flto=thin");
        let expected = if lto { Format::Bitcode } else { Format::Elf };
        assert_eq!(
            format_of(&objtree.join(&e.output)),
            expected,
            "{} with LTO flags {lto}",
            e.output
        );
    }
    let fork = entry(&entries, "kernel/fork.o");
    assert_eq!(Path::new(&fork.file), srctree.join("kernel/fork.c"));
    assert!(
        fork.arguments
            .iter()
            .any(|a| a == "-DKBUILD_MODFILE=\"kernel/fork\""),
        "{:?}",
        fork.arguments
    );
    assert!(fork.arguments.iter().any(|a| a == "-flto=thin"));
    // vma.c is ordinary kernel code in the vDSO directory: LTO'd, as Kbuild does.
    let vma = entry(&entries, "arch/x86/entry/vdso/vma.o");
    assert!(
        vma.arguments.iter().any(|a| a == "-flto=thin"),
        "{:?}",
        vma.arguments
    );
    let vdso = entry(&entries, "arch/x86/entry/vdso/vclock_gettime.o");
    assert!(
        !vdso.arguments.iter().any(|a| a.starts_with("-flto")),
        "{:?}",
        vdso.arguments
    );

    clangd_check(&objtree, &srctree.join("kernel/fork.c"));
    clangd_check(
        &objtree,
        &srctree.join("arch/x86/entry/vdso/vclock_gettime.c"),
    );

    // tinyconfig has no CONFIG_RUST: no rust-project.json.
    assert!(!objtree.join("rust-project.json").exists());

    // --link-into-source puts a symlink in the (private) source tree; one an
    // earlier run left behind is removed first, so the link is always made here.
    let link = srctree.join("compile_commands.json");
    if fs::symlink_metadata(&link).is_ok() {
        fs::remove_file(&link).unwrap();
    }
    xtask("compdb", &["--link-into-source"]);
    let target = fs::read_link(&link).expect("a symlink in the source tree");
    fs::remove_file(&link).unwrap();
    assert_eq!(target, path);
}
