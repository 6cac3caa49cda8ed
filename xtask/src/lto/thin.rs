//! ThinLTO as graph steps for `vmlinux.o` (the "distributed" flow of clang
//! and lld, as buck2's `dist_lto` drives it), instead of one `ld.lld` that
//! re-runs every backend of the kernel on any change:
//!
//! 1. **thin link**: Kbuild's own `vmlinux.o` link line with its archives
//!    expanded into their members (an index names modules by path, and a
//!    backend must find them), plus `--thinlto-index-only`: one index shard
//!    and one imports list per bitcode object, under `.xtask/thin/`, no code;
//! 2. **backends**: per bitcode object, `clang -x ir -fthinlto-index=SHARD -c
//!    OBJ` with the object's own compile flags minus the LTO ones. It records
//!    what it read (the object, its shard, the objects it imports, the files
//!    its inline assembly pulls in with `.incbin`) as a `.cmd` dependency
//!    list, so the cache reruns exactly the backends whose inputs changed;
//! 3. **final link**: `ld.lld -r` of the native objects and the ELF members,
//!    in Kbuild's order, then objtool as Kbuild runs it.
//!
//! lld rewrites every shard on every thin link; content hashes, not times,
//! decide which backends run. The `.incbin` inputs are what LLVM's own
//! ThinLTO cache key missed (ClangBuiltLinux #2021).

use std::{collections::HashSet, path::Path};

use anyhow::{bail, Context, Result};

use crate::{
    kbuild::{
        cmd_file::CmdFile,
        recipe::{self, simple_commands},
        Step, StepKind,
    },
    lto::policy::{format_of, Format},
    process,
};

/// Where the shards, imports lists and native objects live.
pub const DIR: &str = ".xtask/thin";
/// What the thin link writes: the bitcode modules it indexed, one per line.
pub const INDEX_LIST: &str = ".xtask/thin/index.list";

/// One input of Kbuild's link line.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Input {
    Flag(String),
    /// `--whole-archive A --no-whole-archive`: every member, in order.
    Whole(Vec<String>),
    /// `--start-group A B --end-group`: members pulled in when needed.
    Group(Vec<String>),
}

/// Kbuild's `vmlinux.o` recipe, taken apart.
#[derive(Clone, Debug)]
pub struct KbuildLink {
    ld: String,
    inputs: Vec<Input>,
    /// What follows the link in the recipe: objtool, as Kbuild runs it.
    objtool: Option<String>,
}

impl KbuildLink {
    /// Finds the link (`$LD ... -o vmlinux.o`) and objtool in Kbuild's step.
    pub fn parse(step: &Step, ld: &str) -> Result<KbuildLink> {
        let commands = simple_commands(step.command.lines().next().unwrap_or_default());
        let link = commands
            .iter()
            .filter_map(|c| shlex::split(c))
            .find(|argv| {
                argv.first().is_some_and(|a| a == ld)
                    && argv.windows(2).any(|w| w[0] == "-o" && w[1] == "vmlinux.o")
            })
            .with_context(|| format!("no `{ld} ... -o vmlinux.o` in Kbuild's vmlinux.o recipe"))?;
        let objtool = commands
            .iter()
            .map(|c| c.trim())
            .find(|c| c.contains("objtool") && c.ends_with("vmlinux.o"))
            .map(String::from);
        let mut inputs = Vec::new();
        let mut args = link[1..].iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--whole-archive" => {
                    inputs.push(Input::Whole(take_until(&mut args, "--no-whole-archive")))
                }
                "--start-group" => inputs.push(Input::Group(take_until(&mut args, "--end-group"))),
                _ => inputs.push(Input::Flag(arg.clone())),
            }
        }
        Ok(KbuildLink {
            ld: link[0].clone(),
            inputs,
            objtool,
        })
    }

    /// Every archive the link reads.
    pub fn archives(&self) -> Vec<&str> {
        self.inputs
            .iter()
            .flat_map(|i| match i {
                Input::Whole(a) | Input::Group(a) => a.iter().map(String::as_str).collect(),
                Input::Flag(_) => Vec::new(),
            })
            .collect()
    }

    /// The link line with `vmlinux.o` replaced by `output`, each archive by
    /// `member(archive)`'s words, and `extra` appended.
    fn render(
        &self,
        output: &str,
        members: &mut dyn FnMut(&str, bool) -> Vec<String>,
        extra: &[&str],
    ) -> Vec<String> {
        let mut argv = vec![self.ld.clone()];
        let mut previous_was_o = false;
        for input in &self.inputs {
            match input {
                Input::Flag(flag) if previous_was_o => {
                    argv.push(if flag == "vmlinux.o" {
                        output.to_string()
                    } else {
                        flag.clone()
                    });
                    previous_was_o = false;
                }
                Input::Flag(flag) => {
                    previous_was_o = flag == "-o";
                    argv.push(flag.clone());
                }
                Input::Whole(archives) => {
                    for archive in archives {
                        argv.extend(members(archive, true));
                    }
                }
                Input::Group(archives) => {
                    for archive in archives {
                        argv.push("--start-lib".into());
                        argv.extend(members(archive, false));
                        argv.push("--end-lib".into());
                    }
                }
            }
        }
        argv.extend(extra.iter().map(|e| e.to_string()));
        argv
    }
}

