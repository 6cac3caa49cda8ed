//! The words that Kconfig files and `.config` share: symbol names, numbers
//! and quoted strings. Both readers and the expressions build on these.

/// Letters, digits and `_`: a symbol as written after `CONFIG_`.
pub(super) fn is_symbol_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A decimal or `0x` hexadecimal number.
pub(super) fn number(text: &str) -> Option<i128> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => i128::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// The string quoted by `quote` at the start of `text` and the length of
/// the quoted text, quotes included.
pub(super) fn quoted(text: &str, quote: char) -> Option<(String, usize)> {
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
