//! The engine of `cargo xtask`: builds a Linux kernel with Clang LTO through
//! its own build graph. Kbuild is asked what to run; this crate runs it.
//!
//! The modules follow the pipeline: source and toolchain; configure (with
//! `kconfig`, the `.config`/fragment/Kconfig readers); `kbuild` (the only
//! `make`, dry runs, `.cmd` files, stages and their plans); `engine` (graph,
//! scheduler, cache, lock); `lto` (policy rewrite and format proof); `link`;
//! `report`. `build` runs the stages in order. Then the other subcommands:
//! `units`, `boot` + `test_boot`, `editor` (compdb), `selftest`.

pub mod bench;
pub mod boot;
pub mod build;
pub mod build_log;
pub mod cli;
pub mod config_edit;
pub mod configure;
pub mod editor;
pub mod engine;
pub mod error;
pub mod fs_atomic;
pub mod kbuild;
pub mod kconfig;
pub mod launcher;
pub mod link;
pub mod lto;
pub mod paths;
pub mod report;
pub mod selftest;
pub mod source;
pub mod target;
pub mod test_boot;
pub mod toolchain;
pub mod units;
