//! What the end-to-end tests share: the real `xtask` binary behind a small
//! builder, and the kernel source they build: the bench's private copy of the
//! default tree (`xtask::bench::private_source`), which `cargo xtask bench`
//! builds too. The tests never build or edit the user's trees.

#![allow(dead_code)] // each test binary uses part of this module

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::OnceLock,
};

use serde_json::Value;
use xtask::bench::private_source::{self, PrivateSource};

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
        Xtask {
            args: vec![command.to_string()],
            env: Vec::new(),
        }
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

    pub fn envs(mut self, vars: impl IntoIterator<Item = (&'static str, String)>) -> Xtask {
        self.env
            .extend(vars.into_iter().map(|(k, v)| (k.to_string(), v)));
        self
    }

    /// Starts it in a process group of its own (`-pgid` reaches the steps it runs).
    pub fn spawn(&self) -> std::process::Child {
        use std::os::unix::process::CommandExt;
        self.command()
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start xtask")
    }

    /// Starts it with its stderr going to `stderr`, for a test to watch.
    pub fn spawn_logged(&self, stderr: &Path) -> std::process::Child {
        self.command()
            .stdout(std::process::Stdio::null())
            .stderr(fs::File::create(stderr).expect("create the stderr log"))
            .spawn()
            .expect("start xtask")
    }

    /// Runs it, whatever its exit.
    pub fn output(&self) -> Output {
        self.command().output().expect("run xtask")
    }

    /// The real binary with these arguments and this environment.
    fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
        command.args(&self.args).envs(self.env.iter().cloned());
        command
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
        assert!(
            !out.status.success(),
            "xtask {} should fail",
            self.args.join(" ")
        );
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// The private copy, opened (and any edit a killed run left undone) once per
/// test binary, which holds it until it exits.
fn private() -> &'static PrivateSource {
    static SOURCE: OnceLock<PrivateSource> = OnceLock::new();
    SOURCE.get_or_init(|| {
        PrivateSource::open().unwrap_or_else(|e| panic!("the private kernel source: {e:#}"))
    })
}

/// The private source tree every end-to-end test builds.
pub fn source() -> &'static Path {
    private().root()
}

/// The object tree of a selection built from [`source`]: `config` is a
/// preset (`tiny`, `proof`) or what `--config` was given.
pub fn objtree(arch: &str, lto: &str, config: &str) -> PathBuf {
    objtree_of_toolchain(arch, lto, config, None)
}

/// [`objtree`] built with another LLVM than the default: `llvm` is its
/// tree tag (`llvm22`, `xtask::toolchain::Llvm::tree_tag`).
pub fn objtree_of_toolchain(arch: &str, lto: &str, config: &str, llvm: Option<&str>) -> PathBuf {
    use xtask::target::{Arch, Config, Lto, Profile, Target};
    let arch = <Arch as clap::ValueEnum>::from_str(arch, false).unwrap();
    let lto = <Lto as clap::ValueEnum>::from_str(lto, false).unwrap();
    let config = match <Profile as clap::ValueEnum>::from_str(config, false) {
        Ok(profile) => Config::Preset(profile),
        Err(_) => Config::parse(config).unwrap(),
    };
    Target { arch, lto, config }.obj_dir(Some(source()), llvm)
}

pub fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A change to one file of the private source, undone on drop (even when the
/// test fails) and by the next run if the process was killed: the library's
/// [`private_source::Edit`] on the tests' copy.
#[must_use = "the edit is undone when dropped"]
pub struct Edit(private_source::Edit);

impl Edit {
    /// Appends `text` to `relative` (a path in the kernel tree).
    pub fn append(relative: &str, text: &str) -> Edit {
        Edit(
            private()
                .append(relative, text)
                .unwrap_or_else(|e| panic!("editing {relative}: {e:#}")),
        )
    }

    /// Replaces the one occurrence of `from` in `relative` with `to`.
    pub fn replace(relative: &str, from: &str, to: &str) -> Edit {
        Edit(
            private()
                .replace(relative, from, to)
                .unwrap_or_else(|e| panic!("editing {relative}: {e:#}")),
        )
    }

    /// Creates `relative`, a file the kernel tree does not have.
    pub fn create(relative: &str, text: &str) -> Edit {
        Edit(
            private()
                .create(relative, text)
                .unwrap_or_else(|e| panic!("creating {relative}: {e:#}")),
        )
    }
}

/// Polls `done` every 50 ms until it holds; past `deadline` the test fails,
/// saying what it waited for.
pub fn wait_until(what: &str, deadline: std::time::Duration, mut done: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !done() {
        assert!(
            started.elapsed() < deadline,
            "waited {} s for {what}",
            deadline.as_secs()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
