//! The Bazel remote-execution API's `ActionResult`, `OutputFile` and
//! `Digest` (build/bazel/remote/execution/v2/remote_execution.proto), only
//! the fields the cache uses, with their field numbers. What an `/ac/` entry
//! holds, so bazel-remote accepts it as it accepts Bazel's.

use prost::Message;

#[derive(Clone, PartialEq, Message)]
pub struct Digest {
    /// Lower-case hex sha256 of the blob.
    #[prost(string, tag = "1")]
    pub hash: String,
    #[prost(int64, tag = "2")]
    pub size_bytes: i64,
}

#[derive(Clone, PartialEq, Message)]
pub struct OutputFile {
    /// Relative to the object tree.
    #[prost(string, tag = "1")]
    pub path: String,
    #[prost(message, optional, tag = "2")]
    pub digest: Option<Digest>,
    #[prost(bool, tag = "4")]
    pub is_executable: bool,
}

#[derive(Clone, PartialEq, Message)]
pub struct ActionResult {
    #[prost(message, repeated, tag = "2")]
    pub output_files: Vec<OutputFile>,
    #[prost(int32, tag = "4")]
    pub exit_code: i32,
}

impl Digest {
    pub fn of(bytes: &[u8]) -> Digest {
        Digest {
            hash: sha256(bytes),
            size_bytes: bytes.len() as i64,
        }
    }

    /// The blob is what the digest names: anything else is a corrupt entry.
    pub fn matches(&self, bytes: &[u8]) -> bool {
        self.size_bytes == bytes.len() as i64 && self.hash == sha256(bytes)
    }
}

pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_as_the_proto_does() {
        let result = ActionResult {
            output_files: vec![OutputFile {
                path: "a.o".into(),
                digest: Some(Digest {
                    hash: "ab".into(),
                    size_bytes: 3,
                }),
                is_executable: false,
            }],
            exit_code: 0,
        };
        // field 2 (len 11): { field 1 "a.o", field 2 (len 6): { field 1 "ab", field 2 varint 3 } }
        assert_eq!(
            result.encode_to_vec(),
            b"\x12\x0d\x0a\x03a.o\x12\x06\x0a\x02ab\x10\x03"
        );
        assert_eq!(
            ActionResult::decode(result.encode_to_vec().as_slice()).unwrap(),
            result
        );
        assert!(Digest::of(b"abc").matches(b"abc"));
        assert!(!Digest::of(b"abc").matches(b"abd"));
        assert_eq!(
            Digest::of(b"abc").hash,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
