//! API v1 handlers, one resource action per file.

pub mod distributions;
pub mod packages;
pub mod repos;
