//! The engine: edges between steps (`graph`), a critical-path-first worker
//! pool (`scheduler`) and the content-hash cache that lets it skip work.

pub mod cache;
pub mod cache_key;
pub mod cache_status;
pub mod graph;
pub mod scheduler;
