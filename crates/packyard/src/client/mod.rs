//! The client side of the `packyard` binary: commands that speak API v1 to a server over
//! HTTP, Packyard's or packagecloud's alike (`packyard push`, `ls`, `token list` ...).

pub mod config;
pub mod http;
pub mod push;

/// Ends a command with this exit code: 2 for a usage error, 3 when files failed under
/// `--skip-errors`, 4 when `--wait` ran out with everything stored. An empty message prints
/// nothing more (the command said what happened).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

impl Exit {
    pub fn usage(message: impl Into<String>) -> Exit {
        Exit {
            code: 2,
            message: message.into(),
        }
    }

    pub fn silent(code: u8) -> Exit {
        Exit {
            code,
            message: String::new(),
        }
    }
}
