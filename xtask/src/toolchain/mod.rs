//! The LLVM toolchain and host tools a kernel build needs, and the tools each
//! other command needs on top ([`Tools`]): found, or installed when missing.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::{
    process,
    render::{self, Notice},
    target::Arch,
};

pub mod llvm;

pub use llvm::Llvm;

/// Host commands Kbuild's `prepare` and our own steps invoke.
const HOST_TOOLS: &[(&str, &str)] = &[
    ("make", "make"),
    ("flex", "flex"),
    ("bison", "bison"),
    ("bc", "bc"),
    ("perl", "perl"),
    ("python3", "python3"),
    ("xz", "xz-utils"),
];

/// Headers the host tools (objtool, sign-file, sorttable) compile against.
const HOST_HEADERS: &[(&str, &str)] = &[
    ("/usr/include/gelf.h", "libelf-dev"),
    ("/usr/include/openssl/ssl.h", "libssl-dev"),
];

#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct Toolchain {
    /// The directory holding `clang`, `ld.lld`, `llvm-ar`, ...; prepended to `PATH` so `LLVM=1` finds them.
    pub bin: PathBuf,
    pub clang: String,
    pub lld: String,
    pub llvm: String,
}

impl Toolchain {
    pub fn tool(&self, name: &str) -> PathBuf {
        self.bin.join(name)
    }

    /// `PATH` with the LLVM directory first.
    pub fn path_env(&self) -> std::ffi::OsString {
        let mut paths = vec![self.bin.clone()];
        if let Some(path) = std::env::var_os("PATH") {
            paths.extend(std::env::split_paths(&path));
        }
        std::env::join_paths(paths).expect("PATH entries contain no separator")
    }
}

/// Finds the toolchain `llvm` names, installing missing packages when we
/// are root on Debian.
pub fn ensure(llvm: &Llvm) -> Result<Toolchain> {
    let missing = missing_packages(llvm);
    if !missing.is_empty() {
        let missing: Vec<&str> = missing.iter().map(String::as_str).collect();
        install(&missing)?;
    }
    let bin = llvm.bin().with_context(|| {
        format!(
            "LLVM={llvm}: no directory of {} holds {}",
            llvm.dirs()
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            llvm::TOOLS.join(", ")
        )
    })?;
    Ok(Toolchain {
        clang: first_line(&bin.join("clang"), "--version")?,
        lld: first_line(&bin.join("ld.lld"), "--version")?,
        llvm: first_line(&bin.join("llvm-ar"), "--version")
            .or_else(|_| first_line(&bin.join("llvm-nm"), "--version"))?,
        bin,
    })
}

/// The Debian packages whose tools or headers are absent.
pub fn missing_packages(llvm: &Llvm) -> Vec<String> {
    let mut missing = Vec::new();
    if llvm.bin().is_none() {
        missing.extend(llvm.packages());
    }
    for (tool, package) in HOST_TOOLS {
        if which(tool).is_none() {
            missing.push(package.to_string());
        }
    }
    for (header, package) in HOST_HEADERS {
        if !Path::new(header).exists() {
            missing.push(package.to_string());
        }
    }
    missing
}

/// `apt-get install` as root on Debian/Ubuntu; otherwise an error naming the command to run.
pub fn install(packages: &[&str]) -> Result<()> {
    let command = format!(
        "apt-get install -y --no-install-recommends {}",
        packages.join(" ")
    );
    let is_root = process::command("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    if !is_root || which("apt-get").is_none() {
        bail!(
            "missing packages: {}\n  install them with: sudo {command}",
            packages.join(" ")
        );
    }
    render::notice(Notice::Doing(format!(
        "installing missing packages: {command}"
    )));
    process::run(process::command("sh").arg("-c").arg(format!(
        "apt-get update -qq && DEBIAN_FRONTEND=noninteractive {command}"
    )))
    .with_context(|| format!("installing: run `{command}` by hand and retry"))
}

pub fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(tool))
            .find(|t| t.is_file())
    })
}

