//! Why a request did not land: the conditions that fail, with the values
//! they saw, the `select`s forcing a symbol on, or the choice member chosen
//! instead.

use std::collections::HashSet;

use super::expr::{conjuncts, parse_expr, Atom, Env, Expr, Tri};
use super::lex::number;
use super::{Definition, DotConfig, Kconfig, Request, SymbolType};

impl Kconfig {
    /// Why `request` did not land; empty when nothing in the tree explains it.
    pub(super) fn explain(
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
        if let Some(ty) = self.symbol_type(symbol) {
            if let Some(values) = not_a_value(ty, &request.value) {
                return vec![format!(
                    "`{}` is not a value of CONFIG_{symbol}, {values}",
                    request.value
                )];
            }
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

/// What a symbol of type `ty` takes, when `value` is not one of them: the
/// values Kconfig's own `sym_string_valid` accepts (olddefconfig drops any
/// other with a warning nobody sees).
fn not_a_value(ty: SymbolType, value: &str) -> Option<&'static str> {
    let hex = |digits: &str| !digits.is_empty() && digits.chars().all(|c| c.is_ascii_hexdigit());
    match ty {
        SymbolType::Bool if !matches!(value, "y" | "n") => Some("a bool (y or n)"),
        SymbolType::Tristate if !matches!(value, "y" | "m" | "n") => Some("a tristate (y, m or n)"),
        SymbolType::Int if value.parse::<i64>().is_err() => Some("an int (a decimal number)"),
        SymbolType::Hex
            if !hex(value
                .strip_prefix("0x")
                .or_else(|| value.strip_prefix("0X"))
                .unwrap_or(value)) =>
        {
            Some("a hex (0x and hex digits)")
        }
        _ => None,
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

/// The explaining half of [`Env`]: which conjuncts fail, and how to show them.
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
    use std::path::Path;

    use super::*;
    use crate::kconfig::fixture::{kernel_src, request, tree};
    use crate::kconfig::{definitions, verify, Unmet};

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
    fn a_value_the_type_does_not_take() {
        assert_eq!(
            reasons_x86("", "CONFIG_BASE=maybe"),
            ["`maybe` is not a value of CONFIG_BASE, a bool (y or n)"]
        );
        assert_eq!(
            reasons_x86("", "CONFIG_BASE=m"),
            ["`m` is not a value of CONFIG_BASE, a bool (y or n)"]
        );
        assert_eq!(
            reasons_x86("", "CONFIG_NR=twelve"),
            ["`twelve` is not a value of CONFIG_NR, an int (a decimal number)"]
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
}
