//! The shared state of one process: database, blob storage, configuration, and the signal
//! that wakes index workers.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use tokio::sync::Notify;

use crate::config::Config;
use crate::db::Db;
use crate::downloads::DownloadLog;
use crate::http::auth::FailureLimiter;
use crate::jobs::chunks::HashStates;
use crate::jobs::listing::Listings;
use crate::read_cache::ReadCache;
use crate::secrets::SecretBox;
use crate::storage::Blobs;

/// Cheap to clone: every request's handler gets its own handle.
#[derive(Clone)]
pub struct App(Arc<AppState>);

pub struct AppState {
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
    /// What serving repository files reads on every request.
    pub cache: Arc<ReadCache>,
    /// One permit per upload being received (`max_concurrent_uploads`).
    pub uploads: Arc<tokio::sync::Semaphore>,
    /// The SHA-256 states of the registry's upload sessions this process received.
    pub oci_uploads: crate::http::registry::Sessions,
    /// When this process opened its state, for its uptime.
    pub started: std::time::Instant,
    /// Set when shutdown begins: `/readyz` answers 503 and responses close their connections.
    pub draining: std::sync::atomic::AtomicBool,
    /// Pushes waiting to be committed together.
    pub push_groups: crate::ingest::group::Groups,
}

impl App {
    pub async fn open(config: Config) -> Result<App> {
        crate::http::metrics::handle();
        let db = Db::open(&config.database_url()).await?;
        let filled = crate::db::packages::fill_version_keys(&db).await?;
        if filled > 0 {
            tracing::info!(
                packages = filled,
                "filled in the version sort keys of older packages"
            );
        }
        let blobs = Blobs::open(&config)?;
        let secrets = Arc::new(SecretBox::load(&config)?);
        let auth_failures = Arc::new(FailureLimiter::new(config.max_auth_failures_per_minute));
        let cache_bytes = usize::try_from(config.cache_mib << 20).unwrap_or(usize::MAX);
        let cache_ttl = Duration::from_millis(config.cache_ttl_ms);
        // On PostgreSQL other processes change what is cached; the cache starts keeping
        // entries once their announcements can be heard (`jobs::listen_for_changes`).
        let announced = !matches!(db, Db::Postgres(_));
        let max_uploads = config.max_concurrent_uploads.max(1);
        Ok(App(Arc::new(AppState {
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
            cache: Arc::new(ReadCache::new(cache_bytes, cache_ttl, announced)),
            uploads: Arc::new(tokio::sync::Semaphore::new(max_uploads)),
            oci_uploads: Default::default(),
            started: std::time::Instant::now(),
            draining: Default::default(),
            push_groups: Default::default(),
        })))
    }
}

impl App {
    /// After committing a change that queued publish jobs: wakes this process's workers and
    /// drops what the read cache holds of packages (and a repository's last push), which
    /// changed; what it holds of tokens stays. Other processes hear of it through the job
    /// queue's announcement.
    pub fn queued(&self) {
        self.wake.notify_one();
        self.cache.packages_changed();
    }

    /// A permit to receive an upload, or `Busy` when this process receives as many as it may.
    pub fn upload_permit(
        &self,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, crate::http::error::ApiError> {
        self.uploads.clone().try_acquire_owned().map_err(|_| {
            crate::http::error::ApiError::Busy(format!(
                "this server is receiving {} uploads already; retry in a moment",
                self.config.max_concurrent_uploads
            ))
        })
    }

    /// After tokens were revoked, rotated or deleted: this process forgets what it cached of
    /// them at once, and on PostgreSQL every other process does when it hears the announcement.
    pub async fn tokens_changed(&self) -> Result<()> {
        self.cache.invalidate();
        crate::db::announce(&self.db).await
    }
}

impl std::ops::Deref for App {
    type Target = AppState;

    fn deref(&self) -> &AppState {
        &self.0
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into())
}
