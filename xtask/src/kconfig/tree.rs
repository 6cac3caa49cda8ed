//! What the reader gathers from a Kconfig tree. It is not a Kconfig
//! implementation: for every `config`/`menuconfig` entry it only records
//! its type, whether it has a prompt, its own `depends on` and prompt `if`
//! lines, the conditions of the blocks around it (`if`, `menu ... depends
//! on`, `choice ... depends on`, `visible if`) and its `select`s.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::reader;

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

/// What the reader gathered from a Kconfig tree.
#[derive(Debug, Clone)]
pub struct Kconfig {
    pub(super) srcarch: String,
    pub(super) definitions: Vec<Definition>,
    by_symbol: HashMap<String, Vec<usize>>,
    pub(super) choices: Vec<Choice>,
    pub(super) selects: Vec<Select>,
}

/// The definitions of `symbol` (without `CONFIG_`) in the tree at `srctree`
/// for `srcarch`; empty when it is not defined.
pub fn definitions(srctree: &Path, srcarch: &str, symbol: &str) -> Result<Vec<Definition>> {
    let kconfig = Kconfig::load(srctree, srcarch)?;
    Ok(kconfig.definitions(symbol).into_iter().cloned().collect())
}

impl Kconfig {
    /// Reads `<srctree>/Kconfig` and everything it sources, with
    /// `$(SRCARCH)` expanded to `srcarch`.
    pub fn load(srctree: &Path, srcarch: &str) -> Result<Kconfig> {
        reader::read(srctree, srcarch)
    }

    /// Indexes what the reader gathered: definitions by symbol, and the
    /// members of each choice.
    pub(super) fn new(
        srcarch: &str,
        definitions: Vec<Definition>,
        mut choices: Vec<Choice>,
        selects: Vec<Select>,
    ) -> Kconfig {
        let mut by_symbol: HashMap<String, Vec<usize>> = HashMap::new();
        for (index, definition) in definitions.iter().enumerate() {
            by_symbol
                .entry(definition.symbol.clone())
                .or_default()
                .push(index);
            if let Some(choice) = definition.choice {
                choices[choice].members.push(definition.symbol.clone());
            }
        }
        Kconfig {
            srcarch: srcarch.to_string(),
            definitions,
            by_symbol,
            choices,
            selects,
        }
    }

    /// The definitions of `symbol` (without `CONFIG_`), in reading order.
    pub fn definitions(&self, symbol: &str) -> Vec<&Definition> {
        self.by_symbol
            .get(symbol)
            .map(|indices| indices.iter().map(|&i| &self.definitions[i]).collect())
            .unwrap_or_default()
    }

    pub(super) fn is_defined(&self, symbol: &str) -> bool {
        self.by_symbol.contains_key(symbol)
    }

    /// The type from whichever definition states one.
    pub(super) fn symbol_type(&self, symbol: &str) -> Option<SymbolType> {
        self.definitions(symbol)
            .iter()
            .find_map(|definition| definition.ty)
    }
}
