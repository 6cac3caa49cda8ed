//! The engine on tiny `sh -c` steps in a temporary object tree: one test per
//! rule of the cache and the scheduler, each a few milliseconds. Every build
//! opens the cache afresh, as a new `cargo xtask build` would.

use std::{
    collections::BTreeMap,
    fs,
    path::Path,
    sync::mpsc,
    time::{Duration, Instant},
};

use anyhow::Result;

use crate::{
    engine::{
        cache::Cache,
        event::Counts,
        event::Event,
        graph::Graph,
        scheduler::{Runner, StepFailed},
    },
    kbuild::{cmd_file, Step},
};

struct Tree {
    dir: tempfile::TempDir,
    env: BTreeMap<String, String>,
}

/// What one build did: its counts and the outputs whose steps ran, sorted.
#[derive(Debug)]
struct Build {
    counts: Counts,
    ran: Vec<String>,
}

impl Tree {
    fn new() -> Tree {
        let env = BTreeMap::from([(
            "PATH".to_string(),
            std::env::var("PATH").unwrap_or_default(),
        )]);
        Tree {
            dir: tempfile::tempdir().unwrap(),
            env,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, file: &str, text: &str) {
        let path = self.path().join(file);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn read(&self, file: &str) -> String {
        fs::read_to_string(self.path().join(file)).unwrap_or_default()
    }

    /// Records, as fixdep would, that `output` was made from `source` and read `deps`
    /// (paths under the tree, written absolute as Kbuild does; `config:FOO` for a symbol).
    fn cmd_file(&self, output: &str, command: &str, source: &str, deps: &[&str]) {
        let abs = |file: &str| self.path().join(file).display().to_string();
        let mut text = format!(
            "savedcmd_{output} := {command}\n\nsource_{output} := {}\n\ndeps_{output} := \\\n",
            abs(source)
        );
        for dep in deps {
            match dep.strip_prefix("config:") {
                Some(symbol) => text += &format!("    $(wildcard include/config/{symbol}) \\\n"),
                None => text += &format!("  {} \\\n", abs(dep)),
            }
        }
        text += &format!("\n{output}: $(deps_{output})\n\n$(deps_{output}):\n");
        self.write(&cmd_file::path(output), &text);
    }

    fn runner<'a>(&'a self, cache: &'a Cache, jobs: usize) -> Runner<'a> {
        Runner {
            objtree: self.path(),
            env: &self.env,
            jobs,
            cache,
            label: "test",
            launcher: None,
            shared: None,
            fork_server: None,
            after_run: None,
        }
    }

    /// Creates the steps' directories, as Kbuild's `prepare` does.
    fn mkdirs(&self, steps: &[Step]) {
        for step in steps {
            fs::create_dir_all(self.path().join(step.dir())).unwrap();
        }
    }

    fn build_with(&self, steps: &[Step], graph: &Graph, jobs: usize) -> Result<Build> {
        self.mkdirs(steps);
        let cache = Cache::open(self.path())?;
        let counts = self.runner(&cache, jobs).run(steps, graph)?;
        let mut ran = cache.ran();
        ran.sort();
        Ok(Build { counts, ran })
    }

    fn build(&self, steps: &[Step]) -> Build {
        self.build_with(steps, &Graph::new(steps), 2).unwrap()
    }
}

fn step(tag: &str, output: &str, command: &str) -> Step {
    Step::new(tag, false, output, command)
}

/// Two independent chains, each a compile whose `.cmd` file lists its
/// sources, linked into a file of its own:
/// `src/a.c + src/a.h -> a/a.o -> c/a.out` and `src/b.c -> b/b.o -> d/b.out`.
fn two_chains(tree: &Tree) -> Vec<Step> {
    tree.write("src/a.c", "int a;\n");
    tree.write("src/a.h", "#define A 1\n");
    tree.write("src/b.c", "int b;\n");
    tree.write("include/config/auto.conf", "CONFIG_FOO=y\n");
    let steps = vec![
        step("CC", "a/a.o", "cat src/a.c src/a.h > a/a.o"),
        step("CC", "b/b.o", "cat src/b.c > b/b.o"),
        step("LD", "c/a.out", "cat a/a.o > c/a.out"),
        step("LD", "d/b.out", "cat b/b.o > d/b.out"),
    ];
    tree.cmd_file(
        "a/a.o",
        &steps[0].command,
        "src/a.c",
        &["config:FOO", "src/a.h"],
    );
    tree.cmd_file("b/b.o", &steps[1].command, "src/b.c", &[]);
    steps
}

#[test]
fn a_second_build_runs_nothing() {
    let tree = Tree::new();
    let steps = two_chains(&tree);
    let first = tree.build(&steps);
    assert_eq!(
        (
            first.counts.planned,
            first.counts.executed,
            first.counts.cached
        ),
        (4, 4, 0)
    );
    assert_eq!(tree.read("c/a.out"), "int a;\n#define A 1\n");
    let second = tree.build(&steps);
    assert_eq!(
        (
            second.counts.planned,
            second.counts.executed,
            second.counts.cached
        ),
        (4, 0, 4)
    );
    assert!(second.ran.is_empty(), "{second:?}");
}

#[test]
fn a_changed_input_in_the_cmd_file_reruns_its_step_and_only_the_steps_below() {
    let tree = Tree::new();
    let steps = two_chains(&tree);
    tree.build(&steps);
    tree.write("src/a.h", "#define A 2\n");
    assert_eq!(tree.build(&steps).ran, ["a/a.o", "c/a.out"]);
    assert_eq!(tree.read("c/a.out"), "int a;\n#define A 2\n");
}

#[test]
fn a_changed_kconfig_symbol_reruns_the_steps_that_read_it() {
    let tree = Tree::new();
    let steps = two_chains(&tree);
    tree.build(&steps);
    tree.write("include/config/auto.conf", "CONFIG_FOO=m\n");
    // a/a.o depends on FOO but its bytes do not: c/a.out is cut off.
    assert_eq!(tree.build(&steps).ran, ["a/a.o"]);
}

#[test]
fn a_changed_command_reruns_the_step() {
    let tree = Tree::new();
    let mut steps = two_chains(&tree);
    tree.build(&steps);
    steps[3].command = "cat b/b.o b/b.o > d/b.out".into();
    assert_eq!(tree.build(&steps).ran, ["d/b.out"]);
}

#[test]
fn early_cutoff_a_rerun_that_writes_the_same_bytes_wakes_no_dependent() {
    let tree = Tree::new();
    tree.write("src/words", "b\na\n");
    let steps = vec![
        step("GEN", "gen/words.h", "sort -u src/words > gen/words.h"),
        step("LD", "out/words", "cat gen/words.h > out/words"),
    ];
    tree.cmd_file("gen/words.h", &steps[0].command, "src/words", &[]);
    tree.build(&steps);
    tree.write("src/words", "a\nb\na\n");
    let build = tree.build(&steps);
    assert_eq!(build.ran, ["gen/words.h"]);
    assert_eq!((build.counts.executed, build.counts.cached), (1, 1));
}

#[test]
fn the_journal_is_replayed_after_a_crash_before_the_snapshot() {
    let tree = Tree::new();
    let steps = two_chains(&tree);
    // The first build got as far as a/a.o.
    tree.build(&steps[..1]);
    let record = Cache::open(tree.path()).unwrap().record("a/a.o").unwrap();
    // Crash: the record reached the journal, but no snapshot was written.
    fs::remove_file(tree.path().join(".xtask/steps.json")).unwrap();
    let cache = Cache::open(tree.path()).unwrap();
    assert!(
        cache.record("a/a.o").is_none(),
        "no snapshot and an empty journal"
    );
    cache.store(record).unwrap();
    drop(cache);
    assert!(!tree.read(".xtask/steps.journal").is_empty());
    assert!(!tree.path().join(".xtask/steps.json").exists());
    // The next build resumes where the first stopped.
    assert_eq!(tree.build(&steps).ran, ["b/b.o", "c/a.out", "d/b.out"]);
}

#[test]
fn a_deleted_output_reruns_its_step() {
    let tree = Tree::new();
    let steps = two_chains(&tree);
    tree.build(&steps);
    fs::remove_file(tree.path().join("c/a.out")).unwrap();
    assert_eq!(tree.build(&steps).ran, ["c/a.out"]);
    assert_eq!(tree.read("c/a.out"), "int a;\n#define A 1\n");
}

#[test]
fn an_output_changed_by_hand_reruns_its_step() {
    let tree = Tree::new();
    let steps = two_chains(&tree);
    tree.build(&steps);
    tree.write("a/a.o", "tampered\n");
    // The rerun writes the old bytes back, so c/a.out is cut off.
    assert_eq!(tree.build(&steps).ran, ["a/a.o"]);
    assert_eq!(tree.read("a/a.o"), "int a;\n#define A 1\n");
}

#[test]
fn a_failing_step_names_its_unit_command_and_output_and_its_dependents_do_not_run() {
    let tree = Tree::new();
    let steps = vec![
        step(
            "CC",
            "drivers/bad/x.o",
            "echo compiling x.c; echo 'x.c:1: error: oops' >&2; exit 1",
        ),
        step("LD", "top/y", "cat drivers/bad/x.o > top/y"),
    ];
    let error = tree.build_with(&steps, &Graph::new(&steps), 2).unwrap_err();
    let failed = error.downcast_ref::<StepFailed>().expect("a StepFailed");
    assert_eq!(failed.unit, "drivers/bad");
    assert_eq!(failed.output, "drivers/bad/x.o");
    assert_eq!(failed.command, steps[0].command);
    assert_eq!(failed.log, "compiling x.c\nx.c:1: error: oops\n");
    assert!(error
        .to_string()
        .starts_with("building drivers/bad/x.o failed in unit drivers/bad\n"));
    assert!(!tree.path().join("top/y").exists());
    // Nothing was recorded, so the next build tries again.
    assert!(Cache::open(tree.path())
        .unwrap()
        .record("drivers/bad/x.o")
        .is_none());
}

#[test]
fn a_cycle_is_an_error_not_a_hang() {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let tree = Tree::new();
        let steps = vec![
            step("GEN", "a/free", "echo > a/free"),
            step("GEN", "b/one", "echo > b/one"),
            step("GEN", "c/two", "echo > c/two"),
        ];
        let graph = Graph {
            deps: vec![vec![], vec![2], vec![1]],
            rdeps: vec![vec![], vec![2], vec![1]],
            priority: vec![1; 3],
        };
        let _ = sender.send(
            tree.build_with(&steps, &graph, 2)
                .map_err(|e| e.to_string()),
        );
    });
    let result = receiver
        .recv_timeout(Duration::from_secs(3))
        .expect("run returns within 3 s");
    assert_eq!(
        result.unwrap_err(),
        "2 of 3 steps never became ready: the graph has a cycle"
    );
}

