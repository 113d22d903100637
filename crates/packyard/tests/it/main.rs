//! Integration tests: the whole server in-process on a loopback port, driven over HTTP and by
//! the real apt tools. Modules mirror the URL tree.

mod api;
mod apt_client;
mod auth_matrix;
mod backup;
mod cli;
mod client;
mod crash_loop;
mod deployment;
mod dnf_client;
mod durability;
mod faults;
mod fixtures;
mod handover;
mod hardening;
mod install;
mod jobs;
mod keys;
mod load;
mod logs;
mod metrics;
mod npm_client;
mod operations;
mod python_client;
mod registry;
mod repo;
mod restart;
mod retention;
mod rpm_fixtures;
mod scale_out;
mod snapshots;
mod support;
mod tokens;
mod ui;
mod webhooks;
