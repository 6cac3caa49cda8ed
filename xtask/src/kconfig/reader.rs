//! Reading Kconfig files into their [`Entries`]: statements, blocks, `source`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::entry::{Choice, Condition, ConditionKind, Definition, Select, SymbolType};
use super::lex::{is_symbol_name, quoted};

/// Every entry of a tree in reading order, for `tree.rs` to index.
#[derive(Debug)]
pub(super) struct Entries {
    pub(super) definitions: Vec<Definition>,
    pub(super) choices: Vec<Choice>,
    pub(super) selects: Vec<Select>,
}

/// Reads `<srctree>/Kconfig` and everything it sources, with `$(SRCARCH)`
/// expanded to `srcarch`.
pub(super) fn read(srctree: &Path, srcarch: &str) -> Result<Entries> {
    let mut reader = Reader {
        srctree,
        srcarch,
        depth: 0,
        blocks: Vec::new(),
        target: Target::Nothing,
        definitions: Vec::new(),
        choices: Vec::new(),
        selects: Vec::new(),
    };
    reader.read_file(Path::new("Kconfig"))?;
    reader.finish()
}

/// Guards against a file that sources itself.
const MAX_SOURCE_DEPTH: usize = 64;

/// A block that puts conditions on the entries inside it.
enum Block {
    If(Condition),
    Menu {
        title: String,
        conditions: Vec<Condition>,
        file: PathBuf,
        line: usize,
    },
    Choice {
        index: usize,
        conditions: Vec<Condition>,
    },
}

/// What attribute lines such as `depends on` currently apply to.
#[derive(Clone, Copy)]
enum Target {
    Nothing,
    Config(usize),
    Menu,
    Choice,
    Comment,
}

struct Reader<'a> {
    srctree: &'a Path,
    srcarch: &'a str,
    depth: usize,
    blocks: Vec<Block>,
    target: Target,
    definitions: Vec<Definition>,
    choices: Vec<Choice>,
    selects: Vec<Select>,
}

/// A statement: continuation lines joined, help text dropped.
struct Line {
    /// 1-based number of its first physical line.
    number: usize,
    text: String,
}

/// Splits a file into statements. Help text is dropped here, before
/// anything looks at words, because it is free prose: it ends at the first
/// non-blank line indented less than its own first line (tabs count to the
/// next multiple of 8), which may be as little as the attributes above it.
fn logical_lines(text: &str) -> Vec<Line> {
    let raw: Vec<&str> = text.lines().collect();
    let mut lines = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        let number = i + 1;
        let mut text = raw[i].to_string();
        i += 1;
        while text.ends_with('\\') && i < raw.len() {
            text.pop();
            text.push(' ');
            text.push_str(raw[i]);
            i += 1;
        }
        let first_word = text.split_whitespace().next();
        if matches!(first_word, Some("help" | "---help---")) {
            i = skip_help(&raw, i);
        } else {
            lines.push(Line { number, text });
        }
    }
    lines
}

/// The index of the first line after the help text starting at `i`.
fn skip_help(raw: &[&str], mut i: usize) -> usize {
    let mut help_indent = None;
    while i < raw.len() {
        let line = raw[i];
        if !line.trim().is_empty() {
            let indent = indentation(line);
            let first = *help_indent.get_or_insert(indent);
            if indent == 0 || indent < first {
                break;
            }
        }
        i += 1;
    }
    i
}

fn indentation(line: &str) -> usize {
    let mut column = 0;
    for c in line.chars() {
        match c {
            ' ' => column += 1,
            '\t' => column = (column / 8 + 1) * 8,
            _ => break,
        }
    }
    column
}

/// Macro definitions (`cc-option = $(success,...)`, `quote := "`) take any
/// text, even an unbalanced quote, so they are recognised before comments
/// are stripped.
fn is_macro_definition(text: &str) -> bool {
    let name_end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(text.len());
    let rest = text[name_end..].trim_start();
    name_end > 0 && (rest.starts_with(":=") || rest.starts_with("+=") || rest.starts_with('='))
}

/// Drops a `#` comment, leaving `#` inside quotes alone.
fn strip_comment(text: &str) -> &str {
    let mut quote = None;
    let mut escaped = false;
    for (index, c) in text.char_indices() {
        match (quote, c) {
            (Some(_), _) if escaped => escaped = false,
            (Some(_), '\\') => escaped = true,
            (Some(q), c) if c == q => quote = None,
            (None, '"' | '\'') => quote = Some(c),
            (None, '#') => return &text[..index],
            _ => {}
        }
    }
    text
}

/// `"depends on FOO"` -> `("depends", "on FOO")`.
fn split_word(text: &str) -> (&str, &str) {
    let text = text.trim();
    match text.find(char::is_whitespace) {
        Some(end) => (&text[..end], text[end..].trim_start()),
        None => (text, ""),
    }
}

