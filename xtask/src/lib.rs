//! The engine of `cargo xtask`: builds a Linux kernel with Clang LTO through
//! its own build graph. Kbuild is asked what to run; this crate runs it.
//!
//! The modules follow the pipeline: source, toolchain, configure (kconfig),
//! prepare and plan (kbuild, plan), graph, policy, execute (cache), link,
//! report; `build` strings them together. Then `units`, `boot` and `compdb`.

pub mod boot;
pub mod build;
pub mod cache;
pub mod cli;
pub mod compdb;
pub mod configure;
pub mod execute;
pub mod graph;
pub mod kbuild;
pub mod kconfig;
pub mod link;
pub mod paths;
pub mod plan;
pub mod policy;
pub mod report;
pub mod source;
pub mod target;
pub mod toolchain;
pub mod units;
pub mod test;
pub mod test_boot;

/// Stable exit codes, so scripts can tell failures apart.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    if error.downcast_ref::<execute::StepFailed>().is_some() {
        10
    } else if error.downcast_ref::<configure::Unmet>().is_some() {
        11
    } else if error.downcast_ref::<report::PolicyViolation>().is_some() {
        12
    } else if error.downcast_ref::<kernel_manifest::Error>().is_some() {
        13
    } else {
        1
    }
}
