//! What is being built: architecture, LTO mode and configuration, and where it goes.

use std::{
    fmt,
    path::{Path, PathBuf},
};

use clap::ValueEnum;
use serde::Serialize;

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    ValueEnum,
    Serialize,
    serde::Deserialize,
)]
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

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    ValueEnum,
    Serialize,
    serde::Deserialize,
)]
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

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    ValueEnum,
    Serialize,
    serde::Deserialize,
)]
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

/// The configuration a tree holds: a preset, or a base the user named with
/// `--config` (the user's `--fragment`s come on top of either).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Config {
    /// `tinyconfig` plus the preset's fragments in `targets/`.
    Preset(Profile),
    /// A Kbuild config target: `defconfig`, `tinyconfig`, `x86_64_defconfig`...
    Kbuild(String),
    /// A whole `.config` file, as an absolute path.
    File(PathBuf),
}

impl Config {
    /// `--config VALUE`: a value with a `/` is a file, anything else names a
    /// Kbuild target (checked against the source tree when configuring). The
    /// rule is by spelling, not by what exists, so `--config defconfig` means
    /// the same in every directory; `./defconfig` is the file.
    pub fn parse(value: &str) -> Result<Config, String> {
        if !value.contains(std::path::MAIN_SEPARATOR) {
            return Ok(Config::Kbuild(value.to_string()));
        }
        match Path::new(value).canonicalize() {
            Ok(path) if path.is_file() => Ok(Config::File(path)),
            Ok(path) => Err(format!("{} is not a file", path.display())),
            Err(error) => Err(format!("{value}: {error}")),
        }
    }

    /// The preset, if this is one: `test-boot` proves only what `proof` enables.
    pub fn profile(&self) -> Option<Profile> {
        match self {
            Config::Preset(profile) => Some(*profile),
            _ => None,
        }
    }

    pub fn is_proof(&self) -> bool {
        self.profile() == Some(Profile::Proof)
    }

    /// The configuration's part of a tree name: `tiny`, `defconfig`, or a
    /// file's stem with a hash of its path. By path, not content: editing the
    /// file keeps its tree, and the build follows the change incrementally.
    fn tree_name(&self) -> String {
        match self {
            Config::Preset(profile) => profile.to_string(),
            Config::Kbuild(name) => name.clone(),
            Config::File(path) => {
                let stem: String = path
                    .file_stem()
                    .map(|s| {
                        s.to_string_lossy()
                            .chars()
                            .map(|c| {
                                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                                    c
                                } else {
                                    '_'
                                }
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                format!("{stem}-{}", short_hash(path))
            }
        }
    }

    /// What to pass `cargo xtask` to get this configuration again.
    pub fn args(&self) -> Vec<String> {
        match self {
            Config::Preset(profile) => vec!["--profile".into(), profile.to_string()],
            Config::Kbuild(name) => vec!["--config".into(), name.clone()],
            Config::File(path) => vec!["--config".into(), path.display().to_string()],
        }
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Config::Preset(profile) => write!(f, "{profile}"),
            Config::Kbuild(name) => f.write_str(name),
            Config::File(path) => write!(f, "{}", path.display()),
        }
    }
}

pub fn short_hash(path: &Path) -> String {
    blake3::hash(path.as_os_str().as_encoded_bytes()).to_hex()[..12].to_string()
}

/// One concrete kernel build.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    pub arch: Arch,
    pub lto: Lto,
    pub config: Config,
}

impl Target {
    /// `x86_64-thin-tiny`, `arm64-thin-defconfig`: the name of the object
    /// tree under `target/kernel/`.
    pub fn name(&self) -> String {
        format!("{}-{}-{}", self.arch, self.lto, self.config.tree_name())
    }

    /// The object tree of this build: `target/kernel/x86_64-thin-tiny` for
    /// the default source and toolchain, with the toolchain's tag
    /// (`-llvm22`, `toolchain::Llvm::tree_tag`) and `-src-<hash of the
    /// path>` for a `--source` tree, so that trees of different toolchains
    /// and sources live side by side.
    pub fn obj_dir(&self, source: Option<&Path>, toolchain: Option<&str>) -> PathBuf {
        let mut name = self.name();
        if let Some(tag) = toolchain {
            name = format!("{name}-{tag}");
        }
        if let Some(root) = source {
            name = format!("{name}-src-{}", short_hash(root));
        }
        crate::paths::target_dir().join("kernel").join(name)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_toolchain_and_source_has_its_own_tree() {
        let target = Target {
            arch: Arch::X86_64,
            lto: Lto::Thin,
            config: Config::Preset(Profile::Tiny),
        };
        let name = |source: Option<&Path>, toolchain: Option<&str>| {
            let dir = target.obj_dir(source, toolchain);
            dir.file_name().unwrap().to_string_lossy().into_owned()
        };
        assert_eq!(name(None, None), "x86_64-thin-tiny");
        assert_eq!(name(None, Some("llvm22")), "x86_64-thin-tiny-llvm22");
        let source = Path::new("/src/linux");
        let tree = name(Some(source), Some("llvm22"));
        assert!(tree.starts_with("x86_64-thin-tiny-llvm22-src-"), "{tree}");
        assert_ne!(tree, name(Some(source), None));
    }

    #[test]
    fn a_config_with_a_slash_is_a_file_anything_else_a_kbuild_target() {
        assert_eq!(
            Config::parse("defconfig").unwrap(),
            Config::Kbuild("defconfig".into())
        );
        assert_eq!(
            Config::parse("my.config").unwrap(),
            Config::Kbuild("my.config".into())
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("my.config");
        std::fs::write(&file, "CONFIG_64BIT=y\n").unwrap();
        assert_eq!(
            Config::parse(file.to_str().unwrap()).unwrap(),
            Config::File(file.canonicalize().unwrap())
        );
        let missing = Config::parse(dir.path().join("nope.config").to_str().unwrap()).unwrap_err();
        assert!(missing.contains("nope.config: No such file"), "{missing}");
        assert!(Config::parse(dir.path().to_str().unwrap())
            .unwrap_err()
            .ends_with("is not a file"));
    }

    #[test]
    fn trees_are_named_after_their_configuration() {
        let target = |config| Target {
            arch: Arch::Arm64,
            lto: Lto::Thin,
            config,
        };
        assert_eq!(
            target(Config::Preset(Profile::Tiny)).name(),
            "arm64-thin-tiny"
        );
        assert_eq!(
            target(Config::Kbuild("defconfig".into())).name(),
            "arm64-thin-defconfig"
        );
        let file = target(Config::File("/build/configs/vendor-6.12.config".into())).name();
        assert!(file.starts_with("arm64-thin-vendor-6_12-"), "{file}");
        assert_eq!(file.len(), "arm64-thin-vendor-6_12-".len() + 12);
        assert_ne!(
            file,
            target(Config::File("/build/other/vendor-6.12.config".into())).name()
        );
    }
}
