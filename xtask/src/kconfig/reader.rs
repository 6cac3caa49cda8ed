//! Checks that the Kconfig symbols a fragment asked for landed in `.config`,
//! and explains the ones that did not.
//!
//! Configuring is `make tinyconfig`, fragment lines appended to `.config`,
//! then `make olddefconfig`. That last step silently drops any request whose
//! dependencies are unmet, so the build would go on with a kernel that lacks
//! what the fragment promised. [`verify`] compares the fragment [`Request`]s
//! with the resulting [`DotConfig`] and, for each miss, names the dependency
//! that is not met, e.g.
//!
//! ```text
//! CONFIG_LKDTM=y (targets/common/proof.config:7) did not land (is not set):
//!     if RUNTIME_TESTING_MENU [=n] (lib/Kconfig.debug:2167)
//! ```
//!
//! To explain, it reads the Kconfig tree with a small reader of its own
//! ([`Kconfig`]). It is not a Kconfig implementation: it only records, for
//! every `config`/`menuconfig` entry, its type, whether it has a prompt, its
//! own `depends on` and prompt `if` lines, the conditions of the blocks
//! around it (`if`, `menu ... depends on`, `choice ... depends on`,
//! `visible if`) and its `select`s. Expressions are evaluated against the
//! values in `.config` (which already hold the results of `$(...)` probes
//! for symbols such as `CC_HAS_*`); a `$(...)` written straight into a
//! condition cannot be evaluated here and is never blamed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

// ---------------------------------------------------------------------------
// .config
// ---------------------------------------------------------------------------

/// A parsed `.config` (or `include/config/auto.conf`): `CONFIG_FOO=y`,
/// `CONFIG_BAR="str"`, `# CONFIG_BAZ is not set`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DotConfig {
    /// Symbol (without `CONFIG_`) to value; strings are stored unquoted.
    values: BTreeMap<String, String>,
}

impl DotConfig {
    pub fn read(path: &Path) -> Result<DotConfig> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Ok(Self::parse(&text))
    }

    /// Lines that are not settings are ignored: `.config` is written by
    /// Kconfig itself, so there is nothing useful to report about them.
    pub fn parse(text: &str) -> DotConfig {
        let mut values = BTreeMap::new();
        for line in text.lines() {
            if let Ok(Some((symbol, value))) = parse_setting(line) {
                if value == "n" {
                    values.remove(&symbol);
                } else {
                    values.insert(symbol, value);
                }
            }
        }
        DotConfig { values }
    }

    /// Value of `symbol` (given without `CONFIG_`), strings unquoted. `None`
    /// when unset or absent: "n" is never returned.
    pub fn get(&self, symbol: &str) -> Option<&str> {
        self.values.get(symbol).map(String::as_str)
    }
}

/// One `.config`-style line: `Ok(Some((symbol, value)))` for an assignment
/// (value `"n"` for `# CONFIG_FOO is not set`), `Ok(None)` for blank lines
/// and comments, `Err` for anything else.
fn parse_setting(line: &str) -> Result<Option<(String, String)>, String> {
    let line = line.trim();
    if let Some(comment) = line.strip_prefix('#') {
        let not_set = comment
            .trim_start()
            .strip_prefix("CONFIG_")
            .and_then(|rest| rest.strip_suffix(" is not set"))
            .filter(|symbol| is_symbol_name(symbol));
        return Ok(not_set.map(|symbol| (symbol.to_string(), "n".to_string())));
    }
    if line.is_empty() {
        return Ok(None);
    }
    let Some((key, raw)) = line.split_once('=') else {
        return Err(format!("expected `CONFIG_NAME=value`, found `{line}`"));
    };
    let symbol = key
        .strip_prefix("CONFIG_")
        .filter(|symbol| is_symbol_name(symbol))
        .ok_or_else(|| format!("`{key}` is not a CONFIG_ symbol"))?;
    Ok(Some((symbol.to_string(), parse_value(raw)?)))
}

fn is_symbol_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A setting's value: `y`/`m`/`n`, a number, or a quoted string (unquoted
/// here). Anything with spaces outside quotes, such as a trailing comment,
/// is rejected because Kconfig would not understand it either.
fn parse_value(raw: &str) -> Result<String, String> {
    if raw.starts_with('"') {
        return unquote(raw).ok_or_else(|| format!("badly quoted string `{raw}`"));
    }
    if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Ok(raw.to_string());
    }
    Err(format!(
        "unexpected value `{raw}` (want y, m, n, a number or a \"string\")"
    ))
}

/// `"a \"b\""` -> `a "b"`; `None` unless the whole of `raw` is one string.
fn unquote(raw: &str) -> Option<String> {
    let mut chars = raw.strip_prefix('"')?.chars();
    let mut out = String::new();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return chars.as_str().is_empty().then_some(out),
            _ => out.push(c),
        }
    }
    None
}

