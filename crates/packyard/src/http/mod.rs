//! The HTTP surface: packagecloud-compatible API v1, repository files for apt, and
//! operational endpoints. Handlers never write index files; they queue jobs.

pub(crate) mod api;
pub(crate) mod auth;
pub(crate) mod error;
mod install;
pub mod metrics;
mod ops;
pub(crate) mod present;
pub(crate) mod registry;
pub(crate) mod repo;
mod router;
mod server;
mod system;
pub(crate) mod ui;

pub use router::router;

pub use server::{listen, serve};
