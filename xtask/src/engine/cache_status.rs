//! The cache's answer for one step.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheStatus {
    /// The step's key matches its record and its output is as it left it: skip it.
    Hit,
    /// A new step, a changed key, or an output deleted or changed by hand: run it.
    Miss,
}
