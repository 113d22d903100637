//! Packyard: a self-hosted APT and YUM/DNF repository service.
//!
//! One process runs the HTTP API, repository serving and index workers on SQLite and a local
//! folder; or, scaled out, processes of each role share PostgreSQL and an S3-compatible
//! bucket. See ARCHITECTURE.md for the map.

pub mod app;
pub mod audit;
pub mod backup;
pub mod bench;
pub mod cli;
pub mod client;
pub mod config;
pub mod db;
pub mod distros;
pub mod downloads;
pub mod formats;
pub mod fsck;
pub mod http;
pub mod images;
pub mod ingest;
pub mod jobs;
pub mod keyring;
pub mod keys;
pub mod read_cache;
pub mod reindex;
pub mod retention;
pub mod secrets;
pub mod sign;
pub mod snapshots;
pub mod status;
pub mod storage;
pub mod webhooks;
