//! Runs many processes of one program from a copy that is loaded once.
//!
//! Every exec of Debian's clang relocates `libLLVM` and `libclang-cpp`
//! again: 3,700 page faults, about 36 ms of CPU on the 2-core machine, most
//! of it in the kernel. A compile pays that under make too; a ThinLTO backend
//! is one more clang per object (538 at tiny, 2,817 at defconfig), where
//! Kbuild's in-process link pays it once. So the backends run as forks of one
//! clang that is already relocated: `fork_server.c`, `LD_PRELOAD`ed, takes
//! over before clang's `main` and calls that `main` in a child per request.
//! The child runs the program's own code on the same argv in the same
//! environment, so its output is the exec'd program's, to the byte; the
//! backends cost 20 % less CPU and wall.
//!
//! A program the hook cannot enter (static, not glibc) does not say it is
//! ready; its steps then run as their own processes, and the build says why.

use std::{
    collections::BTreeMap,
    io::{Read, Write},
    os::unix::{
        net::{UnixListener, UnixStream},
        prelude::*,
        process::{CommandExt, ExitStatusExt},
    },
    path::{Path, PathBuf},
    process::{Child, ExitStatus, Stdio},
    sync::{
        atomic::{AtomicU64, Ordering},
        OnceLock,
    },
};

use anyhow::{bail, ensure, Context, Result};

use crate::{kbuild::recipe::plain_call, process};

const SHIM: &str = include_str!("fork_server.c");
const TRAILER_MAGIC: u32 = 0x4b53_4154;
/// The listening socket's descriptor in the server.
const LISTEN_FD: RawFd = 3;

/// A fork server for `program`, started on first use.
pub struct ForkServer {
    program: String,
    env: BTreeMap<String, String>,
    objtree: PathBuf,
    started: OnceLock<Result<Server, String>>,
    /// CPU time of the jobs so far: the server reaps them, so it is not in
    /// this process's `RUSAGE_CHILDREN` until the server ends.
    cpu_micros: AtomicU64,
}

/// How a job ended: its wait status, and its stdout and stderr together.
pub struct Finished {
    pub status: ExitStatus,
    pub output: String,
}

struct Server {
    socket: PathBuf,
    /// Holds the socket and the shim; removed when the server is dropped.
    _dir: tempfile::TempDir,
    /// Its stdin: closing it stops the server.
    child: Child,
}

impl ForkServer {
    /// Commands that call `program` will run in `objtree` with `env`, as `sh -c` would run them.
    pub fn new(program: &str, env: &BTreeMap<String, String>, objtree: &Path) -> ForkServer {
        ForkServer {
            program: program.to_string(),
            env: env.clone(),
            objtree: objtree.to_path_buf(),
            started: OnceLock::new(),
            cpu_micros: AtomicU64::new(0),
        }
    }

    /// Runs `command` in a fork, if it is a plain call of the program (no
    /// shell syntax) and the server runs; `None` leaves it to `sh`.
    pub fn run(&self, command: &str) -> Option<Result<Finished>> {
        let argv = plain_call(command, &self.program)?;
        let server = self
            .started
            .get_or_init(|| self.start().map_err(|e| format!("{e:#}")))
            .as_ref()
            .ok()?;
        let done = server.run(&argv);
        if let Ok((_, cpu)) = &done {
            self.cpu_micros.fetch_add(*cpu, Ordering::Relaxed);
        }
        Some(done.map(|(finished, _)| finished))
    }

    /// Seconds of CPU the finished jobs used.
    pub fn cpu_seconds(&self) -> f64 {
        self.cpu_micros.load(Ordering::Relaxed) as f64 / 1e6
    }

    /// Whether jobs ran as forks: `None` until one was asked for.
    pub fn served(&self) -> Option<bool> {
        self.started.get().map(Result::is_ok)
    }

    /// Why the server could not start, once it was asked to.
    pub fn failure(&self) -> Option<&str> {
        self.started.get()?.as_ref().err().map(String::as_str)
    }