fn first_line(tool: &Path, arg: &str) -> Result<String> {
    let out = process::command(tool)
        .arg(arg)
        .output()
        .with_context(|| format!("running {}", tool.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .trim()
        .to_string())
}

/// A file that shows a package is installed, and the package.
type Need = (&'static str, &'static str);

/// What a command needs beyond the build's toolchain, which `ensure` installs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tools {
    /// `test-boot`: QEMU, its UEFI firmware, and cpio (to check our initramfs).
    Boot(Arch),
    /// menuconfig and nconfig: Kbuild compiles them against ncurses.
    Editor,
    /// `bench --scenarios ccache`: Kbuild's side runs `CC="ccache clang"`.
    Ccache,
    /// `bench --scenarios cached-http`: the cache is nginx on loopback.
    HttpCache,
    /// `cargo xtask test`: all of the above for both arches, and what only
    /// the tests run.
    Test,
}

impl Tools {
    fn needs(self) -> Vec<Need> {
        match self {
            Tools::Boot(Arch::X86_64) => vec![
                ("/usr/bin/qemu-system-x86_64", "qemu-system-x86"),
                ("/usr/share/OVMF/OVMF_CODE_4M.fd", "ovmf"),
                ("/usr/bin/cpio", "cpio"),
            ],
            Tools::Boot(Arch::Arm64) => vec![
                ("/usr/bin/qemu-system-aarch64", "qemu-system-arm"),
                (
                    "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd",
                    "qemu-efi-aarch64",
                ),
                ("/usr/bin/cpio", "cpio"),
            ],
            Tools::Editor => vec![("/usr/include/ncurses.h", "libncurses-dev")],
            Tools::Ccache => vec![("/usr/bin/ccache", "ccache")],
            Tools::HttpCache => vec![(testkit::NGINX, "nginx")],
            Tools::Test => Arch::ALL
                .iter()
                .map(|&arch| Tools::Boot(arch))
                // The menuconfig test; the launcher tests and the fidelity
                // test's Kbuild build run the real ccache; the shared-cache
                // tests serve Bazel's HTTP protocol with nginx.
                .chain([Tools::Editor, Tools::Ccache, Tools::HttpCache])
                .flat_map(Tools::needs)
                .chain([
                    ("/usr/lib/llvm-19/bin/clangd", "clangd-19"),
                    // The distributed-compile tests run distccd on loopback.
                    (testkit::DISTCCD, "distcc"),
                    // `script` drives menuconfig in a pseudo-terminal.
                    ("/usr/bin/script", "bsdutils"),
                ])
                .collect(),
        }
    }
}

/// Installs what `tools` need when missing (as root on Debian), else names it.
pub fn ensure_tools(tools: &[Tools]) -> Result<()> {
    let mut missing: Vec<&str> = Vec::new();
    for (path, package) in tools.iter().flat_map(|t| t.needs()) {
        if !Path::new(path).exists() && !missing.contains(&package) {
            missing.push(package);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    // Debian 12 images that ship qemu-utils 10.x conflict with qemu-system 7.2;
    // the trailing `-` tells apt to remove it.
    if missing.iter().any(|p| p.starts_with("qemu-system")) {
        missing.push("qemu-utils-");
    }
    install(&missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packages(tools: Tools) -> Vec<&'static str> {
        tools
            .needs()
            .into_iter()
            .map(|(_, package)| package)
            .collect()
    }

    /// A directory is the user's: nothing to install, and the error names
    /// what it lacks.
    #[test]
    fn a_directory_without_the_tools_names_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("clang"), "").unwrap();
        let llvm = Llvm::Dir(dir.path().into());
        assert!(llvm.packages().is_empty());
        let error = format!("{:#}", ensure(&llvm).unwrap_err());
        assert!(
            error.contains(&format!(
                "LLVM={llvm}: no directory of {}",
                dir.path().display()
            )) && error.contains("holds clang, ld.lld, llvm-ar, llvm-nm, llvm-objcopy"),
            "{error}"
        );
    }

    #[test]
    fn a_boot_installs_its_arch_and_no_test_server() {
        assert_eq!(
            packages(Tools::Boot(Arch::Arm64)),
            ["qemu-system-arm", "qemu-efi-aarch64", "cpio"]
        );
        for arch in Arch::ALL {
            let boot = packages(Tools::Boot(arch));
            for server in ["nginx", "distcc", "ccache", "clangd-19"] {
                assert!(!boot.contains(&server), "{arch:?} boot installs {server}");
            }
        }
    }
}
