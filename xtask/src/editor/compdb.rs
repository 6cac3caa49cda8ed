//! `compile_commands.json` for clangd.
//!
//! The compilation database holds the commands this build really ran, LTO
//! policy rewrites included. The best witness is Kbuild's own `.cmd` file
//! (`<dir>/.<name>.o.cmd`), whose first line `savedcmd_<object> := <command>`
//! the executed recipe writes; when it is missing, the compiler invocation is
//! taken from the step's recipe. Either is a shell line that may hold several
//! commands (`clang ... ; ./tools/objtool/objtool ...`, the recipe's `echo`,
//! `trap`s and `fixdep`): only the compiler invocation is kept, split into its
//! argv the way the shell would.
//!
//! clangd takes these commands as they are: the LTO flags (`-flto=thin
//! -fsplit-lto-unit -fvisibility=hidden`) and every other flag of a Clang
//! kernel build are Clang's own, so neither a `.clangd` file nor
//! `--query-driver` is needed (`-nostdinc` and `--target=` are explicit).

use std::{
    collections::HashSet,
    fs,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::{
    fs_atomic,
    kbuild::{
        cmd_file::{self, CmdFile},
        recipe::{compiler_invocation, normalize, source_file},
        Step,
    },
    render::{self, Notice},
};

/// The database's name, in the object tree (and, linked, in the source tree).
pub const COMPILE_COMMANDS: &str = "compile_commands.json";

/// One entry of `compile_commands.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The object tree: every step runs there.
    pub directory: String,
    /// The source, absolute.
    pub file: String,
    /// The compiler invocation as it ran.
    pub arguments: Vec<String>,
    /// The object, relative to `directory`.
    pub output: String,
}

/// Writes `<objtree>/compile_commands.json` with one entry per C or assembly
/// object of `steps` (the steps as they ran, after the policy rewrite).
/// Returns its path and the number of entries.
/// `cargo xtask compdb` for one finished build: the database, the optional
/// link into the source tree, and `rust-project.json` when the kernel has Rust.
pub fn run(built: &crate::build::Built, link: bool) -> Result<()> {
    let (path, entries) = write(&built.objtree, &built.steps)?;
    println!("{} ({entries} entries)", path.display());
    if link {
        println!(
            "{}",
            link_into_source(&built.objtree, &built.report.source)?.display()
        );
    }
    match super::rust_project::write_rust_project(&built.objtree, &built.report.source) {
        Ok(Some(path)) => println!("{}", path.display()),
        Ok(None) => {}
        Err(error) => render::notice(Notice::Warning(format!("no rust-project.json: {error:#}"))),
    }
    Ok(())
}

pub fn write(objtree: &Path, steps: &[Step]) -> Result<(PathBuf, usize)> {
    let objtree = absolute(objtree)?;
    let entries = entries(&objtree, steps)?;
    let path = objtree.join(COMPILE_COMMANDS);
    let mut text = serde_json::to_string_pretty(&entries)?;
    text.push('\n');
    fs_atomic::write(&path, text.as_bytes())?;
    Ok((path, entries.len()))
}

/// The entries `write` writes, in the order of `steps`, one per object.
pub fn entries(objtree: &Path, steps: &[Step]) -> Result<Vec<Entry>> {
    let objtree = absolute(objtree)?;
    let directory = utf8(&objtree)?;
    let mut seen = HashSet::new();
    let mut entries = Vec::new();
    for step in steps
        .iter()
        .filter(|s| s.is_compile() && s.output.ends_with(".o"))
    {
        if !seen.insert(step.output.as_str()) {
            continue;
        }
        let arguments = saved_command(&objtree, &step.output)
            .and_then(|command| compiler_invocation(&command, &step.output))
            .or_else(|| compiler_invocation(&step.command, &step.output))
            .with_context(|| {
                format!(
                    "{}: found no compiler invocation writing it, neither in {} nor in its recipe: {}",
                    step.output,
                    cmd_file::path(&step.output),
                    step.command
                )
            })?;
        let source = source_file(&arguments).with_context(|| {
            format!(
                "{}: no source file in its command: {}",
                step.output,
                arguments.join(" ")
            )
        })?;
        entries.push(Entry {
            directory: directory.clone(),
            file: utf8(&normalize(&objtree.join(source)))?,
            arguments,
            output: step.output.clone(),
        });
    }
    Ok(entries)
}

