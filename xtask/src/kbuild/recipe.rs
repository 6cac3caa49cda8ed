//! Kbuild recipes are shell lines: the simple commands in them, and a
//! compile taken apart (its compiler invocation, its source, whether it is
//! a plain call of one program). The launcher, the fork server, the
//! compilation database and the ThinLTO backends all read commands here.

use std::path::{Component, Path, PathBuf};

/// Splits a shell line at its unquoted command separators (`;`, `&`, `|`,
/// newlines), keeping quotes and escapes for shlex. A backslash-newline is a
/// line continuation, not a separator.
pub fn simple_commands(line: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let mut current = String::new();
    let mut chars = line.chars();
    let (mut single, mut double) = (false, false);
    while let Some(c) = chars.next() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '\\' if !single => {
                current.push(c);
                if let Some(next) = chars.next() {
                    current.push(next);
                }
                continue;
            }
            ';' | '&' | '|' | '\n' if !single && !double => {
                commands.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    commands.push(current);
    commands.retain(|c| !c.trim().is_empty());
    commands
}

/// The argv of the command in a shell line that compiles `output`: the
/// simple command with `-c` and `-o <output>`.
pub fn compiler_invocation(shell_line: &str, output: &str) -> Option<Vec<String>> {
    let output = normalize(Path::new(output));
    simple_commands(shell_line)
        .into_iter()
        .filter_map(|c| shlex::split(&c))
        .find(|argv| {
            argv.iter().any(|a| a == "-c")
                && argv
                    .windows(2)
                    .any(|w| w[0] == "-o" && normalize(Path::new(&w[1])) == output)
        })
}

/// The source file a shell line compiles into `output`, as written there.
pub fn source_of(shell_line: &str, output: &str) -> Option<String> {
    compiler_invocation(shell_line, output).and_then(|argv| source_file(&argv).map(String::from))
}

const SOURCE_EXTENSIONS: &[&str] = &["c", "S", "s"];

/// The source of a compiler invocation: what follows `-c -o OUT`, or else the
/// last argument that is no option (nor an option's value) and ends in `.c`/`.S`.
pub fn source_file(argv: &[String]) -> Option<&str> {
    let after_output = argv.windows(4).find_map(|w| {
        (w[0] == "-c" && w[1] == "-o" && !w[3].starts_with('-')).then_some(w[3].as_str())
    });
    after_output.or_else(|| {
        const TAKES_VALUE: &[&str] = &[
            "-o", "-include", "-imacros", "-MF", "-MT", "-MQ", "-x", "-Xclang", "-isystem", "-I",
        ];
        argv.iter().enumerate().skip(1).rev().find_map(|(i, arg)| {
            let is_source = !arg.starts_with('-')
                && !TAKES_VALUE.contains(&argv[i - 1].as_str())
                && Path::new(arg)
                    .extension()
                    .is_some_and(|e| SOURCE_EXTENSIONS.iter().any(|s| e == *s));
            is_source.then_some(arg.as_str())
        })
    })
}

/// `path` without `.` components and with `..` applied, lexically.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// `command`'s argv if it is a plain call of `program`: `command` is
/// exactly shlex's quoting of that argv, which quotes every character a shell
/// would expand, redirect or split on (the backends' commands are made so).
pub fn plain_call(command: &str, program: &str) -> Option<Vec<String>> {
    let argv = shlex::split(command)?;
    let quoted = shlex::try_join(argv.iter().map(String::as_str)).ok()?;
    (quoted == command && argv.first().map(String::as_str) == Some(program)).then_some(argv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_plain_call_of_the_program_is_forked() {
        let argv = [
            "clang",
            "-DNAME=\"main\"",
            "-fthinlto-index=a.o.thinlto.bc",
            "-c",
            "a b.o",
        ];
        let command = shlex::try_join(argv).unwrap();
        assert_eq!(plain_call(&command, "clang").unwrap(), argv);
        assert!(plain_call("clang -c a.c > log", "clang").is_none());
        assert!(plain_call("clang -c a.c; rm a.c", "clang").is_none());
        assert!(plain_call("clang -c $SRC", "clang").is_none());
        assert!(plain_call("clang  -c a.c", "clang").is_none());
        assert!(plain_call("gcc -c a.c", "clang").is_none());
        assert!(plain_call("CC=1 clang -c a.c", "clang").is_none());
    }

    #[test]
    fn shell_lines_split_only_at_unquoted_separators() {
        let line = "set -e; echo 'a; b' && x \"c | d\" \\\n e || y\\;z; p | q";
        assert_eq!(
            simple_commands(line),
            [
                "set -e",
                " echo 'a; b' ",
                " x \"c | d\" \\\n e ",
                " y\\;z",
                " p ",
                " q"
            ]
        );
    }
}
