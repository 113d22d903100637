//! Packyard: a self-hosted APT repository service (YUM/DNF and more formats to follow).
//!
//! One process runs the HTTP API, repository serving, and index workers on SQLite and a local
//! folder. See ARCHITECTURE.md for the map.

pub mod app;
pub mod bench;
pub mod cli;
pub mod config;
pub mod db;
pub mod distros;
pub mod downloads;
pub mod http;
pub mod ingest;
pub mod jobs;
pub mod keys;
pub mod secrets;
pub mod sign;
pub mod storage;