/// How a value is written in a setting: strings quoted, the rest bare.
fn display_value(value: &str) -> String {
    let bare = matches!(value, "y" | "m" | "n") || number(value).is_some();
    if bare {
        value.to_string()
    } else {
        format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

// ---------------------------------------------------------------------------
// Fragments
// ---------------------------------------------------------------------------

/// One line of a fragment file: `CONFIG_FOO=y`, `CONFIG_FOO=m`,
/// `CONFIG_FOO="x"` or `# CONFIG_FOO is not set` (a request for n).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Without the `CONFIG_` prefix.
    pub symbol: String,
    /// `"n"` for not set; strings unquoted, as [`DotConfig::get`] returns them.
    pub value: String,
    pub file: PathBuf,
    /// 1-based.
    pub line: usize,
}

impl Request {
    /// `CONFIG_FOO=y`, `CONFIG_BAR="x"`.
    fn setting(&self) -> String {
        format!("CONFIG_{}={}", self.symbol, display_value(&self.value))
    }
}

/// The requests of a fragment file. Comments and blank lines are ignored;
/// any other line that is not a setting is an error naming file and line.
pub fn parse_fragment(path: &Path) -> Result<Vec<Request>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_fragment_text(&text, path)
}

fn parse_fragment_text(text: &str, file: &Path) -> Result<Vec<Request>> {
    let mut requests = Vec::new();
    for (index, line) in text.lines().enumerate() {
        match parse_setting(line) {
            Ok(Some((symbol, value))) => requests.push(Request {
                symbol,
                value,
                file: file.to_path_buf(),
                line: index + 1,
            }),
            Ok(None) => {}
            Err(message) => bail!("{}:{}: {message}", file.display(), index + 1),
        }
    }
    Ok(requests)
}

// ---------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------

/// A request that did not land, with the reasons found for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmet {
    pub request: Request,
    /// The value `.config` ended up with; `None` when not set.
    pub actual: Option<String>,
    pub reasons: Vec<String>,
}

/// Said when the Kconfig tree shows no unmet dependency.
const NO_REASON: &str =
    "no unmet dependency found; another symbol may select or exclude it (e.g. a choice)";

impl fmt::Display for Unmet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let request = &self.request;
        let actual = match &self.actual {
            None => "is not set".to_string(),
            Some(value) => format!("is {}", display_value(value)),
        };
        write!(
            f,
            "{} ({}:{}) did not land ({actual}): ",
            request.setting(),
            request.file.display(),
            request.line
        )?;
        if self.reasons.is_empty() {
            f.write_str(NO_REASON)
        } else {
            f.write_str(&self.reasons.join("; "))
        }
    }
}

/// Compares `requests` with the resulting `.config` and explains, using the
/// Kconfig tree at `srctree` for `srcarch`, the ones that did not land.
///
/// A value must match exactly (`y` asked and `m` obtained is a miss); an `n`
/// request is met by an absent symbol. When a symbol is requested several
/// times only the last request counts, as it is the one olddefconfig saw.
/// A tree this reader cannot follow does not hide the misses: each gets a
/// reason saying why it could not be explained.
pub fn verify(
    srctree: &Path,
    srcarch: &str,
    config: &DotConfig,
    requests: &[Request],
) -> Result<Vec<Unmet>> {
    let missing: Vec<(&Request, Option<&str>)> = last_requests(requests)
        .into_iter()
        .map(|request| (request, config.get(&request.symbol)))
        .filter(|(request, actual)| !landed(&request.value, *actual))
        .collect();
    if missing.is_empty() {
        // Reading the whole tree is the slow part; skip it when all is well.
        return Ok(Vec::new());
    }
    // The misses matter more than their explanation: when this reader cannot
    // follow the tree (say, a keyword from a newer kernel), still report them.
    let kconfig = Kconfig::load(srctree, srcarch);
    let requested: HashSet<&str> = requests.iter().map(|r| r.symbol.as_str()).collect();
    let explain = |request: &Request| match &kconfig {
        Ok(kconfig) => kconfig.explain(config, request, &requested),
        Err(error) => vec![format!(
            "cannot explain: reading the Kconfig tree failed: {error:#}"
        )],
    };
    Ok(missing
        .into_iter()
        .map(|(request, actual)| Unmet {
            reasons: explain(request),
            request: request.clone(),
            actual: actual.map(str::to_string),
        })
        .collect())
}

fn landed(requested: &str, actual: Option<&str>) -> bool {
    match actual {
        None => requested == "n",
        Some(actual) => actual == requested,
    }
}

/// The last request of each symbol, in fragment order.
fn last_requests(requests: &[Request]) -> Vec<&Request> {
    let last: HashMap<&str, usize> = requests
        .iter()
        .enumerate()
        .map(|(index, request)| (request.symbol.as_str(), index))
        .collect();
    requests
        .iter()
        .enumerate()
        .filter(|(index, request)| last[request.symbol.as_str()] == *index)
        .map(|(_, request)| request)
        .collect()
}

