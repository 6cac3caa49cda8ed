//! A Bazel HTTP remote cache for the tests and the bench's `cached-http`:
//! Debian's nginx on loopback with WebDAV `PUT`, as its users would configure
//! it, started in a temporary directory and stopped when dropped.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use anyhow::{bail, Context, Result};

use crate::loopback;

pub const NGINX: &str = "/usr/sbin/nginx";

pub struct CacheServer {
    dir: tempfile::TempDir,
    port: u16,
    nginx: Child,
}

impl CacheServer {
    pub fn start() -> Result<CacheServer> {
        if !Path::new(NGINX).exists() {
            bail!("no {NGINX}: `apt-get install nginx` (the HTTP cache tests serve the cache with it)");
        }
        let dir = tempfile::tempdir()?;
        let port = loopback::free_port()?;
        fs::create_dir_all(dir.path().join("data"))?;
        fs::write(dir.path().join("nginx.conf"), config(dir.path(), port))?;
        let nginx = Command::new(NGINX)
            .args(["-e", "stderr", "-p"])
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.path().join("stderr.log"))?)
            .spawn()
            .context("starting nginx")?;
        let mut server = CacheServer { dir, port, nginx };
        let stderr_log = server.dir.path().join("stderr.log");
        // Dropped on an error, and so stopped.
        loopback::wait_listening(&mut server.nginx, "nginx", port, &stderr_log)?;
        Ok(server)
    }

    /// What `--cache` takes.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/cache", self.port)
    }

    /// Where the entries land, to look at or corrupt.
    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data/cache")
    }

    /// The requests served so far, one `METHOD /path STATUS` per line.
    pub fn requests(&self) -> Vec<String> {
        fs::read_to_string(self.dir.path().join("access.log"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    /// Stops the server now (also done on drop).
    pub fn stop(&mut self) {
        if self.nginx.try_wait().ok().flatten().is_some() {
            return;
        }
        // SIGTERM: nginx's fast shutdown, which stops its worker too (a
        // SIGKILLed master leaves the worker serving).
        unsafe { libc::kill(self.nginx.id() as i32, libc::SIGTERM) };
        let _ = self.nginx.wait();
    }
}

impl Drop for CacheServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn config(dir: &Path, port: u16) -> String {
    let dir = dir.display();
    // As root nginx would run its worker as nobody, who cannot write here.
    let user = if unsafe { libc::geteuid() } == 0 {
        "user root;"
    } else {
        ""
    };
    format!(
        "{user}
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{}}
http {{
    log_format requests '$request_method $uri $status';
    access_log {dir}/access.log requests;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {dir}/data;
        location /cache/ {{
            dav_methods PUT;
            create_full_put_path on;
            client_max_body_size 0;
        }}
    }}
}}
"
    )
}
