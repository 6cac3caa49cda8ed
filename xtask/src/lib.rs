//! The engine of `cargo xtask`: builds a Linux kernel with Clang LTO through
//! its own build graph. Kbuild is asked what to run; this crate runs it.
//!
//! The modules follow the pipeline: source, toolchain, configure (kconfig),
//! prepare and plan (kbuild, plan), graph, policy, execute (cache), link,
//! report; `build` strings them together. Then `units`, `boot` and `compdb`.

pub mod paths;
pub mod target;
pub mod fs_atomic;
pub mod source;
pub mod toolchain;
pub mod kconfig;
pub mod configure;
pub mod kbuild;
pub mod engine;
pub mod lto;
pub mod link;
pub mod report;
pub mod build;
pub mod units;
pub mod boot;
pub mod test_boot;
pub mod editor;
pub mod cli;
pub mod selftest;

/// Stable exit codes, so scripts can tell failures apart.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    if error.downcast_ref::<engine::scheduler::StepFailed>().is_some() {
        10
    } else if error.downcast_ref::<configure::UnmetRequests>().is_some() {
        11
    } else if error.downcast_ref::<report::PolicyViolation>().is_some() {
        12
    } else if error.downcast_ref::<kernel_manifest::Error>().is_some() {
        13
    } else {
        1
    }
}
