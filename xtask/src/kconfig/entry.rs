//! One Kconfig entry as the reader records it: its type, the conditions on
//! it with the lines they were written on, and the `choice` and `select`
//! statements around it. `tree.rs` indexes them by symbol.

use std::fmt;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymbolType {
    Bool,
    Tristate,
    String,
    Int,
    Hex,
}

/// Where a condition on a symbol comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConditionKind {
    /// The entry's own `depends on`.
    DependsOn,
    /// An enclosing `if` block.
    If,
    /// The `depends on` of an enclosing `menu` (its title).
    Menu(String),
    /// The `depends on` of an enclosing `choice`.
    Choice,
    /// The `if` of the entry's prompt (`bool "x" if EXPERT`).
    PromptIf,
    /// The `visible if` of an enclosing `menu` (its title).
    VisibleIf(String),
}

impl ConditionKind {
    /// Whether the condition limits the symbol's value; the others only hide
    /// its prompt, which stops a fragment from setting it all the same.
    pub fn limits_value(&self) -> bool {
        !matches!(self, ConditionKind::PromptIf | ConditionKind::VisibleIf(_))
    }

    /// The words printed before the expression.
    pub(super) fn prefix(&self) -> String {
        match self {
            ConditionKind::DependsOn => "depends on".to_string(),
            ConditionKind::If => "if".to_string(),
            ConditionKind::Menu(title) => format!("menu \"{title}\" depends on"),
            ConditionKind::Choice => "choice depends on".to_string(),
            ConditionKind::PromptIf => "prompt only if".to_string(),
            ConditionKind::VisibleIf(title) => format!("menu \"{title}\" visible if"),
        }
    }
}

/// One condition on a definition, with the Kconfig line it was written on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub kind: ConditionKind,
    /// The expression's source text, whitespace collapsed.
    pub expr: String,
    /// Relative to the source tree.
    pub file: PathBuf,
    pub line: usize,
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let location = format!("{}:{}", self.file.display(), self.line);
        write!(f, "{} {} ({location})", self.kind.prefix(), self.expr)
    }
}

/// One `config SYM` or `menuconfig SYM` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    pub symbol: String,
    /// Relative to the source tree.
    pub file: PathBuf,
    pub line: usize,
    /// `None` when this entry leaves the type to another definition.
    pub ty: Option<SymbolType>,
    pub has_prompt: bool,
    /// Enclosing blocks outermost first, then the entry's own conditions.
    pub conditions: Vec<Condition>,
    /// Index into [`Kconfig::choices`] when the entry is a choice member.
    pub(super) choice: Option<usize>,
}

impl Definition {
    /// Everything this entry's value depends on, ANDed into one expression;
    /// `"y"` when there is nothing.
    pub fn dependency(&self) -> String {
        let parts: Vec<String> = self
            .conditions
            .iter()
            .filter(|condition| condition.kind.limits_value())
            .map(|condition| {
                if condition.expr.contains("||") {
                    format!("({})", condition.expr)
                } else {
                    condition.expr.clone()
                }
            })
            .collect();
        if parts.is_empty() {
            "y".to_string()
        } else {
            parts.join(" && ")
        }
    }
}

/// A `choice` block: at most one of its bool members is y.
#[derive(Debug, Clone)]
pub(super) struct Choice {
    pub(super) file: PathBuf,
    pub(super) line: usize,
    pub(super) members: Vec<String>,
}

/// `select TARGET if CONDITION` in the entry of `selector`.
#[derive(Debug, Clone)]
pub(super) struct Select {
    pub(super) selector: String,
    pub(super) target: String,
    pub(super) condition: Option<String>,
    pub(super) file: PathBuf,
    pub(super) line: usize,
}
