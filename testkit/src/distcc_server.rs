//! A distcc server for tests: Debian's `distccd` on loopback, allowing
//! 127.0.0.1 only, started in a temporary directory and stopped (with its
//! workers) when dropped. The client settings that point `distcc` at it
//! come with it, so that a test's compiles can only go there.

use std::{
    fs,
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::Path,
    process::{Child, Command, Stdio},
};

use anyhow::{bail, Context, Result};

use crate::loopback;

pub const DISTCCD: &str = "/usr/bin/distccd";

pub struct DistccServer {
    dir: tempfile::TempDir,
    port: u16,
    distccd: Child,
}

impl DistccServer {
    /// Serves compiles with the compilers on `path` (the server's `PATH`).
    pub fn start(path: &str) -> Result<DistccServer> {
        DistccServer::start_with(path, true)
    }

    /// Started as its package documents, without `--enable-tcp-insecure`:
    /// it runs only the compilers linked in `/usr/lib/distcc`.
    pub fn start_as_packaged(path: &str) -> Result<DistccServer> {
        DistccServer::start_with(path, false)
    }

    fn start_with(path: &str, any_compiler: bool) -> Result<DistccServer> {
        if !Path::new(DISTCCD).exists() {
            bail!("no {DISTCCD}: `apt-get install distcc` (the distributed-compile tests run it on loopback)");
        }
        let dir = tempfile::tempdir()?;
        // distccd drops root for `nobody`, who must be able to write its log.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777))?;
        fs::create_dir(dir.path().join("client"))?;
        let port = loopback::free_port()?;
        let mut command = Command::new(DISTCCD);
        command
            .args(["--no-detach", "--daemon", "--listen", "127.0.0.1"])
            .args(["--allow", "127.0.0.1", "--port", &port.to_string()])
            .args(["--jobs", "2", "--log-level", "info", "--log-file"])
            .arg(log(dir.path()))
            .env_clear()
            .env("PATH", path)
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.path().join("stderr.log"))?)
            // Its own process group: stopping it stops its workers, and
            // nothing it signals reaches the test.
            .process_group(0);
        if any_compiler {
            // Debian's distccd runs only the compilers linked in
            // /usr/lib/distcc unless told otherwise; here the clients are
            // this machine's own tests, on an allow list of one address.
            command.arg("--enable-tcp-insecure");
        }
        if unsafe { libc::geteuid() } == 0 {
            command.args(["--user", "nobody"]);
        }
        let distccd = command.spawn().context("starting distccd")?;
        let mut server = DistccServer { dir, port, distccd };
        let stderr_log = server.dir.path().join("stderr.log");
        // Dropped on an error, and so stopped.
        loopback::wait_listening(&mut server.distccd, "distccd", port, &stderr_log)?;
        Ok(server)
    }

    /// What a client of this server sets: its one host (two jobs), a state
    /// directory of its own (distcc keeps a failed host's back-off there),
    /// and no quiet local fallback, so a compile this server refused fails.
    pub fn client_env(&self) -> Vec<(String, String)> {
        vec![
            ("DISTCC_HOSTS".into(), format!("127.0.0.1:{}/2", self.port)),
            (
                "DISTCC_DIR".into(),
                self.dir.path().join("client").display().to_string(),
            ),
            ("DISTCC_FALLBACK".into(), "0".into()),
        ]
    }

    /// The compiles this server finished, as its log tells them, once it
    /// tells `expected` or a minute has passed. distccd logs a job after it
    /// has sent the result back, so a client can be done before the line is
    /// written.
    pub fn compiled(&self, expected: usize) -> usize {
        let count = || {
            self.log()
                .lines()
                .filter(|l| l.contains("COMPILE_OK"))
                .count()
        };
        let started = std::time::Instant::now();
        while count() < expected && started.elapsed() < std::time::Duration::from_secs(60) {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        count()
    }

    /// Its log, for a failing test to show.
    pub fn log(&self) -> String {
        fs::read_to_string(log(self.dir.path())).unwrap_or_default()
    }
}

impl Drop for DistccServer {
    fn drop(&mut self) {
        unsafe { libc::kill(-(self.distccd.id() as i32), libc::SIGTERM) };
        let _ = self.distccd.wait();
    }
}

fn log(dir: &Path) -> std::path::PathBuf {
    dir.join("distccd.log")
}
