//! Kbuild recipes are shell lines: the simple commands in them.

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
