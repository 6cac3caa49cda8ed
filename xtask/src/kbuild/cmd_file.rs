//! Kbuild's `.cmd` files, the one reader: `dir/.name.cmd` records how an output
//! was made (`savedcmd_<output> := <command>`, make-escaped) and, for compiles,
//! what fixdep found it read (`source_<output> :=` and `deps_<output> := \ ...`).

use std::{fs, path::Path};

/// Where Kbuild records how `output` was made: `kernel/fork.o` -> `kernel/.fork.o.cmd`.
pub fn path(output: &str) -> String {
    match output.rsplit_once('/') {
        Some((dir, name)) => format!("{dir}/.{name}.cmd"),
        None => format!(".{output}.cmd"),
    }
}

/// One input fixdep recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dep {
    /// A file, absolute (source tree) or relative to the object tree.
    File(String),
    /// `$(wildcard include/config/FOO)`: the Kconfig symbol `FOO`.
    Config(String),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CmdFile {
    /// The command, with make's escapes undone: a shell line again.
    pub command: Option<String>,
    /// `source_<output>` and `deps_<output>`, in the order fixdep wrote them.
    pub deps: Vec<Dep>,
}

impl CmdFile {
    /// The `.cmd` file of `output` in `objtree`; `None` when there is none.
    pub fn read(objtree: &Path, output: &str) -> Option<CmdFile> {
        let text = fs::read_to_string(objtree.join(path(output))).ok()?;
        Some(CmdFile::parse(&text, output))
    }

    /// The record of a `.cmd` file whatever it names (the tools build names
    /// its outputs by absolute path).
    pub fn parse_any(text: &str) -> CmdFile {
        let named = text.lines().find_map(|l| {
            let rest = l
                .strip_prefix("source_")
                .or_else(|| l.strip_prefix("deps_"))?;
            rest.split_once(" :=").map(|(name, _)| name)
        });
        named
            .map(|name| CmdFile::parse(text, name))
            .unwrap_or_default()
    }

    pub fn parse(text: &str, output: &str) -> CmdFile {
        let mut file = CmdFile::default();
        // Kbuild names an object as its Makefile does, which may climb out of
        // its directory (arm64's `arch/arm64/kvm/../../../virt/kvm/kvm_main.o`);
        // an archive lists it normalized. Both name the same record.
        let wanted = normalize(output);
        let names = |line: &str, kind: &str| -> Option<(bool, String)> {
            let rest = line.strip_prefix(kind)?;
            let (name, value) = rest.split_once(" :=")?;
            Some((normalize(name) == wanted, value.to_string()))
        };
        let mut in_list = false;
        for line in text.lines() {
            if file.command.is_none() {
                let saved = names(line, "savedcmd_").or_else(|| names(line, "cmd_"));
                if let Some((true, command)) = saved {
                    file.command =
                        Some(unescape_make(command.strip_prefix(' ').unwrap_or(&command)));
                    continue;
                }
            }
            let body = match (names(line, "source_"), names(line, "deps_")) {
                (Some((true, rest)), _) => rest,
                (_, Some((true, rest))) => {
                    in_list = true;
                    rest
                }
                _ if in_list => line.to_string(),
                _ => continue,
            };
            let continued = body.trim_end().ends_with('\\');
            let body = body.trim().trim_end_matches('\\').trim();
            if let Some(symbol) = body
                .strip_prefix("$(wildcard include/config/")
                .and_then(|s| s.strip_suffix(')'))
            {
                file.deps.push(Dep::Config(symbol.to_string()));
            } else {
                file.deps
                    .extend(body.split_whitespace().map(|f| Dep::File(f.to_string())));
            }
            if in_list && !continued {
                in_list = false;
            }
        }
        file
    }
}

/// `a/b/../c` -> `a/c`, lexically: the object tree has no symlinks to climb.
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    parts.join("/")
}

/// Undoes Kbuild's `make-cmd`: `$$` -> `$`, `$(pound)` -> `#`.
pub fn unescape_make(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$$") {
            out.push('$');
            rest = after;
        } else if let Some(after) = tail.strip_prefix("$(pound)") {
            out.push('#');
            rest = after;
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trimmed from a real 6.12 `kernel/.fork.o.cmd`.
    const FORK: &str = "savedcmd_kernel/fork.o := clang -Wp,-MMD,kernel/.fork.o.d -DPRICE='\"$$5\"' -D\"STR(s)=$(pound)s\" -c -o kernel/fork.o /src/kernel/fork.c

source_kernel/fork.o := /src/kernel/fork.c

deps_kernel/fork.o := \\
    $(wildcard include/config/STACKPROTECTOR) \\
  /src/include/linux/kconfig.h \\
  include/generated/autoconf.h \\

kernel/fork.o: $(deps_kernel/fork.o)

$(deps_kernel/fork.o):
";

    #[test]
    fn command_sources_and_kconfig_dependencies() {
        let file = CmdFile::parse(FORK, "kernel/fork.o");
        assert_eq!(
            file.command.as_deref(),
            Some("clang -Wp,-MMD,kernel/.fork.o.d -DPRICE='\"$5\"' -D\"STR(s)=#s\" -c -o kernel/fork.o /src/kernel/fork.c")
        );
        assert_eq!(
            file.deps,
            [
                Dep::File("/src/kernel/fork.c".into()),
                Dep::Config("STACKPROTECTOR".into()),
                Dep::File("/src/include/linux/kconfig.h".into()),
                Dep::File("include/generated/autoconf.h".into()),
            ]
        );
    }

    #[test]
    fn a_name_that_climbs_out_of_its_directory_is_the_same_record() {
        // arm64 builds virt/kvm from arch/arm64/kvm/Makefile.
        let text = "savedcmd_arch/arm64/kvm/../../../virt/kvm/kvm_main.o := clang -c -o arch/arm64/kvm/../../../virt/kvm/kvm_main.o /s/virt/kvm/kvm_main.c\n\n\
source_arch/arm64/kvm/../../../virt/kvm/kvm_main.o := /s/virt/kvm/kvm_main.c\n";
        for name in [
            "virt/kvm/kvm_main.o",
            "arch/arm64/kvm/../../../virt/kvm/kvm_main.o",
        ] {
            let file = CmdFile::parse(text, name);
            assert!(
                file.command
                    .as_deref()
                    .is_some_and(|c| c.starts_with("clang -c")),
                "{name}: {file:?}"
            );
            assert_eq!(
                file.deps,
                [Dep::File("/s/virt/kvm/kvm_main.c".into())],
                "{name}"
            );
        }
        assert_eq!(normalize("a/./b/../../c"), "c");
    }

    #[test]
    fn another_outputs_record_is_not_this_ones() {
        let file = CmdFile::parse(FORK, "kernel/exit.o");
        assert_eq!(file, CmdFile::default());
        assert_eq!(path("kernel/fork.o"), "kernel/.fork.o.cmd");
        assert_eq!(path("vmlinux.o"), ".vmlinux.o.cmd");
    }
}
