//! Graph: edges between planned steps. Make printed the steps in a valid
//! sequential order, so every edge points backwards and the graph is acyclic.
//!
//! Two rules give the edges:
//! - a step depends on the latest earlier step whose output its command names;
//! - a directory barrier, for inputs no command names (`#include "crc32table.h"`,
//!   `.incbin "realmode.bin"`, `printf ... | xargs ar`): a compile waits for the
//!   earlier generators in its directory and below, any other step for every
//!   earlier step there; generators of global headers (`include/`, `arch/*/include/`,
//!   the top directory) come before every later step.

use std::collections::HashMap;

use crate::kbuild::{Step, StepKind};

pub struct Graph {
    /// For each step, the steps it waits for.
    pub deps: Vec<Vec<usize>>,
    /// For each step, the steps that wait for it.
    pub rdeps: Vec<Vec<usize>>,
    /// Longest estimated cost from a step to the end of the build: scheduling priority.
    pub priority: Vec<u64>,
}

impl Graph {
    pub fn new(steps: &[Step]) -> Graph {
        let n = steps.len();
        let mut deps: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut producer: HashMap<&str, usize> = HashMap::new();
        let mut globals: Vec<usize> = Vec::new();
        for (i, step) in steps.iter().enumerate() {
            let mut mine: Vec<usize> = globals.clone();
            for token in tokens(&step.command).chain(step.needs.iter().map(String::as_str)) {
                if let Some(&p) = producer.get(token) {
                    mine.push(p);
                }
            }
            let dir = step.dir();
            let barrier = step.kind != StepKind::Backend;
            for (j, earlier) in steps[..i].iter().enumerate().filter(|_| barrier) {
                if !is_within(earlier.dir(), dir) {
                    continue;
                }
                if !step.is_compile() || earlier.is_generator() {
                    mine.push(j);
                }
            }
            mine.sort_unstable();
            mine.dedup();
            mine.retain(|&d| d != i);
            deps[i] = mine;
            producer.insert(step.output.as_str(), i);
            if step.is_generator() && is_global(dir) {
                globals.push(i);
            }
        }
        let mut rdeps = vec![Vec::new(); n];
        for (i, ds) in deps.iter().enumerate() {
            for &d in ds {
                rdeps[d].push(i);
            }
        }
        let mut priority = vec![0u64; n];
        for i in (0..n).rev() {
            let below = rdeps[i].iter().map(|&r| priority[r]).max().unwrap_or(0);
            priority[i] = cost(&steps[i]) + below;
        }
        Graph {
            deps,
            rdeps,
            priority,
        }
    }
}

/// `dir` is `base` or below it.
fn is_within(dir: &str, base: &str) -> bool {
    base.is_empty()
        || dir == base
        || (dir.starts_with(base) && dir.as_bytes().get(base.len()) == Some(&b'/'))
}

/// Directories whose generated files any compile may include.
fn is_global(dir: &str) -> bool {
    dir.is_empty()
        || dir.starts_with("include")
        || (dir.starts_with("arch/") && dir.split('/').nth(2).is_some_and(|d| d == "include"))
}

/// Relative cost estimates, so the critical path (long compile chains ending in
/// the biggest archives) starts first.
fn cost(step: &Step) -> u64 {
    match step.kind {
        StepKind::CompileC | StepKind::Backend => 100,
        StepKind::CompileAsm => 30,
        StepKind::Archive => 5,
        StepKind::Host | StepKind::Generator => 50,
        // A serial build of its own (objtool): start it first.
        StepKind::SubMake => 1000,
    }
}

/// Words of a shell command that could name files.
pub fn tokens(command: &str) -> impl Iterator<Item = &str> {
    command
        .split(|c: char| {
            matches!(
                c,
                '\'' | '"' | ';' | '|' | '<' | '>' | '(' | ')' | '=' | ','
            ) || c.is_whitespace()
        })
        .map(|t| t.trim_start_matches("./"))
        .filter(|t| !t.is_empty() && !t.starts_with('-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(tag: &str, output: &str, command: &str) -> Step {
        Step::new(tag, false, output, command)
    }

    #[test]
    fn tokens_are_the_words_that_could_name_files() {
        let command = "set -e; echo '  CC      kernel/fork.o'; clang -Wp,-MMD,kernel/.fork.o.d \
-DKBUILD_MODNAME='\"fork\"' -c -o ./kernel/fork.o kernel/fork.c|tee (log)>out<in\tnames=a,b";
        assert_eq!(
            tokens(command).collect::<Vec<_>>(),
            [
                "set",
                "echo",
                "CC",
                "kernel/fork.o",
                "clang",
                "kernel/.fork.o.d",
                "fork",
                "kernel/fork.o",
                "kernel/fork.c",
                "tee",
                "log",
                "out",
                "in",
                "names",
                "a",
                "b"
            ]
        );
    }

    #[test]
    fn named_outputs_and_directory_barriers_give_edges() {
        let steps = vec![
            step("GEN", "lib/crc32table.h", "gen > lib/crc32table.h"),
            step("CC", "lib/crc32.o", "clang -c -o lib/crc32.o crc32.c"),
            step("CC", "kernel/fork.o", "clang -c -o kernel/fork.o fork.c"),
            step("AR", "lib/built-in.a", "printf lib/%s crc32.o | xargs ar"),
            step(
                "UPD",
                "include/generated/x.h",
                "echo > include/generated/x.h",
            ),
            step("CC", "kernel/exit.o", "clang -c -o kernel/exit.o exit.c"),
            step("LD", "vmlinux.o", "ld -o vmlinux.o lib/built-in.a"),
        ];
        let g = Graph::new(&steps);
        assert_eq!(
            g.deps[1],
            vec![0],
            "compile waits for a generator in its directory"
        );
        assert!(
            g.deps[2].is_empty(),
            "compiles in other directories are independent"
        );
        assert_eq!(
            g.deps[3],
            vec![0, 1],
            "an archive waits for everything in its directory"
        );
        assert_eq!(
            g.deps[5],
            vec![4],
            "a global header generator precedes later steps"
        );
        assert!(g.deps[6].contains(&3), "a named output is an input");
        assert!(
            g.priority[0] > g.priority[2],
            "the chain through the archive is critical"
        );
    }
}
