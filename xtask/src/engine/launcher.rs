//! Compiler launchers: ccache, sccache, distcc, icecc or any command, with
//! the contract of Kbuild's `CC="ccache clang"`. When a kernel C or assembly
//! compile runs, the launcher goes in front of its compiler. Keys, `.cmd`
//! files and plans never see it, so switching it on or off rebuilds nothing.

use std::{collections::BTreeMap, path::Path};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::{kbuild::Step, process};

const NO_REWRITE_CROSS: &str = "DISTCC_NO_REWRITE_CROSS";

const INCBIN: &[u8] = b".incbin";

/// The launchers whose statistics the report reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Ccache,
    Sccache,
    Distcc,
    Icecc,
    Other,
}

#[derive(Clone, Debug)]
pub struct Launcher {
    /// As the user wrote it, split the way a shell would.
    argv: Vec<String>,
    pub kind: Kind,
    /// The launcher's own settings (`CCACHE_DIR`, `DISTCC_HOSTS`...) from the
    /// xtask's environment: the steps' environment is the one Kbuild
    /// exported when the tree was planned.
    env: Vec<(String, String)>,
}

impl Launcher {
    /// `ccache`, `distcc`, `"ccache -d /cache"`: found on `PATH`, or an error
    /// naming the package. Its settings come from this process's environment.
    pub fn resolve(spec: &str) -> Result<Launcher> {
        Launcher::resolve_in(spec, std::env::vars())
    }

    /// The same, with its settings taken from `vars`.
    pub fn resolve_in(
        spec: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Launcher> {
        let argv = shlex::split(spec)
            .filter(|a| !a.is_empty())
            .with_context(|| format!("--launcher {spec:?}: not a command line"))?;
        let program = Path::new(&argv[0]);
        let name = program
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let kind = match name {
            "ccache" => Kind::Ccache,
            "sccache" => Kind::Sccache,
            "distcc" => Kind::Distcc,
            "icecc" => Kind::Icecc,
            _ => Kind::Other,
        };
        let found = match program.components().count() {
            1 => crate::toolchain::which(&argv[0]).is_some(),
            _ => program.is_file(),
        };
        if !found {
            let install = match kind {
                Kind::Other => String::new(),
                _ => format!(
                    ": install it with `apt-get install {}`",
                    if kind == Kind::Icecc { "icecc" } else { name }
                ),
            };
            bail!("--launcher {spec}: `{}` is not on PATH{install}", argv[0]);
        }
        const SETTINGS: [&str; 5] = ["CCACHE_", "SCCACHE_", "DISTCC_", "ICECC_", "HOME"];
        let mut env: Vec<(String, String)> = vars
            .into_iter()
            .filter(|(k, _)| SETTINGS.iter().any(|p| k.starts_with(p)))
            .collect();
        // distcc gives a clang without `-target` one for the machine it runs
        // on, but Kbuild's is `--target=`, which distcc does not see: an arm64
        // kernel would get x86 objects, an x86 one another triple.
        if kind == Kind::Distcc && !env.iter().any(|(k, _)| k == NO_REWRITE_CROSS) {
            env.push((NO_REWRITE_CROSS.into(), "1".into()));
        }
        Ok(Launcher { argv, kind, env })
    }

    /// The launcher `--launcher` (or `XTASK_LAUNCHER`) names; none if it
    /// names none, as a blank value does, so that `XTASK_LAUNCHER=` is off.
    pub fn from_args(arg: Option<&str>) -> Result<Option<Launcher>> {
        match arg.filter(|s| !s.trim().is_empty()) {
            Some(spec) => Launcher::resolve(spec).map(Some),
            None => Ok(None),
        }
    }

    /// The command line, as the report shows it.
    pub fn line(&self) -> String {
        shlex::try_join(self.argv.iter().map(String::as_str))
            .unwrap_or_else(|_| self.argv.join(" "))
    }

    /// `command` with the launcher before its compiler `cc`, where a shell
    /// statement starts with it; `None` if none does. The compiler's name in
    /// the quoted text fixdep writes to the `.cmd` file is left alone.
    pub fn wrap(&self, command: &str, cc: &str) -> Option<String> {
        let needle = format!("{cc} ");
        let mut from = 0;
        while let Some(found) = command[from..].find(&needle) {
            let at = from + found;
            let before = command[..at].trim_end();
            let starts_statement =
                before.is_empty() || before.ends_with(';') || before.ends_with("&&");
            let whole_word = at == 0 || command[..at].ends_with(char::is_whitespace);
            if starts_statement && whole_word {
                let (compiler, rest) = command[at..].split_at(cc.len());
                return Some(format!(
                    "{}{} {compiler}{}{rest}",
                    &command[..at],
                    self.line(),
                    self.compiler_args(),
                ));
            }
            from = at + needle.len();
        }
        None
    }

    /// What the compiler needs to be run by this launcher. distcc and icecc
    /// preprocess here and compile the `.i` there, where preprocessor flags
    /// (`-fmacro-prefix-map`) go unused: Kbuild's
    /// `-Werror=unused-command-line-argument` fails that compile, and the
    /// launcher quietly compiles here instead. `-Qunused-arguments` turns off
    /// only that check, wherever it stands; the code is the same.
    fn compiler_args(&self) -> &'static str {
        match self.kind {
            Kind::Distcc | Kind::Icecc => " -Qunused-arguments",
            _ => "",
        }
    }

