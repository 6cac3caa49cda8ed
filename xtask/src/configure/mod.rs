//! Configure: a base (`tinyconfig` for the presets, any Kbuild config
//! target, or a whole `.config` file), then the fragments in order (the
//! preset's in `targets/`, the user's `--fragment`s), then the LTO choice,
//! then `olddefconfig`, then proof that every requested symbol landed.

use std::{
    fmt, fs,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

mod bases;

use bases::Bases;

use crate::{
    fs_atomic,
    kbuild::Kbuild,
    kconfig::{self, DotConfig, Request},
    paths,
    render::{self, Notice},
    target::{Config, Profile, Target},
    toolchain::Toolchain,
};

/// Where the configuration starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Base {
    /// `make NAME`, checked against the targets the source tree offers.
    Kbuild(String),
    /// A `.config` copied into the tree.
    File(PathBuf),
}

/// How a tree's configuration is made, every input found and every fragment
/// parsed before make runs: a typo fails fast and touches nothing.
#[derive(Debug)]
pub struct Recipe {
    base: Base,
    /// Applied in this order: the preset's, then the user's.
    fragments: Vec<PathBuf>,
    requests: Vec<Request>,
    /// The fragments among them that the kernel ships (`kernel/configs/`,
    /// `arch/*/configs/`): Kbuild merges those leniently, see [`configure`].
    kernel_own: Vec<PathBuf>,
    /// The tree's own edits (`cargo xtask menuconfig`), after the fragments.
    edits: Option<PathBuf>,
    lto: String,
    /// What the base reads besides Kconfig files: the kernel's own defconfigs
    /// and fragments, or the user's file.
    base_inputs: Vec<PathBuf>,
    /// The settings of a user's whole `.config`, parsed as a fragment is:
    /// [`configure`] insists that this kernel defines each symbol.
    base_settings: Vec<Request>,
}

impl Recipe {
    pub fn resolve(
        target: &Target,
        srctree: &Path,
        objtree: &Path,
        user: &[PathBuf],
    ) -> Result<Recipe> {
        let srcarch = target.arch.srcarch();
        let (base, mut fragments) = match &target.config {
            Config::Preset(profile) => (
                Base::Kbuild("tinyconfig".into()),
                preset_fragments(target, *profile),
            ),
            Config::Kbuild(name) => (
                Base::Kbuild(kbuild_target(name, srctree, srcarch)?),
                Vec::new(),
            ),
            Config::File(path) => (Base::File(path.clone()), Vec::new()),
        };
        let base_settings = match &base {
            Base::File(path) => kconfig::parse_fragment(path)?,
            Base::Kbuild(_) => Vec::new(),
        };
        for fragment in user {
            fragments.push(find(fragment, srctree, srcarch)?);
        }
        let kernel_own = fragments
            .iter()
            .filter(|f| is_kernel_own(f, srctree, srcarch))
            .cloned()
            .collect();
        let mut requests = Vec::new();
        for fragment in &fragments {
            requests.extend(kconfig::parse_fragment(fragment)?);
        }
        // The editor's result, not the user's requests: parsed, not verified.
        let edits = Some(edits_path(objtree)).filter(|path| path.is_file());
        if let Some(edits) = &edits {
            kconfig::parse_fragment(edits)?;
        }
        let base_inputs = match &base {
            Base::Kbuild(_) => config_dirs(srctree, srcarch)
                .iter()
                .flat_map(|dir| files_in(dir))
                .collect(),
            Base::File(path) => vec![path.clone()],
        };
        Ok(Recipe {
            base,
            fragments,
            requests,
            kernel_own,
            edits,
            lto: lto_fragment(target),
            base_inputs,
            base_settings,
        })
    }

    pub fn base(&self) -> &Base {
        &self.base
    }

    /// Appends to the base's `.config` what goes on it before
    /// `olddefconfig`: the fragments, then the tree's edits, then the LTO choice.
    pub fn append_overlay(&self, dot_config: &Path) -> Result<()> {
        let mut text = fs::read_to_string(dot_config)
            .with_context(|| format!("reading {}", dot_config.display()))?;
        for fragment in self.fragments.iter().chain(&self.edits) {
            text += &fs::read_to_string(fragment)
                .with_context(|| format!("reading {}", fragment.display()))?;
            text.push('\n');
        }
        fs::write(dot_config, text + &self.lto)
            .with_context(|| format!("writing {}", dot_config.display()))
    }

