//! `cargo xtask menuconfig`, `nconfig` and `savedefconfig`: Kbuild's own
//! tools on the tree a build would use. An editor's changes are kept as the
//! tree's edits (`configure::edits_path`), applied after the fragments each
//! time the tree is configured, so the next build and every later re-plan
//! keep them; `--lto` is applied after them and still decides the LTO mode.

use std::{fs, path::Path};

use anyhow::{Context, Result};

use crate::{
    build::{self, Options},
    configure,
    kconfig::{self, DotConfig},
    render::{self, Notice},
    target::Target,
    toolchain::{self, Tools},
};

/// The tree configured as its build would configure it, held locked;
/// planning is left to the build, which finds the configuration current.
fn configured(target: &Target, options: &Options) -> Result<build::Tree> {
    let tree = build::tree(target, options)?;
    if !tree.is_planned() && !configure::is_current(&tree.kbuild, &tree.key) {
        render::notice(Notice::Doing(format!(
            "configuring {target} in {}",
            tree.objtree.display()
        )));
        configure::configure(
            &tree.kbuild,
            &tree.recipe,
            &tree.toolchain,
            &tree.key,
            options.jobs,
        )?;
    }
    Ok(tree)
}

/// Which of Kbuild's terminal editors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Editor {
    Menuconfig,
    Nconfig,
}

impl Editor {
    fn target(self) -> &'static str {
        match self {
            Editor::Menuconfig => "menuconfig",
            Editor::Nconfig => "nconfig",
        }
    }
}

/// Opens the editor on the tree's `.config` and keeps what changed.
pub fn edit(target: &Target, options: &Options, editor: Editor) -> Result<()> {
    toolchain::ensure_tools(&[Tools::Editor])?;
    let tree = configured(target, options)?;
    let dot_config = tree.kbuild.objtree.join(".config");
    let before = DotConfig::read(&dot_config)?;
    tree.kbuild.edit(editor.target())?;
    let after = DotConfig::read(&dot_config)?;
    let changes = before.changes_to(&after);
    if changes.is_empty() {
        render::notice(Notice::Doing(format!(
            "{}: nothing changed",
            tree.kbuild.objtree.display()
        )));
        return Ok(());
    }
    let edits = configure::edits_path(&tree.kbuild.objtree);
    keep(&edits, &changes)?;
    render::notice(Notice::Doing(format!(
        "{} setting(s) changed, kept in {} (applied after the fragments; remove the file to drop them); the next `cargo xtask build` uses them",
        changes.len(),
        edits.display()
    )));
    Ok(())
}

/// Adds `changes` to the edits file, a later value replacing an earlier one.
fn keep(edits: &Path, changes: &[String]) -> Result<()> {
    let earlier = match fs::read_to_string(edits) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(error) => return Err(error).with_context(|| format!("reading {}", edits.display())),
    };
    let lines = kconfig::merge_settings(&earlier, changes);
    let text = format!(
        "# Kept by cargo xtask menuconfig/nconfig.\n{}\n",
        lines.join("\n")
    );
    crate::fs_atomic::write(edits, text.as_bytes())
}

/// `make savedefconfig` on the tree, copied to `out`: a minimal file that
/// `--config PATH` takes back.
pub fn savedefconfig(target: &Target, options: &Options, out: &Path) -> Result<()> {
    let tree = configured(target, options)?;
    tree.kbuild.run("savedefconfig", options.jobs)?;
    let written = tree.kbuild.objtree.join("defconfig");
    fs::copy(&written, out)
        .with_context(|| format!("copying {} to {}", written.display(), out.display()))?;
    render::notice(Notice::Doing(format!(
        "wrote {} (build it with --config {})",
        out.display(),
        shown_as_path(out)
    )));
    Ok(())
}

/// `out` spelled so that `--config` reads it as a file: with a slash.
fn shown_as_path(out: &Path) -> String {
    let shown = out.display().to_string();
    if shown.contains('/') {
        shown
    } else {
        format!("./{shown}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_accumulate_and_a_later_value_wins() {
        let dir = tempfile::tempdir().unwrap();
        let edits = dir.path().join("edits.config");
        keep(
            &edits,
            &[
                "CONFIG_PRINTK_TIME=y".into(),
                "# CONFIG_SWAP is not set".into(),
            ],
        )
        .unwrap();
        keep(
            &edits,
            &[
                "# CONFIG_PRINTK_TIME is not set".into(),
                "CONFIG_LOCALVERSION=\"-me\"".into(),
            ],
        )
        .unwrap();
        let text = fs::read_to_string(&edits).unwrap();
        assert_eq!(
            text,
            "# Kept by cargo xtask menuconfig/nconfig.\nCONFIG_LOCALVERSION=\"-me\"\n# CONFIG_PRINTK_TIME is not set\n# CONFIG_SWAP is not set\n"
        );
        // What is kept is a fragment the configure step accepts.
        assert_eq!(kconfig::parse_fragment(&edits).unwrap().len(), 3);
    }

    #[test]
    fn an_editors_changes_are_the_settings_that_differ() {
        let before =
            DotConfig::parse("CONFIG_A=y\nCONFIG_B=m\nCONFIG_S=\"x\"\n# CONFIG_C is not set\n");
        let after = DotConfig::parse(
            "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_S=\"x y\"\nCONFIG_C=y\nCONFIG_N=3\n",
        );
        assert_eq!(
            before.changes_to(&after),
            [
                "# CONFIG_B is not set",
                "CONFIG_C=y",
                "CONFIG_N=3",
                "CONFIG_S=\"x y\""
            ]
        );
        assert!(after.changes_to(&after).is_empty());
    }

    #[test]
    fn a_saved_defconfig_is_shown_as_a_path() {
        assert_eq!(shown_as_path(Path::new("defconfig")), "./defconfig");
        assert_eq!(
            shown_as_path(Path::new("/tmp/x/defconfig")),
            "/tmp/x/defconfig"
        );
    }
}
