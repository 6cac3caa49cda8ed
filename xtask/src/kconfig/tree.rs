//! A Kconfig tree as the reader gathered it, indexed by symbol. It is not a
//! Kconfig implementation: for every `config`/`menuconfig` entry it only records
//! its type, whether it has a prompt, its own `depends on` and prompt `if`
//! lines, the conditions of the blocks around it (`if`, `menu ... depends
//! on`, `choice ... depends on`, `visible if`) and its `select`s.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Result;

use super::entry::{Choice, Definition, Select, SymbolType};
use super::reader::{self, Entries};

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
        Ok(Kconfig::new(srcarch, reader::read(srctree, srcarch)?))
    }

    /// Indexes what the reader gathered: definitions by symbol, and the
    /// members of each choice.
    fn new(srcarch: &str, entries: Entries) -> Kconfig {
        let Entries {
            definitions,
            mut choices,
            selects,
        } = entries;
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