    /// Whether the compile of `step` in `objtree` may go through this
    /// launcher. A source whose assembly pulls a file in with `.incbin`
    /// (`kernel/configs.c` and its `config_data.gz`, the boot image's
    /// `piggy.S` and its compressed kernel) runs here, as if without one:
    /// distcc and icecc would assemble it where that file is not, and
    /// ccache's direct and depend modes key a compile by the files the
    /// compiler lists as read, where clang names no `.incbin` file, so a
    /// changed one gives back the old object (ccache 4.7.5, depend mode).
    pub fn takes(&self, objtree: &Path, step: &Step) -> bool {
        let Some(source) = crate::kbuild::recipe::source_of(&step.command, &step.output) else {
            return true;
        };
        std::fs::read(objtree.join(source)).map_or(true, |text| {
            !text.windows(INCBIN.len()).any(|w| w == INCBIN)
        })
    }

    /// How a compile it was given ran, from what it printed, and that
    /// stderr without the launcher's own lines. distcc says `failed to
    /// distribute` when it compiles here instead (a refused compiler, an
    /// unreachable host); its diagnostics lines start with `distcc[`.
    pub fn ran(&self, stderr: &str) -> (Ran, String) {
        if self.kind != Kind::Distcc {
            return (Ran::Launched, stderr.to_string());
        }
        let ran = if stderr.contains("failed to distribute") {
            Ran::FellBack
        } else {
            Ran::Launched
        };
        let compiler: String = stderr
            .lines()
            .filter(|line| !line.starts_with("distcc["))
            .map(|line| format!("{line}\n"))
            .collect();
        (ran, compiler)
    }

    /// One line for the user when compiles fell back, naming the usual fix.
    /// A Debian `distccd` runs only the compilers linked in its
    /// `/usr/lib/distcc`, and `update-distcc-symlinks` links `clang-19`, not
    /// the plain `clang` that Kbuild's commands name.
    pub fn fell_back_advice(
        &self,
        fell_back: usize,
        launched: usize,
        clang: &Path,
    ) -> Option<String> {
        (self.kind == Kind::Distcc && fell_back > 0).then(|| {
            format!(
                "distcc compiled {fell_back} of {launched} compiles here: it could not \
                 distribute them (the server's log says why). A distccd runs only the \
                 compilers linked in its /usr/lib/distcc; on the server run \
                 `ln -s {} /usr/lib/distcc/clang` (Kbuild's compiler is plain `clang`)",
                clang.display()
            )
        })
    }

    /// The launcher's own settings, for the steps it runs in.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// Hits and misses so far, from the launcher's own statistics (ccache
    /// and sccache keep them; the others do not).
    pub fn stats(&self) -> Option<Stats> {
        let args: &[&str] = match self.kind {
            Kind::Ccache => &["--print-stats"],
            Kind::Sccache => &["--show-stats", "--stats-format", "json"],
            _ => return None,
        };
        let out = process::command(&self.argv[0])
            .args(args)
            .envs(self.env.iter().cloned())
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        match self.kind {
            _ if !out.status.success() => None,
            Kind::Ccache => Stats::from_ccache(&text),
            _ => Stats::from_sccache(&text),
        }
    }
}

