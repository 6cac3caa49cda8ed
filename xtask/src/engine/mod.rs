//! The engine: edges between steps (`graph`), a critical-path-first worker
//! pool (`scheduler`) that reports `event`s, the content-hash cache
//! (`cache`, keyed by `cache_key`, answering a `cache_status`) that lets it
//! skip work, the `shell` every command runs in (the
//! ThinLTO backends: forks of one loaded clang, `fork_server`), the `shared` cache other trees fill, what a step read (`inputs`), the xtask's own cached steps (`native`), and one build per
//! object tree (`lock`).

pub mod cache;
pub mod cache_key;
pub mod cache_status;
pub mod event;
pub mod fork_server;
pub mod graph;
pub mod inputs;
pub mod launcher;
pub mod lock;
pub mod native;
pub mod scheduler;
pub mod shared;
pub mod shell;
pub mod trace;

#[cfg(test)]
mod tests;
