//! API v1 handlers, one resource action per file.

pub mod audit;
pub(crate) mod body;
pub mod distributions;
pub mod gpg_keys;
pub mod images;
pub mod packages;
pub(crate) mod page;
pub mod reindex;
pub mod repos;
pub mod retention;
pub mod signing_keys;
pub mod snapshots;
pub mod token;
pub mod tokens;
pub mod webhooks;