/// Symlinks `<srctree>/compile_commands.json` to the object tree's, so that
/// clangd finds it from the sources without `--compile-commands-dir`. A link
/// is replaced; anything else there is left alone and is an error.
pub fn link_into_source(objtree: &Path, srctree: &Path) -> Result<PathBuf> {
    let target = absolute(objtree)?.join(COMPILE_COMMANDS);
    if !target.is_file() {
        bail!(
            "{} does not exist: write the compilation database first",
            target.display()
        );
    }
    let link = srctree.join(COMPILE_COMMANDS);
    match fs::symlink_metadata(&link) {
        Ok(meta) if meta.file_type().is_symlink() => {}
        Ok(_) => bail!(
            "{} exists and is not a symlink: refusing to overwrite it (move it away to link {} there)",
            link.display(),
            target.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("inspecting {}", link.display())),
    }
    // A new link renamed over the old one: the source tree never lacks one.
    let temporary = srctree.join(format!(".{COMPILE_COMMANDS}.xtask-link"));
    let _ = fs::remove_file(&temporary);
    std::os::unix::fs::symlink(&target, &temporary)
        .with_context(|| format!("creating a symlink in {}", srctree.display()))?;
    fs::rename(&temporary, &link).with_context(|| format!("replacing {}", link.display()))?;
    Ok(link)
}

/// The command of `savedcmd_<output> := <command>`, a shell line again.
fn saved_command(objtree: &Path, output: &str) -> Option<String> {
    CmdFile::read(objtree, output)?.command
}

fn absolute(path: &Path) -> Result<PathBuf> {
    Ok(normalize(&std::path::absolute(path).with_context(
        || format!("resolving {}", path.display()),
    )?))
}

