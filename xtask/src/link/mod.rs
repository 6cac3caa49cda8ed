//! Link: what Kbuild's link scripts do after the archives, performed by the
//! xtask itself: the initcall order, link-vmlinux.sh and the `.ko` links.
//! `vmlinux.o` (the LTO link plus objtool) and modpost run as planned steps,
//! with the flags Kbuild prints for them.

use std::{
    collections::BTreeMap,
    io::Write,
    path::{Path, PathBuf},
    process::Stdio,
};

use anyhow::{bail, Context, Result};

pub mod image;
pub mod initcalls;
pub mod modules;
pub mod vmlinux;

pub use initcalls::Initcall;

/// Runs one link command in the object tree with Kbuild's environment.
/// A failure names the command and shows what it printed.
pub fn sh(objtree: &Path, env: &BTreeMap<String, String>, command: &str) -> Result<()> {
    sh_filter(objtree, env, command, None).map(drop)
}

/// Like [`sh`], feeding `stdin` and returning stdout, so that each command of
/// a pipeline is checked on its own (`sh` has no `pipefail`).
pub fn sh_filter(
    objtree: &Path,
    env: &BTreeMap<String, String>,
    command: &str,
    stdin: Option<&[u8]>,
) -> Result<Vec<u8>> {
    let mut child = crate::engine::shell::sh(objtree, command)?
        .envs(env)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running sh")?;
    let feeder = stdin.map(|bytes| {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        let bytes = bytes.to_vec();
        std::thread::spawn(move || pipe.write_all(&bytes))
    });
    let out = child.wait_with_output().context("running sh")?;
    if let Some(feeder) = feeder {
        feeder
            .join()
            .expect("stdin writer")
            .context("writing to sh")?;
    }
    if !out.status.success() {
        bail!(
            "link step failed ({})\n  command: {command}\n--- output ---\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out.stdout)
}

/// The artifacts a build produces, relative to the object tree.
pub fn artifacts(objtree: &Path, arch: crate::target::Arch) -> Vec<PathBuf> {
    let mut list = vec![PathBuf::from("vmlinux"), PathBuf::from("System.map")];
    match arch {
        crate::target::Arch::X86_64 => list.push("arch/x86/boot/bzImage".into()),
        crate::target::Arch::Arm64 => list.push("arch/arm64/boot/Image".into()),
    }
    list.retain(|p| objtree.join(p).exists());
    list
}
