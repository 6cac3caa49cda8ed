//! The engine: edges between steps (`graph`), a critical-path-first worker
//! pool (`scheduler`) and the content-hash cache that lets it skip work.

pub mod cache;
pub mod graph;
pub mod scheduler;
pub mod native;
pub mod lock;