/// How a compile given to a launcher ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ran {
    /// As the launcher runs it: cached, or compiled on another host.
    Launched,
    /// Compiled here by the launcher after it failed to hand it on.
    FellBack,
}

/// A launcher's cache counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Stats {
    pub hits: u64,
    pub misses: u64,
}

impl Stats {
    /// `ccache --print-stats`: one `name<TAB>count` per line.
    fn from_ccache(text: &str) -> Option<Stats> {
        let counters: BTreeMap<&str, u64> = text
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .filter_map(|(k, v)| Some((k, v.trim().parse().ok()?)))
            .collect();
        let get = |k: &str| counters.get(k).copied();
        Some(Stats {
            hits: get("direct_cache_hit")? + get("preprocessed_cache_hit")?,
            misses: get("cache_miss")?,
        })
    }

    /// `sccache --show-stats --stats-format json`: counts per language.
    fn from_sccache(text: &str) -> Option<Stats> {
        let json: serde_json::Value = serde_json::from_str(text.trim()).ok()?;
        let total = |field: &str| -> Option<u64> {
            Some(
                json["stats"][field]["counts"]
                    .as_object()?
                    .values()
                    .filter_map(|v| v.as_u64())
                    .sum(),
            )
        };
        Some(Stats {
            hits: total("cache_hits")?,
            misses: total("cache_misses")?,
        })
    }

    /// What happened between two readings.
    pub fn since(self, before: Stats) -> Stats {
        Stats {
            hits: self.hits.saturating_sub(before.hits),
            misses: self.misses.saturating_sub(before.misses),
        }
    }
}

