//! Tidy: the repository stays as its reference says. The README's Layout
//! names every module on disk, state is written only through `fs_atomic`,
//! and a module uses only those `lib.rs` lists above it. Reads files;
//! builds nothing.

use std::{
    fs,
    path::{Path, PathBuf},
};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .into()
}

fn src() -> PathBuf {
    workspace().join("xtask/src")
}

/// The fenced block under `## Layout` in the README.
fn layout() -> String {
    let readme = fs::read_to_string(workspace().join("README.md")).unwrap();
    let section = readme
        .split_once("\n## Layout")
        .expect("the README has a Layout section")
        .1;
    let block = section.split_once("```").expect("Layout opens a block").1;
    block
        .split_once("```")
        .expect("Layout closes its block")
        .0
        .into()
}

fn names_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        let part = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        !part(before) && !part(after)
    })
}

/// The modules under `dir`, two levels deep: `x.rs` and `x/` as `x`, with
/// their parent (`engine/cache`). `lib`, `main` and `mod` are not modules.
fn modules(dir: &Path, depth: usize) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let parent = dir.strip_prefix(src()).unwrap().display().to_string();
        if path.is_dir() && path.join("mod.rs").is_file() {
            found.push((parent.clone(), name.clone()));
            if depth > 1 {
                found.extend(modules(&path, depth - 1));
            }
        } else if let Some(stem) = name.strip_suffix(".rs") {
            if !["lib", "main", "mod"].contains(&stem) {
                found.push((parent, stem.to_string()));
            }
        }
    }
    found.sort();
    found
}

#[test]
fn the_layout_names_every_module() {
    let layout = layout();
    let missing: Vec<String> = modules(&src(), 2)
        .into_iter()
        .filter(|(_, module)| !names_word(&layout, module))
        .map(|(parent, module)| format!("{parent}/{module}"))
        .collect();
    assert!(
        missing.is_empty(),
        "README.md's Layout does not name {missing:?}: add a line (or a word on its \
         directory's line) saying what each is for"
    );
}

/// Files that write something other than a tree's state, and what: each a
/// kernel input or output, a log streamed as it grows, or a source compiled
/// next. Everything else goes through `fs_atomic`, so a kill never leaves
/// half a state file.
const PLAIN_WRITES: &[(&str, &str)] = &[
    ("bench/measure.rs", "a measured command's log, streamed"),
    (
        "bench/mod.rs",
        "the `.config` and fragment a scenario gives Kbuild",
    ),
    ("boot/init.rs", "the test init's C source, compiled next"),
    ("boot/mod.rs", "the initramfs archive QEMU loads"),
    ("boot/qemu.rs", "QEMU's stderr, streamed"),
    (
        "configure/mod.rs",
        "the `.config` make reads, before olddefconfig",
    ),
    (
        "engine/fork_server.rs",
        "the fork server's C shim, compiled next",
    ),
    (
        "kbuild/plan_tree.rs",
        "empty stand-ins for outputs, so a dry run plans",
    ),
    (
        "link/initcalls.rs",
        "`.tmp_initcalls.lds`, the linker's input",
    ),
    (
        "link/modules.rs",
        "a module's `.cmd` file, as Kbuild writes it",
    ),
];

/// `path`'s text before its unit tests; nothing for a test-only module.
fn product_code(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap();
    if is_test_only(path) {
        return String::new();
    }
    match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => text[..at].into(),
        None => text,
    }
}

