//! The dry run: turn `make -n` output into steps. Every Kbuild recipe that does
//! real work carries a quiet tag (`echo '  CC      kernel/fork.o'`) naming its
//! kind and its output; untagged lines (recursive `make -f`, `:`) are not steps.

use super::step::Step;

/// Parses `make -n` output. A recipe line continued with backslash-newline is
/// one step.
pub fn parse(dry_run: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    // A hand-written recipe announced with `$(kecho)`, collecting its lines.
    let mut announced: Option<Step> = None;
    for line in logical_lines(dry_run) {
        if let Some((tag, module, output)) = kecho_tag(&line) {
            steps.extend(announced.take().filter(has_commands));
            announced = Some(Step::new(&tag, module, &output, &line));
            continue;
        }
        let tagged = quiet_tag(&line);
        let untagged = if tagged.is_none() {
            untagged_output(&line)
        } else {
            None
        };
        if tagged.is_none() && untagged.is_none() && !is_recursion(&line) {
            if let Some(step) = announced.as_mut() {
                step.command.push('\n');
                step.command.push_str(&line);
            }
            continue;
        }
        steps.extend(announced.take().filter(has_commands));
        if let Some((tag, module, output)) = tagged {
            steps.push(Step::new(&tag, module, &output, &line));
        } else if let Some(output) = untagged {
            // A multi-line recipe (`rule_cc_o_c`: the compile, then objtool
            // deps, genksyms CRCs, ... appended to the `.cmd` file) prints one
            // line per command; the untagged ones belong to the step above.
            match steps.last_mut() {
                Some(last) if last.output == output => {
                    last.command.push('\n');
                    last.command.push_str(&line);
                }
                _ => steps.push(Step::new("CMD", false, &output, &line)),
            }
        }
    }
    steps.extend(announced.filter(has_commands));
    steps
}

/// An announced recipe is a step only if a command followed the
/// announcement (`SYNC` announces a recursive make, which is not one).
fn has_commands(step: &Step) -> bool {
    step.command.contains('\n')
}

/// `make -f ...` (or `:`): the recursion and no-op lines between recipes.
fn is_recursion(line: &str) -> bool {
    let first = line.split_whitespace().next().unwrap_or("");
    first == ":" || first.rsplit('/').next() == Some("make")
}

fn logical_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for raw in text.lines() {
        // Make hands backslash-newline to the shell unchanged; so do we.
        if raw.ends_with('\\') {
            current.push_str(raw);
            current.push('\n');
            continue;
        }
        current.push_str(raw);
        lines.push(std::mem::take(&mut current));
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
}

/// Kbuild commands without a `quiet_cmd_` (the `.mod` lists of modules,
/// `modules.order`) print no tag, but `$(cmd)` still wraps them in
/// `set -e; ... trap 'rm -f OUTPUT; ...` so an interrupt deletes the output.
fn untagged_output(line: &str) -> Option<String> {
    const TRAP: &str = "trap 'rm -f ";
    if !line.starts_with("set -e;") {
        return None;
    }
    let start = line.find(TRAP)? + TRAP.len();
    let output = line[start..].split(';').next()?.trim();
    (!output.is_empty() && !output.contains(' ')).then(|| output.to_string())
}

/// The `echo '  TAG     output'` of a Kbuild recipe.
fn quiet_tag(line: &str) -> Option<(String, bool, String)> {
    const MARK: &str = "echo '  ";
    let start = line.find(MARK)? + MARK.len();
    let rest = &line[start..];
    let end = rest.find('\'')?;
    tag_and_output(rest[..end].trim_end())
}

/// `echo "  GEN     net/wireless/shipped-certs.c"`: a hand-written recipe
/// (`@$(kecho) "  GEN     $@"`) announcing itself; its commands follow on
/// lines of their own.
fn kecho_tag(line: &str) -> Option<(String, bool, String)> {
    let text = line.strip_prefix("echo \"  ")?.strip_suffix('"')?;
    tag_and_output(text.trim_end())
}