fn utf8(path: &Path) -> Result<String> {
    path.to_str()
        .map(str::to_string)
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Trimmed from target/kernel/x86_64-thin-tiny (6.12, clang 19, ThinLTO).
    const SRC: &str = "/build/linux-source-6.12";
    const FORK_FLAGS: &str = "-Wp,-MMD,kernel/.fork.o.d -nostdinc -I/build/linux-source-6.12/arch/x86/include -I./arch/x86/include/generated -I/build/linux-source-6.12/include -I./include -include /build/linux-source-6.12/include/linux/kconfig.h -D__KERNEL__ --target=x86_64-linux-gnu -fintegrated-as -Werror=unknown-warning-option -std=gnu11 -mcmodel=kernel -Os -fno-lto -flto=thin -fsplit-lto-unit -fvisibility=hidden -falign-functions=16 -Wall -I/build/linux-source-6.12/kernel -Ikernel    -DKBUILD_MODFILE='\"kernel/fork\"' -DKBUILD_BASENAME='\"fork\"' -DKBUILD_MODNAME='\"fork\"' -D__KBUILD_MODNAME=kmod_fork";
    const VDSO_FLAGS: &str = "-Wp,-MMD,arch/x86/entry/vdso/.vclock_gettime.o.d -nostdinc -I/build/linux-source-6.12/arch/x86/include -I./include -D__KERNEL__ --target=x86_64-linux-gnu -std=gnu11 -mcmodel=kernel -Os -fno-lto -falign-functions=16 -Wall -mcmodel=small -fPIC -O2 -DBUILD_VDSO -I/build/linux-source-6.12/arch/x86/entry/vdso -Iarch/x86/entry/vdso    -DKBUILD_MODFILE='\"arch/x86/entry/vdso/vclock_gettime\"' -DKBUILD_BASENAME='\"vclock_gettime\"' -DKBUILD_MODNAME='\"vclock_gettime\"' -D__KBUILD_MODNAME=kmod_vclock_gettime";

    fn compile(flags: &str, output: &str, source: &str) -> String {
        format!("clang {flags} -c -o {output} {source}  ")
    }

    /// A recipe as Kbuild's dry run prints it: echo, traps, compile, fixdep.
    fn recipe(tag: &str, output: &str, command: &str) -> Step {
        let mut traps = String::new();
        for signal in ["HUP", "INT", "QUIT", "TERM", "PIPE"] {
            traps.push_str(&format!(
                "  trap 'rm -f {output}; trap - {signal}; kill -s {signal} $$' {signal};"
            ));
        }
        let (dir, name) = output.rsplit_once('/').unwrap();
        let depfile = format!("{dir}/.{name}.d");
        let quoted = command.replace('\'', "'\\''");
        Step::new(
            tag,
            false,
            output,
            &format!(
                "set -e;  echo '  {tag:<8}{output}'; {traps} {command}; scripts/basic/fixdep {depfile} {output} '{quoted}' > {dir}/.{name}.cmd; rm -f {depfile}"
            ),
        )
    }

    fn write_cmd(objtree: &Path, output: &str, command: &str) {
        let path = objtree.join(cmd_file::path(output));
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, format!("savedcmd_{output} := {command}\n\nsource_{output} := x\n\ndeps_{output} := \\\n  include/linux/kconfig.h \\\n\n{output}: $(deps_{output})\n\n$(deps_{output}):\n")).unwrap();
    }

    fn fork_source() -> String {
        format!("{SRC}/kernel/fork.c")
    }

    fn vdso_source() -> String {
        format!("{SRC}/arch/x86/entry/vdso/vclock_gettime.c")
    }

    #[test]
    fn entries_come_from_cmd_files_with_the_policy_rewrite_and_only_the_compiler() {
        let dir = tempfile::tempdir().unwrap();
        let objtree = dir.path();
        let fork = compile(FORK_FLAGS, "kernel/fork.o", &fork_source());
        write_cmd(objtree, "kernel/fork.o", &fork);
        // A non-LTO x86 object: objtool runs right after the compiler.
        let vdso = compile(
            VDSO_FLAGS,
            "arch/x86/entry/vdso/vclock_gettime.o",
            &vdso_source(),
        );
        write_cmd(
            objtree,
            "arch/x86/entry/vdso/vclock_gettime.o",
            &format!("{vdso}; ./tools/objtool/objtool --hacks=jump_label --orc --retpoline --uaccess arch/x86/entry/vdso/vclock_gettime.o"),
        );
        // The step as planned still carries the LTO flags: the .cmd wins.
        let planned_vdso = vdso.replace(
            "-fno-lto",
            "-fno-lto -flto=thin -fsplit-lto-unit -fvisibility=hidden",
        );
        let steps = vec![
            recipe("CC", "kernel/fork.o", &fork),
            Step::new(
                "AR",
                false,
                "kernel/built-in.a",
                "rm -f kernel/built-in.a; llvm-ar cDPrST kernel/built-in.a kernel/fork.o",
            ),
            recipe("CC", "arch/x86/entry/vdso/vclock_gettime.o", &planned_vdso),
            recipe(
                "HOSTCC",
                "scripts/basic/fixdep",
                "clang -o scripts/basic/fixdep fixdep.c",
            ),
            recipe(
                "CC",
                "arch/x86/entry/vdso/vdso64.lds",
                "clang -E -P -C -o arch/x86/entry/vdso/vdso64.lds vdso.lds.S",
            ),
        ];
        let (path, count) = write(objtree, &steps).unwrap();
        assert_eq!(path, objtree.join("compile_commands.json"));
        assert_eq!(count, 2);
        let entries: Vec<Entry> =
            serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        let raw: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        for field in ["directory", "file", "arguments", "output"] {
            assert!(!raw[0][field].is_null(), "no {field}");
        }

        let fork = &entries[0];
        assert_eq!(fork.directory, objtree.to_str().unwrap());
        assert_eq!(fork.file, fork_source());
        assert_eq!(fork.output, "kernel/fork.o");
        assert_eq!(fork.arguments[0], "clang");
        assert_eq!(fork.arguments.last().unwrap(), &fork_source());
        assert!(
            fork.arguments
                .contains(&"-DKBUILD_MODFILE=\"kernel/fork\"".to_string()),
            "{:?}",
            fork.arguments
        );
        assert!(fork
            .arguments
            .contains(&"-D__KBUILD_MODNAME=kmod_fork".to_string()));
        assert!(fork.arguments.contains(&"-flto=thin".to_string()));
        let at = fork.arguments.iter().position(|a| a == "-o").unwrap();
        assert_eq!(
            fork.arguments[at - 1..at + 2],
            ["-c", "-o", "kernel/fork.o"]
        );
        assert!(
            !fork
                .arguments
                .iter()
                .any(|a| a.is_empty() || a.contains(' ')),
            "{:?}",
            fork.arguments
        );

        let vdso = &entries[1];
        assert_eq!(vdso.file, vdso_source());
        assert_eq!(vdso.output, "arch/x86/entry/vdso/vclock_gettime.o");
        assert!(vdso
            .arguments
            .contains(&"-DKBUILD_BASENAME=\"vclock_gettime\"".to_string()));
        assert!(
            !vdso.arguments.iter().any(|a| a.starts_with("-flto")),
            "the policy rewrite is lost: {:?}",
            vdso.arguments
        );
        assert!(
            !vdso.arguments.iter().any(|a| a.contains("objtool")),
            "objtool leaked in: {:?}",
            vdso.arguments
        );
        assert_eq!(vdso.arguments.last().unwrap(), &vdso_source());
    }

    #[test]
    fn without_a_cmd_file_the_recipe_gives_the_compiler_invocation() {
        let dir = tempfile::tempdir().unwrap();
        let fork = compile(FORK_FLAGS, "kernel/fork.o", &fork_source());
        let asm = "clang -Wp,-MMD,arch/x86/lib/.memcpy_64.o.d -nostdinc -D__ASSEMBLY__ -DKBUILD_MODFILE='\"arch/x86/lib/memcpy_64\"' -c -o arch/x86/lib/memcpy_64.o ../linux/arch/x86/lib/memcpy_64.S";
        let steps = vec![
            recipe("CC", "kernel/fork.o", &fork),
            recipe("AS", "arch/x86/lib/memcpy_64.o", asm),
        ];
        let entries = entries(dir.path(), &steps).unwrap();
        assert_eq!(entries.len(), 2);
        let argv = &entries[0].arguments;
        assert_eq!(argv[0], "clang");
        assert_eq!(argv.last().unwrap(), &fork_source());
        assert!(argv.contains(&"-DKBUILD_MODNAME=\"fork\"".to_string()));
        assert!(
            !argv
                .iter()
                .any(|a| a.contains("fixdep") || a.contains("trap") || a == "echo"),
            "{argv:?}"
        );
        assert_eq!(*argv, shlex::split(&fork).unwrap());
        // A relative source is relative to the object tree.
        let expected = normalize(&dir.path().join("../linux/arch/x86/lib/memcpy_64.S"));
        assert_eq!(entries[1].file, expected.to_str().unwrap());
        assert!(entries[1]
            .arguments
            .contains(&"-DKBUILD_MODFILE=\"arch/x86/lib/memcpy_64\"".to_string()));
    }

    #[test]
    fn a_cmd_file_for_another_output_or_without_a_compiler_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let fork = compile(FORK_FLAGS, "kernel/fork.o", &fork_source());
        write_cmd(
            dir.path(),
            "kernel/fork.o",
            "ld.lld -r -o kernel/fork.o kernel/a.o",
        );
        let entries = entries(dir.path(), &[recipe("CC", "kernel/fork.o", &fork)]).unwrap();
        assert_eq!(entries[0].arguments, shlex::split(&fork).unwrap());
    }

    #[test]
    fn a_step_without_a_compiler_invocation_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let step = Step::new(
            "CC",
            false,
            "kernel/x.o",
            "set -e; echo '  CC      kernel/x.o'; true",
        );
        let error = entries(dir.path(), &[step]).unwrap_err().to_string();
        assert!(
            error.contains("kernel/x.o") && error.contains("kernel/.x.o.cmd"),
            "{error}"
        );
    }

    #[test]
    fn make_escapes_are_undone() {
        assert_eq!(
            cmd_file::unescape_make("-D\"BUILD_STR(s)=$(pound)s\" x$$y $z"),
            "-D\"BUILD_STR(s)=#s\" x$y $z"
        );
        let dir = tempfile::tempdir().unwrap();
        let cmd = "clang -D\"STR(s)=$(pound)s\" -DPRICE='\"$$5\"' -c -o lib/x.o /src/lib/x.c";
        write_cmd(dir.path(), "lib/x.o", cmd);
        let entries = entries(
            dir.path(),
            &[recipe("CC", "lib/x.o", "clang -c -o lib/x.o /src/lib/x.c")],
        )
        .unwrap();
        assert_eq!(
            entries[0].arguments,
            [
                "clang",
                "-DSTR(s)=#s",
                "-DPRICE=\"$5\"",
                "-c",
                "-o",
                "lib/x.o",
                "/src/lib/x.c"
            ]
        );
    }

    #[test]
    fn the_source_is_after_the_output_or_the_last_source_argument() {
        let argv = |s: &str| shlex::split(s).unwrap();
        assert_eq!(source_file(&argv("clang -c -o a.o a.c")), Some("a.c"));
        assert_eq!(
            source_file(&argv("clang -c x/b.S -o b.o -DX")),
            Some("x/b.S")
        );
        assert_eq!(source_file(&argv("clang -include k.c -o b.o -c")), None);
    }

    #[test]
    fn link_into_source_links_and_refuses_to_overwrite_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let (objtree, srctree) = (dir.path().join("obj"), dir.path().join("src"));
        fs::create_dir_all(&objtree).unwrap();
        fs::create_dir_all(&srctree).unwrap();
        assert!(
            link_into_source(&objtree, &srctree).is_err(),
            "nothing to link to yet"
        );
        write(&objtree, &[]).unwrap();
        let link = link_into_source(&objtree, &srctree).unwrap();
        assert_eq!(link, srctree.join("compile_commands.json"));
        assert_eq!(
            fs::read_link(&link).unwrap(),
            objtree.join("compile_commands.json")
        );
        assert_eq!(fs::read_to_string(&link).unwrap(), "[]\n");
        // Again, from another object tree: the link moves.
        let other = dir.path().join("obj2");
        fs::create_dir_all(&other).unwrap();
        write(&other, &[]).unwrap();
        link_into_source(&other, &srctree).unwrap();
        assert_eq!(
            fs::read_link(&link).unwrap(),
            other.join("compile_commands.json")
        );
        // A user's own file is never replaced.
        fs::remove_file(&link).unwrap();
        fs::write(&link, "mine").unwrap();
        let error = link_into_source(&objtree, &srctree)
            .unwrap_err()
            .to_string();
        assert!(error.contains("refusing"), "{error}");
        assert_eq!(fs::read_to_string(&link).unwrap(), "mine");
    }
}
