//! Kconfig as far as configuring needs it: the one `.config` reader, and
//! proof that what the fragments asked for landed.
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
//! ([`Kconfig`]) and evaluates its conditions against the `.config`.

pub mod autoconf;
mod dotconfig;
mod entry;
mod explain;
mod expr;
mod fragment;
mod lex;
mod reader;
mod sources;
mod tree;
mod unmet;

#[cfg(test)]
pub(crate) mod fixture;

pub use dotconfig::{merge_settings, DotConfig};
pub use entry::{Condition, ConditionKind, Definition, SymbolType};
pub use fragment::{parse_fragment, Request};
pub use sources::sources;
pub use tree::{definitions, Kconfig};
pub use unmet::{undefined, verify, Unmet};
