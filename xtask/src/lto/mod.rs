//! The per-unit LTO policy: rewrite compile commands, then prove every
//! object's format.

pub mod bitcode;
pub mod policy;
pub mod thin;
