//! What a step read, recorded with it so that a change to any of it reruns
//! the step: what fixdep wrote in its `.cmd` file, what the step declares
//! (`Step::inputs`), and every file of the source tree its command names (a
//! syscall table, a generator script: the `if_changed` recipes of the
//! prepare stage record no dependencies).

use std::{fs, path::Path};

use crate::{
    engine::graph,
    kbuild::{
        cmd_file::{CmdFile, Dep},
        Step, StepKind,
    },
};

/// What a step read, after it ran.
pub struct Inputs {
    /// Paths, and `config:SYMBOL` for Kconfig dependencies, sorted.
    pub files: Vec<String>,
    /// fixdep listed everything the step read.
    pub tracked: bool,
}

pub fn of(objtree: &Path, srctree: Option<&Path>, step: &Step) -> Inputs {
    let (mut inputs, tracked) = match (step.kind, srctree) {
        (StepKind::SubMake, Some(srctree)) => (sub_make(objtree, srctree, step.dir()), false),
        _ => match CmdFile::read(objtree, &step.output) {
            Some(file) if !file.deps.is_empty() => (names(file.deps), true),
            _ => (Vec::new(), false),
        },
    };
    inputs.extend(step.inputs.iter().cloned());
    // Every file of the source tree the command names; without a dependency
    // list, every file of the object tree it names too: `.config` for
    // `kernel/config_data`, which configure writes and no step does.
    for token in graph::tokens(&step.command) {
        let path = Path::new(token);
        let named = match srctree {
            Some(srctree) if path.starts_with(srctree) => path.is_file(),
            _ => !tracked && !token.starts_with('/') && objtree.join(token).is_file(),
        };
        if named {
            inputs.push(token.to_string());
        }
    }
    inputs.sort_unstable();
    inputs.dedup();
    Inputs {
        files: inputs,
        tracked,
    }
}

fn names(deps: Vec<Dep>) -> Vec<String> {
    deps.into_iter()
        .map(|dep| match dep {
            Dep::File(path) => path,
            Dep::Config(symbol) => format!("config:{symbol}"),
        })
        .collect()
}

/// A sub-make's own build (`tools/objtool`) records each object in a `.cmd`
/// file under its directory. Its sources are named relative to the directory
/// it builds from, the same path under the source tree; a name not found
/// there (libsubcmd's, built from `tools/lib/subcmd`) is left out, its
/// headers still count.
fn sub_make(objtree: &Path, srctree: &Path, dir: &str) -> Vec<String> {
    let mut inputs = Vec::new();
    let mut pending = vec![objtree.join(dir)];
    while let Some(at) = pending.pop() {
        let Ok(entries) = fs::read_dir(&at) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pending.push(path);
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if !(name.starts_with('.') && name.ends_with(".cmd")) {
                continue;
            }
            let Ok(text) = fs::read_to_string(&path) else {
                continue;
            };
            for dep in names(CmdFile::parse_any(&text).deps) {
                if dep.starts_with('/') {
                    inputs.push(dep);
                } else {
                    let source = srctree.join(dir).join(&dep);
                    if source.is_file() {
                        inputs.push(source.display().to_string());
                    }
                }
            }
        }
    }
    inputs
}
