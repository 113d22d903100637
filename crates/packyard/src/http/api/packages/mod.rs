//! Package actions: push, show (and versions), destroy.

pub mod destroy;
pub mod list;
pub mod promote;
pub mod push;
pub mod show;
pub mod yank;
