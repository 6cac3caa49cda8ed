//! What is being built: architecture, LTO mode and profile, and where it goes.

use std::{fmt, path::PathBuf};

use clap::ValueEnum;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    #[value(name = "x86_64")]
    X86_64,
    Arm64,
}

impl Arch {
    pub const ALL: [Arch; 2] = [Arch::X86_64, Arch::Arm64];

    /// The `ARCH=` value Kbuild expects.
    pub fn kbuild(self) -> &'static str {
        self.manifest().name()
    }

    /// The directory under `arch/` (Kbuild's `SRCARCH`).
    pub fn srcarch(self) -> &'static str {
        self.manifest().srcarch()
    }

    /// Clang's `--target=` triple for freestanding code on this arch.
    pub fn clang_triple(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-linux-gnu",
            Arch::Arm64 => "aarch64-linux-gnu",
        }
    }

    pub fn manifest(self) -> kernel_manifest::Arch {
        match self {
            Arch::X86_64 => kernel_manifest::Arch::X86_64,
            Arch::Arm64 => kernel_manifest::Arch::Arm64,
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kbuild())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Lto {
    None,
    Thin,
    Full,
}

impl Lto {
    /// The Kconfig choice that selects this mode.
    pub fn kconfig_symbol(self) -> &'static str {
        match self {
            Lto::None => "LTO_NONE",
            Lto::Thin => "LTO_CLANG_THIN",
            Lto::Full => "LTO_CLANG_FULL",
        }
    }

    pub fn is_lto(self) -> bool {
        self != Lto::None
    }
}

impl fmt::Display for Lto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Lto::None => "none",
            Lto::Thin => "thin",
            Lto::Full => "full",
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// Boots to init: serial console, initrd, ELF binaries.
    Tiny,
    /// Adds everything `test-boot` proves: lkdtm, ftrace, modversions, EFI, KVM.
    Proof,
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Profile::Tiny => "tiny",
            Profile::Proof => "proof",
        })
    }
}

/// One concrete kernel build.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    pub arch: Arch,
    pub lto: Lto,
    pub profile: Profile,
}

impl Target {
    /// `x86_64-thin-tiny`: the name of the object tree under `target/kernel/`.
    pub fn name(&self) -> String {
        format!("{}-{}-{}", self.arch, self.lto, self.profile)
    }

    /// The object tree of this build: `target/kernel/x86_64-thin-tiny` for
    /// the default source, with `-src-<hash of the path>` for a `--source` tree,
    /// so that trees of different sources live side by side.
    pub fn obj_dir(&self, source: Option<&std::path::Path>) -> PathBuf {
        let name = match source {
            None => self.name(),
            Some(root) => {
                let hash = blake3::hash(root.as_os_str().as_encoded_bytes()).to_hex();
                format!("{}-src-{}", self.name(), &hash[..12])
            }
        };
        crate::paths::target_dir().join("kernel").join(name)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}
