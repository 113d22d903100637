//! What `packyard status` and `/api/system` report: the build, the backends, the processes
//! seen lately, the job queue and its failures, each target's last publish and how long a
//! push took to become visible, the soonest signing-key expiry, and the last backup.

use anyhow::Result;
use serde::Serialize;

use crate::app::App;
use crate::db;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const COMMIT: &str = env!("PACKYARD_COMMIT");
pub const BUILD_DATE: &str = env!("PACKYARD_BUILD_DATE");

/// Processes not seen for this long are not listed.
const SEEN_WITHIN_SECS: i64 = 120;

#[derive(Debug, Serialize)]
pub struct Build {
    pub version: &'static str,
    pub commit: &'static str,
    pub build_date: &'static str,
}

pub const BUILD: Build = Build {
    version: VERSION,
    commit: COMMIT,
    build_date: BUILD_DATE,
};

#[derive(Debug, Serialize)]
pub struct Status {
    #[serde(flatten)]
    pub build: Build,
    pub database: Database,
    pub storage: String,
    pub processes: Vec<db::processes::Process>,
    pub roles: Vec<String>,
    pub queue: Vec<Queue>,
    pub queue_depth: i64,
    pub oldest_queued_age_secs: Option<i64>,
    pub failing_jobs: Vec<db::jobs::Failing>,
    pub targets: Vec<Target>,
    pub last_publish_at: Option<i64>,
    pub soonest_key_expiry: Option<KeyExpiry>,
    pub last_backup_at: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct Database {
    pub kind: &'static str,
    pub schema_version: i64,
}

#[derive(Debug, Serialize)]
pub struct Queue {
    pub kind: String,
    pub queued: i64,
    pub running: i64,
    pub oldest_queued_age_secs: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct Target {
    pub repository: String,
    /// `debian/bookworm`, `el/9/x86_64`.
    pub target: String,
    pub published_at: i64,
    pub build_ms: Option<i64>,
    /// From the push of the oldest package the publish listed to its commit.
    pub push_to_visible_ms: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct KeyExpiry {
    pub repository: String,
    pub fingerprint: String,
    pub expires_at: i64,
    pub days_left: i64,
}

pub async fn collect(app: &App) -> Result<Status> {
    let now = db::now();
    let schema_version = app.db.schema_version().await?;
    let processes = db::processes::seen_since(&app.db, now - SEEN_WITHIN_SECS).await?;
    let mut roles: Vec<String> = processes.iter().map(|p| p.role.clone()).collect();
    roles.sort();
    roles.dedup();
    let queue: Vec<Queue> = db::jobs::depths(&app.db)
        .await?
        .into_iter()
        .map(|(kind, queued, running, oldest)| Queue {
            kind,
            queued,
            running,
            oldest_queued_age_secs: oldest.map(|at| (now - at).max(0)),
        })
        .collect();
    let targets = collect_targets(app).await?;
    let soonest_key_expiry = db::signing_keys::all_keys(&app.db)
        .await?
        .into_iter()
        .filter(|(_, _, key)| key.state.signs() && key.expires_at != crate::sign::NEVER_EXPIRES)
        .min_by_key(|(_, _, key)| key.expires_at)
        .map(|(owner, repo, key)| KeyExpiry {
            repository: format!("{owner}/{repo}"),
            fingerprint: key.fingerprint,
            expires_at: key.expires_at,
            days_left: (key.expires_at - now).div_euclid(86_400),
        });
    Ok(Status {
        build: BUILD,
        database: Database {
            kind: app.db.kind(),
            schema_version,
        },
        storage: app.config.storage.clone(),
        roles,
        processes,
        queue_depth: queue.iter().map(|q| q.queued + q.running).sum(),
        oldest_queued_age_secs: queue.iter().filter_map(|q| q.oldest_queued_age_secs).max(),
        queue,
        failing_jobs: db::jobs::failing(&app.db).await?,
        last_publish_at: targets.iter().map(|t| t.published_at).max(),
        targets,
        soonest_key_expiry,
        last_backup_at: db::audit::last_success(&app.db, "backup").await?,
    })
}

/// Each target's current generation: when it was published, how long its build took, and
/// how long its oldest new package took from push to visible.
pub async fn collect_targets(app: &App) -> Result<Vec<Target>> {
    Ok(db::generations::published(&app.db)
        .await?
        .into_iter()
        .map(|p| {
            let target = db::generations::Target {
                repository_id: p.repository_id,
                distro_version_id: p.distro_version_id,
                arch: p.arch.clone(),
            }
            .label();
            Target {
                repository: p.repository,
                target,
                published_at: p.published_at,
                build_ms: p.build_started_ms.zip(p.committed_ms).map(|(s, c)| c - s),
                push_to_visible_ms: p
                    .pushed_ms
                    .zip(p.committed_ms)
                    .map(|(at, c)| (c - at).max(0)),
            }
        })
        .collect())
}
