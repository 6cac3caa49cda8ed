//! The first stage: a tree chosen and locked, with its source, toolchain,
//! policy, recipe, and the key that decides its configuration and plan.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::Result;

use super::Options;
use crate::{
    configure,
    engine::{
        lock::{Locked, TreeLock},
        shared::SharedCache,
    },
    kbuild::{
        plan::{self, Cached, Plan},
        Kbuild, Step,
    },
    kconfig,
    lto::policy,
    render::{self, Notice},
    source,
    target::Target,
    toolchain::{self, Toolchain},
};

/// A tree chosen and locked (held until this is dropped).
pub struct Tree {
    pub(super) lock: TreeLock,
    pub toolchain: Toolchain,
    pub(super) source: source::Source,
    pub(super) policy: kernel_manifest::Policy,
    pub objtree: PathBuf,
    pub kbuild: Kbuild,
    pub recipe: configure::Recipe,
    pub(super) shared: Option<SharedCache>,
    /// Everything that decides the configuration, except what the source's
    /// Kconfig files and Makefiles say.
    pub key: String,
    /// Everything in `key` but the configuration's recipe: the target, the
    /// source and the toolchain.
    pub setup_key: String,
}

impl Tree {
    /// Whether the tree's plan is the one its key and Makefiles give.
    pub fn is_planned(&self) -> bool {
        matches!(self.cached_plan(), Cached::Valid(_))
    }

    /// The plan under `.xtask/`, checked against the key and the Makefiles.
    pub(super) fn cached_plan(&self) -> Cached {
        Plan::cached(&self.objtree, &self.key, |compile| {
            makefiles_hash(&self.source.root, &self.objtree, compile)
        })
    }
}

pub fn tree(target: &Target, options: &Options) -> Result<Tree> {
    let toolchain = toolchain::ensure(&options.llvm)?;
    let source = source::resolve(options.source.as_deref())?;
    // An LLVM the kernel does not support fails before anything is configured.
    let minimum = toolchain::llvm::kernel_minimum(&source.root, target.arch.srcarch())?;
    toolchain::llvm::check_supported(&toolchain.clang, minimum, &source.root)?;
    // Bad overrides are rejected before anything is configured or removed.
    let policy = policy::load(target.arch.manifest(), &options.lto_off, &options.overlays)?;
    policy.validate(&source.root, &Default::default())?;
    let objtree = objtree(target, options, &source);
    // A typo in the configuration fails here, before the tree exists.
    let recipe = configure::Recipe::resolve(target, &source.root, &objtree, &options.fragments)?;
    let lock = lock(&objtree, options.no_wait)?;
    fs::create_dir_all(&objtree)?;
    let objtree = objtree.canonicalize()?;
    // Whatever happens next may change the tree: it is up to date again
    // only when a build finishes.
    super::up_to_date::forget(&objtree)?;
    let kbuild = Kbuild::new(&source.root, &objtree, target.arch, &toolchain)?;
    let salt = format!("{}\n{}\n{}", toolchain.clang, toolchain.lld, toolchain.llvm);
    let shared = SharedCache::from_args(
        options.cache.as_deref(),
        options.cache_size.as_deref(),
        &salt,
    )?;
    let setup_key = setup_key(target, &source, &toolchain, &kbuild);
    let key = plan::key(&[("setup", &setup_key), ("configuration", &recipe.text()?)]);
    Ok(Tree {
        lock,
        toolchain,
        source,
        policy,
        objtree,
        kbuild,
        recipe,
        shared,
        key,
        setup_key,
    })
}

/// Where `target` of `source` is built: the default source's trees are
/// named by target alone.
pub(super) fn objtree(target: &Target, options: &Options, source: &source::Source) -> PathBuf {
    target.obj_dir(
        options.source.as_ref().map(|_| source.root.as_path()),
        options.llvm.tree_tag().as_deref(),
    )
}

/// The tree's lock, waited for unless `no_wait`.
pub(super) fn lock(objtree: &Path, no_wait: bool) -> Result<TreeLock> {
    TreeLock::acquire(objtree, |holder| {
        if no_wait {
            return Err(Locked {
                tree: objtree.to_path_buf(),
                holder: holder.into(),
            }
            .into());
        }
        render::notice(Notice::Doing(format!(
            "waiting for {}: {holder}",
            objtree.display()
        )));
        Ok(())
    })
}

/// Everything that decides the configuration and the plan, except Makefiles
/// and the configuration's recipe.
fn setup_key(
    target: &Target,
    source: &source::Source,
    toolchain: &Toolchain,
    kbuild: &Kbuild,
) -> String {
    let metadata: Vec<String> = kbuild
        .metadata
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    plan::key(&[
        ("metadata", &metadata.join("\n")),
        ("format", plan::FORMAT),
        ("target", &target.name()),
        ("source", &source.root.display().to_string()),
        ("version", &source.version),
        ("clang", &toolchain.clang),
        ("lld", &toolchain.lld),
    ])
}

/// The Makefiles that shaped the plan (the top ones and one per planned
/// directory) and the Kconfig files that shaped the configuration.
pub(super) fn makefiles_hash(srctree: &Path, objtree: &Path, steps: &[Step]) -> String {
    plan::files_hash(makefiles(srctree, objtree, steps))
}

/// The files `makefiles_hash` reads.
pub(super) fn makefiles(srctree: &Path, objtree: &Path, steps: &[Step]) -> Vec<PathBuf> {
    let mut dirs: Vec<&str> = steps.iter().map(Step::dir).collect();
    dirs.sort_unstable();
    dirs.dedup();
    let mut files: Vec<PathBuf> = vec![
        srctree.join("Makefile"),
        srctree.join("scripts/Makefile.build"),
        srctree.join("scripts/Makefile.lib"),
    ];
    for dir in dirs {
        files.push(srctree.join(dir).join("Makefile"));
        files.push(srctree.join(dir).join("Kbuild"));
    }
    files.extend(kconfig::sources(objtree).iter().map(|f| srctree.join(f)));
    files
}
