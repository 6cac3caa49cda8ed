//! The engine of `cargo xtask`: builds a Linux kernel with Clang LTO through
//! its own build graph. Kbuild is asked what to run; this crate runs it.
//!
//! The modules follow the pipeline: source, toolchain, configure, prepare,
//! plan, graph, policy, execute, link, image, report; then boot and compdb.

pub mod kconfig;
pub mod paths;
pub mod target;
