//! The key of a step: everything that, when it changes, must rerun the step.
//! Each part has a name, and the whole struct is serialized into one blake3
//! hash here, so no caller strings parts together by hand.

use std::collections::BTreeMap;

use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct CacheKey<'a> {
    /// The recipe, exactly as the shell runs it.
    pub command: &'a str,
    /// What the step read last time (files, and `config:SYMBOL` entries from
    /// Kbuild's `.cmd` files), each with its content hash now.
    pub inputs: BTreeMap<&'a str, String>,
    /// Outputs of the steps it waits for, each with its recorded output hash.
    pub upstream: BTreeMap<&'a str, String>,
}

impl CacheKey<'_> {
    /// The hex blake3 hash of the serialized key: what a `Record` stores.
    pub fn hash(&self) -> String {
        let mut hasher = blake3::Hasher::new();
        // serde_json writes a key in hundreds of small pieces; blake3 is
        // fastest fed whole chunks. The bytes hashed are the same.
        let mut buffered = std::io::BufWriter::with_capacity(16 * 1024, &mut hasher);
        serde_json::to_writer(&mut buffered, self).expect("a key of strings serializes");
        std::io::Write::flush(&mut buffered).expect("hashing cannot fail");
        drop(buffered);
        hasher.finalize().to_hex().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key<'a>(
        command: &'a str,
        inputs: &[(&'a str, &str)],
        upstream: &[(&'a str, &str)],
    ) -> CacheKey<'a> {
        let map =
            |parts: &[(&'a str, &str)]| parts.iter().map(|&(k, v)| (k, v.to_string())).collect();
        CacheKey {
            command,
            inputs: map(inputs),
            upstream: map(upstream),
        }
    }

    /// Records made before the buffer keep matching: the hash is of the
    /// serialized key, whatever the writes' sizes.
    #[test]
    fn the_hash_is_of_the_whole_serialized_key() {
        let long = "x".repeat(40_000);
        let key = key(
            &long,
            &[("a.c", "1"), ("\"quoted\"", "2")],
            &[("gen.h", "3")],
        );
        let whole = serde_json::to_vec(&key).unwrap();
        assert_eq!(key.hash(), blake3::hash(&whole).to_hex().to_string());
    }

    #[test]
    fn every_named_part_changes_the_hash_and_order_does_not() {
        let base = key(
            "cc -c a.c",
            &[("a.c", "1"), ("a.h", "2")],
            &[("gen.h", "3")],
        )
        .hash();
        assert_eq!(
            base,
            key(
                "cc -c a.c",
                &[("a.h", "2"), ("a.c", "1")],
                &[("gen.h", "3")]
            )
            .hash()
        );
        assert_ne!(
            base,
            key(
                "cc -c b.c",
                &[("a.c", "1"), ("a.h", "2")],
                &[("gen.h", "3")]
            )
            .hash()
        );
        assert_ne!(
            base,
            key(
                "cc -c a.c",
                &[("a.c", "1"), ("a.h", "9")],
                &[("gen.h", "3")]
            )
            .hash()
        );
        assert_ne!(
            base,
            key(
                "cc -c a.c",
                &[("a.c", "1"), ("a.h", "2")],
                &[("gen.h", "9")]
            )
            .hash()
        );
        // The same file as an input is not the same key as it as an upstream output.
        assert_ne!(
            base,
            key(
                "cc -c a.c",
                &[("a.c", "1"), ("a.h", "2"), ("gen.h", "3")],
                &[]
            )
            .hash()
        );
    }
}
