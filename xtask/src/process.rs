//! Child processes: the one place that creates them, so every external tool
//! is started the same way and every failure names its command and what it
//! printed. Which tool runs where is the business of the module that knows
//! it (`kbuild` for make, `engine::shell` for steps, `boot::qemu` for QEMU).

use std::{
    ffi::OsStr,
    process::{Command, Output},
};

use anyhow::{bail, Context, Result};

/// `program`, to be given its arguments.
pub fn command(program: impl AsRef<OsStr>) -> Command {
    Command::new(program)
}

/// The command line as a shell would take it, for messages.
pub fn display(command: &Command) -> String {
    let words = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|w| w.to_string_lossy().into_owned());
    shlex::try_join(words.collect::<Vec<_>>().iter().map(String::as_str))
        .unwrap_or_else(|_| format!("{command:?}"))
}

/// Runs `command` to its end, insisting that it succeeds; its output.
pub fn output(command: &mut Command) -> Result<Output> {
    let out = command
        .output()
        .with_context(|| format!("running {}", display(command)))?;
    if !out.status.success() {
        bail!(
            "`{}` failed ({}): {}",
            display(command),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    Ok(out)
}

/// Its standard output, as text.
pub fn stdout(command: &mut Command) -> Result<String> {
    Ok(String::from_utf8_lossy(&output(command)?.stdout).into_owned())
}

/// Runs `command` with the xtask's own stdin, stdout and stderr, insisting
/// that it succeeds.
pub fn run(command: &mut Command) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("running {}", display(command)))?;
    if !status.success() {
        bail!("`{}` failed ({status})", display(command));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_names_the_command_and_what_it_printed() {
        let error = stdout(command("sh").args(["-c", "echo no such file >&2; exit 3"]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "`sh -c 'echo no such file >&2; exit 3'` failed (exit status: 3): no such file"
        );
        assert_eq!(stdout(command("echo").arg("a b")).unwrap(), "a b\n");
        let missing = run(&mut command("/nonexistent/tool")).unwrap_err();
        assert_eq!(missing.to_string(), "running /nonexistent/tool");
    }
}
