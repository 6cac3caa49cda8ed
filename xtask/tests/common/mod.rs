//! What the end-to-end tests share: the real `xtask` binary behind a small
//! builder, and the kernel source they build.
//!
//! The tests never build or edit the user's default tree. They build a
//! private copy of it (`target/e2e/linux-source-6.12`, hard links, so it costs
//! no disk and a second), and an edit replaces a file instead of writing
//! through the shared inode. An edit a killed run left behind is undone by
//! the next run before it builds anything.

#![allow(dead_code)] // each test binary uses part of this module

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::OnceLock,
};

use serde_json::Value;

/// One run of `xtask`: `Xtask::new("build").selection("x86_64", "thin", "tiny").run()`.
#[must_use]
pub struct Xtask {
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Xtask {
    /// A subcommand on the tests' private source tree.
    pub fn new(command: &str) -> Xtask {
        let mut xtask = Xtask::bare(command);
        if command != "test" {
            xtask = xtask.arg("--source").arg(source().to_str().unwrap());
        }
        xtask
    }

    /// A subcommand with no arguments added.
    pub fn bare(command: &str) -> Xtask {
        Xtask { args: vec![command.to_string()], env: Vec::new() }
    }

    pub fn arg(mut self, arg: &str) -> Xtask {
        self.args.push(arg.to_string());
        self
    }

    pub fn args(mut self, args: &[&str]) -> Xtask {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    pub fn selection(self, arch: &str, lto: &str, profile: &str) -> Xtask {
        self.args(&["--arch", arch, "--lto", lto, "--profile", profile])
    }

    pub fn env(mut self, key: &str, value: &str) -> Xtask {
        self.env.push((key.into(), value.into()));
        self
    }

    fn output(&self) -> Output {
        Command::new(env!("CARGO_BIN_EXE_xtask")).args(&self.args).envs(self.env.iter().cloned()).output().expect("run xtask")
    }

    /// Runs and insists on success; stdout and stderr are shown otherwise.
    pub fn run(self) -> Output {
        let out = self.output();
        assert!(
            out.status.success(),
            "xtask {} failed ({}):\n{}\n{}",
            self.args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Runs and insists on failure: the exit code and stderr.
    pub fn fails(self) -> (i32, String) {
        let out = self.output();
        assert!(!out.status.success(), "xtask {} should fail", self.args.join(" "));
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The private source tree every end-to-end test builds.
pub fn source() -> &'static Path {
    static SOURCE: OnceLock<PathBuf> = OnceLock::new();
    SOURCE.get_or_init(|| {
        let pristine = xtask::source::unpack_default().expect("the default kernel source");
        let copy = xtask::paths::target_dir().join("e2e/linux-source-6.12");
        if !copy.join("Makefile").is_file() {
            let _ = fs::remove_dir_all(&copy);
            fs::create_dir_all(copy.parent().unwrap()).unwrap();
            let status = Command::new("cp").arg("-al").arg(&pristine).arg(&copy).status().expect("cp");
            assert!(status.success(), "cp -al {} {}", pristine.display(), copy.display());
        }
        undo_left_over_edits(&pristine, &copy);
        copy.canonicalize().unwrap()
    })
}

/// The object tree of a selection built from [`source`].
pub fn objtree(arch: &str, lto: &str, profile: &str) -> PathBuf {
    use xtask::target::{Arch, Lto, Profile, Target};
    let arch = <Arch as clap::ValueEnum>::from_str(arch, false).unwrap();
    let lto = <Lto as clap::ValueEnum>::from_str(lto, false).unwrap();
    let profile = <Profile as clap::ValueEnum>::from_str(profile, false).unwrap();
    Target { arch, lto, profile }.obj_dir(Some(source()))
}

pub fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Where an edit records the file it changed until it is undone.
fn edits_log(copy: &Path) -> PathBuf {
    copy.parent().unwrap().join("edits-in-progress")
}

fn undo_left_over_edits(pristine: &Path, copy: &Path) {
    let log = edits_log(copy);
    let Ok(text) = fs::read_to_string(&log) else { return };
    for relative in text.lines().filter(|l| !l.is_empty()) {
        eprintln!("undoing an edit a killed run left behind: {relative}");
        relink(pristine, copy, Path::new(relative));
    }
    fs::remove_file(log).unwrap();
}

/// Puts the pristine file back: the same inode as the default tree again.
fn relink(pristine: &Path, copy: &Path, relative: &Path) {
    let target = copy.join(relative);
    let _ = fs::remove_file(&target);
    fs::hard_link(pristine.join(relative), &target).unwrap();
}

/// A change to one file of the private source, undone on drop (even when the
/// test fails) and by the next run if the process was killed.
pub struct Edit {
    relative: PathBuf,
}

impl Edit {
    /// Appends `text` to `relative` (a path in the kernel tree). The file is
    /// replaced, never written in place: its inode is shared with the default tree.
    pub fn append(relative: &str, text: &str) -> Edit {
        let copy = source();
        let path = copy.join(relative);
        let mut bytes = fs::read(&path).unwrap();
        bytes.extend_from_slice(text.as_bytes());
        let mut log = fs::read_to_string(edits_log(copy)).unwrap_or_default();
        log += &format!("{relative}\n");
        fs::write(edits_log(copy), log).unwrap();
        let temporary = path.with_extension("xtask-edit");
        fs::write(&temporary, bytes).unwrap();
        fs::rename(&temporary, &path).unwrap();
        Edit { relative: relative.into() }
    }
}

impl Drop for Edit {
    fn drop(&mut self) {
        let pristine = xtask::source::unpack_default().unwrap();
        let copy = source();
        relink(&pristine, copy, &self.relative);
        let log = fs::read_to_string(edits_log(copy)).unwrap_or_default();
        let rest: String = log.lines().filter(|l| Path::new(l) != self.relative).map(|l| format!("{l}\n")).collect();
        fs::write(edits_log(copy), rest).unwrap();
    }
}