    fn start(&self) -> Result<Server> {
        let dir = tempfile::Builder::new()
            .prefix("xtask-fork-server")
            .tempdir()
            .context("creating the fork server's directory")?;
        let shim = self.compile_shim(dir.path())?;
        let socket = dir.path().join("socket");
        let listener =
            UnixListener::bind(&socket).with_context(|| format!("binding {}", socket.display()))?;
        let listen_fd = listener.as_raw_fd();
        let mut command = process::command(&self.program);
        command
            .current_dir(&self.objtree)
            .env_clear()
            .envs(&self.env)
            .env("LD_PRELOAD", &shim)
            .env("XTASK_FORK_SERVER_FD", LISTEN_FD.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            command.pre_exec(move || {
                let moved = if listen_fd == LISTEN_FD {
                    libc::fcntl(LISTEN_FD, libc::F_SETFD, 0)
                } else {
                    libc::dup2(listen_fd, LISTEN_FD)
                };
                if moved < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", self.program))?;
        drop(listener);
        let mut ready = [0u8; 1];
        let said = child.stdout.take().unwrap().read(&mut ready).unwrap_or(0);
        if said != 1 || ready[0] != b'R' {
            let _ = child.kill();
            let out = child.wait_with_output().ok();
            let stderr = out.map(|o| String::from_utf8_lossy(&o.stderr).into_owned());
            bail!(
                "{} did not start as a fork server (a static or non-glibc build ignores LD_PRELOAD): {}",
                self.program,
                stderr.unwrap_or_default().trim()
            );
        }
        Ok(Server {
            socket,
            _dir: dir,
            child,
        })
    }

    /// Builds the shim in `dir` with the program itself: it is the build's C compiler.
    fn compile_shim(&self, dir: &Path) -> Result<PathBuf> {
        let (source, shim) = (dir.join("fork_server.c"), dir.join("fork_server.so"));
        std::fs::write(&source, SHIM).with_context(|| format!("writing {}", source.display()))?;
        let out = process::command(&self.program)
            .env_clear()
            .envs(&self.env)
            .args(["-shared", "-fPIC", "-O2", "-o"])
            .args([&shim, &source])
            .arg("-ldl")
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("starting {} to build the fork server", self.program))?;
        ensure!(
            out.status.success(),
            "{} could not build the fork server: {}",
            self.program,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(shim)
    }
}

impl Server {
    /// The job's end and its CPU time in microseconds.
    fn run(&self, argv: &[String]) -> Result<(Finished, u64)> {
        let mut stream = UnixStream::connect(&self.socket)
            .with_context(|| format!("connecting to {}", self.socket.display()))?;
        let request: Vec<u8> = argv
            .iter()
            .flat_map(|a| a.bytes().chain(std::iter::once(0)))
            .collect();
        stream.write_all(&u32::try_from(request.len())?.to_ne_bytes())?;
        stream.write_all(&request)?;
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply)?;
        let Some(split) = reply.len().checked_sub(16) else {
            bail!("the fork server closed the connection without a status");
        };
        let (output, trailer) = reply.split_at(split);
        let word = |i: usize| u32::from_ne_bytes(trailer[i..i + 4].try_into().unwrap());
        ensure!(
            word(0) == TRAILER_MAGIC,
            "the fork server's reply has no status"
        );
        let finished = Finished {
            status: ExitStatus::from_raw(word(4) as i32),
            output: String::from_utf8_lossy(output).into_owned(),
        };
        Ok((
            finished,
            u64::from_ne_bytes(trailer[8..].try_into().unwrap()),
        ))
    }
}

impl Drop for Server {
    /// `wait` closes the server's stdin first, which tells it to stop.
    fn drop(&mut self) {
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fork compiles what an exec compiles, to the byte, concurrently; a
    /// failing one gives its status and clang's message.
    #[test]
    fn a_forked_clang_writes_what_an_exec_writes() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path();
        let env = BTreeMap::from([(
            "PATH".to_string(),
            "/usr/lib/llvm-19/bin:/usr/bin:/bin".to_string(),
        )]);
        for name in ["a", "b", "c", "d"] {
            std::fs::write(
                tree.join(format!("{name}.c")),
                format!("int {name}(int x) {{ return x * 3 + {}; }}\n", name.len()),
            )
            .unwrap();
        }
        std::fs::write(tree.join("bad.c"), "int broken( {\n").unwrap();
        let compile = |name: &str, out: &str| {
            shlex::try_join(["clang", "-O2", "-c", &format!("{name}.c"), "-o", out]).unwrap()
        };
        let server = ForkServer::new("clang", &env, tree);
        std::thread::scope(|s| {
            for name in ["a", "b", "c", "d"] {
                let (server, command) = (&server, compile(name, &format!("{name}.forked.o")));
                s.spawn(move || {
                    let done = server.run(&command).expect("a plain call").unwrap();
                    assert!(done.status.success(), "{}", done.output);
                });
            }
        });
        assert_eq!(server.failure(), None);
        assert!(
            server.cpu_seconds() > 0.0,
            "the jobs' CPU time was not reported"
        );
        for name in ["a", "b", "c", "d"] {
            let status = crate::engine::shell::sh(tree, &compile(name, &format!("{name}.exec.o")))
                .unwrap()
                .envs(&env)
                .status()
                .unwrap();
            assert!(status.success());
            let read =
                |suffix: &str| std::fs::read(tree.join(format!("{name}.{suffix}.o"))).unwrap();
            assert_eq!(read("forked"), read("exec"), "{name}.o differs");
        }
        let bad = server.run(&compile("bad", "bad.o")).unwrap().unwrap();
        assert_eq!(bad.status.code(), Some(1));
        assert!(bad.output.contains("bad.c:1:"), "{}", bad.output);
    }
}