#[test]
fn with_one_job_the_step_heading_the_longer_chain_starts_first() {
    let tree = Tree::new();
    let steps = vec![
        step("CC", "short/s.o", "echo short >> log; echo s > short/s.o"),
        step("CC", "long/l.o", "echo long >> log; echo l > long/l.o"),
        step(
            "LD",
            "link/l.ko",
            "echo link >> log; cat long/l.o > link/l.ko",
        ),
    ];
    let graph = Graph::new(&steps);
    assert_eq!(
        graph.deps,
        [vec![], vec![], vec![1]],
        "two independent ready steps"
    );
    assert!(graph.priority[1] > graph.priority[0]);
    tree.build_with(&steps, &graph, 1).unwrap();
    assert_eq!(tree.read("log"), "long\nshort\nlink\n");
}

#[test]
fn events_carry_a_steps_stderr_to_the_reporter() {
    let tree = Tree::new();
    let steps = vec![step(
        "CC",
        "a/a.o",
        "echo 'warning: unused' >&2; echo a > a/a.o",
    )];
    tree.mkdirs(&steps);
    let graph = Graph::new(&steps);
    let events = |tree: &Tree| {
        let cache = Cache::open(tree.path()).unwrap();
        let mut seen = Vec::new();
        let mut reporter = |event: Event| {
            seen.push(match event {
                Event::Started { step } => format!("started {}", step.output),
                Event::Cached { step } => format!("cached {}", step.output),
                Event::Ran { step, stderr } => format!("ran {}: {stderr}", step.output),
                Event::Failed { step } => format!("failed {}", step.output),
            })
        };
        tree.runner(&cache, 1)
            .run_with(&steps, &graph, &mut reporter)
            .unwrap();
        seen
    };
    assert_eq!(
        events(&tree),
        ["started a/a.o", "ran a/a.o: warning: unused\n"]
    );
    assert_eq!(events(&tree), ["started a/a.o", "cached a/a.o"]);
}