    /// Everything configure reads but the Kconfig files, for the plan's key.
    /// The files `text` reads: what the configuration is made from.
    pub fn files(&self) -> impl Iterator<Item = &PathBuf> {
        self.base_inputs
            .iter()
            .chain(&self.fragments)
            .chain(&self.edits)
    }

    pub fn text(&self) -> Result<String> {
        let mut text = match &self.base {
            Base::Kbuild(name) => format!("# make {name}\n"),
            Base::File(path) => format!("# base {}\n", path.display()),
        };
        for file in self.files() {
            text += &format!("# {}\n", file.display());
            text +=
                &fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        }
        Ok(text + &self.lto)
    }
}

/// Where a tree keeps what `cargo xtask menuconfig` changed: applied after
/// the fragments whenever the tree is configured, until the file is removed.
pub fn edits_path(objtree: &Path) -> PathBuf {
    objtree.join(".xtask/edits.config")
}

/// The preset's fragments, in the order they are applied.
fn preset_fragments(target: &Target, profile: Profile) -> Vec<PathBuf> {
    let dir = paths::targets_dir();
    let arch = target.arch.kbuild();
    let mut list = vec![
        dir.join("common/tiny.config"),
        dir.join(arch).join("tiny.config"),
    ];
    if profile == Profile::Proof {
        list.push(dir.join("common/proof.config"));
        list.push(dir.join(arch).join("proof.config"));
    }
    list
}

/// Kbuild's config targets that write a whole `.config` without asking.
const GENERIC_TARGETS: [&str; 7] = [
    "allnoconfig",
    "allyesconfig",
    "allmodconfig",
    "alldefconfig",
    "randconfig",
    "defconfig",
    "tinyconfig",
];

/// The editors, which need a terminal: `cargo xtask menuconfig` runs them.
const INTERACTIVE_TARGETS: [&str; 5] = ["config", "menuconfig", "nconfig", "xconfig", "gconfig"];

/// `NAME` if the source tree offers it as a base: a generic target, or a
/// `*_defconfig` (or arm64's `defconfig`) in `arch/<srcarch>/configs/`.
fn kbuild_target(name: &str, srctree: &Path, srcarch: &str) -> Result<String> {
    let arch_configs = srctree.join("arch").join(srcarch).join("configs");
    let mut known: Vec<String> = GENERIC_TARGETS.iter().map(|t| t.to_string()).collect();
    known.extend(
        files_in(&arch_configs)
            .iter()
            .filter_map(|f| f.file_name()?.to_str())
            .filter(|f| f.ends_with("defconfig"))
            .map(String::from),
    );
    known.sort();
    known.dedup();
    if known.iter().any(|k| k == name) {
        return Ok(name.to_string());
    }
    if INTERACTIVE_TARGETS.contains(&name) {
        bail!("--config {name}: an interactive editor is not a base: start from a target or a file and edit that, e.g. `cargo xtask menuconfig --config defconfig` (or nconfig)");
    }
    let hint = kernel_manifest::suggest::closest(name, known.iter().map(String::as_str))
        .map(|k| format!("did you mean `{k}`? "))
        .unwrap_or_default();
    let file = if name.contains('.') {
        format!(" For a file, give a path: --config ./{name}.")
    } else {
        String::new()
    };
    bail!(
        "--config {name}: not a config target of {}: {hint}it offers {}.{file}",
        srctree.display(),
        known.join(", ")
    )
}

/// The directories Kbuild's config targets read besides the Kconfig files.
fn config_dirs(srctree: &Path, srcarch: &str) -> [PathBuf; 2] {
    [
        srctree.join("kernel/configs"),
        srctree.join("arch").join(srcarch).join("configs"),
    ]
}

/// Whether `fragment` is one the kernel ships, in a directory Kbuild's
/// `make NAME.config` reads.
fn is_kernel_own(fragment: &Path, srctree: &Path, srcarch: &str) -> bool {
    let Some(dir) = fragment.parent().and_then(|d| d.canonicalize().ok()) else {
        return false;
    };
    config_dirs(srctree, srcarch)
        .iter()
        .any(|d| d.canonicalize().is_ok_and(|d| d == dir))
}

