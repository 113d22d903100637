//! The shared state of one process: database, blob storage, configuration, and the signal
//! that wakes index workers.

use std::sync::Arc;

use anyhow::Result;
use tokio::sync::Notify;

use crate::config::Config;
use crate::db::Db;
use crate::downloads::DownloadLog;
use crate::http::auth::FailureLimiter;
use crate::jobs::chunks::HashStates;
use crate::jobs::listing::Listings;
use crate::secrets::SecretBox;
use crate::storage::Blobs;

#[derive(Clone)]
pub struct App {
    pub db: Db,
    pub blobs: Blobs,
    pub config: Arc<Config>,
    /// Notified when a job is queued, so an idle worker starts at once instead of polling.
    pub wake: Arc<Notify>,
    pub auth_failures: Arc<FailureLimiter>,
    pub downloads: DownloadLog,
    /// Hash states of the indexes this process published, so the next publish resumes them.
    pub hash_states: Arc<HashStates>,
    /// Package lists of the targets this process published, so the next publish reads only
    /// what was added.
    pub listings: Arc<Listings>,
    /// Seals and opens the signing keys stored in the database.
    pub secrets: Arc<SecretBox>,
    /// This process among the deployment's, `HOST:PID`, as recorded on what it builds.
    pub instance: String,
}

impl App {
    pub async fn open(config: Config) -> Result<App> {
        let db = Db::open(&config.database_url()).await?;
        let blobs = Blobs::open(&config)?;
        let secrets = Arc::new(SecretBox::load(&config)?);
        let auth_failures = Arc::new(FailureLimiter::new(config.max_auth_failures_per_minute));
        Ok(App {
            downloads: DownloadLog::start(db.clone()),
            db,
            blobs,
            config: Arc::new(config),
            wake: Arc::new(Notify::new()),
            auth_failures,
            hash_states: Arc::default(),
            listings: Arc::default(),
            secrets,
            instance: format!("{}:{}", hostname(), std::process::id()),
        })
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into())
}
