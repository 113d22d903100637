//! The HTTP surface: packagecloud-compatible API v1, repository files for apt, and
//! operational endpoints. Handlers never write index files; they queue jobs.

mod api;
mod auth;
mod error;
mod ops;
mod present;
mod repo;
mod router;

pub use router::router;
