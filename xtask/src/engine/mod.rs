//! The engine: edges between steps (`graph`), a critical-path-first worker
//! pool (`scheduler`) that reports `event`s, and the content-hash cache
//! (`cache`, keyed by `cache_key`, answering a `cache_status`) that lets it
//! skip work.

pub mod cache;
pub mod cache_key;
pub mod cache_status;
pub mod event;
pub mod graph;
pub mod scheduler;

#[cfg(test)]
mod tests;
