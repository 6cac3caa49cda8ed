//! Builds the test init (`init.c`, embedded in the xtask) for the target arch
//! with the given clang: a static, freestanding ELF, no libc or sysroot.

use std::{
    fmt, fs,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};
use serde::Serialize;
use xshell::{cmd, Shell};

use crate::target::Arch;

const SOURCE: &str = include_str!("init.c");

/// The real init, or one broken on purpose to test the failure modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InitVariant {
    /// Proves, prints the marker, resets.
    Good,
    /// Returns from PID 1: the kernel panics ("Attempted to kill init").
    Exit,
    /// Sleeps forever: the host times out.
    Hang,
    /// Resets without the success marker.
    Silent,
}

impl InitVariant {
    /// The `-D` that selects the variant in init.c.
    fn define(self) -> Option<&'static str> {
        match self {
            InitVariant::Good => None,
            InitVariant::Exit => Some("-DXTASK_BROKEN_EXIT"),
            InitVariant::Hang => Some("-DXTASK_BROKEN_HANG"),
            InitVariant::Silent => Some("-DXTASK_BROKEN_SILENT"),
        }
    }
}

impl fmt::Display for InitVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InitVariant::Good => "good",
            InitVariant::Exit => "exit",
            InitVariant::Hang => "hang",
            InitVariant::Silent => "silent",
        })
    }
}

/// Compiles init.c into `out_dir/init-<arch>-<variant>` and returns its path.
pub fn build(clang: &Path, arch: Arch, variant: InitVariant, out_dir: &Path) -> Result<PathBuf> {
    fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let source = out_dir.join("init.c");
    fs::write(&source, SOURCE).with_context(|| format!("writing {}", source.display()))?;
    let output = out_dir.join(format!("init-{arch}-{variant}"));
    let target = format!("--target={}", arch.clang_triple());
    let define = variant.define();
    // -ffreestanding/-fno-builtin: no libc behind us; -fno-stack-protector:
    // nothing sets up the canary; -fno-pic + -static: a plain ET_EXEC that
    // needs no loader; lld because it links any target without a GNU
    // cross binutils; no build id so the bytes depend on the source alone.
    let sh = Shell::new()?;
    cmd!(
        sh,
        "{clang} {target} -std=c11 -O2 -Wall -Wextra -Werror {define...}
         -ffreestanding -fno-builtin -fno-stack-protector -fno-pic -fno-asynchronous-unwind-tables
         -nostdlib -static -fuse-ld=lld -Wl,--build-id=none -o {output} {source}"
    )
    .quiet()
    .run()
    .with_context(|| format!("building the test init for {arch} with {}", clang.display()))?;
    Ok(output)
}
