//! What the test servers on loopback (nginx, distccd) share: a free port,
//! and waiting until the server listens on it or has died trying.

use std::{
    fs,
    net::{TcpListener, TcpStream},
    path::Path,
    process::Child,
    time::{Duration, Instant},
};

use anyhow::{bail, Result};

/// A port free now, for a server to bind a moment later.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Waits up to 10 s for `server` (`name`, its stderr in `stderr_log`) to
/// accept connections on 127.0.0.1:`port`; an error if it exits first.
pub fn wait_listening(server: &mut Child, name: &str, port: u16, stderr_log: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = server.try_wait()? {
            bail!(
                "{name} exited ({status}): {}",
                fs::read_to_string(stderr_log).unwrap_or_default()
            );
        }
        if Instant::now() > deadline {
            bail!("{name} did not listen on 127.0.0.1:{port} within 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}