fn take_until(args: &mut std::slice::Iter<String>, end: &str) -> Vec<String> {
    args.by_ref().take_while(|a| *a != end).cloned().collect()
}

/// The members of a thin archive, as paths in the object tree.
pub fn members(objtree: &Path, ar: &Path, archive: &str) -> Result<Vec<String>> {
    let listing = process::stdout(
        process::command(ar)
            .arg("t")
            .arg(archive)
            .current_dir(objtree),
    )?;
    Ok(listing.lines().map(String::from).collect())
}

/// The archives' members, resolved once per plan.
pub struct Members(pub std::collections::BTreeMap<String, Vec<String>>);

impl Members {
    pub fn read(objtree: &Path, ar: &Path, link: &KbuildLink) -> Result<Members> {
        let mut map = std::collections::BTreeMap::new();
        for archive in link.archives() {
            map.insert(archive.to_string(), members(objtree, ar, archive)?);
        }
        Ok(Members(map))
    }

    fn of(&self, archive: &str) -> Vec<String> {
        self.0.get(archive).cloned().unwrap_or_default()
    }
}

fn native(object: &str) -> String {
    format!("{DIR}/{object}")
}

fn shard(object: &str) -> String {
    format!("{DIR}/{object}.thinlto.bc")
}

fn imports(object: &str) -> String {
    format!("{DIR}/{object}.imports")
}

fn join(argv: &[String]) -> String {
    shlex::try_join(argv.iter().map(String::as_str)).expect("no NUL in a link line")
}

/// Step 1: the index of every bitcode module, no code.
pub fn thin_link(link: &KbuildLink, members: &Members) -> Step {
    let argv = link.render(
        &format!("{DIR}/vmlinux.o.unused"),
        &mut |archive, _| members.of(archive),
        &[
            &format!("--thinlto-index-only={INDEX_LIST}"),
            "--thinlto-emit-imports-files",
            &format!("--thinlto-prefix-replace=;{DIR}/"),
        ],
    );
    Step::new(
        "THINLINK",
        false,
        INDEX_LIST,
        &format!("set -e; mkdir -p {DIR}; {}", join(&argv)),
    )
}

/// The bitcode objects the thin link indexed, from its list.
pub fn indexed(objtree: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(objtree.join(INDEX_LIST))
        .with_context(|| format!("reading {INDEX_LIST}"))?;
    let prefix = format!("{DIR}/");
    Ok(text
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(String::from)
        .collect())
}

/// Step 2: one backend per indexed object, with the flags it was compiled
/// with. What it read is recorded by `record_reads` once it ran.
pub fn backends(objtree: &Path, indexed: &[String], lto_flags: &str) -> Result<Vec<Step>> {
    let lto: HashSet<&str> = lto_flags.split_whitespace().collect();
    indexed
        .iter()
        .map(|object| {
            let compile = CmdFile::read(objtree, object)
                .and_then(|f| f.command)
                .with_context(|| format!("no compile command for {object} in its .cmd file"))?;
            let argv = backend_argv(&compile, object, &lto).with_context(|| {
                format!("cannot take apart the compile command of {object}: {compile}")
            })?;
            let mut step = Step::new("BACKEND", false, &native(object), &join(&argv));
            step.needs.push(INDEX_LIST.into());
            Ok(step)
        })
        .collect()
}