/// Declared under `#[cfg(test)]` in its parent (`kconfig/fixture.rs`).
fn is_test_only(path: &Path) -> bool {
    let stem = path.file_stem().unwrap().to_string_lossy();
    let dir = path.parent().unwrap();
    let parent = [dir.join("mod.rs"), dir.with_extension("rs")]
        .into_iter()
        .find(|p| p.is_file());
    parent.is_some_and(|parent| {
        let text = fs::read_to_string(parent).unwrap();
        ["mod", "pub(crate) mod", "pub mod"]
            .iter()
            .any(|decl| text.contains(&format!("#[cfg(test)]\n{decl} {stem};")))
    })
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            if entry.file_name() != "tests" {
                rust_files(&path, found);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn state_is_written_only_through_fs_atomic() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut writers: Vec<String> = files
        .iter()
        .filter(|path| !path.ends_with("fs_atomic.rs"))
        .filter(|path| {
            let code = product_code(path);
            ["fs::write(", "File::create("]
                .iter()
                .any(|call| code.contains(call))
        })
        .map(|path| path.strip_prefix(src()).unwrap().display().to_string())
        .collect();
    writers.sort();
    let allowed: Vec<String> = PLAIN_WRITES.iter().map(|(f, _)| f.to_string()).collect();
    assert_eq!(
        writers, allowed,
        "a file is written with fs::write or File::create outside fs_atomic: write state \
         with fs_atomic::write; a kernel input or a streamed log belongs in PLAIN_WRITES"
    );
}

/// Files that print, and what. Everything else sends `render::notice`, so a
/// line never tears the progress bar and the build and engine print nothing.
const PRINTERS: &[(&str, &str)] = &[
    ("bench/mod.rs", "the bench command: its progress and table"),
    ("bench/private_source.rs", "the bench's copy of the source"),
    ("editor/compdb.rs", "the compdb command: the files it wrote"),
    (
        "kunit/mod.rs",
        "the kunit command: each run and the comparison",
    ),
    ("main.rs", "the error that ends the program"),
    ("render.rs", "notices and the stage's bar"),
    ("report.rs", "the build command's summary"),
    ("selftest.rs", "the test command: what it runs"),
    ("test_boot.rs", "the test-boot command: its verdict"),
    ("units.rs", "the units command: its listing"),
];

#[test]
fn only_commands_and_the_renderer_print() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut printers: Vec<String> = files
        .iter()
        .filter(|path| {
            let code = product_code(path);
            ["println!(", "print!("].iter().any(|m| code.contains(m))
        })
        .map(|path| path.strip_prefix(src()).unwrap().display().to_string())
        .collect();
    printers.sort();
    let allowed: Vec<String> = PRINTERS.iter().map(|(f, _)| f.to_string()).collect();
    assert_eq!(
        printers, allowed,
        "a module prints: send `render::notice` instead; a command's own output belongs in PRINTERS"
    );
}

#[test]
fn only_the_process_module_creates_processes() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut spawners: Vec<String> = files
        .iter()
        .filter(|path| product_code(path).contains("Command::new("))
        .map(|path| path.strip_prefix(src()).unwrap().display().to_string())
        .collect();
    spawners.sort();
    assert_eq!(
        spawners,
        ["process.rs"],
        "a module creates a process itself: use process::command, whose errors name the command"
    );
}

/// `lib.rs`'s modules, in the order it lists them: the pipeline's.
fn pipeline() -> Vec<String> {
    fs::read_to_string(src().join("lib.rs"))
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';').to_string())
        .collect()
}

/// The crate's top-level modules that `code` names: `crate::NAME` and the
/// first names inside `use crate::{...}`.
fn crate_modules(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // The first word of each path at the group's own level.
            let (mut depth, mut at_start, mut word) = (1, true, String::new());
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                let separator = depth == 0 || (depth == 1 && c == ',');
                if separator || (at_start && !(c.is_alphanumeric() || c == '_')) {
                    if !word.is_empty() {
                        found.push(std::mem::take(&mut word));
                        at_start = false;
                    }
                    if depth == 0 {
                        break;
                    }
                    if separator {
                        at_start = true;
                    }
                } else if at_start {
                    word.push(c);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.push(name);
        }
    }
    found
}

#[test]
fn a_module_uses_only_modules_above_it_in_lib_rs() {
    let order = pipeline();
    let rank = |m: &str| order.iter().position(|o| o == m);
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut upward = Vec::new();
    for path in &files {
        let relative = path.strip_prefix(src()).unwrap();
        let top = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        let Some(own) = rank(&top) else {
            continue; // lib.rs, main.rs
        };
        for used in crate_modules(&product_code(path)) {
            if rank(&used).is_some_and(|r| r > own) {
                upward.push(format!("{} uses {used}", relative.display()));
            }
        }
    }
    upward.sort();
    upward.dedup();
    assert!(
        upward.is_empty(),
        "a module uses one listed below it in lib.rs (a stage above it): {upward:#?}\n\
         move the code to the lower module, or give the higher one a hook"
    );
}

#[test]
fn crate_paths_are_read_at_their_first_level() {
    let code = "use crate::{\n    build::{self, Options},\n    kbuild::plan::StagePlans,\n    lto::policy::{self, Unit},\n    target::Target,\n};\nlet x = crate::fs_atomic::write(p);\n";
    assert_eq!(
        crate_modules(code),
        ["build", "kbuild", "lto", "target", "fs_atomic"]
    );
}