/// The files directly in `dir`, sorted; none if it cannot be read.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .collect();
    files.sort();
    files
}

/// A fragment as given, or a bare `NAME.config` from the kernel's own.
fn find(fragment: &Path, srctree: &Path, srcarch: &str) -> Result<PathBuf> {
    if fragment.is_file() {
        return Ok(fragment.canonicalize()?);
    }
    let bare = fragment.components().count() == 1;
    let candidates = config_dirs(srctree, srcarch).map(|dir| dir.join(fragment));
    if let Some(found) = candidates.iter().filter(|_| bare).find(|c| c.is_file()) {
        return Ok(found.clone());
    }
    let looked: Vec<String> = candidates
        .iter()
        .filter(|_| bare)
        .map(|c| c.display().to_string())
        .collect();
    let hint = match bare {
        true => {
            let names: Vec<String> = config_dirs(srctree, srcarch)
                .iter()
                .flat_map(|dir| files_in(dir))
                .filter_map(|f| f.file_name()?.to_str().map(String::from))
                .filter(|f| f.ends_with(".config"))
                .collect();
            let wanted = fragment.to_string_lossy();
            kernel_manifest::suggest::closest(&wanted, names.iter().map(String::as_str))
                .map(|n| format!("; did you mean {n}?"))
                .unwrap_or_default()
        }
        false => String::new(),
    };
    bail!(
        "--fragment {}: no such file{}{hint}",
        fragment.display(),
        if looked.is_empty() {
            String::new()
        } else {
            format!(" (also looked for {})", looked.join(" and "))
        }
    )
}

/// The generated fragment holding the LTO choice.
fn lto_fragment(target: &Target) -> String {
    format!(
        "# The LTO mode requested with --lto {}.\nCONFIG_{}=y\n",
        target.lto,
        target.lto.kconfig_symbol()
    )
}

/// The error when requested symbols did not land, each with its reasons.
#[derive(Debug)]
pub struct UnmetRequests(pub Vec<kconfig::Unmet>);

impl fmt::Display for UnmetRequests {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "the configuration is missing requested symbols:")?;
        for unmet in &self.0 {
            writeln!(f, "  {unmet}")?;
        }
        write!(
            f,
            "fix the file named (enable the dependency too) and rebuild"
        )
    }
}

impl std::error::Error for UnmetRequests {}

/// What a finished configure leaves in the tree: the key of the recipe it
/// followed and a hash of what else Kconfig read. A tree whose Makefiles
/// changed, or that only a configuration command (`menuconfig`,
/// `savedefconfig`) configured, is planned without configuring it again.
#[derive(Serialize, Deserialize, PartialEq)]
struct Configured {
    key: String,
    inputs: String,
}

fn configured_path(objtree: &Path) -> PathBuf {
    objtree.join(".xtask/configured.json")
}

/// Whether the tree's configuration is the one `key`'s recipe makes from
/// the source as it is now.
pub fn is_current(kbuild: &Kbuild, key: &str) -> bool {
    fs_atomic::read_json::<Configured>(&configured_path(&kbuild.objtree))
        .is_ok_and(|done| done == configured_for(kbuild, key))
}

/// Marks the tree's configuration as `key`'s: configure's last act, and a
/// tree configured from the shared cache's bundle.
pub fn mark_configured(kbuild: &Kbuild, key: &str) -> Result<()> {
    fs_atomic::write_json(
        &configured_path(&kbuild.objtree),
        &configured_for(kbuild, key),
    )
}

fn configured_for(kbuild: &Kbuild, key: &str) -> Configured {
    Configured {
        key: key.into(),
        inputs: inputs_hash(
            &kbuild.srctree,
            kbuild.arch.srcarch(),
            &kconfig::sources(&kbuild.objtree),
        ),
    }
}