// ---------------------------------------------------------------------------
// The Kconfig tree
// ---------------------------------------------------------------------------

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
    fn prefix(&self) -> String {
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
    choice: Option<usize>,
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
struct Choice {
    file: PathBuf,
    line: usize,
    members: Vec<String>,
}

/// `select TARGET if CONDITION` in the entry of `selector`.
#[derive(Debug, Clone)]
struct Select {
    selector: String,
    target: String,
    condition: Option<String>,
    file: PathBuf,
    line: usize,
}

/// What the reader gathered from a Kconfig tree.
#[derive(Debug, Clone)]
pub struct Kconfig {
    srcarch: String,
    definitions: Vec<Definition>,
    by_symbol: HashMap<String, Vec<usize>>,
    choices: Vec<Choice>,
    selects: Vec<Select>,
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

    /// The definitions of `symbol` (without `CONFIG_`), in reading order.
    pub fn definitions(&self, symbol: &str) -> Vec<&Definition> {
        self.by_symbol
            .get(symbol)
            .map(|indices| indices.iter().map(|&i| &self.definitions[i]).collect())
            .unwrap_or_default()
    }

    fn is_defined(&self, symbol: &str) -> bool {
        self.by_symbol.contains_key(symbol)
    }

    /// The type from whichever definition states one.
    fn symbol_type(&self, symbol: &str) -> Option<SymbolType> {
        self.definitions(symbol)
            .iter()
            .find_map(|definition| definition.ty)
    }

    /// Why `request` did not land; empty when nothing in the tree explains it.
    fn explain(
        &self,
        config: &DotConfig,
        request: &Request,
        requested: &HashSet<&str>,
    ) -> Vec<String> {
        let symbol = request.symbol.as_str();
        let definitions = self.definitions(symbol);
        if definitions.is_empty() {
            return vec![format!(
                "CONFIG_{symbol} is not defined in any Kconfig file for SRCARCH={} \
                 (misspelt, or not in this kernel version?)",
                self.srcarch
            )];
        }
        let env = Env {
            config,
            kconfig: self,
        };
        let actual = config.get(symbol);
        let need = required_level(&request.value, self.symbol_type(symbol));
        let mut reasons = Vec::new();
        if need > Tri::N {
            reasons.extend(self.unmet_dependencies(&env, symbol, need, requested, true));
            if definitions.iter().all(|definition| !definition.has_prompt) {
                let first = definitions[0];
                reasons.push(format!(
                    "CONFIG_{symbol} has no prompt ({}:{}), so a fragment cannot set it; \
                     only a `select` or its `default` can",
                    first.file.display(),
                    first.line
                ));
            }
            reasons.extend(self.choice_conflict(config, &definitions, actual));
            if request.value == "m" && actual == Some("y") && config.get("MODULES") != Some("y") {
                reasons.push(
                    "m needs CONFIG_MODULES=y (MODULES [=n]); without modules, m becomes y"
                        .to_string(),
                );
            }
        }
        if level(actual) > level(Some(request.value.as_str())) {
            reasons.extend(self.selected_by(&env, symbol));
        }
        dedup(reasons)
    }

    /// The conditions keeping `symbol` below `need`, one reason per failing
    /// top-level `&&` conjunct. A symbol defined several times can take its
    /// value from any definition, so nothing is reported when one of them
    /// has all its conditions met. With `follow`, a failing conjunct that is
    /// a single symbol nobody requested gets that symbol's own reasons too.
    fn unmet_dependencies(
        &self,
        env: &Env,
        symbol: &str,
        need: Tri,
        requested: &HashSet<&str>,
        follow: bool,
    ) -> Vec<String> {
        let mut failing = Vec::new();
        let mut undecided = Vec::new();
        for definition in self.definitions(symbol) {
            let check = env.check(definition, need);
            if check.failing.is_empty() && check.unknown.is_empty() {
                return Vec::new();
            }
            if check.failing.is_empty() {
                undecided.extend(check.unknown);
            } else {
                failing.extend(check.failing);
            }
        }
        if !undecided.is_empty() {
            // Met except for terms we cannot evaluate: those are the suspects.
            return undecided
                .into_iter()
                .map(|term| format!("{} cannot be evaluated here and may be false", term.text))
                .collect();
        }
        let direct: HashSet<String> = failing.iter().map(|term| term.text.clone()).collect();
        let mut reasons = Vec::new();
        for term in failing {
            reasons.push(term.text);
            let Some(culprit) = term
                .single_symbol
                .filter(|s| follow && !requested.contains(s.as_str()))
            else {
                continue;
            };
            let mut deeper = self.unmet_dependencies(env, &culprit, Tri::M, requested, false);
            // An enclosing `if` usually holds both; saying it twice adds nothing.
            deeper.retain(|reason| !direct.contains(reason));
            if !deeper.is_empty() {
                reasons.push(format!("{culprit} in turn: {}", deeper.join(", ")));
            }
        }
        reasons
    }

    /// For a bool choice member that stayed unset: the member chosen instead.
    fn choice_conflict(
        &self,
        config: &DotConfig,
        definitions: &[&Definition],
        actual: Option<&str>,
    ) -> Vec<String> {
        if actual.is_some() {
            return Vec::new();
        }
        let mut reasons = Vec::new();
        for choice in definitions.iter().filter_map(|d| d.choice) {
            let choice = &self.choices[choice];
            for other in &choice.members {
                if other != &definitions[0].symbol && config.get(other) == Some("y") {
                    reasons.push(format!(
                        "it is in the choice at {}:{}, where CONFIG_{other}=y was chosen instead",
                        choice.file.display(),
                        choice.line
                    ));
                }
            }
        }
        reasons
    }

    /// The `select`s that are forcing `symbol` on.
    fn selected_by(&self, env: &Env, symbol: &str) -> Vec<String> {
        self.selects
            .iter()
            .filter(|select| select.target == symbol)
            .filter(|select| {
                env.config
                    .get(&select.selector)
                    .is_some_and(|v| v == "y" || v == "m")
            })
            .filter(|select| {
                let condition = select.condition.as_deref().map(|c| env.eval_text(c));
                !matches!(condition, Some(Some(Tri::N)))
            })
            .map(|select| {
                let condition = select
                    .condition
                    .as_deref()
                    .map(|c| format!(" if {c}{}", env.shown_values(c)))
                    .unwrap_or_default();
                format!(
                    "selected by CONFIG_{} [={}]{condition} ({}:{})",
                    select.selector,
                    env.config.get(&select.selector).unwrap_or("n"),
                    select.file.display(),
                    select.line
                )
            })
            .collect()
    }
}

/// The lowest value every condition must reach for `requested` to land.
/// Bool symbols treat a dependency on an `m` symbol as `y`; non-tristate
/// values (strings, numbers) only need their conditions to be on at all.
fn required_level(requested: &str, ty: Option<SymbolType>) -> Tri {
    match requested {
        "n" => Tri::N,
        "y" if ty == Some(SymbolType::Tristate) => Tri::Y,
        _ => Tri::M,
    }
}

/// y > m > anything else: used to spot values higher than requested.
fn level(value: Option<&str>) -> u8 {
    match value {
        Some("y") => 2,
        Some("m") => 1,
        _ => 0,
    }
}

fn dedup(items: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::new();
    items
        .into_iter()
        .filter(|item| seen.insert(item.clone()))
        .collect()
}

// ---------------------------------------------------------------------------
// Reading Kconfig files
// ---------------------------------------------------------------------------

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

/// The string quoted by `quote` at the start of `text` and the length of
/// the quoted text, quotes included.
fn quoted(text: &str, quote: char) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = text.char_indices().skip(1);
    while let Some((index, c)) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?.1),
            c if c == quote => return Some((out, index + 1)),
            c => out.push(c),
        }
    }
    None
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

    fn finish(self) -> Result<Kconfig> {
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
        let mut by_symbol: HashMap<String, Vec<usize>> = HashMap::new();
        let mut choices = self.choices;
        for (index, definition) in self.definitions.iter().enumerate() {
            by_symbol
                .entry(definition.symbol.clone())
                .or_default()
                .push(index);
            if let Some(choice) = definition.choice {
                choices[choice].members.push(definition.symbol.clone());
            }
        }
        Ok(Kconfig {
            srcarch: self.srcarch.to_string(),
            definitions: self.definitions,
            by_symbol,
            choices,
            selects: self.selects,
        })
    }
}

