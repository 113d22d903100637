//! `?wait=SECONDS` on push, show and reindex, an extension packagecloud clients never send:
//! the answer comes once the package is in its target's published index (or the time is up),
//! so a release job knows when hosts can install what it pushed without polling.

use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Deserialize;

use crate::app::App;
use crate::db;
use crate::http::error::ApiError;

/// The longest one request waits; a client that needs longer asks again.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// How often a waiting request looks again without an announcement: another process
/// publishing on the same SQLite file announces nothing to this one.
const POLL: Duration = Duration::from_millis(250);

#[derive(Deserialize, Default)]
pub struct WaitQuery {
    wait: Option<String>,
}

impl WaitQuery {
    /// How long to wait: `wait=30`, `wait=30s` or `wait=2m`, at most [`MAX_WAIT`].
    pub fn limit(&self) -> Result<Option<Duration>, ApiError> {
        let Some(text) = self.wait.as_deref().filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        let secs = crate::config::parse_duration_secs(text)
            .filter(|secs| *secs >= 0)
            .ok_or_else(|| {
                ApiError::invalid("wait", "must be a number of seconds, such as 30 or 2m")
            })?;
        Ok(Some(Duration::from_secs(secs as u64).min(MAX_WAIT)))
    }
}

/// Waits until the package is in its target's published index or `limit` has passed; whether
/// it is (false too once it is destroyed).
pub async fn until_indexed(app: &App, package_id: i64, limit: Duration) -> Result<bool> {
    let deadline = Instant::now() + limit;
    loop {
        // Listening before looking, so a publish between the two is not missed.
        let changed = app.cache.changed();
        let mut changed = std::pin::pin!(changed);
        changed.as_mut().enable();
        match db::packages::is_indexed(&app.db, package_id).await? {
            Some(true) => return Ok(true),
            None => return Ok(false),
            Some(false) => {}
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        let _ = tokio::time::timeout(left.min(POLL), changed).await;
    }
}
