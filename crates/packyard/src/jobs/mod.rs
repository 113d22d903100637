//! Background work: index workers that take publish jobs from the queue, and the collector of
//! superseded index generations and unreferenced blobs.

pub mod apt_publish;
pub mod chunks;
pub mod gc;
pub mod rpm_publish;

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::db;

/// How long a claimed job is leased before another worker may take it over.
const LEASE_SECS: i64 = 300;
/// How often an idle worker looks for jobs queued by other processes.
const POLL: Duration = Duration::from_secs(2);

/// Runs jobs until `shutdown` is cancelled; the job in hand is finished first.
pub async fn run_worker(app: App, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        match db::jobs::claim(&app.db, LEASE_SECS).await {
            Ok(Some(job)) => run_job(&app, &job).await,
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

async fn run_job(app: &App, job: &db::jobs::Job) {
    let started = Instant::now();
    let result = match job.kind.as_str() {
        db::jobs::APT_PUBLISH => apt_publish::publish(app, &job.target()).await,
        db::jobs::RPM_PUBLISH => rpm_publish::publish(app, &job.target()).await,
        other => Err(anyhow::anyhow!("unknown job kind {other:?}")),
    };
    let duration_ms = started.elapsed().as_millis() as u64;
    let outcome = match result {
        Ok(()) => {
            tracing::info!(job = job.id, kind = %job.kind, repository_id = job.repository_id,
                distro_version_id = job.distro_version_id, arch = %job.arch, duration_ms, "job done");
            db::jobs::complete(&app.db, job).await
        }
        Err(e) => {
            // Backoff: 2, 4, 8 ... seconds, at most ten minutes.
            let delay = 1i64 << job.attempts.clamp(1, 9);
            let message = format!("{e:#}");
            tracing::error!(job = job.id, kind = %job.kind, attempts = job.attempts, retry_in_secs = delay,
                error = %message, "job failed");
            db::jobs::retry_later(&app.db, job, &message, delay).await
        }
    };
    if let Err(e) = outcome {
        tracing::error!(job = job.id, error = %format!("{e:#}"), "recording a job's outcome failed");
    }
}
