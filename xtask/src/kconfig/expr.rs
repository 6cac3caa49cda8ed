//! Kconfig expressions: tokenize, parse, and evaluate against a `.config`.
//!
//! `.config` already holds the results of `$(...)` probes for symbols such
//! as `CC_HAS_*`; a `$(...)` written straight into a condition cannot be
//! evaluated here, so it evaluates to `None` (unknown).

use std::ops::Range;

use super::lex::{number, quoted};
use super::{DotConfig, Kconfig, SymbolType};

/// Kconfig's tristate logic: n < m < y.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Tri {
    N,
    M,
    Y,
}

impl Tri {
    pub(super) fn not(self) -> Tri {
        match self {
            Tri::N => Tri::Y,
            Tri::M => Tri::M,
            Tri::Y => Tri::N,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    LParen,
    RParen,
    Not,
    And,
    Or,
    Cmp(CmpOp),
    Word(String),
    Quoted(String),
    /// `$(...)`: expanded by the real Kconfig, unknown here.
    Macro,
}

/// A symbol, a constant, or something we cannot evaluate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Atom {
    /// A symbol name, `y`/`m`/`n`, or a bare number.
    Word(String),
    /// A quoted string.
    Quoted(String),
    Macro,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Expr {
    Atom(Atom),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cmp(CmpOp, Atom, Atom),
}

fn tokenize(text: &str) -> Result<Vec<(Token, Range<usize>)>, String> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        let two = &bytes[i..(i + 2).min(bytes.len())];
        let token = match bytes[i] {
            b if b.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            b'(' => Token::LParen,
            b')' => Token::RParen,
            _ if two == b"&&" => Token::And,
            _ if two == b"||" => Token::Or,
            _ if two == b"!=" => Token::Cmp(CmpOp::Ne),
            _ if two == b"<=" => Token::Cmp(CmpOp::Le),
            _ if two == b">=" => Token::Cmp(CmpOp::Ge),
            _ if two == b"$(" => {
                i = macro_end(text, i)?;
                tokens.push((Token::Macro, start..i));
                continue;
            }
            b'!' => Token::Not,
            b'=' => Token::Cmp(CmpOp::Eq),
            b'<' => Token::Cmp(CmpOp::Lt),
            b'>' => Token::Cmp(CmpOp::Gt),
            quote @ (b'"' | b'\'') => {
                let (value, len) =
                    quoted(&text[i..], quote as char).ok_or("unterminated string")?;
                i += len;
                // "$(CROSS_COMPILE_COMPAT)" is as unknown as a bare macro.
                let token = if value.contains("$(") {
                    Token::Macro
                } else {
                    Token::Quoted(value)
                };
                tokens.push((token, start..i));
                continue;
            }
            b'&' | b'|' => return Err(format!("stray `{}`", bytes[i] as char)),
            _ => {
                while i < bytes.len() && !is_delimiter(bytes[i]) && !bytes[i..].starts_with(b"$(") {
                    i += 1;
                }
                tokens.push((Token::Word(text[start..i].to_string()), start..i));
                continue;
            }
        };
        i += match token {
            Token::LParen | Token::RParen | Token::Not => 1,
            Token::Cmp(CmpOp::Eq | CmpOp::Lt | CmpOp::Gt) => 1,
            _ => 2,
        };
        tokens.push((token, start..i));
    }
    Ok(tokens)
}

fn is_delimiter(b: u8) -> bool {
    b.is_ascii_whitespace() || b"()!&|=<>\"'".contains(&b)
}

/// The index just past the `)` closing the `$(` at `start`.
fn macro_end(text: &str, start: usize) -> Result<usize, String> {
    let mut depth = 0;
    for (index, b) in text.bytes().enumerate().skip(start + 1) {
        match b {
            b'(' => depth += 1,
            b')' if depth == 1 => return Ok(index + 1),
            b')' => depth -= 1,
            _ => {}
        }
    }
    Err("unterminated $(".to_string())
}

pub(super) fn parse_expr(text: &str) -> Result<Expr, String> {
    let tokens = tokenize(text)?
        .into_iter()
        .map(|(token, _)| token)
        .collect();
    let mut parser = ExprParser { tokens, pos: 0 };
    let expr = parser.or()?;
    if parser.pos != parser.tokens.len() {
        return Err(format!(
            "unexpected {:?} in `{text}`",
            parser.tokens[parser.pos]
        ));
    }
    Ok(expr)
}

/// Recursive descent with Kconfig's precedence: `||` < `&&` < `!` <
/// comparison, so `!A = B` is `!(A = B)`.
struct ExprParser {
    tokens: Vec<Token>,
    pos: usize,
}