/// `"title" if EXPR` (or an unquoted one-word title) -> title and condition.
fn split_prompt(args: &str) -> Result<(Option<String>, Option<String>), String> {
    let args = args.trim();
    let (prompt, rest) = match args.chars().next() {
        None => return Ok((None, None)),
        Some(quote @ ('"' | '\'')) => {
            let (prompt, len) = quoted(args, quote).ok_or("unterminated prompt string")?;
            (prompt, &args[len..])
        }
        Some(_) => {
            let (word, rest) = split_word(args);
            (word.to_string(), rest)
        }
    };
    let rest = rest.trim();
    if rest.is_empty() {
        return Ok((Some(prompt), None));
    }
    match split_word(rest) {
        ("if", condition) if !condition.is_empty() => {
            Ok((Some(prompt), Some(condition.to_string())))
        }
        _ => Err(format!("unexpected `{rest}` after prompt")),
    }
}

/// Collapses the runs of whitespace left by continuation lines; quoted
/// text is kept as written.
fn normalize(expr: &str) -> String {
    if expr.contains(['"', '\'']) {
        expr.trim().to_string()
    } else {
        expr.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

impl Reader<'_> {
    fn read_file(&mut self, file: &Path) -> Result<()> {
        let path = self.srctree.join(file);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        for line in logical_lines(&text) {
            self.statement(file, &line)?;
        }
        Ok(())
    }

    fn statement(&mut self, file: &Path, line: &Line) -> Result<()> {
        let text = line.text.trim();
        // Top-level macro calls such as `$(error-if,...)` and macro
        // definitions only matter to the real Kconfig's preprocessor.
        if text.starts_with("$(") || is_macro_definition(text) {
            return Ok(());
        }
        let (keyword, args) = split_word(strip_comment(text));
        let at = |message: String| anyhow::anyhow!("{}:{}: {message}", file.display(), line.number);
        match keyword {
            "" | "mainmenu" => {}
            "config" | "menuconfig" => self.start_config(file, line.number, args).map_err(at)?,
            "choice" => self.start_choice(file, line.number),
            "menu" => self.start_menu(file, line.number, args).map_err(at)?,
            "if" => {
                let condition = self.condition(ConditionKind::If, args, file, line.number);
                self.blocks.push(Block::If(condition));
                self.target = Target::Nothing;
            }
            "endif" | "endmenu" | "endchoice" => self.end_block(keyword).map_err(at)?,
            "source" | "osource" | "rsource" | "orsource" => {
                self.source(file, line.number, keyword, args)?
            }
            "comment" => self.target = Target::Comment,
            "depends" => self.depends(file, line.number, args).map_err(at)?,
            "visible" => self.visible(file, line.number, args).map_err(at)?,
            "bool" | "boolean" | "tristate" | "string" | "int" | "hex" | "prompt" => self
                .type_and_prompt(file, line.number, keyword, args)
                .map_err(at)?,
            "def_bool" | "def_tristate" => self
                .type_and_prompt(file, line.number, keyword, "")
                .map_err(at)?,
            "select" => self.select(file, line.number, args).map_err(at)?,
            // Defaults and the like decide values the fragment did not ask
            // for; they never stop a request from landing.
            "imply" | "default" | "range" | "option" | "modules" | "transitional" | "optional" => {
                if matches!(
                    self.target,
                    Target::Nothing | Target::Menu | Target::Comment
                ) {
                    return Err(at(format!("`{keyword}` outside a config or choice")));
                }
            }
            _ => return Err(at(format!("unknown Kconfig keyword `{keyword}`"))),
        }
        Ok(())
    }

    fn condition(&self, kind: ConditionKind, expr: &str, file: &Path, line: usize) -> Condition {
        Condition {
            kind,
            expr: normalize(expr),
            file: file.to_path_buf(),
            line,
        }
    }

    /// The conditions of all enclosing blocks, outermost first.
    fn enclosing(&self) -> Vec<Condition> {
        let mut conditions = Vec::new();
        for block in &self.blocks {
            match block {
                Block::If(condition) => conditions.push(condition.clone()),
                Block::Menu { conditions: c, .. } | Block::Choice { conditions: c, .. } => {
                    conditions.extend(c.iter().cloned())
                }
            }
        }
        conditions
    }

    fn start_config(&mut self, file: &Path, line: usize, args: &str) -> Result<(), String> {
        let (symbol, rest) = split_word(args);
        if !is_symbol_name(symbol) || !rest.is_empty() {
            return Err(format!("bad config name `{args}`"));
        }
        // Every config inside a choice block is one of its members, even
        // inside an `if` within it.
        let choice = self.blocks.iter().rev().find_map(|block| match block {
            Block::Choice { index, .. } => Some(*index),
            _ => None,
        });
        self.definitions.push(Definition {
            symbol: symbol.to_string(),
            file: file.to_path_buf(),
            line,
            ty: None,
            has_prompt: false,
            conditions: self.enclosing(),
            choice,
        });
        self.target = Target::Config(self.definitions.len() - 1);
        Ok(())
    }

    fn start_choice(&mut self, file: &Path, line: usize) {
        self.choices.push(Choice {
            file: file.to_path_buf(),
            line,
            members: Vec::new(),
        });
        let index = self.choices.len() - 1;
        self.blocks.push(Block::Choice {
            index,
            conditions: Vec::new(),
        });
        self.target = Target::Choice;
    }

    fn start_menu(&mut self, file: &Path, line: usize, args: &str) -> Result<(), String> {
        let (title, condition) = split_prompt(args)?;
        if condition.is_some() {
            return Err("`menu` takes no `if`".to_string());
        }
        let title = title.unwrap_or_default();
        self.blocks.push(Block::Menu {
            title,
            conditions: Vec::new(),
            file: file.to_path_buf(),
            line,
        });
        self.target = Target::Menu;
        Ok(())
    }

    fn end_block(&mut self, keyword: &str) -> Result<(), String> {
        let matches = matches!(
            (keyword, self.blocks.pop()),
            ("endif", Some(Block::If(_)))
                | ("endmenu", Some(Block::Menu { .. }))
                | ("endchoice", Some(Block::Choice { .. }))
        );
        self.target = Target::Nothing;
        if matches {
            Ok(())
        } else {
            Err(format!("`{keyword}` does not close the innermost block"))
        }
    }

    fn source(&mut self, file: &Path, line: usize, keyword: &str, args: &str) -> Result<()> {
        let at = format!("{}:{line}", file.display());
        let (path, rest) = split_prompt(args).map_err(|e| anyhow::anyhow!("{at}: {e}"))?;
        let path = path
            .filter(|_| rest.is_none())
            .with_context(|| format!("{at}: bad `{keyword}`"))?;
        let path = path.replace("$(SRCARCH)", self.srcarch);
        if path.contains("$(") {
            bail!("{at}: cannot expand `{path}` (only $(SRCARCH) is known)");
        }
        if path.contains(['*', '?', '[']) {
            bail!("{at}: glob patterns in `{keyword}` are not supported (`{path}`)");
        }
        // rsource and orsource are relative to the current file; the others
        // to the top of the tree.
        let relative = keyword.ends_with("rsource");
        let target = match (relative, file.parent()) {
            (true, Some(dir)) => dir.join(&path),
            _ => PathBuf::from(&path),
        };
        if !self.srctree.join(&target).is_file() {
            if keyword.starts_with('o') {
                return Ok(());
            }
            bail!("{at}: sourced file {} does not exist", target.display());
        }
        if self.depth >= MAX_SOURCE_DEPTH {
            bail!("{at}: `source` nested more than {MAX_SOURCE_DEPTH} deep");
        }
        self.target = Target::Nothing;
        self.depth += 1;
        let result = self.read_file(&target);
        self.depth -= 1;
        self.target = Target::Nothing;
        result
    }

    fn depends(&mut self, file: &Path, line: usize, args: &str) -> Result<(), String> {
        let ("on", expr) = split_word(args) else {
            return Err("expected `depends on`".to_string());
        };
        match self.target {
            Target::Config(index) => {
                let condition = self.condition(ConditionKind::DependsOn, expr, file, line);
                self.definitions[index].conditions.push(condition);
            }
            Target::Menu | Target::Choice => {
                let kind = match self.blocks.last() {
                    Some(Block::Menu { title, .. }) => ConditionKind::Menu(title.clone()),
                    _ => ConditionKind::Choice,
                };
                let condition = self.condition(kind, expr, file, line);
                match self.blocks.last_mut() {
                    Some(Block::Menu { conditions, .. } | Block::Choice { conditions, .. }) => {
                        conditions.push(condition)
                    }
                    _ => unreachable!("a menu or choice target is the innermost block"),
                }
            }
            // A comment's dependency only decides whether it is shown.
            Target::Comment => {}
            Target::Nothing => return Err("`depends on` outside an entry".to_string()),
        }
        Ok(())
    }

    fn visible(&mut self, file: &Path, line: usize, args: &str) -> Result<(), String> {
        let ("if", expr) = split_word(args) else {
            return Err("expected `visible if`".to_string());
        };
        let title = match (self.target, self.blocks.last()) {
            (Target::Menu, Some(Block::Menu { title, .. })) => title.clone(),
            _ => return Err("`visible if` outside a menu".to_string()),
        };
        let condition = self.condition(ConditionKind::VisibleIf(title), expr, file, line);
        if let Some(Block::Menu { conditions, .. }) = self.blocks.last_mut() {
            conditions.push(condition);
        }
        Ok(())
    }

    /// A type line (`bool "prompt" if EXPR`), `prompt "..."`, or
    /// `def_bool`/`def_tristate` (called with no arguments: what follows
    /// them is a default value, not a prompt).
    fn type_and_prompt(
        &mut self,
        file: &Path,
        line: usize,
        keyword: &str,
        args: &str,
    ) -> Result<(), String> {
        let index = match self.target {
            Target::Config(index) => index,
            // A choice's type and prompt say nothing about its members.
            Target::Choice => return Ok(()),
            _ => return Err(format!("`{keyword}` outside a config or choice")),
        };
        let ty = match keyword {
            "bool" | "boolean" | "def_bool" => Some(SymbolType::Bool),
            "tristate" | "def_tristate" => Some(SymbolType::Tristate),
            "string" => Some(SymbolType::String),
            "int" => Some(SymbolType::Int),
            "hex" => Some(SymbolType::Hex),
            _ => None,
        };
        let (prompt, condition) = split_prompt(args)?;
        let condition = condition.map(|c| self.condition(ConditionKind::PromptIf, &c, file, line));
        let definition = &mut self.definitions[index];
        definition.ty = definition.ty.or(ty);
        definition.has_prompt |= prompt.is_some();
        definition.conditions.extend(condition);
        Ok(())
    }

    fn select(&mut self, file: &Path, line: usize, args: &str) -> Result<(), String> {
        let index = match self.target {
            Target::Config(index) => index,
            _ => return Err("`select` outside a config".to_string()),
        };
        let (target, rest) = split_word(args);
        let condition = match split_word(rest) {
            ("", _) => None,
            ("if", condition) => Some(normalize(condition)),
            _ => return Err(format!("unexpected `{rest}` after select")),
        };
        self.selects.push(Select {
            selector: self.definitions[index].symbol.clone(),
            target: target.to_string(),
            condition,
            file: file.to_path_buf(),
            line,
        });
        Ok(())
    }

    fn finish(self) -> Result<Entries> {
        if let Some(block) = self.blocks.last() {
            let (what, file, line) = match block {
                Block::If(condition) => ("if", &condition.file, condition.line),
                Block::Menu { file, line, .. } => ("menu", file, *line),
                Block::Choice { index, .. } => (
                    "choice",
                    &self.choices[*index].file,
                    self.choices[*index].line,
                ),
            };
            bail!("{}:{line}: `{what}` is never closed", file.display());
        }
        Ok(Entries {
            definitions: self.definitions,
            choices: self.choices,
            selects: self.selects,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kconfig::fixture::tree;

    fn definitions<'a>(entries: &'a Entries, symbol: &str) -> Vec<&'a Definition> {
        let all = entries.definitions.iter();
        all.filter(|d| d.symbol == symbol).collect()
    }

    #[test]
    fn help_text_is_skipped() {
        let dir = tree();
        let entries = read(dir.path(), "x86").unwrap();
        assert!(definitions(&entries, "FAKE").is_empty());
        let base = definitions(&entries, "BASE");
        assert_eq!(base.len(), 1);
        assert!(base[0].conditions.is_empty(), "{:?}", base[0].conditions);
        let lkdtm = definitions(&entries, "LKDTM_LIKE");
        let exprs: Vec<&str> = lkdtm[0]
            .conditions
            .iter()
            .map(|c| c.expr.as_str())
            .collect();
        assert_eq!(exprs, ["TESTS", "BASE", "DEBUG || IN_MENU"]);
        assert_eq!(lkdtm[0].ty, Some(SymbolType::Tristate));
        assert!(lkdtm[0].has_prompt);
    }

    #[test]
    fn reader_rejects_broken_trees() {
        for (text, error) in [
            (
                "if A\nconfig B\n\tbool\n",
                "Kconfig:1: `if` is never closed",
            ),
            (
                "menu \"m\"\nendif\n",
                "Kconfig:2: `endif` does not close the innermost block",
            ),
            (
                "config A\n\tbool\n  This is stray prose\n",
                "Kconfig:3: unknown Kconfig keyword `This`",
            ),
            (
                "source \"missing/Kconfig\"\n",
                "Kconfig:1: sourced file missing/Kconfig does not exist",
            ),
        ] {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("Kconfig"), text).unwrap();
            let got = read(dir.path(), "x86").unwrap_err().to_string();
            assert_eq!(got, error);
        }
    }
}
