//! The HTTP surface: packagecloud-compatible API v1, repository files for apt, and
//! operational endpoints. Handlers never write index files; they queue jobs.

mod api;
pub(crate) mod auth;
mod error;
mod install;
pub mod metrics;
mod ops;
mod present;
mod repo;
mod router;
mod server;
mod system;

pub use router::router;

pub use server::{listen, serve};