/// What decides the backends' plan: the LTO flags and the compile command of
/// each indexed object (the `.cmd` file `backends` reads holds the command
/// that made the object). Kept with the plan, a no-op reads no `.cmd` file.
pub fn backends_key(indexed: &[String], lto_flags: &str, compiles: &[Step]) -> String {
    let commands: std::collections::HashMap<&str, &str> = compiles
        .iter()
        .map(|s| (s.output.as_str(), s.command.as_str()))
        .collect();
    let mut made_by = String::new();
    for object in indexed {
        let command = commands
            .get(object.as_str())
            .copied()
            .unwrap_or("(not compiled)");
        made_by.push_str(&format!("{object}\0{command}\0"));
    }
    crate::kbuild::plan::key(&[("lto flags", lto_flags), ("compiles", &made_by)])
}

/// The scheduler's [`AfterRun`](crate::engine::scheduler::AfterRun) hook:
/// a backend that ran records what it read; other steps need nothing.
pub fn after_run(objtree: &Path, step: &Step, hash: &dyn Fn(&str) -> String) -> Result<()> {
    if step.kind != StepKind::Backend {
        return Ok(());
    }
    record_reads(objtree, &step.output, hash)
}

/// After a backend ran: what it read (its object, its shard, the objects
/// it imports, the `.incbin` files of its inline assembly), recorded in
/// fixdep's form in its `.cmd` file so the cache keys it by their content.
/// Beside it, their hashes (`.sums`) and which of them changed since it
/// last ran (`.because`, for the report). `hash` is the cache's file hash.
/// Done here rather than in the step's shell: an `llvm-dis` and two
/// `sha256sum`s per backend cost a third of the backends' time.
fn record_reads(objtree: &Path, output: &str, hash: &dyn Fn(&str) -> String) -> Result<()> {
    let object = output
        .strip_prefix(&format!("{DIR}/"))
        .with_context(|| format!("{output} is not a backend's output"))?;
    let imports = std::fs::read_to_string(objtree.join(imports(object)))
        .with_context(|| format!("reading {}", imports(object)))?;
    let mut reads = vec![object.to_string(), shard(object)];
    reads.extend(imports.split_whitespace().map(String::from));
    reads.extend(crate::lto::bitcode::incbins(&objtree.join(object))?);
    let sums: String = reads
        .iter()
        .map(|file| format!("{}  {file}\n", hash(file)))
        .collect();
    let (sums_path, because_path) = (
        objtree.join(format!("{output}.sums")),
        objtree.join(format!("{output}.because")),
    );
    let because = match std::fs::read_to_string(&sums_path) {
        Ok(old) => {
            let old: HashSet<&str> = old.lines().collect();
            sums.lines()
                .filter(|line| !old.contains(line))
                .filter_map(|line| line.split_once("  "))
                .map(|(_, file)| format!("{file}\n"))
                .collect()
        }
        Err(_) => format!("{FIRST_RUN}\n"),
    };
    let deps: String = reads.iter().map(|file| format!("  {file} \\\n")).collect();
    let record = format!("savedcmd_{output} := backend\n\ndeps_{output} := \\\n{deps}\n");
    for (path, text) in [
        (because_path, because),
        (sums_path, sums),
        (objtree.join(crate::kbuild::cmd_file::path(output)), record),
    ] {
        crate::fs_atomic::write(&path, text.as_bytes())?;
    }
    Ok(())
}

