//! What editors read: `compile_commands.json` for clangd, `rust-project.json`
//! for rust-analyzer.

pub mod compdb;
pub mod rust_project;