/// `TAG     output`, padded to 8 columns, perhaps with `[M]`.
fn tag_and_output(text: &str) -> Option<(String, bool, String)> {
    // Tags are padded to 8 columns; module steps add `[M]` (`CC [M]  x.o`,
    // or after a long tag, `OBJCOPY [M] x.o`).
    let (tag, output) = if text.len() > 8 && text.is_char_boundary(8) {
        text.split_at(8)
    } else {
        return None;
    };
    let (tag, output) = (tag.trim(), output.trim());
    let (tag, module, output) = match (tag.strip_suffix("[M]"), output.strip_prefix("[M]")) {
        (Some(tag), _) => (tag.trim_end(), true, output),
        (None, Some(output)) => (tag, true, output.trim()),
        (None, None) => (tag, false, output),
    };
    if tag.is_empty()
        || output.is_empty()
        || !tag
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    {
        return None;
    }
    Some((tag.to_string(), module, output.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kbuild::step::StepKind;

    #[test]
    fn parses_tagged_recipes_and_skips_the_rest() {
        let text = "make -f scripts/Makefile.build obj=kernel\n:\n\
set -e;  echo '  CC      kernel/fork.o';   clang -c -o kernel/fork.o fork.c\n\
set -e;  echo '  CC [M]  lib/test_module.o'; clang -c -o lib/test_module.o x.c\n\
set -e;    trap 'rm -f lib/test_module.o; trap - HUP; kill -s HUP $$' HUP; genksyms >> lib/.test_module.o.cmd\n\
if [ -f .config ]; then \\\n\techo >&2 x; \\\nfi\n\
set -e;    trap 'rm -f fs/efivarfs/efivarfs.mod; trap - HUP; kill -s HUP $$' HUP; printf '%s\\n' file.o > fs/efivarfs/efivarfs.mod\n\
set -e;  echo '  AR      kernel/built-in.a'; rm -f kernel/built-in.a; \\\nprintf x | xargs llvm-ar\n";
        let steps = parse(text);
        assert_eq!(steps.len(), 4, "{steps:#?}");
        assert_eq!(steps[0].tag, "CC");
        assert_eq!(steps[0].output, "kernel/fork.o");
        assert_eq!(steps[0].dir(), "kernel");
        assert_eq!(
            (steps[1].tag.as_str(), steps[1].module, steps[1].kind),
            ("CC", true, StepKind::CompileC)
        );
        assert_eq!(steps[1].output, "lib/test_module.o");
        assert!(steps[1].command.ends_with("x.c\nset -e;    trap 'rm -f lib/test_module.o; trap - HUP; kill -s HUP $$' HUP; genksyms >> lib/.test_module.o.cmd"), "{}", steps[1].command);
        assert_eq!(
            (steps[2].tag.as_str(), steps[2].output.as_str()),
            ("CMD", "fs/efivarfs/efivarfs.mod")
        );
        assert_eq!(steps[3].command, "set -e;  echo '  AR      kernel/built-in.a'; rm -f kernel/built-in.a; \\\nprintf x | xargs llvm-ar");
    }

    /// net/wireless/Makefile's `shipped-certs.c` (a defconfig unit), as
    /// `make -n` prints it: the `$(kecho)` line, then the recipe.
    #[test]
    fn a_recipe_announced_by_kecho_is_a_step() {
        let text = "echo \"  GEN     net/wireless/shipped-certs.c\"\n\
(echo '#include \"reg.h\"'; \\\n  echo 'const u8 shipped_regdb_certs[] = {'; \\\n  echo | cat - /src/net/wireless/certs/debian.hex ; \\\n  echo '};'; \\\n ) > net/wireless/shipped-certs.c\n\
set -e;  echo '  CC      net/wireless/shipped-certs.o'; clang -c -o net/wireless/shipped-certs.o net/wireless/shipped-certs.c\n\
echo \"  SYNC    include/config/auto.conf\"\n\
make -f ./Makefile syncconfig\n";
        let steps = parse(text);
        assert_eq!(steps.len(), 2, "{steps:#?}");
        assert_eq!(
            (steps[0].kind, steps[0].output.as_str()),
            (StepKind::Generator, "net/wireless/shipped-certs.c")
        );
        assert!(
            steps[0].command.starts_with("echo \"  GEN ")
                && steps[0]
                    .command
                    .ends_with(") > net/wireless/shipped-certs.c"),
            "{}",
            steps[0].command
        );
        assert_eq!(steps[1].output, "net/wireless/shipped-certs.o");
    }
}
