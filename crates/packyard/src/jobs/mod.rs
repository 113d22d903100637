//! Background work: index workers that take publish jobs from the queue, and the collector of
//! superseded index generations and unreferenced blobs.

pub mod chunks;
pub mod gc;
pub mod listing;
pub mod saved_states;

use std::convert::Infallible;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgListener, PgPool};
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::db::generations::Build;
use crate::db::{self, Db};
use crate::formats::PackageFormat;

/// How often an idle worker looks for jobs it was not woken for (queued by a process on
/// SQLite, or while the wake-up connection was down).
const POLL: Duration = Duration::from_secs(2);

/// Runs jobs until `shutdown` is cancelled; the job in hand is finished first.
pub async fn run_worker(app: App, shutdown: CancellationToken) {
    let lease_secs = app.config.job_lease_secs as i64;
    while !shutdown.is_cancelled() {
        let claiming = Instant::now();
        match db::jobs::claim(&app.db, lease_secs).await {
            Ok(Some(job)) => run_job(&app, &job, claiming.elapsed()).await,
            Ok(None) => {
                let wait = match db::jobs::next_run_in(&app.db).await {
                    Ok(Some(secs)) => POLL.min(Duration::from_secs(secs as u64)),
                    _ => POLL,
                };
                tokio::select! {
                    () = app.wake.notified() => {}
                    () = tokio::time::sleep(wait) => {}
                    () = shutdown.cancelled() => {}
                }
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "claiming a job failed");
                tokio::time::sleep(POLL).await;
            }
        }
    }
}

/// On PostgreSQL, hears what other processes announce: a queued job wakes this process's
/// workers within milliseconds of a push to another process, and any queued job or
/// published generation drops what the read cache holds. While the connection is down, the
/// workers poll and the read cache keeps nothing.
pub async fn listen_for_changes(app: App, shutdown: CancellationToken) {
    let Db::Postgres(pool) = &app.db else {
        return;
    };
    while !shutdown.is_cancelled() {
        let error = tokio::select! {
            result = relay_announcements(pool, &app) => {
                let Err(error) = result;
                error
            }
            () = shutdown.cancelled() => return,
        };
        app.cache.suspend();
        tracing::warn!(error = %error, "listening for changes failed; polling until it reconnects");
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

async fn relay_announcements(pool: &PgPool, app: &App) -> Result<Infallible, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener
        .listen_all([db::jobs::WAKE_CHANNEL, db::CHANGES_CHANNEL])
        .await?;
    // What was queued or published while this connection was down was not announced.
    app.wake.notify_one();
    app.cache.resume();
    loop {
        let announcement = listener.recv().await?;
        app.cache.invalidate();
        if announcement.channel() == db::jobs::WAKE_CHANNEL {
            app.wake.notify_one();
        }
    }
}

/// Runs one job while a companion task renews its lease every third of the lease.
async fn run_job(app: &App, job: &db::jobs::Job, claimed_in: Duration) {
    let started = Instant::now();
    let claim = job.claim();
    let lease_secs = app.config.job_lease_secs as i64;
    let renewal = tokio::spawn(renew_lease(app.db.clone(), claim, lease_secs));
    let build = Build::new(&app.instance, Some(claim)).rebuilding(job.rebuild);
    let result = match PackageFormat::from_publish_job(&job.kind) {
        Some(format) => format.publish(app, &job.target(), &build).await,
        None => Err(anyhow::anyhow!("unknown job kind {:?}", job.kind)),
    };
    renewal.abort();
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    let claim_ms = claimed_in.as_secs_f64() * 1000.0;
    let outcome = match result {
        Ok(()) => {
            tracing::info!(job = job.id, kind = %job.kind, repository_id = job.repository_id,
                distro_version_id = job.distro_version_id, arch = %job.arch, claim_ms, duration_ms, "job done");
            db::jobs::complete(&app.db, job).await
        }
        Err(e) => {
            // Backoff: 2, 4, 8 ... seconds, at most ten minutes.
            let delay = 1i64 << job.attempts.clamp(1, 9);
            let message = format!("{e:#}");
            metrics::counter!("packyard_jobs_failed_total", "kind" => job.kind.clone())
                .increment(1);
            tracing::error!(job = job.id, kind = %job.kind, attempts = job.attempts, retry_in_secs = delay,
                error = %message, "job failed");
            // The first failure of a streak is news; its retries are not.
            if job.attempts <= 1 {
                let data = serde_json::json!({
                    "job": job.id, "kind": job.kind, "distribution_version_id": job.distro_version_id,
                    "arch": job.arch, "error": message, "retry_in_secs": delay,
                });
                crate::webhooks::emit(app, job.repository_id, "job.failed", data).await;
            }
            db::jobs::retry_later(&app.db, job, &message, delay).await
        }
    };
    if let Err(e) = outcome {
        tracing::error!(job = job.id, error = %format!("{e:#}"), "recording a job's outcome failed");
    }
}

async fn renew_lease(db: Db, claim: db::jobs::Claim, lease_secs: i64) {
    let every = Duration::from_secs((lease_secs as u64 / 3).max(1));
    loop {
        tokio::time::sleep(every).await;
        match db::jobs::renew(&db, claim, lease_secs).await {
            Ok(true) => {}
            Ok(false) => {
                // The commit is fenced by the claim, so this build can no longer land.
                tracing::warn!(job = claim.job_id, "lost the lease of a running job");
                return;
            }
            Err(e) => {
                tracing::warn!(job = claim.job_id, error = %format!("{e:#}"), "renewing a lease failed")
            }
        }
    }
}

/// Test hook: with `PACKYARD_FAILPOINT_COMMIT_PAUSE_MS` set, every publish waits that long
/// between writing its blobs and committing, so a test can kill a worker in the middle of a
/// publish. Unset, it costs nothing.
pub(crate) async fn failpoint_before_commit() {
    static PAUSE: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let pause = PAUSE.get_or_init(|| {
        std::env::var("PACKYARD_FAILPOINT_COMMIT_PAUSE_MS")
            .ok()
            .and_then(|ms| ms.parse().ok())
    });
    if let Some(ms) = pause {
        tracing::warn!(pause_ms = ms, "failpoint: pausing before commit");
        tokio::time::sleep(Duration::from_millis(*ms)).await;
    }
}