// ---------------------------------------------------------------------------
// Expressions
// ---------------------------------------------------------------------------

/// Kconfig's tristate logic: n < m < y.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Tri {
    N,
    M,
    Y,
}

impl Tri {
    fn not(self) -> Tri {
        match self {
            Tri::N => Tri::Y,
            Tri::M => Tri::M,
            Tri::Y => Tri::N,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmpOp {
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
enum Atom {
    /// A symbol name, `y`/`m`/`n`, or a bare number.
    Word(String),
    /// A quoted string.
    Quoted(String),
    Macro,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Expr {
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

fn parse_expr(text: &str) -> Result<Expr, String> {
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
fn conjuncts(text: &str) -> Vec<&str> {
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

/// A decimal or `0x` hexadecimal number.
fn number(text: &str) -> Option<i128> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => i128::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
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

/// A conjunct that keeps a definition's value too low.
struct Term {
    /// E.g. `depends on ACPI [=n] (arch/x86/Kconfig:1990)`.
    text: String,
    /// The symbol, when the conjunct is nothing but one symbol.
    single_symbol: Option<String>,
}

/// The outcome of checking one definition's conditions.
struct Check {
    failing: Vec<Term>,
    /// Conjuncts that cannot be evaluated here (they use `$(...)`).
    unknown: Vec<Term>,
}

/// Evaluates expressions against a `.config`, `None` meaning unknown.
struct Env<'a> {
    config: &'a DotConfig,
    kconfig: &'a Kconfig,
}

impl Env<'_> {
    fn check(&self, definition: &Definition, need: Tri) -> Check {
        let mut check = Check {
            failing: Vec::new(),
            unknown: Vec::new(),
        };
        for condition in &definition.conditions {
            for conjunct in conjuncts(&condition.expr) {
                let value = self.eval_text(conjunct);
                let text = format!(
                    "{} {conjunct}{} ({}:{})",
                    condition.kind.prefix(),
                    self.shown_values(conjunct),
                    condition.file.display(),
                    condition.line
                );
                let term = Term {
                    text,
                    single_symbol: single_symbol(conjunct),
                };
                match value {
                    None => check.unknown.push(term),
                    Some(value) if value < need => check.failing.push(term),
                    Some(_) => {}
                }
            }
        }
        check
    }

    fn eval_text(&self, text: &str) -> Option<Tri> {
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

    fn symbol_value(&self, symbol: &str) -> String {
        match (self.config.get(symbol), self.kconfig.symbol_type(symbol)) {
            (Some(value), _) => value.to_string(),
            (None, Some(SymbolType::String | SymbolType::Int | SymbolType::Hex)) => String::new(),
            (None, _) => "n".to_string(),
        }
    }

    /// ` [=n]` for a one-symbol conjunct, ` [A=n, B=y]` for several, nothing
    /// when it names no symbol.
    fn shown_values(&self, conjunct: &str) -> String {
        let symbols = parse_expr(conjunct)
            .map(|e| symbols_of(&e, self.kconfig))
            .unwrap_or_default();
        let shown = |symbol: &String| {
            let value = self.symbol_value(symbol);
            match self.kconfig.symbol_type(symbol) {
                Some(SymbolType::String | SymbolType::Int | SymbolType::Hex)
                    if value.is_empty() =>
                {
                    "\"\"".to_string()
                }
                Some(SymbolType::String) => format!("\"{value}\""),
                _ => value,
            }
        };
        match symbols.as_slice() {
            [] => String::new(),
            [only] => format!(" [={}]", shown(only)),
            many => {
                let values: Vec<String> = many
                    .iter()
                    .map(|symbol| format!("{symbol}={}", shown(symbol)))
                    .collect();
                format!(" [{}]", values.join(", "))
            }
        }
    }
}

/// The symbols an expression names, in order: words that are defined, or
/// that are neither `y`/`m`/`n` nor numbers.
fn symbols_of(expr: &Expr, kconfig: &Kconfig) -> Vec<String> {
    fn walk(expr: &Expr, kconfig: &Kconfig, out: &mut Vec<String>) {
        let mut atom = |atom: &Atom| {
            if let Atom::Word(word) = atom {
                let constant = matches!(word.as_str(), "y" | "m" | "n") || number(word).is_some();
                if (kconfig.is_defined(word) || !constant) && !out.contains(word) {
                    out.push(word.clone());
                }
            }
        };
        match expr {
            Expr::Atom(a) => atom(a),
            Expr::Cmp(_, a, b) => {
                atom(a);
                atom(b);
            }
            Expr::Not(inner) => walk(inner, kconfig, out),
            Expr::And(a, b) | Expr::Or(a, b) => {
                walk(a, kconfig, out);
                walk(b, kconfig, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(expr, kconfig, &mut out);
    out
}

/// The symbol a conjunct consists of, if that is all it is.
fn single_symbol(conjunct: &str) -> Option<String> {
    match parse_expr(conjunct) {
        Ok(Expr::Atom(Atom::Word(word))) if !matches!(word.as_str(), "y" | "m" | "n") => Some(word),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small Kconfig tree exercising the grammar the reader must follow.
    const KCONFIG: &str = r#"# SPDX-License-Identifier: GPL-2.0
mainmenu "Test/$(ARCH) Kernel Configuration"

source "scripts/Kconfig.include"
source "arch/$(SRCARCH)/Kconfig"
osource "does/not/exist/Kconfig"

config BASE
	bool "base"
	help
	  Help text is prose: it must not be parsed.
	  depends on NOTHING
	  config FAKE

	  if you say y here, endif
config DEBUG
	bool "debug"	# a trailing comment

if DEBUG
config UNDER_IF
	bool "under if"
endif

menu "Hacking"
	depends on BASE
config IN_MENU
	bool "in menu"
endmenu

menuconfig TESTS
	bool "tests"

if TESTS
config LKDTM_LIKE
	tristate "lkdtm-like"
	depends on BASE
	depends on DEBUG || \
		   IN_MENU
	help
	Help indented no deeper than the attributes still ends only at a
	line indented less.
	depends on NOT_A_DEPENDENCY
endif # TESTS

choice
	prompt "pick one"
	depends on BASE
	default PICK_A
config PICK_A
	bool "a"
config PICK_B
	bool "b"
endchoice

config NO_PROMPT
	bool
	default y if BASE

config HIDDEN_PROMPT
	bool "hidden" if EXPERT

config EXPERT
	bool "expert"

config SELECTOR
	bool "selector"
	select FORCED
	select OTHER if DEBUG

config FORCED
	bool 'forced'

config CMDLINE
	string "cmdline"

config NR
	int "nr"

config NEEDS_CMDLINE
	bool "needs"
	depends on CMDLINE != "" && NR >= 4

config MACRO_DEP
	bool "macro"
	depends on $(cc-option,-mfoo) && BASE

config DUP
	bool "dup"
	depends on DEBUG

config MOD
	tristate "mod"
	depends on BASE

if TESTS
config INNER
	bool "inner"
	depends on DEBUG
config OUTER
	bool "outer"
	depends on INNER
endif
"#;

    const INCLUDE: &str = r#"quote := "
cc-option = $(success,$(CC) -Werror $(1) -c -x c /dev/null -o /dev/null)
$(error-if,$(failure,true),oops)
"#;

    const ARCH_X86: &str = r#"
config X86_ONLY
	bool "x86 only"
	depends on ACPI

config ACPI
	bool "acpi"

config DUP
	bool "dup"
	depends on ACPI
"#;

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for (path, text) in [
            ("Kconfig", KCONFIG),
            ("scripts/Kconfig.include", INCLUDE),
            ("arch/x86/Kconfig", ARCH_X86),
            ("arch/arm64/Kconfig", "# nothing here\n"),
        ] {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    fn request(setting: &str) -> Request {
        let (symbol, value) = parse_setting(setting).unwrap().unwrap();
        Request {
            symbol,
            value,
            file: PathBuf::from("test.config"),
            line: 1,
        }
    }

    /// The reasons `setting` did not land with `config`; panics if it did.
    fn reasons(srcarch: &str, config: &str, settings: &[&str]) -> Vec<Vec<String>> {
        let dir = tree();
        let requests: Vec<Request> = settings.iter().map(|s| request(s)).collect();
        let unmet = verify(dir.path(), srcarch, &DotConfig::parse(config), &requests).unwrap();
        assert_eq!(
            unmet.len(),
            requests.len(),
            "all should be unmet: {unmet:#?}"
        );
        unmet.into_iter().map(|u| u.reasons).collect()
    }

    fn reasons_x86(config: &str, setting: &str) -> Vec<String> {
        reasons("x86", config, &[setting]).remove(0)
    }

    #[test]
    fn dot_config_values() {
        let config = DotConfig::parse(
            "#\n# Automatically generated\n#\nCONFIG_A=y\nCONFIG_B=m\n# CONFIG_C is not set\n\
             CONFIG_S=\"say \\\"hi\\\" \\\\o/\"\nCONFIG_N=0x10\nCONFIG_D=n\n",
        );
        assert_eq!(config.get("A"), Some("y"));
        assert_eq!(config.get("B"), Some("m"));
        assert_eq!(config.get("C"), None);
        assert_eq!(config.get("D"), None);
        assert_eq!(config.get("S"), Some("say \"hi\" \\o/"));
        assert_eq!(config.get("N"), Some("0x10"));
        assert_eq!(config.get("CONFIG_A"), None);
    }

    #[test]
    fn fragment_lines() {
        let text = "# comment\n\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=\"x y\"\nCONFIG_D=m\n";
        let requests = parse_fragment_text(text, Path::new("f.config")).unwrap();
        let got: Vec<(&str, &str, usize)> = requests
            .iter()
            .map(|r| (r.symbol.as_str(), r.value.as_str(), r.line))
            .collect();
        assert_eq!(
            got,
            [("A", "y", 3), ("B", "n", 4), ("C", "x y", 5), ("D", "m", 6)]
        );
        assert_eq!(requests[0].file, Path::new("f.config"));
    }

    #[test]
    fn fragment_errors_name_file_and_line() {
        for bad in [
            "A=y",
            "CONFIG_A=y # on",
            "CONFIG_A",
            "CONFIG_A=\"open",
            "CONFIG_A=",
        ] {
            let error = parse_fragment_text(&format!("# ok\n{bad}\n"), Path::new("f.config"))
                .expect_err(bad)
                .to_string();
            assert!(error.starts_with("f.config:2: "), "{bad}: {error}");
        }
    }

    #[test]
    fn landed_requests_are_not_reported() {
        let requests = [
            request("CONFIG_A=y"),
            request("# CONFIG_B is not set"),
            request("CONFIG_S=\"x\""),
        ];
        let config = DotConfig::parse("CONFIG_A=y\nCONFIG_S=\"x\"\n");
        // No tree is needed when everything landed.
        let unmet = verify(Path::new("/nonexistent"), "x86", &config, &requests).unwrap();
        assert!(unmet.is_empty(), "{unmet:?}");
    }

    #[test]
    fn only_the_last_request_of_a_symbol_counts() {
        let requests = [request("CONFIG_A=m"), request("CONFIG_A=y")];
        let config = DotConfig::parse("CONFIG_A=y\n");
        assert!(verify(Path::new("/nonexistent"), "x86", &config, &requests)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn unreadable_tree_still_reports_the_miss() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Kconfig"), "frobnicate FOO\n").unwrap();
        let unmet = verify(
            dir.path(),
            "x86",
            &DotConfig::default(),
            &[request("CONFIG_A=y")],
        )
        .unwrap();
        assert_eq!(
            unmet[0].reasons,
            ["cannot explain: reading the Kconfig tree failed: \
              Kconfig:1: unknown Kconfig keyword `frobnicate`"]
        );
    }

    #[test]
    fn if_block() {
        assert_eq!(
            reasons_x86("", "CONFIG_UNDER_IF=y"),
            ["if DEBUG [=n] (Kconfig:19)"]
        );
    }

    #[test]
    fn menu_depends() {
        assert_eq!(
            reasons_x86("", "CONFIG_IN_MENU=y"),
            ["menu \"Hacking\" depends on BASE [=n] (Kconfig:25)"]
        );
    }

    #[test]
    fn menuconfig_if_and_several_depends() {
        let config = "CONFIG_BASE=y\n";
        assert_eq!(
            reasons_x86(config, "CONFIG_LKDTM_LIKE=y"),
            [
                "if TESTS [=n] (Kconfig:33)",
                "depends on DEBUG || IN_MENU [DEBUG=n, IN_MENU=n] (Kconfig:37)",
            ]
        );
        // A dependency on an m symbol caps a tristate at m...
        let config = "CONFIG_BASE=y\nCONFIG_TESTS=y\nCONFIG_DEBUG=y\nCONFIG_MOD=m\n";
        let dir = tree();
        let kconfig = Kconfig::load(dir.path(), "x86").unwrap();
        let definition = kconfig.definitions("LKDTM_LIKE")[0].clone();
        assert_eq!(
            definition.dependency(),
            "TESTS && BASE && (DEBUG || IN_MENU)"
        );
        assert!(reasons_x86(config, "CONFIG_LKDTM_LIKE=y").is_empty());
    }

    #[test]
    fn help_text_is_skipped() {
        let dir = tree();
        let kconfig = Kconfig::load(dir.path(), "x86").unwrap();
        assert!(kconfig.definitions("FAKE").is_empty());
        let base = kconfig.definitions("BASE");
        assert_eq!(base.len(), 1);
        assert!(base[0].conditions.is_empty(), "{:?}", base[0].conditions);
        let lkdtm = kconfig.definitions("LKDTM_LIKE");
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
    fn choice_depends_and_members() {
        assert_eq!(
            reasons_x86("", "CONFIG_PICK_B=y"),
            ["choice depends on BASE [=n] (Kconfig:47)"]
        );
        assert_eq!(
            reasons_x86("CONFIG_BASE=y\nCONFIG_PICK_A=y\n", "CONFIG_PICK_B=y"),
            ["it is in the choice at Kconfig:45, where CONFIG_PICK_A=y was chosen instead"]
        );
    }

    #[test]
    fn source_follows_srcarch() {
        let dir = tree();
        let x86 = definitions(dir.path(), "x86", "X86_ONLY").unwrap();
        assert_eq!(x86.len(), 1);
        assert_eq!(x86[0].file, Path::new("arch/x86/Kconfig"));
        assert_eq!(x86[0].line, 2);
        assert_eq!(x86[0].dependency(), "ACPI");
        assert_eq!(
            reasons_x86("", "CONFIG_X86_ONLY=y"),
            ["depends on ACPI [=n] (arch/x86/Kconfig:4)"]
        );
        assert!(definitions(dir.path(), "arm64", "X86_ONLY")
            .unwrap()
            .is_empty());
        assert_eq!(
            reasons("arm64", "", &["CONFIG_X86_ONLY=y"]),
            [[
                "CONFIG_X86_ONLY is not defined in any Kconfig file for SRCARCH=arm64 \
               (misspelt, or not in this kernel version?)"
            ]]
        );
    }

    #[test]
    fn several_definitions_are_ored() {
        assert_eq!(
            reasons_x86("", "CONFIG_DUP=y"),
            [
                "depends on ACPI [=n] (arch/x86/Kconfig:11)",
                "depends on DEBUG [=n] (Kconfig:89)"
            ]
        );
        // One definition with its dependencies met is enough.
        assert!(reasons_x86("CONFIG_DEBUG=y\n", "CONFIG_DUP=y").is_empty());
    }

    #[test]
    fn comparisons_show_values() {
        assert_eq!(
            reasons_x86("CONFIG_NR=2\n", "CONFIG_NEEDS_CMDLINE=y"),
            [
                "depends on CMDLINE != \"\" [=\"\"] (Kconfig:81)",
                "depends on NR >= 4 [=2] (Kconfig:81)",
            ]
        );
        assert!(reasons_x86(
            "CONFIG_NR=0x10\nCONFIG_CMDLINE=\"quiet\"\n",
            "CONFIG_NEEDS_CMDLINE=y"
        )
        .is_empty());
    }

    #[test]
    fn unrequested_culprits_are_followed_once() {
        assert_eq!(
            reasons_x86("", "CONFIG_OUTER=y"),
            [
                "if TESTS [=n] (Kconfig:95)",
                "depends on INNER [=n] (Kconfig:101)",
                "INNER in turn: depends on DEBUG [=n] (Kconfig:98)",
            ]
        );
        let both = reasons("x86", "", &["CONFIG_INNER=y", "CONFIG_OUTER=y"]);
        assert_eq!(
            both[1],
            [
                "if TESTS [=n] (Kconfig:95)",
                "depends on INNER [=n] (Kconfig:101)"
            ]
        );
    }

    #[test]
    fn macros_are_never_blamed() {
        assert_eq!(
            reasons_x86("", "CONFIG_MACRO_DEP=y"),
            ["depends on BASE [=n] (Kconfig:85)"]
        );
        assert_eq!(
            reasons_x86("CONFIG_BASE=y\n", "CONFIG_MACRO_DEP=y"),
            ["depends on $(cc-option,-mfoo) (Kconfig:85) cannot be evaluated here and may be false"]
        );
    }

    #[test]
    fn prompts() {
        assert_eq!(
            reasons_x86("", "CONFIG_HIDDEN_PROMPT=y"),
            ["prompt only if EXPERT [=n] (Kconfig:60)"]
        );
        assert_eq!(
            reasons_x86("", "CONFIG_NO_PROMPT=y"),
            [
                "CONFIG_NO_PROMPT has no prompt (Kconfig:55), so a fragment cannot set it; \
              only a `select` or its `default` can"
            ]
        );
    }

    #[test]
    fn selected_symbols() {
        assert_eq!(
            reasons_x86(
                "CONFIG_SELECTOR=y\nCONFIG_FORCED=y\n",
                "# CONFIG_FORCED is not set"
            ),
            ["selected by CONFIG_SELECTOR [=y] (Kconfig:67)"]
        );
    }

    #[test]
    fn m_needs_modules() {
        assert_eq!(
            reasons_x86("CONFIG_BASE=y\nCONFIG_MOD=y\n", "CONFIG_MOD=m"),
            ["m needs CONFIG_MODULES=y (MODULES [=n]); without modules, m becomes y"]
        );
    }

    #[test]
    fn display() {
        let dir = tree();
        let requests = [
            Request {
                line: 7,
                ..request("CONFIG_UNDER_IF=y")
            },
            request("CONFIG_CMDLINE=\"quiet\""),
        ];
        let unmet = verify(
            dir.path(),
            "x86",
            &DotConfig::parse("CONFIG_CMDLINE=\"loud\"\n"),
            &requests,
        )
        .unwrap();
        let shown: Vec<String> = unmet.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "CONFIG_UNDER_IF=y (test.config:7) did not land (is not set): if DEBUG [=n] (Kconfig:19)",
                &format!("CONFIG_CMDLINE=\"quiet\" (test.config:1) did not land (is \"loud\"): {NO_REASON}"),
            ]
        );
    }

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
            let got = Kconfig::load(dir.path(), "x86").unwrap_err().to_string();
            assert_eq!(got, error);
        }
    }

    // -- The real 6.12 tree ------------------------------------------------

    /// The unpacked kernel source; failing (never skipping) when it is absent.
    fn kernel_src() -> PathBuf {
        let path = std::env::var_os("KERNEL_SRC")
            .map(PathBuf::from)
            .unwrap_or_else(|| crate::paths::target_dir().join("src/linux-source-6.12"));
        assert!(
            path.join("Kconfig").is_file(),
            "no kernel source at {} (set KERNEL_SRC, or run `cargo xtask build` first to unpack it)",
            path.display()
        );
        path
    }

    /// The symbols of an x86_64 tinyconfig that matter below, written by hand.
    const X86_TINY: &str = "CONFIG_64BIT=y\nCONFIG_X86_64=y\nCONFIG_X86=y\nCONFIG_EXPERT=y\n\
                            CONFIG_ARCH_SUPPORTS_ACPI=y\n# CONFIG_ACPI is not set\n\
                            CONFIG_DEBUG_KERNEL=y\nCONFIG_DEBUG_FS=y\n\
                            # CONFIG_RUNTIME_TESTING_MENU is not set\n# CONFIG_MODULES is not set\n";

    fn real_unmet(srcarch: &str, config: &str, settings: &[&str]) -> Vec<Unmet> {
        let requests: Vec<Request> = settings.iter().map(|s| request(s)).collect();
        verify(&kernel_src(), srcarch, &DotConfig::parse(config), &requests).unwrap()
    }

    #[test]
    fn real_tree_lkdtm_needs_runtime_testing_menu() {
        let unmet = real_unmet("x86", X86_TINY, &["CONFIG_LKDTM=y"]);
        assert_eq!(unmet.len(), 1);
        assert_eq!(
            unmet[0].reasons,
            ["if RUNTIME_TESTING_MENU [=n] (lib/Kconfig.debug:2167)"]
        );
        // Without DEBUG_FS both are named, in file order.
        let config = X86_TINY.replace("CONFIG_DEBUG_FS=y", "# CONFIG_DEBUG_FS is not set");
        let unmet = real_unmet("x86", &config, &["CONFIG_LKDTM=y"]);
        assert_eq!(
            unmet[0].reasons,
            [
                "if RUNTIME_TESTING_MENU [=n] (lib/Kconfig.debug:2167)",
                "depends on DEBUG_FS [=n] (lib/Kconfig.debug:2206)",
            ]
        );
    }

    #[test]
    fn real_tree_x86_efi_needs_acpi() {
        let unmet = real_unmet("x86", X86_TINY, &["CONFIG_EFI=y", "CONFIG_EFI_STUB=y"]);
        let reasons: Vec<&[String]> = unmet.iter().map(|u| u.reasons.as_slice()).collect();
        assert_eq!(
            reasons,
            [
                &["depends on ACPI [=n] (arch/x86/Kconfig:1990)".to_string()][..],
                &["depends on EFI [=n] (arch/x86/Kconfig:2008)".to_string()][..],
            ]
        );
        // When EFI itself was not requested, its own reason is followed.
        let unmet = real_unmet("x86", X86_TINY, &["CONFIG_EFI_STUB=y"]);
        assert_eq!(
            unmet[0].reasons,
            [
                "depends on EFI [=n] (arch/x86/Kconfig:2008)",
                "EFI in turn: depends on ACPI [=n] (arch/x86/Kconfig:1990)",
            ]
        );
    }

    /// The whole tree reads for both arches, and every condition parses as
    /// an expression (an unparsable one would silently never be blamed).
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