/// A compile command turned into its backend: no preprocessing, no LTO
/// flags, no dependency file; the shard and the bitcode object in, native out.
fn backend_argv(compile: &str, object: &str, lto: &HashSet<&str>) -> Option<Vec<String>> {
    let argv = recipe::compiler_invocation(compile, object)?;
    let source = recipe::source_file(&argv)?.to_string();
    let mut out = Vec::with_capacity(argv.len());
    let mut args = argv.into_iter();
    out.push(args.next()?);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-c" => {}
            "-o" => {
                args.next()?;
            }
            a if lto.contains(a) || a.starts_with("-Wp,-M") || a == source => {}
            _ => out.push(arg),
        }
    }
    out.extend([
        // A section per variable, as lld's in-process LTO emits: `.rodata`
        // comes out as Kbuild's to the byte, `.data` within 320 bytes (x86_64
        // defconfig; 0.06 % larger each without). Not per function: with
        // `CALL_PADDING` every function also gets a `SHF_LINK_ORDER`
        // `__patchable_function_entries` section, and lld's relocatable link
        // of `vmlinux.o` matches those pairwise (quadratic: 205 s of one core
        // at x86_64 defconfig, 13 s without). The ORC tables come out 6 %
        // smaller, probably because objtool ends each text section with a
        // terminator: one per object now, not one per function.
        "-fdata-sections".to_string(),
        // Preprocessor flags are unused for IR input; Kbuild makes that an error.
        "-Wno-unused-command-line-argument".to_string(),
        format!("-fthinlto-index={}", shard(object)),
        "-x".into(),
        "ir".into(),
        "-c".into(),
        "-o".into(),
        native(object),
        object.to_string(),
    ]);
    Some(out)
}

/// What a backend's `.because` file holds when it never ran before.
const FIRST_RUN: &str = "(first run)";

/// Why one backend ran: the inputs that changed since it last ran.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct BackendRun {
    pub object: String,
    /// Changed inputs; `(first run)`; or empty when only its command changed.
    pub because: Vec<String>,
}

/// The backends that ran in this build (`ran`: outputs that ran), and why.
pub fn why(objtree: &Path, ran: &[String]) -> Vec<BackendRun> {
    let prefix = format!("{DIR}/");
    ran.iter()
        .filter(|o| o.ends_with(".o"))
        .filter_map(|native| {
            let object = native.strip_prefix(&prefix)?.to_string();
            let because = std::fs::read_to_string(objtree.join(format!("{native}.because")))
                .unwrap_or_default();
            Some(BackendRun {
                object,
                because: because.lines().map(String::from).collect(),
            })
        })
        .collect()
}