impl ExprParser {
    fn eat(&mut self, token: &Token) -> bool {
        let found = self.tokens.get(self.pos) == Some(token);
        self.pos += usize::from(found);
        found
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut expr = self.and()?;
        while self.eat(&Token::Or) {
            expr = Expr::Or(Box::new(expr), Box::new(self.and()?));
        }
        Ok(expr)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut expr = self.not()?;
        while self.eat(&Token::And) {
            expr = Expr::And(Box::new(expr), Box::new(self.not()?));
        }
        Ok(expr)
    }

    fn not(&mut self) -> Result<Expr, String> {
        if self.eat(&Token::Not) {
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        if self.eat(&Token::LParen) {
            let expr = self.or()?;
            return if self.eat(&Token::RParen) {
                Ok(expr)
            } else {
                Err("missing `)`".to_string())
            };
        }
        let left = self.atom()?;
        match self.tokens.get(self.pos) {
            Some(Token::Cmp(op)) => {
                let op = *op;
                self.pos += 1;
                Ok(Expr::Cmp(op, left, self.atom()?))
            }
            _ => Ok(Expr::Atom(left)),
        }
    }

    fn atom(&mut self) -> Result<Atom, String> {
        let atom = match self.tokens.get(self.pos) {
            Some(Token::Word(word)) => Atom::Word(word.clone()),
            Some(Token::Quoted(value)) => Atom::Quoted(value.clone()),
            Some(Token::Macro) => Atom::Macro,
            other => return Err(format!("expected a symbol, found {other:?}")),
        };
        self.pos += 1;
        Ok(atom)
    }
}

/// The top-level `&&` operands of `text`, as source text.
pub(super) fn conjuncts(text: &str) -> Vec<&str> {
    let Ok(tokens) = tokenize(text) else {
        return vec![text];
    };
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (token, span) in tokens {
        match token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            Token::And if depth == 0 => {
                parts.push(text[start..span.start].trim());
                start = span.end;
            }
            _ => {}
        }
    }
    parts.push(text[start..].trim());
    parts
}

/// Numbers compare as numbers, everything else as strings.
fn compare(op: CmpOp, left: &str, right: &str) -> Tri {
    let ordering = match (number(left), number(right)) {
        (Some(l), Some(r)) => l.cmp(&r),
        _ => left.cmp(right),
    };
    let holds = match op {
        CmpOp::Eq => ordering.is_eq(),
        CmpOp::Ne => ordering.is_ne(),
        CmpOp::Lt => ordering.is_lt(),
        CmpOp::Le => ordering.is_le(),
        CmpOp::Gt => ordering.is_gt(),
        CmpOp::Ge => ordering.is_ge(),
    };
    if holds {
        Tri::Y
    } else {
        Tri::N
    }
}

/// Evaluates expressions against a `.config`, `None` meaning unknown.
pub(super) struct Env<'a> {
    pub(super) config: &'a DotConfig,
    pub(super) kconfig: &'a Kconfig,
}

