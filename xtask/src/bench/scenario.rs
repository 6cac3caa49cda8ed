//! The scenarios, and the change each makes to the private source before
//! both tools build.

use std::fmt;

use anyhow::Result;
use serde::Serialize;

use super::private_source::{Edit, PrivateSource};
use crate::{kconfig::DotConfig, toolchain::Tools};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// Both trees removed: everything after the `.config` (see `bench::cold`).
    Cold,
    /// Nothing changed.
    Noop,
    /// `kernel/fork.c` gets a new mtime, its bytes unchanged.
    Touch,
    /// A new function appended to `kernel/fork.c`.
    Edit,
    /// A comment appended to `kernel/fork.c`.
    Comment,
    /// A word of a comment in `kernel/fork.c` changed, the file's length kept.
    Reword,
    /// A real change to a header nearly every object includes.
    Header,
    /// One Kconfig symbol flipped: `--fragment` for the xtask, the same line
    /// appended to Kbuild's `.config` and `make olddefconfig` (timed with its build).
    Config,
    /// `cold`, the xtask's new tree built from a shared cache directory
    /// (`--cache`) that an earlier cold build of the same run filled.
    Cached,
    /// `cached` through Bazel's HTTP protocol: nginx on loopback.
    CachedHttp,
    /// `cold` with both tools' compiles through ccache, warm from an
    /// earlier cold build of the run: `--launcher ccache` against Kbuild's
    /// `CC="ccache clang"`, one `CCACHE_DIR`.
    Ccache,
}