/// The files besides the recipe's own that decide the configuration: the
/// Kconfig files Kconfig read (`include/config/auto.conf.cmd`), the
/// Makefiles a configuration target runs through, and Kconfig's own
/// programs and scripts.
fn inputs_hash(srctree: &Path, srcarch: &str, kconfig: &[String]) -> String {
    let mut files: Vec<PathBuf> = kconfig.iter().map(|f| srctree.join(f)).collect();
    files.extend(
        [
            "Makefile".to_string(),
            format!("arch/{srcarch}/Makefile"),
            "scripts/Kconfig.include".into(),
            "scripts/Kbuild.include".into(),
            "scripts/Makefile.build".into(),
            "scripts/Makefile.compiler".into(),
            "scripts/Makefile.host".into(),
            "scripts/Makefile.lib".into(),
        ]
        .iter()
        .map(|f| srctree.join(f)),
    );
    files.extend(files_under(&srctree.join("scripts/kconfig")));
    crate::kbuild::plan::files_hash(files)
}

/// Every file under `dir`, sorted.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(entry.path()),
                Ok(_) => files.push(entry.path()),
                Err(_) => {}
            }
        }
    }
    files.sort();
    files
}

/// `make NAME` in the tree, or the `.config` it wrote for a tree of this
/// source before (`bases`). `randconfig` is made each time.
fn make_base(kbuild: &Kbuild, recipe: &Recipe, toolchain: &Toolchain, jobs: usize) -> Result<()> {
    let Base::Kbuild(name) = &recipe.base else {
        unreachable!("a file is no target");
    };
    if name == "randconfig" {
        return kbuild.run(name, jobs);
    }
    let mut parts = vec![
        ("format", bases::FORMAT.to_string()),
        ("target", name.clone()),
        ("arch", kbuild.arch.kbuild().to_string()),
        ("clang", toolchain.clang.clone()),
        ("lld", toolchain.lld.clone()),
    ];
    for (name, value) in &kbuild.metadata {
        parts.push(("metadata", format!("{name}={value}")));
    }
    for file in &recipe.base_inputs {
        let text =
            fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        parts.push(("file", format!("{}\n{text}", file.display())));
    }
    let parts: Vec<(&str, &str)> = parts.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let key = crate::kbuild::plan::key(&parts);

    let srcarch = kbuild.arch.srcarch();
    let dot_config = kbuild.objtree.join(".config");
    let bases = Bases::beside(&kbuild.objtree);
    if let Some(config) = bases.get(&key, |files| inputs_hash(&kbuild.srctree, srcarch, files)) {
        return fs_atomic::write(&dot_config, config.as_bytes());
    }
    kbuild.run(name, jobs)?;
    let kconfig = kconfig::sources(&kbuild.objtree);
    if kconfig.is_empty() {
        // Without the list, no change to a Kconfig file could retire it.
        return Ok(());
    }
    let inputs = inputs_hash(&kbuild.srctree, srcarch, &kconfig);
    let config = fs::read_to_string(&dot_config)
        .with_context(|| format!("reading {}", dot_config.display()))?;
    bases.put(&key, kconfig, inputs, config)
}

