//! Package actions: push, show (and versions), destroy.

pub mod destroy;
pub mod push;
pub mod show;