/// A generator in a compile's directory, and the compile, whose `.cmd` file
/// lists what it read: `deps` (the generated header, or not).
fn generator_and_compile(tree: &Tree, value: &str, deps: &[&str]) -> Vec<Step> {
    tree.write("src/a.c", "int a;\n");
    let compile = "cat src/a.c > a/a.o";
    tree.cmd_file("a/a.o", compile, "src/a.c", deps);
    vec![
        step("GEN", "a/gen.h", &format!("echo {value} > a/gen.h")),
        step("CC", "a/a.o", compile),
    ]
}

#[test]
fn a_compile_that_lists_what_it_read_ignores_a_generator_it_did_not_read() {
    let tree = Tree::new();
    assert_eq!(
        tree.build(&generator_and_compile(&tree, "1", &["src/a.c"]))
            .ran,
        ["a/a.o", "a/gen.h"]
    );
    let again = tree.build(&generator_and_compile(&tree, "2", &["src/a.c"]));
    assert_eq!(
        again.ran,
        ["a/gen.h"],
        "the directory barrier only orders the compile"
    );
}

#[test]
fn a_compile_that_read_a_generated_header_reruns_when_it_changes() {
    let tree = Tree::new();
    tree.build(&generator_and_compile(&tree, "1", &["src/a.c", "a/gen.h"]));
    let again = tree.build(&generator_and_compile(&tree, "2", &["src/a.c", "a/gen.h"]));
    assert_eq!(again.ran, ["a/a.o", "a/gen.h"]);
}