/// Configures the tree for `recipe`, whose plan key is `key`.
pub fn configure(
    kbuild: &Kbuild,
    recipe: &Recipe,
    toolchain: &Toolchain,
    key: &str,
    jobs: usize,
) -> Result<()> {
    let state = kbuild.objtree.join(".xtask");
    fs::create_dir_all(&state)?;
    // A configure cut short leaves no claim to be finished.
    let done = configured_path(&kbuild.objtree);
    fs_atomic::remove_file(&done)?;
    let lto_fragment_path = state.join("lto.config");
    fs_atomic::write(&lto_fragment_path, recipe.lto.as_bytes())?;

    let dot_config = kbuild.objtree.join(".config");
    match &recipe.base {
        Base::Kbuild(_) => make_base(kbuild, recipe, toolchain, jobs)?,
        Base::File(path) => {
            fs::copy(path, &dot_config).with_context(|| {
                format!("copying {} to {}", path.display(), dot_config.display())
            })?;
        }
    }
    recipe.append_overlay(&dot_config)?;
    // Kconfig writes its outputs (`auto.conf`, `autoconf.h`, ...) only where
    // there are none or when asked to sync; the base's run left stale ones.
    // Without them, `olddefconfig` writes them fresh, and no `syncconfig`
    // (another Kconfig run with its hundred compiler probes) is needed.
    fs_atomic::remove_file(&kbuild.objtree.join("include/config/auto.conf"))?;
    kbuild.run("olddefconfig", jobs)?;

    let mut requests = recipe.requests.clone();
    requests.extend(kconfig::parse_fragment(&lto_fragment_path)?);
    let result = DotConfig::read(&dot_config)?;
    let srcarch = kbuild.arch.srcarch();
    let mut unmet = kconfig::verify(&kbuild.srctree, srcarch, &result, &requests)?;
    // `olddefconfig` drops a symbol it does not know without a word.
    unmet.extend(kconfig::undefined(
        &kbuild.srctree,
        srcarch,
        &result,
        &recipe.base_settings,
    )?);
    // The kernel's own fragments are written for the base they ship beside,
    // and Kbuild's `make NAME.config` (merge_config.sh) only warns when one
    // of their values does not land: arm64's virt.config asks for
    // CONFIG_REGULATOR=n, which defconfig's drivers select. The user cannot
    // fix those files, so their misses are warnings; everyone else's are errors.
    let (kernel_own, unmet): (Vec<_>, Vec<_>) = unmet
        .into_iter()
        .partition(|u| recipe.kernel_own.contains(&u.request.file));
    for miss in &kernel_own {
        render::notice(Notice::Warning(format!(
            "{miss} (the kernel's own fragment: Kbuild only warns too)"
        )));
    }
    if !unmet.is_empty() {
        return Err(UnmetRequests(unmet).into());
    }
    mark_configured(kbuild, key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::{Arch, Lto};

    /// A source tree with the config files Kbuild's targets read, as 6.12 lays them out.
    fn srctree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (file, text) in [
            ("arch/x86/configs/x86_64_defconfig", "CONFIG_SMP=y\n"),
            (
                "arch/x86/configs/i386_defconfig",
                "# CONFIG_64BIT is not set\n",
            ),
            ("arch/x86/configs/xen.config", "CONFIG_XEN=y\n"),
            ("arch/arm64/configs/defconfig", "CONFIG_SMP=y\n"),
            (
                "arch/arm64/configs/virt.config",
                "# CONFIG_ARCH_ACTIONS is not set\n",
            ),
            (
                "kernel/configs/kvm_guest.config",
                "CONFIG_KVM_GUEST=y\nCONFIG_VIRTIO=y\n",
            ),
            (
                "kernel/configs/tiny.config",
                "# CONFIG_KERNEL_GZIP is not set\n",
            ),
        ] {
            let path = dir.path().join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }
        dir
    }

    fn target(arch: Arch, config: Config) -> Target {
        Target {
            arch,
            lto: Lto::Thin,
            config,
        }
    }

    fn resolve(arch: Arch, config: &str, fragments: &[&str], src: &Path) -> Result<Recipe> {
        let fragments: Vec<PathBuf> = fragments.iter().map(PathBuf::from).collect();
        Recipe::resolve(
            &target(arch, Config::parse(config).map_err(anyhow::Error::msg)?),
            src,
            &src.join("obj"),
            &fragments,
        )
    }

    /// The kernel's fragments, by bare name or by path, are merged as Kbuild
    /// merges them; the preset's and the user's own are held to every value.
    #[test]
    fn only_the_kernels_own_fragments_are_lenient() {
        let src = srctree();
        let mine = src.path().join("mine.config");
        fs::write(&mine, "CONFIG_FOO=y\n").unwrap();
        let by_path = src.path().join("arch/arm64/configs/virt.config");
        let recipe = Recipe::resolve(
            &target(Arch::Arm64, Config::Kbuild("defconfig".into())),
            src.path(),
            &src.path().join("obj"),
            &[PathBuf::from("kvm_guest.config"), mine.clone(), by_path],
        )
        .unwrap();
        let lenient: Vec<&str> = recipe
            .kernel_own
            .iter()
            .map(|f| f.file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(lenient, ["kvm_guest.config", "virt.config"]);
        let preset = Recipe::resolve(
            &target(Arch::X86_64, Config::Preset(Profile::Tiny)),
            src.path(),
            &src.path().join("obj"),
            &[],
        )
        .unwrap();
        assert!(preset.kernel_own.is_empty());
    }

    #[test]
    fn a_preset_is_tinyconfig_and_its_fragments_then_the_users() {
        let src = srctree();
        let recipe = Recipe::resolve(
            &target(Arch::X86_64, Config::Preset(Profile::Proof)),
            src.path(),
            &src.path().join("obj"),
            &[PathBuf::from("kvm_guest.config")],
        )
        .unwrap();
        assert_eq!(recipe.base, Base::Kbuild("tinyconfig".into()));
        let names: Vec<String> = recipe
            .fragments
            .iter()
            .map(|f| {
                f.strip_prefix(paths::targets_dir())
                    .unwrap_or(f)
                    .display()
                    .to_string()
            })
            .collect();
        let kvm = src
            .path()
            .join("kernel/configs/kvm_guest.config")
            .display()
            .to_string();
        assert_eq!(
            names,
            [
                "common/tiny.config",
                "x86_64/tiny.config",
                "common/proof.config",
                "x86_64/proof.config",
                kvm.as_str()
            ]
        );
        assert_eq!(recipe.requests.last().unwrap().symbol, "VIRTIO");
        assert!(recipe
            .text()
            .unwrap()
            .ends_with("CONFIG_LTO_CLANG_THIN=y\n"));
    }

    #[test]
    fn kbuild_targets_are_the_generic_ones_and_the_arch_defconfigs() {
        let src = srctree();
        for (arch, name) in [
            (Arch::X86_64, "defconfig"),
            (Arch::X86_64, "x86_64_defconfig"),
            (Arch::X86_64, "i386_defconfig"),
            (Arch::Arm64, "allnoconfig"),
        ] {
            assert_eq!(
                resolve(arch, name, &[], src.path()).unwrap().base,
                Base::Kbuild(name.into())
            );
        }
        // arm64's defconfig and fragments are its own: x86's are not offered.
        let error = resolve(Arch::Arm64, "x86_64_defconfig", &[], src.path())
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("--config x86_64_defconfig: not a config target of "),
            "{error}"
        );
        let recipe = resolve(Arch::Arm64, "defconfig", &["virt.config"], src.path()).unwrap();
        assert_eq!(
            recipe.fragments,
            [src.path().join("arch/arm64/configs/virt.config")]
        );
    }

    #[test]
    fn a_misspelt_target_gets_a_suggestion_and_the_list() {
        let src = srctree();
        let error = resolve(Arch::X86_64, "defconifg", &[], src.path())
            .unwrap_err()
            .to_string();
        assert!(error.contains("did you mean `defconfig`?"), "{error}");
        assert!(
            error.ends_with("it offers alldefconfig, allmodconfig, allnoconfig, allyesconfig, defconfig, i386_defconfig, randconfig, tinyconfig, x86_64_defconfig."),
            "{error}"
        );
        let error = resolve(Arch::X86_64, "my.config", &[], src.path())
            .unwrap_err()
            .to_string();
        assert!(
            error.ends_with("For a file, give a path: --config ./my.config."),
            "{error}"
        );
        let error = resolve(Arch::X86_64, "menuconfig", &[], src.path())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("`cargo xtask menuconfig --config defconfig`"),
            "{error}"
        );
    }

    #[test]
    fn a_config_file_is_the_base_and_its_text_is_in_the_key() {
        let src = srctree();
        let file = src.path().join("vendor.config");
        fs::write(&file, "CONFIG_SMP=y\n").unwrap();
        let recipe = resolve(
            Arch::X86_64,
            file.to_str().unwrap(),
            &["tiny.config"],
            src.path(),
        )
        .unwrap();
        assert_eq!(recipe.base, Base::File(file.canonicalize().unwrap()));
        let before = recipe.text().unwrap();
        fs::write(&file, "CONFIG_SMP=n\n").unwrap();
        assert_ne!(
            recipe.text().unwrap(),
            before,
            "an edited .config must plan again"
        );
    }

    #[test]
    fn a_config_file_is_parsed_as_a_fragment_is() {
        let src = srctree();
        let file = src.path().join("bad.config");
        fs::write(&file, "# a comment\nCONFIG_SMP=y\nthis is bad\n").unwrap();
        let error = resolve(Arch::X86_64, file.to_str().unwrap(), &[], src.path())
            .unwrap_err()
            .to_string();
        let at = format!("{}:3: ", file.canonicalize().unwrap().display());
        assert!(error.starts_with(&at), "{error}");
    }

    #[test]
    fn a_missing_fragment_names_where_it_looked_and_the_nearest() {
        let src = srctree();
        let error = resolve(Arch::X86_64, "defconfig", &["kvm_guset.config"], src.path())
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("--fragment kvm_guset.config: no such file (also looked for "),
            "{error}"
        );
        assert!(
            error.ends_with("; did you mean kvm_guest.config?"),
            "{error}"
        );
        let error = resolve(Arch::X86_64, "defconfig", &["/no/such.config"], src.path())
            .unwrap_err()
            .to_string();
        assert_eq!(error, "--fragment /no/such.config: no such file");
    }

    #[test]
    fn a_malformed_fragment_line_fails_before_make_runs() {
        let src = srctree();
        let fragment = src.path().join("mine.config");
        fs::write(&fragment, "CONFIG_PRINTK=y\nCONFIG_PRINTK_TIME y\n").unwrap();
        let error = format!(
            "{:#}",
            resolve(
                Arch::X86_64,
                "tinyconfig",
                &[fragment.to_str().unwrap()],
                src.path()
            )
            .unwrap_err()
        );
        assert!(
            error.starts_with(&format!(
                "{}:2: ",
                fragment.canonicalize().unwrap().display()
            )),
            "{error}"
        );
    }

    #[test]
    fn kconfig_files_and_kconfigs_own_make_decide_the_configuration_unit_makefiles_do_not() {
        let src = srctree();
        let obj = tempfile::tempdir().unwrap();
        let write = |root: &Path, file: &str, text: &str| {
            let path = root.join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        };
        for (file, text) in [
            ("Kconfig", "source \"init/Kconfig\"\n"),
            ("init/Kconfig", "config FOO\n\tbool \"foo\"\n"),
            ("Makefile", "all:\n"),
            (
                "arch/x86/Makefile",
                "KBUILD_DEFCONFIG := x86_64_defconfig\n",
            ),
            ("scripts/kconfig/conf.c", "int main(void) { return 0; }\n"),
            ("kernel/Makefile", "obj-y += fork.o\n"),
        ] {
            write(src.path(), file, text);
        }
        write(
            obj.path(),
            "include/config/auto.conf.cmd",
            "deps_config := \\\n\tKconfig \\\n\tinit/Kconfig\n",
        );
        let hash = || inputs_hash(src.path(), "x86", &kconfig::sources(obj.path()));
        let first = hash();
        write(src.path(), "kernel/Makefile", "obj-y += fork.o exit.o\n");
        assert_eq!(hash(), first, "a unit's Makefile shapes the plan only");
        for (file, text) in [
            ("init/Kconfig", "config FOO\n\tbool \"foo\"\n\tdefault y\n"),
            ("scripts/kconfig/conf.c", "int main(void) { return 1; }\n"),
            ("arch/x86/Makefile", "KBUILD_DEFCONFIG := i386_defconfig\n"),
        ] {
            let before = fs::read_to_string(src.path().join(file)).unwrap();
            write(src.path(), file, text);
            assert_ne!(
                hash(),
                first,
                "{file} changed, the configuration is still current"
            );
            write(src.path(), file, &before);
            assert_eq!(hash(), first);
        }
    }

    #[test]
    fn unmet_requests_list_one_miss_a_line() {
        let request = kconfig::Request {
            symbol: "LKDTM".to_string(),
            value: "y".to_string(),
            file: PathBuf::from("targets/common/proof.config"),
            line: 7,
        };
        let unmet = kconfig::Unmet {
            request,
            actual: None,
            reasons: vec!["if RUNTIME_TESTING_MENU [=n] (lib/Kconfig.debug:2167)".to_string()],
        };
        assert_eq!(
            UnmetRequests(vec![unmet]).to_string(),
            "the configuration is missing requested symbols:\n  \
             CONFIG_LKDTM=y (targets/common/proof.config:7) did not land (is not set): \
             if RUNTIME_TESTING_MENU [=n] (lib/Kconfig.debug:2167)\n\
             fix the file named (enable the dependency too) and rebuild"
        );
    }
}