/// Step 3: the native objects and the ELF members linked as Kbuild would,
/// then objtool; the `.cmd` record names the link that really ran.
pub fn final_link(
    objtree: &Path,
    link: &KbuildLink,
    members: &Members,
    indexed: &[String],
) -> Result<Step> {
    let indexed: HashSet<&str> = indexed.iter().map(String::as_str).collect();
    let mut missing = Vec::new();
    let argv = link.render(
        "vmlinux.o",
        &mut |archive, whole| {
            members
                .of(archive)
                .into_iter()
                .filter_map(|m| {
                    if indexed.contains(m.as_str()) {
                        return Some(native(&m));
                    }
                    match format_of(&objtree.join(&m)) {
                        Format::Elf => Some(m),
                        // A lazy bitcode member the thin link left out stays out.
                        Format::Bitcode if !whole => None,
                        _ => {
                            missing.push(m);
                            None
                        }
                    }
                })
                .collect()
        },
        &[],
    );
    if !missing.is_empty() {
        bail!(
            "the thin link did not index these objects of the kernel: {}",
            missing.join(" ")
        );
    }
    let ld = join(&argv);
    let objtool = link
        .objtool
        .clone()
        .map(|o| format!("; {o}"))
        .unwrap_or_default();
    let saved = format!("{ld}{objtool}").replace('\'', r"'\''");
    Ok(Step::new("LD", false, "vmlinux.o", &format!("set -e; {ld}{objtool}; printf '%s\\n' 'savedcmd_vmlinux.o := {saved}' > .vmlinux.o.cmd")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded from Kbuild 6.12's dry run (x86_64, ThinLTO, tiny).
    const KBUILD: &str = "set -e;  echo '  LD      vmlinux.o';   trap 'rm -f vmlinux.o; trap - HUP; kill -s HUP $$' HUP; ld.lld -m elf_x86_64 -mllvm -import-instr-limit=5 -z noexecstack -r -o vmlinux.o  -T .tmp_initcalls.lds --whole-archive vmlinux.a --no-whole-archive --start-group lib/lib.a arch/x86/lib/lib.a --end-group  ; ./tools/objtool/objtool --hacks=jump_label --hacks=noinstr --static-call --uaccess --link vmlinux.o; printf '%s\\n' 'savedcmd_vmlinux.o := ld.lld ...' > ./.vmlinux.o.cmd";

    fn members() -> Members {
        Members(
            [
                (
                    "vmlinux.a",
                    vec!["init/main.o", "arch/x86/kernel/head_64.o"],
                ),
                ("lib/lib.a", vec!["lib/sort.o", "lib/unused.o"]),
                ("arch/x86/lib/lib.a", vec!["arch/x86/lib/memcpy_64.o"]),
            ]
            .into_iter()
            .map(|(a, m)| (a.to_string(), m.into_iter().map(String::from).collect()))
            .collect(),
        )
    }

    #[test]
    fn the_thin_link_is_kbuilds_line_with_members_and_index_flags() {
        let link =
            KbuildLink::parse(&Step::new("LD", false, "vmlinux.o", KBUILD), "ld.lld").unwrap();
        assert_eq!(
            link.archives(),
            ["vmlinux.a", "lib/lib.a", "arch/x86/lib/lib.a"]
        );
        assert_eq!(link.objtool.as_deref(), Some("./tools/objtool/objtool --hacks=jump_label --hacks=noinstr --static-call --uaccess --link vmlinux.o"));
        let step = thin_link(&link, &members());
        assert_eq!(step.output, INDEX_LIST);
        assert!(step.command.ends_with(
            "ld.lld -m elf_x86_64 -mllvm '-import-instr-limit=5' -z noexecstack -r -o .xtask/thin/vmlinux.o.unused -T .tmp_initcalls.lds \
init/main.o arch/x86/kernel/head_64.o --start-lib lib/sort.o lib/unused.o --end-lib --start-lib arch/x86/lib/memcpy_64.o --end-lib \
'--thinlto-index-only=.xtask/thin/index.list' --thinlto-emit-imports-files '--thinlto-prefix-replace=;.xtask/thin/'"
        ), "{}", step.command);
    }

    #[test]
    fn the_backends_plan_is_kept_until_an_indexed_compile_or_the_flags_change() {
        let compile = |output: &str, command: &str| Step::new("CC", false, output, command);
        let compiles = vec![
            compile(
                "kernel/fork.o",
                "clang -flto=thin -c -o kernel/fork.o kernel/fork.c",
            ),
            compile(
                "init/version.o",
                "clang -c -o init/version.o init/version.c",
            ),
        ];
        let indexed = vec!["kernel/fork.o".to_string()];
        let key = backends_key(&indexed, "-flto=thin", &compiles);
        assert_eq!(key, backends_key(&indexed, "-flto=thin", &compiles));
        let mut other = compiles.clone();
        other[1].command.push_str(" -O2");
        assert_eq!(
            key,
            backends_key(&indexed, "-flto=thin", &other),
            "not indexed"
        );
        other[0].command.push_str(" -O2");
        assert_ne!(key, backends_key(&indexed, "-flto=thin", &other));
        assert_ne!(key, backends_key(&indexed, "-flto", &compiles));
        assert_ne!(key, backends_key(&[], "-flto=thin", &compiles));
    }

    #[test]
    fn a_backend_keeps_codegen_flags_and_drops_lto_preprocessing_and_io() {
        let lto: HashSet<&str> = ["-flto=thin", "-fsplit-lto-unit", "-fvisibility=hidden"].into();
        let compile = "clang -Wp,-MMD,kernel/.fork.o.d -nostdinc -D__KERNEL__ -mcmodel=kernel -Os -fno-lto -flto=thin -fsplit-lto-unit -fvisibility=hidden -DKBUILD_MODNAME='\"fork\"' -c -o kernel/fork.o /src/kernel/fork.c";
        let argv = backend_argv(compile, "kernel/fork.o", &lto).unwrap();
        assert_eq!(
            argv.join(" "),
            "clang -nostdinc -D__KERNEL__ -mcmodel=kernel -Os -fno-lto -DKBUILD_MODNAME=\"fork\" -fdata-sections -Wno-unused-command-line-argument \
-fthinlto-index=.xtask/thin/kernel/fork.o.thinlto.bc -x ir -c -o .xtask/thin/kernel/fork.o kernel/fork.o"
        );
    }

    /// ClangBuiltLinux #2021 on a two-object program, with the real clang,
    /// lld and engine: `a.c` embeds a blob with `.incbin`. Changing the blob
    /// leaves `a.o`'s bitcode as it was, yet its backend must run again and
    /// the linked object must carry the new blob; `b.o`'s backend must not run.
    #[test]
    fn a_changed_incbin_file_reruns_exactly_its_backend() {
        use std::collections::BTreeMap;

        use crate::engine::{cache::Cache, graph::Graph, scheduler::Runner};

        const LLVM: &str = "/usr/lib/llvm-19/bin";
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path();
        let write = |path: &str, text: &str| {
            std::fs::create_dir_all(tree.join(path).parent().unwrap()).unwrap();
            std::fs::write(tree.join(path), text).unwrap();
        };
        write("data/blob.gz", "BLOB-ONE");
        write("a.c", "asm(\".section .rodata\\n.globl blob\\nblob:\\n.incbin \\\"data/blob.gz\\\"\\n.previous\");\nextern const char blob[];\nconst char *a(void) { return blob; }\n");
        write(
            "b.c",
            "const char *a(void);\nconst char *b(void) { return a(); }\n",
        );
        let mut env = BTreeMap::new();
        env.insert("PATH".to_string(), format!("{LLVM}:/usr/bin:/bin"));
        let sh = |command: &str| {
            let out = crate::engine::shell::sh(tree, command)
                .unwrap()
                .envs(&env)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{command}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        for name in ["a", "b"] {
            let compile =
                format!("clang --target=x86_64-linux-gnu -O2 -flto=thin -c -o {name}.o {name}.c");
            sh(&compile);
            write(
                &format!(".{name}.o.cmd"),
                &format!("savedcmd_{name}.o := {compile}\n"),
            );
        }
        sh("llvm-ar cDPrST vmlinux.a a.o b.o");
        let kbuild = Step::new(
            "LD",
            false,
            "vmlinux.o",
            "ld.lld -m elf_x86_64 -r -o vmlinux.o --whole-archive vmlinux.a --no-whole-archive",
        );
        let link = KbuildLink::parse(&kbuild, "ld.lld").unwrap();
        let members = Members::read(tree, Path::new(&format!("{LLVM}/llvm-ar")), &link).unwrap();

        // The backends run as they do in a build: forks of one clang.
        let server = crate::engine::fork_server::ForkServer::new("clang", &env, tree);
        let build = || -> Vec<String> {
            let cache = Cache::open(tree).unwrap();
            let run = |steps: Vec<Step>| {
                let runner = Runner {
                    objtree: tree,
                    env: &env,
                    jobs: 2,
                    cache: &cache,
                    label: "test",
                    launcher: None,
                    shared: None,
                    fork_server: Some(&server),
                    after_run: Some(&|step, hash| after_run(tree, step, hash)),
                };
                runner.run(&steps, &Graph::new(&steps)).unwrap();
            };
            run(vec![thin_link(&link, &members)]);
            let indexed = indexed(tree).unwrap();
            assert_eq!(indexed, ["a.o", "b.o"]);
            run(backends(tree, &indexed, "-flto=thin").unwrap());
            run(vec![final_link(tree, &link, &members, &indexed).unwrap()]);
            cache.ran()
        };
        let linked = || {
            String::from_utf8_lossy(&std::fs::read(tree.join("vmlinux.o")).unwrap()).into_owned()
        };
        build();
        assert!(linked().contains("BLOB-ONE"));
        let deps = CmdFile::read(tree, ".xtask/thin/a.o").unwrap().deps;
        assert!(
            deps.contains(&crate::kbuild::cmd_file::Dep::File("data/blob.gz".into())),
            "{deps:?}"
        );

        write("data/blob.gz", "BLOB-TWO");
        let ran = build();
        assert!(ran.contains(&".xtask/thin/a.o".to_string()), "{ran:?}");
        assert!(!ran.contains(&".xtask/thin/b.o".to_string()), "{ran:?}");
        assert!(
            linked().contains("BLOB-TWO"),
            "the linked object kept the old blob"
        );
        assert_eq!(server.failure(), None);
        let why = why(tree, &ran);
        assert_eq!(why.len(), 1);
        assert_eq!(why[0].because, ["data/blob.gz"]);
    }
}