/// What `build-report.json` says about the launcher.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct Report {
    pub command: String,
    pub kind: Kind,
    /// This build's hits and misses, when the launcher counts them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<Stats>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What distcc 3.4 printed for a compile a Debian distccd refused,
    /// with a warning of the compiler's own.
    const REFUSED: &str = "\
distcc[20379] (dcc_readx) ERROR: unexpected eof on fd5
distcc[20379] (dcc_r_token_int) ERROR: read failed while waiting for token \"DONE\"
distcc[20379] (dcc_r_result_header) ERROR: server provided no answer. Is the server configured to allow access from your IP address? Is the server performing authentication and your client isn't? Does the server have the compiler installed? Is the server configured to access the compiler?
distcc[20379] Warning: failed to distribute x.c to 127.0.0.1:36321, running locally instead
x.c:1:5: warning: no previous prototype for function 'f' [-Wmissing-prototypes]
";

    #[test]
    fn distcc_falling_back_is_told_and_its_lines_are_dropped() {
        let distcc = Launcher {
            kind: Kind::Distcc,
            ..launcher(&["distcc"])
        };
        let (ran, stderr) = distcc.ran(REFUSED);
        assert_eq!(ran, Ran::FellBack);
        assert_eq!(
            stderr,
            "x.c:1:5: warning: no previous prototype for function 'f' [-Wmissing-prototypes]\n"
        );
        let warning = "x.c:1:5: warning: unused\n";
        assert_eq!(distcc.ran(warning), (Ran::Launched, warning.to_string()));
        // Only distcc's words mean distcc's fallback.
        let ccache = Launcher {
            kind: Kind::Ccache,
            ..launcher(&["ccache"])
        };
        assert_eq!(ccache.ran(REFUSED).0, Ran::Launched);
        assert!(ccache
            .fell_back_advice(3, 3, Path::new("/usr/bin/clang"))
            .is_none());
    }

    fn launcher(argv: &[&str]) -> Launcher {
        Launcher {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            kind: Kind::Other,
            env: Vec::new(),
        }
    }

    /// A compile as Kbuild 6.12 prints it (trimmed), with fixdep's quoted copy.
    const COMPILE: &str = "set -e;  echo '  CC      kernel/fork.o';   trap 'rm -f kernel/fork.o; trap - PIPE; kill -s PIPE $$' PIPE;  clang -Wp,-MMD,kernel/.fork.o.d -nostdinc -c -o kernel/fork.o kernel/fork.c  ; scripts/basic/fixdep kernel/.fork.o.d kernel/fork.o 'clang -Wp,-MMD,kernel/.fork.o.d -nostdinc -c -o kernel/fork.o kernel/fork.c  ' > kernel/.fork.o.cmd; rm -f kernel/.fork.o.d";

    #[test]
    fn the_launcher_goes_before_the_compiler_not_into_the_cmd_file() {
        let wrapped = launcher(&["ccache"]).wrap(COMPILE, "clang").unwrap();
        assert!(
            wrapped.contains("PIPE;  ccache clang -Wp,-MMD,kernel/.fork.o.d"),
            "{wrapped}"
        );
        assert_eq!(wrapped.matches("ccache").count(), 1, "{wrapped}");
        assert!(
            wrapped.contains("fixdep kernel/.fork.o.d kernel/fork.o 'clang -Wp"),
            "{wrapped}"
        );
        assert_eq!(wrapped.replacen("ccache ", "", 1), COMPILE);
    }

    #[test]
    fn every_launcher_leaves_out_sources_that_incbin_a_file() {
        let dir = tempfile::tempdir().unwrap();
        fs_write(dir.path(), "kernel/fork.c", "int x;\n");
        fs_write(
            dir.path(),
            "kernel/configs.c",
            "asm(\"  .incbin \\\"kernel/config_data.gz\\\"\");\n",
        );
        let compile = |name: &str| {
            let output = format!("kernel/{name}.o");
            Step::new(
                "CC",
                false,
                &output,
                &format!("set -e; clang -nostdinc -c -o {output} kernel/{name}.c"),
            )
        };
        let distcc = Launcher {
            kind: Kind::Distcc,
            ..launcher(&["distcc"])
        };
        assert!(distcc.takes(dir.path(), &compile("fork")));
        assert!(!distcc.takes(dir.path(), &compile("configs")));
        // ccache would key the compile without the file it pulls in.
        let ccache = Launcher {
            kind: Kind::Ccache,
            ..launcher(&["ccache"])
        };
        assert!(ccache.takes(dir.path(), &compile("fork")));
        assert!(!ccache.takes(dir.path(), &compile("configs")));
    }

    fn fs_write(root: &Path, relative: &str, text: &str) {
        let path = root.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn arguments_are_quoted_and_other_compilers_are_not_wrapped() {
        let wrapped = launcher(&["ccache", "-d", "/my cache"])
            .wrap("clang -c -o a.o a.c", "clang")
            .unwrap();
        assert_eq!(wrapped, "ccache -d '/my cache' clang -c -o a.o a.c");
        // clang-tidy is not clang, and a host compile names another compiler.
        assert_eq!(
            launcher(&["ccache"]).wrap("set -e; clang-tidy a.c; gcc -c a.c", "clang"),
            None
        );
    }

    #[test]
    fn a_missing_launcher_names_its_package() {
        let error = Launcher::resolve("/nonexistent/ccache")
            .unwrap_err()
            .to_string();
        assert_eq!(error, "--launcher /nonexistent/ccache: `/nonexistent/ccache` is not on PATH: install it with `apt-get install ccache`");
        let error = Launcher::resolve("no-such-launcher --flag")
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "--launcher no-such-launcher --flag: `no-such-launcher` is not on PATH"
        );
        assert!(Launcher::resolve("sh").is_ok());
    }

    #[test]
    fn a_blank_launcher_is_none() {
        assert!(Launcher::from_args(Some(" ")).unwrap().is_none());
        assert!(Launcher::from_args(None).unwrap().is_none());
    }

    #[test]
    fn statistics_are_read_from_each_launchers_own_format() {
        let ccache =
            "cache_miss\t4\ndirect_cache_hit\t2\npreprocessed_cache_hit\t1\nfiles_in_cache\t9\n";
        assert_eq!(
            Stats::from_ccache(ccache),
            Some(Stats { hits: 3, misses: 4 })
        );
        let sccache = r#"{"stats":{"cache_hits":{"counts":{"C/C++":5,"Assembler":1}},"cache_misses":{"counts":{"C/C++":2}}}}"#;
        assert_eq!(
            Stats::from_sccache(sccache),
            Some(Stats { hits: 6, misses: 2 })
        );
        assert_eq!(
            Stats { hits: 9, misses: 4 }.since(Stats { hits: 6, misses: 4 }),
            Stats { hits: 3, misses: 0 }
        );
    }
}