impl Env<'_> {
    pub(super) fn eval_text(&self, text: &str) -> Option<Tri> {
        parse_expr(text).ok().and_then(|expr| self.eval(&expr))
    }

    fn eval(&self, expr: &Expr) -> Option<Tri> {
        match expr {
            Expr::Atom(atom) => self.atom_tri(atom),
            Expr::Not(inner) => self.eval(inner).map(Tri::not),
            // A known n decides an AND (and a known y an OR) even when the
            // other side is unknown.
            Expr::And(a, b) => match (self.eval(a), self.eval(b)) {
                (Some(Tri::N), _) | (_, Some(Tri::N)) => Some(Tri::N),
                (Some(a), Some(b)) => Some(a.min(b)),
                _ => None,
            },
            Expr::Or(a, b) => match (self.eval(a), self.eval(b)) {
                (Some(Tri::Y), _) | (_, Some(Tri::Y)) => Some(Tri::Y),
                (Some(a), Some(b)) => Some(a.max(b)),
                _ => None,
            },
            Expr::Cmp(op, a, b) => Some(compare(*op, &self.atom_str(a)?, &self.atom_str(b)?)),
        }
    }

    fn atom_tri(&self, atom: &Atom) -> Option<Tri> {
        match atom {
            Atom::Word(word) => Some(match word.as_str() {
                "y" => Tri::Y,
                "m" => Tri::M,
                "n" => Tri::N,
                // Only symbols of the tree have values, as in Kconfig.
                symbol if !self.kconfig.is_defined(symbol) => Tri::N,
                symbol => match self.config.get(symbol) {
                    Some("y") => Tri::Y,
                    Some("m") => Tri::M,
                    _ => Tri::N,
                },
            }),
            Atom::Quoted(_) => Some(Tri::N),
            Atom::Macro => None,
        }
    }

    /// The string value used in comparisons. As in Kconfig, a word that is
    /// no symbol stands for itself (`NR_CPUS >= 4`), and an unset symbol is
    /// "n" when bool/tristate and "" otherwise.
    fn atom_str(&self, atom: &Atom) -> Option<String> {
        match atom {
            Atom::Word(word) if matches!(word.as_str(), "y" | "m" | "n") => Some(word.clone()),
            Atom::Word(word) if self.kconfig.is_defined(word) => Some(self.symbol_value(word)),
            Atom::Word(word) => Some(word.clone()),
            Atom::Quoted(value) => Some(value.clone()),
            Atom::Macro => None,
        }
    }

    pub(super) fn symbol_value(&self, symbol: &str) -> String {
        match (self.config.get(symbol), self.kconfig.symbol_type(symbol)) {
            (Some(value), _) => value.to_string(),
            (None, Some(SymbolType::String | SymbolType::Int | SymbolType::Hex)) => String::new(),
            (None, _) => "n".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kconfig::fixture::{kernel_src, tree};

    #[test]
    fn expressions() {
        let dir = tree();
        let kconfig = Kconfig::load(dir.path(), "x86").unwrap();
        let config =
            DotConfig::parse("CONFIG_BASE=y\nCONFIG_MOD=m\nCONFIG_CMDLINE=\"x\"\nCONFIG_NR=10\n");
        let env = Env {
            config: &config,
            kconfig: &kconfig,
        };
        let eval = |text: &str| env.eval_text(text);
        assert_eq!(eval("BASE && MOD"), Some(Tri::M));
        assert_eq!(eval("!MOD"), Some(Tri::M));
        assert_eq!(eval("DEBUG || MOD"), Some(Tri::M));
        assert_eq!(eval("!BASE = y"), Some(Tri::N), "`!` binds looser than `=`");
        assert_eq!(
            eval("DEBUG || BASE && MOD"),
            Some(Tri::M),
            "`&&` binds tighter than `||`"
        );
        assert_eq!(eval("(DEBUG || BASE) && !DEBUG"), Some(Tri::Y));
        assert_eq!(eval("CMDLINE = \"x\" && MOD != n"), Some(Tri::Y));
        assert_eq!(eval("NR > 9 && NR <= 0xa && NR < 4"), Some(Tri::N));
        assert_eq!(eval("$(cc-option,-x) || BASE"), Some(Tri::Y));
        assert_eq!(eval("$(cc-option,-x) && DEBUG"), Some(Tri::N));
        assert_eq!(eval("$(cc-option,-x) && BASE"), None);
        assert_eq!(eval("\"$(CROSS)\" != \"\""), None);
        assert_eq!(eval("4 < 10"), Some(Tri::Y));
        // A word that is no symbol is n, and stands for itself in comparisons.
        assert_eq!(eval("UNDEFINED"), Some(Tri::N));
        assert_eq!(eval("UNDEFINED = \"UNDEFINED\""), Some(Tri::Y));
        assert_eq!(conjuncts("A && (B || C) && !D"), ["A", "(B || C)", "!D"]);
    }

    /// The whole tree reads for both arches, and every condition the reader
    /// records parses as an expression (an unparsable one would silently
    /// never be blamed).
    #[test]
    fn real_tree_reads_completely() {
        let srctree = kernel_src();
        for srcarch in ["x86", "arm64"] {
            let kconfig = Kconfig::load(&srctree, srcarch).unwrap();
            assert!(
                kconfig.definitions.len() > 10_000,
                "{srcarch}: {}",
                kconfig.definitions.len()
            );
            let conditions = kconfig
                .definitions
                .iter()
                .flat_map(|d| &d.conditions)
                .map(|c| &c.expr);
            let selects = kconfig.selects.iter().filter_map(|s| s.condition.as_ref());
            let broken: Vec<String> = conditions
                .chain(selects)
                .filter_map(|expr| parse_expr(expr).err().map(|e| format!("{expr}: {e}")))
                .collect();
            assert!(broken.is_empty(), "{srcarch}: {broken:#?}");
            assert!(kconfig
                .definitions
                .iter()
                .all(|d| d.ty.is_some() || kconfig.symbol_type(&d.symbol).is_some()));
        }
    }
}
