//! The engine of `cargo xtask`: builds a Linux kernel with Clang LTO through
//! its own build graph. Kbuild is asked what to run; this crate runs it.
//!
//! The modules are listed in pipeline order, and a module uses only those
//! above it (the tidy test holds this).

// Crash-safe writes of state.
pub mod fs_atomic;

// One pass over a slice on every core.
pub mod parallel;

// The one place that writes progress: notices and the stage's bar.
pub mod render;

// The one place that starts a child process.
pub mod process;

// Where things go.
pub mod paths;

// What is built: arch, LTO mode, configuration.
pub mod target;

// The LLVM toolchain, and what each command installs.
pub mod toolchain;

// `.config`, fragments, and a small Kconfig reader.
pub mod kconfig;

// The only `make`: dry runs, `.cmd` files, recipes, stages and plans.
pub mod kbuild;

// A recipe to a `.config`, verified.
pub mod configure;

// The graph, its scheduler, caches and lock.
pub mod engine;

// The kernel tree, unpacked once.
pub mod source;

// The LTO policy, ThinLTO as graph steps, bitcode proof.
pub mod lto;

// `vmlinux` and modules.
pub mod link;

// What a build did.
pub mod report;

// One line per build, for the suite's table.
pub mod build_log;

// The stages in order: `cargo xtask build`.
pub mod build;

// Booting in QEMU and judging what the kernel printed.
pub mod boot;

// One error enum and its exit codes.
pub mod error;

// `cargo xtask test-boot`.
pub mod test_boot;

// `cargo xtask kunit`: KUnit on LTO kernels, compared across modes.
pub mod kunit;

// `compile_commands.json` and rust-project for editors.
pub mod editor;

// `cargo xtask units`.
pub mod units;

// `menuconfig`, `nconfig`, `savedefconfig`.
pub mod config_edit;

// `cargo xtask bench`: Kbuild and the xtask on one tree.
pub mod bench;

// `cargo xtask test`.
pub mod selftest;

// argv to a subcommand.
pub mod cli;
