//! The one way a shell command of the build starts: `sh -c COMMAND` in the
//! object tree, with only the environment the caller gives. A command longer
//! than one argument may be (Linux's `MAX_ARG_STRLEN`, 128 KiB: a defconfig's
//! final ThinLTO link names 3,000 objects) goes to `sh` as a script file in
//! `.xtask/scripts/`, named by its hash.
//!
//! The shell is `/bin/sh` by path, as make runs recipes, whatever the
//! command's `PATH` holds. Named bare in an environment of its own, it would
//! also make Rust's `Command` fall back from `posix_spawn` to `fork`, which
//! copies the page tables of a build holding hundreds of MiB for every step
//! (docs/benchmarks.md, "Starting a step").

use std::{path::Path, process::Command};

use crate::process;
use anyhow::{Context, Result};

/// Well under `MAX_ARG_STRLEN` (32 pages).
const LONGEST_ARGUMENT: usize = 96 * 1024;

const SHELL: &str = "/bin/sh";

/// `sh` ready to run `script` in `objtree`, with an empty environment.
pub fn sh(objtree: &Path, script: &str) -> Result<Command> {
    let mut command = process::command(SHELL);
    command.current_dir(objtree).env_clear();
    if script.len() <= LONGEST_ARGUMENT {
        command.arg("-c").arg(script);
        return Ok(command);
    }
    let dir = objtree.join(".xtask/scripts");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let file = dir.join(format!("{}.sh", blake3::hash(script.as_bytes()).to_hex()));
    crate::fs_atomic::write(&file, script.as_bytes())?;
    command.arg(file);
    Ok(command)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_longer_than_an_argument_runs_from_a_file() {
        let tree = tempfile::tempdir().unwrap();
        let words = vec!["an-object-file-name.o"; 20_000].join(" ");
        let script = format!("set -e; for f in {words}; do :; done; echo ran > out");
        assert!(script.len() > 128 * 1024);
        let status = sh(tree.path(), &script).unwrap().status().unwrap();
        assert!(status.success());
        assert_eq!(
            std::fs::read_to_string(tree.path().join("out")).unwrap(),
            "ran\n"
        );
        let status = sh(tree.path(), "test \"$HOME\" = ''")
            .unwrap()
            .status()
            .unwrap();
        assert!(status.success(), "the environment was not emptied");
    }

    #[test]
    fn the_shell_is_bin_sh_whatever_the_path_holds() {
        let tree = tempfile::tempdir().unwrap();
        let bin = tree.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let fake = bin.join("sh");
        std::fs::write(&fake, "#!/bin/sh\necho fake > out\n").unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let status = sh(tree.path(), "echo real > out")
            .unwrap()
            .env("PATH", &bin)
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(
            std::fs::read_to_string(tree.path().join("out")).unwrap(),
            "real\n"
        );
    }
}
