//! Servers on loopback for the xtask's tests and `cargo xtask bench`:
//! nginx as a Bazel HTTP cache, distccd as a distcc host.
//!
//! It knows nothing of the xtask, so the xtask may depend on it: the bench's
//! `cached-http` serves its cache from here, and `toolchain` installs what
//! these servers run. The private kernel copy that the tests and the bench
//! edit stays in the xtask (`bench::private_source`), built on its tree lock.

mod cache_server;
mod distcc_server;
mod loopback;

pub use cache_server::{CacheServer, NGINX};
pub use distcc_server::{DistccServer, DISTCCD};