#[test]
fn an_input_a_step_declares_later_makes_it_run_once() {
    let tree = Tree::new();
    tree.write("size.h", "12345");
    let mut steps = vec![step("GEN", "a/x", "echo x > a/x")];
    tree.build(&steps);
    steps[0].inputs.push("size:size.h".into());
    assert_eq!(
        tree.build(&steps).ran,
        ["a/x"],
        "a record of an older xtask lacks the input"
    );
    assert!(tree.build(&steps).ran.is_empty());
    tree.write("size.h", "54321");
    assert!(tree.build(&steps).ran.is_empty(), "the same size: same key");
    tree.write("size.h", "543210");
    assert_eq!(tree.build(&steps).ran, ["a/x"]);
}

#[test]
fn all_of_the_above_is_fast() {
    // A guard against a step that sleeps or a scheduler that polls.
    let start = Instant::now();
    let tree = Tree::new();
    let steps = two_chains(&tree);
    for _ in 0..5 {
        tree.build(&steps);
    }
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

/// `--launcher` for real: ccache (`apt-get install ccache`) in front of clang
/// compiles a C file, a second tree gets ccache's hit, and a build without
/// the launcher finds nothing to do: it is not part of any key.
#[test]
fn a_launcher_wraps_the_compile_and_is_not_in_its_key() {
    let ccache_dir = tempfile::tempdir().unwrap();
    // Read by `resolve` into the launcher's settings; no other test uses it.
    std::env::set_var("CCACHE_DIR", ccache_dir.path());
    let launcher =
        crate::engine::launcher::Launcher::resolve("ccache").unwrap_or_else(|e| panic!("{e}"));
    let stats = || launcher.stats().expect("ccache --print-stats");
    let tree = |_: u8| {
        let mut tree = Tree::new();
        let path = format!("/usr/lib/llvm-19/bin:{}", tree.env["PATH"]);
        tree.env.insert("PATH".into(), path);
        tree.env.insert("CC".into(), "clang".into());
        tree.write("src/a.c", "int answer(void) { return 42; }\n");
        tree
    };
    let compile = [step("CC", "a/a.o", "set -e; clang -c -o a/a.o src/a.c; printf '%s\\n' 'savedcmd_a/a.o := clang -c -o a/a.o src/a.c' > a/.a.o.cmd")];
    let build = |tree: &Tree, launcher: Option<&crate::engine::launcher::Launcher>| {
        tree.mkdirs(&compile);
        let cache = Cache::open(tree.path()).unwrap();
        let runner = Runner {
            launcher,
            ..tree.runner(&cache, 1)
        };
        runner.run(&compile, &Graph::new(&compile)).unwrap()
    };
    let (first, second) = (tree(1), tree(2));
    let before = stats();
    assert_eq!(build(&first, Some(&launcher)).executed, 1);
    assert_eq!(
        stats().since(before),
        crate::engine::launcher::Stats { hits: 0, misses: 1 }
    );
    assert_eq!(build(&second, Some(&launcher)).executed, 1);
    assert_eq!(
        stats().since(before),
        crate::engine::launcher::Stats { hits: 1, misses: 1 }
    );
    assert_eq!(first.read("a/a.o").len(), second.read("a/a.o").len());
    assert!(
        first
            .read("a/.a.o.cmd")
            .starts_with("savedcmd_a/a.o := clang -c"),
        "the .cmd file names the launcher"
    );
    assert_eq!(
        build(&first, None).executed,
        0,
        "switching the launcher off rebuilt"
    );
}

/// A distccd started as Debian documents it runs only the compilers linked
/// in `/usr/lib/distcc`. A compiler of another name is refused; distcc, as
/// its users run it (with its local fallback), compiles here instead and
/// says so on stderr. The build counts that compile as fallen back, keeps
/// distcc's lines out of what it prints, and has one line of advice.
#[test]
fn a_compile_distccd_refuses_is_counted_as_compiled_here() {
    let llvm = format!("/usr/lib/llvm-19/bin:{}", std::env::var("PATH").unwrap());
    let server = testkit::DistccServer::start_as_packaged(&llvm).unwrap_or_else(|e| panic!("{e}"));
    let mut tree = Tree::new();
    // A name no `update-distcc-symlinks` links.
    tree.write("bin/.keep", "");
    std::os::unix::fs::symlink(
        "/usr/lib/llvm-19/bin/clang",
        tree.path().join("bin/xtask-refused-cc"),
    )
    .unwrap();
    // distcc's settings, with its local fallback as its users have it; the
    // step finds the compiler on the tree's `PATH`.
    let vars = server
        .client_env()
        .into_iter()
        .filter(|(key, _)| key != "DISTCC_FALLBACK");
    let launcher = crate::engine::launcher::Launcher::resolve_in("distcc", vars)
        .unwrap_or_else(|e| panic!("{e}"));
    let path = format!("{}:{llvm}", tree.path().join("bin").display());
    tree.env.insert("PATH".into(), path);
    tree.env.insert("CC".into(), "xtask-refused-cc".into());
    tree.write("src/a.c", "int answer(int x) { return x * 42; }\n");
    let mut compile = step("CC", "a.o", "xtask-refused-cc -c -o a.o src/a.c");
    compile.kind = crate::kbuild::StepKind::CompileC;
    let steps = [compile];
    let cache = Cache::open(tree.path()).unwrap();
    let runner = Runner {
        launcher: Some(&launcher),
        ..tree.runner(&cache, 1)
    };
    let counts = runner
        .run(&steps, &Graph::new(&steps))
        .unwrap_or_else(|e| panic!("{e:#}\ndistccd's log:\n{}", server.log()));
    assert_eq!(
        (counts.executed, counts.launched, counts.fell_back),
        (1, 1, 1),
        "distccd's log:\n{}",
        server.log()
    );
    assert!(tree.path().join("a.o").is_file());
    let advice = launcher
        .fell_back_advice(1, 1, Path::new("/usr/lib/llvm-19/bin/clang"))
        .unwrap();
    assert!(
        advice.contains("ln -s /usr/lib/llvm-19/bin/clang /usr/lib/distcc/clang"),
        "{advice}"
    );
}

/// `--launcher distcc` for real: Debian's distccd on loopback compiles, from
/// the `.i` distcc sends it, C with the flags of Kbuild's that fail a remote
/// compile (`-fmacro-prefix-map` unused there, under
/// `-Werror=unused-command-line-argument`) and a `--target=` for another
/// arch than this machine's. Every compile is counted in distccd's log (no
/// quiet local fallback), and each object is the local compile's: an ELF
/// object byte for byte; a ThinLTO bitcode one for the same target.
#[test]
fn distcc_compiles_kbuild_commands_remotely_to_the_objects_of_a_local_compile() {
    let llvm = format!("/usr/lib/llvm-19/bin:{}", std::env::var("PATH").unwrap());
    let server = testkit::DistccServer::start(&llvm).unwrap_or_else(|e| panic!("{e}"));
    // Read by `resolve` into the launcher's settings; no other test uses them.
    for (key, value) in server.client_env() {
        std::env::set_var(key, value);
    }
    let launcher =
        crate::engine::launcher::Launcher::resolve("distcc").unwrap_or_else(|e| panic!("{e}"));
    let mut tree = Tree::new();
    tree.env.insert("PATH".into(), llvm);
    tree.env.insert("CC".into(), "clang".into());
    tree.write(
        "src/a.c",
        "static const char *where = __FILE__;\n\
         int answer(int x) { asm volatile(\"nop\"); return x * 42 + (where != 0); }\n",
    );
    let flags = format!(
        "--target=aarch64-linux-gnu -fmacro-prefix-map={}/= -Werror=unused-command-line-argument -O2",
        tree.path().display()
    );
    let source = tree.path().join("src/a.c");
    let compile = |output: &str, extra: &str| {
        let command = format!("clang {flags} {extra} -c -o {output} {}", source.display());
        let cmd = cmd_file::path(output);
        let mut step = step(
            "CC",
            output,
            &format!("set -e; {command}; printf 'savedcmd_{output} := %s\\n' '{command}' > {cmd}"),
        );
        step.kind = crate::kbuild::StepKind::CompileC;
        step
    };
    let steps = [compile("elf/a.o", ""), compile("bitcode/a.o", "-flto=thin")];
    tree.mkdirs(&steps);
    let cache = Cache::open(tree.path()).unwrap();
    let runner = Runner {
        launcher: Some(&launcher),
        ..tree.runner(&cache, 2)
    };
    let counts = runner
        .run(&steps, &Graph::new(&steps))
        .unwrap_or_else(|e| panic!("{e:#}\ndistccd's log:\n{}", server.log()));
    assert_eq!((counts.executed, counts.launched), (2, 2));
    assert_eq!(server.compiled(2), 2, "distccd's log:\n{}", server.log());

    let local = |output: &str, extra: &str| -> Vec<u8> {
        let out = std::process::Command::new("/usr/lib/llvm-19/bin/clang")
            .args(shlex::split(&format!("{flags} {extra} -c -o {output}")).unwrap())
            .arg(&source)
            .current_dir(tree.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        fs::read(tree.path().join(output)).unwrap()
    };
    let remote = |output: &str| fs::read(tree.path().join(output)).unwrap();
    assert!(
        remote("elf/a.o") == local("a-local.o", ""),
        "the object distccd compiled differs from the local compile's"
    );
    // Its inline asm's `!srcloc` is an offset into the text compiled: the
    // `.i` there, the `.c` and its includes here. So bitcode differs in that
    // and in the module hash; the target must not.
    let triple = |object: &str| -> String {
        let out = std::process::Command::new("/usr/lib/llvm-19/bin/llvm-dis")
            .args([object, "-o", "-"])
            .current_dir(tree.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines()
            .find(|l| l.starts_with("target triple"))
            .unwrap_or_else(|| panic!("{object} is not bitcode:\n{text}"))
            .to_string()
    };
    local("bitcode-local.o", "-flto=thin");
    assert_eq!(triple("bitcode/a.o"), triple("bitcode-local.o"));
    assert!(triple("bitcode/a.o").contains("aarch64"));
    assert!(
        tree.read(&cmd_file::path("elf/a.o"))
            .starts_with("savedcmd_elf/a.o := clang --target"),
        "the .cmd file names the launcher"
    );
    assert_eq!(
        Runner {
            launcher: None,
            ..tree.runner(&Cache::open(tree.path()).unwrap(), 2)
        }
        .run(&steps, &Graph::new(&steps))
        .unwrap()
        .executed,
        0,
        "switching the launcher off rebuilt"
    );
}

mod shared;