impl Scenario {
    pub const ALL: [Scenario; 11] = [
        Scenario::Cold,
        Scenario::Noop,
        Scenario::Touch,
        Scenario::Edit,
        Scenario::Comment,
        Scenario::Reword,
        Scenario::Header,
        Scenario::Config,
        Scenario::Cached,
        Scenario::CachedHttp,
        Scenario::Ccache,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Cold => "cold",
            Scenario::Noop => "noop",
            Scenario::Touch => "touch",
            Scenario::Edit => "edit",
            Scenario::Comment => "comment",
            Scenario::Reword => "reword",
            Scenario::Header => "header",
            Scenario::Config => "config",
            Scenario::Cached => "cached",
            Scenario::CachedHttp => "cached-http",
            Scenario::Ccache => "ccache",
        }
    }

    /// Both tools start from nothing: Kbuild from the xtask's `.config`.
    pub fn is_cold(self) -> bool {
        matches!(
            self,
            Scenario::Cold | Scenario::Cached | Scenario::CachedHttp | Scenario::Ccache
        )
    }

    /// For clap: a name, with the fix when it is not one.
    pub fn parse(name: &str) -> Result<Scenario, String> {
        if let Some(scenario) = Scenario::ALL.into_iter().find(|s| s.name() == name) {
            return Ok(scenario);
        }
        let names: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
        let nearest = kernel_manifest::suggest::closest(name, names.iter().copied());
        let hint = nearest
            .map(|n| format!("did you mean `{n}`? "))
            .unwrap_or_default();
        Err(format!(
            "unknown scenario `{name}`: {hint}the scenarios are {}",
            names.join(", ")
        ))
    }

    /// What the scenario runs beyond a build.
    pub fn tools(self) -> Option<Tools> {
        match self {
            Scenario::CachedHttp => Some(Tools::HttpCache),
            Scenario::Ccache => Some(Tools::Ccache),
            _ => None,
        }
    }

    /// The file whose change alters objects, so that Kbuild must rebuild
    /// them once it is undone (see `Bench::refresh_kbuild`).
    pub fn changes_objects_of(self) -> Option<&'static str> {
        match self {
            Scenario::Edit | Scenario::Comment => Some(EDITED),
            Scenario::Header => Some(HEADER),
            Scenario::Cold
            | Scenario::Noop
            | Scenario::Touch
            | Scenario::Reword
            | Scenario::Config
            | Scenario::Cached
            | Scenario::CachedHttp
            | Scenario::Ccache => None,
        }
    }

    /// The change to make before both tools build, undone when dropped.
    pub fn change(self, source: &PrivateSource) -> Result<Option<Edit>> {
        Ok(match self {
            Scenario::Cold
            | Scenario::Noop
            | Scenario::Config
            | Scenario::Cached
            | Scenario::CachedHttp
            | Scenario::Ccache => None,
            Scenario::Touch => Some(source.touch(EDITED)?),
            Scenario::Edit => Some(source.append(EDITED, NEW_FUNCTION)?),
            Scenario::Comment => Some(source.append(EDITED, COMMENT)?),
            Scenario::Reword => Some(source.replace(EDITED, REWORD_FROM, REWORD_TO)?),
            Scenario::Header => Some(source.replace(HEADER, HEADER_FROM, HEADER_TO)?),
        })
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The symbol the `config` scenario flips: it changes the code of `printk`
/// and of what includes its header's `CONFIG_PRINTK_TIME` tests, and no
/// Makefile reads it.
const FLIPPED: &str = "PRINTK_TIME";

/// The `config` scenario's fragment: `PRINTK_TIME` the other way round
/// (off in every profile, on in `defconfig`).
pub fn config_flip(config: &DotConfig) -> String {
    match config.get(FLIPPED) {
        Some(_) => format!("# CONFIG_{FLIPPED} is not set\n"),
        None => format!("CONFIG_{FLIPPED}=y\n"),
    }
}

/// Built in every configuration, and no other file refers to what is added.
const EDITED: &str = "kernel/fork.c";

/// The object changes, so both tools relink. The prototype keeps
/// `-Wmissing-prototypes` quiet.
const NEW_FUNCTION: &str = "\nvoid xtask_bench_probe(void);\nvoid xtask_bench_probe(void) {}\n";

/// Appended, so no line of code moves, and yet a bitcode object changes:
/// clang's inline-asm source locations (`!srcloc`) are offsets into all the
/// files it read, the main file first, so every header's move with its
/// length. Both tools relink.
const COMMENT: &str = "\n/* cargo xtask bench: a comment only */\n";

/// The same length, so every offset stays and the object's bytes too: the
/// xtask stops after the compile (early cut-off), Kbuild relinks.
const REWORD_FROM: &str = "contains the help-routines for the 'fork' system call";
const REWORD_TO: &str = "contains the help routines for the 'fork' system call";

/// `include/linux/poison.h` reaches nearly every C file through `list.h`, so
/// both tools recompile nearly everything (Kbuild by the `.cmd` dependencies,
/// the xtask by the same inputs' hashes). `LIST_POISON1` is what every inlined
/// `list_del()` stores, so the code really changes in each object that
/// deletes from a list, and the kernel relinks. Another address in the
/// unmapped first page is as good a poison: in 6.12 every user compares with
/// the macro, never the number, and bit 0 (`list_bl`'s lock bit) stays clear.
/// (A new struct field risks the layout asserts; a new inline function that
/// nothing calls changes no code.)
const HEADER: &str = "include/linux/poison.h";
const HEADER_FROM: &str = "#define LIST_POISON1  ((void *) 0x100 + POISON_POINTER_DELTA)";
const HEADER_TO: &str = "#define LIST_POISON1  ((void *) 0x180 + POISON_POINTER_DELTA)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_parses_by_its_name() {
        for scenario in Scenario::ALL {
            assert_eq!(Scenario::parse(scenario.name()), Ok(scenario));
        }
    }

    #[test]
    fn an_unknown_scenario_names_the_valid_ones_and_the_nearest() {
        let error = Scenario::parse("nop").unwrap_err();
        assert_eq!(error, "unknown scenario `nop`: did you mean `noop`? the scenarios are cold, noop, touch, edit, comment, reword, header, config, cached, cached-http, ccache");
        let error = Scenario::parse("everything").unwrap_err();
        assert!(!error.contains("did you mean"), "{error}");
        assert!(
            error.ends_with(
                "cold, noop, touch, edit, comment, reword, header, config, cached, cached-http, ccache"
            ),
            "{error}"
        );
    }

    #[test]
    fn the_config_flip_turns_printk_time_the_other_way() {
        let off = DotConfig::parse("CONFIG_PRINTK=y\n# CONFIG_PRINTK_TIME is not set\n");
        assert_eq!(config_flip(&off), "CONFIG_PRINTK_TIME=y\n");
        let on = DotConfig::parse("CONFIG_PRINTK=y\nCONFIG_PRINTK_TIME=y\n");
        assert_eq!(config_flip(&on), "# CONFIG_PRINTK_TIME is not set\n");
    }

    /// The edits apply to the real 6.12 tree (failing, never skipping, without it).
    #[test]
    fn the_edits_fit_the_kernel_source() {
        let src = crate::kconfig::fixture::kernel_src();
        let header = std::fs::read_to_string(src.join(HEADER)).unwrap();
        assert_eq!(header.matches(HEADER_FROM).count(), 1);
        let fork = std::fs::read_to_string(src.join(EDITED)).unwrap();
        assert!(fork.ends_with("}\n") && !fork.contains("xtask_bench_probe"));
        assert_eq!(fork.matches(REWORD_FROM).count(), 1);
        assert_eq!(REWORD_FROM.len(), REWORD_TO.len());
    }

    /// Why `comment` relinks and `reword` does not: a ThinLTO object, built
    /// twice from the same path, keeps its bytes when a comment keeps its
    /// length, and changes when one is appended, through the inline asm of
    /// a header.
    #[test]
    fn only_a_comment_that_moves_offsets_changes_a_bitcode_object() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("h.h"),
            "static inline void barrier_nop(void) { asm volatile(\"nop\"); }\n",
        )
        .unwrap();
        let main = "/* the help-routines */\n#include \"h.h\"\nvoid f(void) { barrier_nop(); }\n";
        let object = |source: &str| {
            std::fs::write(dir.path().join("m.c"), source).unwrap();
            let status = std::process::Command::new("/usr/lib/llvm-19/bin/clang")
                .args([
                    "--target=x86_64-linux-gnu",
                    "-O2",
                    "-flto=thin",
                    "-c",
                    "m.c",
                ])
                .current_dir(dir.path())
                .status()
                .expect("clang-19 is missing: apt-get install clang-19");
            assert!(status.success());
            std::fs::read(dir.path().join("m.o")).unwrap()
        };
        let pristine = object(main);
        assert_eq!(
            object(&main.replace("help-routines", "help routines")),
            pristine
        );
        assert_ne!(object(&format!("{main}{COMMENT}")), pristine);
    }
}
