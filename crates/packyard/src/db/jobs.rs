//! The job queue table: enqueue with per-target deduplication, claim with a lease, finish,
//! retry with backoff.
//!
//! Invariant: at most one queued job and at most one unexpired running job per target, so two
//! workers never build the same target at once and a burst of pushes costs one more publish.

use anyhow::Result;

use super::{run, run_tx};

use super::generations::Target;
use super::{Db, Tx, now};

/// The channel on which PostgreSQL tells every worker process that a job was queued.
pub const WAKE_CHANNEL: &str = "packyard_jobs";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub repository_id: i64,
    pub distro_version_id: i64,
    pub arch: String,
    pub attempts: i64,
    /// The highest package id when the job was claimed, under the lock that excludes writers:
    /// every package with an id up to it had committed by then.
    pub watermark: i64,
    /// Rebuild every index file from the database (a reindex).
    pub rebuild: bool,
}

/// The proof that a worker holds a job: its id and the attempt it claimed. A takeover after
/// the lease ran out is a new attempt, so the previous holder can no longer renew or commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    pub job_id: i64,
    pub attempt: i64,
    pub watermark: i64,
}

impl Job {
    pub fn claim(&self) -> Claim {
        Claim {
            job_id: self.id,
            attempt: self.attempts,
            watermark: self.watermark,
        }
    }

    pub fn target(&self) -> Target {
        Target {
            repository_id: self.repository_id,
            distro_version_id: self.distro_version_id,
            arch: self.arch.clone(),
        }
    }
}

/// Queues a job for the target unless one is already queued.
pub async fn enqueue(tx: &mut Tx, kind: &str, target: &Target) -> Result<()> {
    // A queued job coalesces the new run; if it is waiting out a failure's backoff, it runs
    // now, since what it publishes has changed (a key extended after publishes failed, say).
    run_tx!(tx, sqlx::query(
        "INSERT INTO jobs (kind, repository_id, distro_version_id, arch, state, run_at, created_at)
         VALUES ($1, $2, $3, $4, 'queued', $5, $5)
         ON CONFLICT (kind, repository_id, distro_version_id, arch) WHERE state = 'queued'
         DO UPDATE SET run_at = excluded.run_at WHERE jobs.run_at > excluded.run_at",
    )
    .bind(kind)
    .bind(target.repository_id)
    .bind(target.distro_version_id)
    .bind(&target.arch)
    .bind(now()), execute)?;
    // Wakes workers in every process once the transaction commits.
    super::notify(tx, WAKE_CHANNEL).await
}

/// Queues a rebuild of the target: as `enqueue`, and the queued job (new or already there)
/// rebuilds every index file from the database.
pub async fn enqueue_rebuild(tx: &mut Tx, kind: &str, target: &Target) -> Result<()> {
    run_tx!(tx, sqlx::query(
        "INSERT INTO jobs (kind, repository_id, distro_version_id, arch, state, run_at, created_at, rebuild)
         VALUES ($1, $2, $3, $4, 'queued', $5, $5, TRUE)
         ON CONFLICT (kind, repository_id, distro_version_id, arch) WHERE state = 'queued'
         DO UPDATE SET rebuild = TRUE, run_at = excluded.run_at",
    )
    .bind(kind)
    .bind(target.repository_id)
    .bind(target.distro_version_id)
    .bind(&target.arch)
    .bind(now()), execute)?;
    super::notify(tx, WAKE_CHANNEL).await
}

/// Jobs queued or running for the repository (of one distribution version, if given).
pub async fn pending_for(
    db: &Db,
    repository_id: i64,
    distro_version_id: Option<i64>,
) -> Result<i64> {
    Ok(run!(
        db,
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs WHERE repository_id = $1
             AND ($2 IS NULL OR distro_version_id = $2)",
        )
        .bind(repository_id)
        .bind(distro_version_id),
        fetch_one
    )?)
}

/// Extends the lease of a job still held under `claim`; false when it was taken over.
pub async fn renew(db: &Db, claim: Claim, lease_secs: i64) -> Result<bool> {
    let renewed = run!(
        db,
        sqlx::query(
            "UPDATE jobs SET lease_until = $3 WHERE id = $1 AND attempts = $2 AND state = 'running'"
        )
        .bind(claim.job_id)
        .bind(claim.attempt)
        .bind(now() + lease_secs),
        execute
    )?;
    Ok(renewed == 1)
}

/// Whether `claim` still holds its job, checked inside the transaction that commits its work.
pub async fn holds(tx: &mut Tx, claim: &Claim) -> Result<bool> {
    let held: i64 = run_tx!(
        tx,
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs WHERE id = $1 AND attempts = $2 AND state = 'running'"
        )
        .bind(claim.job_id)
        .bind(claim.attempt),
        fetch_one
    )?;
    Ok(held == 1)
}

/// Takes the oldest runnable job whose target nobody else is building, leasing it for
/// `lease_secs`.
pub async fn claim(db: &Db, lease_secs: i64) -> Result<Option<Job>> {
    let now = now();
    // Exclusive of every writer: a push that found this job still queued (and so queued no
    // other) has committed before the claim, and its package is in what the job will read.
    let mut tx = db.begin_exclusive().await?;
    // A running job whose lease ran out belongs to a worker that died: queue it again, or drop
    // it when another run of its target is queued already.
    run_tx!(&mut tx, sqlx::query(
        "DELETE FROM jobs WHERE state = 'running' AND lease_until <= $1 AND EXISTS (
            SELECT 1 FROM jobs q WHERE q.state = 'queued' AND q.kind = jobs.kind
            AND q.repository_id = jobs.repository_id AND q.distro_version_id = jobs.distro_version_id
            AND q.arch = jobs.arch)",
    )
    .bind(now), execute)?;
    run_tx!(
        &mut tx,
        sqlx::query(
            "UPDATE jobs SET state = 'queued' WHERE state = 'running' AND lease_until <= $1"
        )
        .bind(now),
        execute
    )?;
    // On PostgreSQL concurrent claimers skip each other's candidate rows; SQLite has one
    // writer at a time anyway.
    let lock = match db {
        Db::Sqlite(..) => "",
        Db::Postgres(_) => " FOR UPDATE SKIP LOCKED",
    };
    let sql = format!(
        "UPDATE jobs SET state = 'running', lease_until = $2, attempts = attempts + 1
         WHERE state = 'queued' AND id = (
            SELECT j.id FROM jobs j WHERE j.state = 'queued' AND j.run_at <= $1
            AND NOT EXISTS (
                SELECT 1 FROM jobs r WHERE r.state = 'running' AND r.kind = j.kind
                AND r.repository_id = j.repository_id AND r.distro_version_id = j.distro_version_id
                AND r.arch = j.arch)
            ORDER BY j.run_at, j.id LIMIT 1{lock})
         RETURNING id, kind, repository_id, distro_version_id, arch, attempts,
            (SELECT COALESCE(MAX(id), 0) FROM packages) AS watermark, rebuild"
    );
    let job = run_tx!(
        &mut tx,
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(now + lease_secs),
        fetch_optional
    )?;
    tx.commit().await?;
    Ok(job)
}

/// Removes a finished job, unless another worker took it over meanwhile.
pub async fn complete(db: &Db, job: &Job) -> Result<()> {
    run!(
        db,
        sqlx::query("DELETE FROM jobs WHERE id = $1 AND attempts = $2")
            .bind(job.id)
            .bind(job.attempts),
        execute
    )?;
    Ok(())
}

/// Puts a failed job back with a delay, or drops it when a newer run is already queued; a job
/// another worker took over is left to that worker.
pub async fn retry_later(db: &Db, job: &Job, error: &str, delay_secs: i64) -> Result<()> {
    let mut tx = db.begin_write().await?;
    let requeued = run_tx!(
        &mut tx,
        sqlx::query(
            "UPDATE jobs SET state = 'queued', run_at = $2, lease_until = NULL, last_error = $3,
         last_failed_at = $9, first_failed_at = COALESCE(first_failed_at, $9)
         WHERE id = $1 AND attempts = $8 AND NOT EXISTS (
            SELECT 1 FROM jobs q WHERE q.state = 'queued' AND q.kind = $4
            AND q.repository_id = $5 AND q.distro_version_id = $6 AND q.arch = $7)",
        )
        .bind(job.id)
        .bind(now() + delay_secs)
        .bind(error)
        .bind(&job.kind)
        .bind(job.repository_id)
        .bind(job.distro_version_id)
        .bind(&job.arch)
        .bind(job.attempts)
        .bind(now()),
        execute
    )?;
    if requeued == 0 {
        // The run queued meanwhile takes over; it keeps the error, and a rebuild stays one.
        run_tx!(
            &mut tx,
            sqlx::query(
                "UPDATE jobs SET last_error = $5, last_failed_at = $6,
                 first_failed_at = COALESCE(first_failed_at, $6), rebuild = (rebuild OR $7)
                 WHERE state = 'queued' AND kind = $1 AND repository_id = $2
                 AND distro_version_id = $3 AND arch = $4",
            )
            .bind(&job.kind)
            .bind(job.repository_id)
            .bind(job.distro_version_id)
            .bind(&job.arch)
            .bind(error)
            .bind(now())
            .bind(job.rebuild),
            execute
        )?;
        run_tx!(
            &mut tx,
            sqlx::query("DELETE FROM jobs WHERE id = $1 AND attempts = $2")
                .bind(job.id)
                .bind(job.attempts),
            execute
        )?;
    }
    tx.commit().await?;
    Ok(())
}

/// Jobs queued or running, for readiness and tests.
pub async fn pending(db: &Db) -> Result<i64> {
    Ok(run!(
        db,
        sqlx::query_scalar("SELECT COUNT(*) FROM jobs"),
        fetch_one
    )?)
}

/// Seconds until the next delayed job becomes runnable, if any is waiting.
pub async fn next_run_in(db: &Db) -> Result<Option<i64>> {
    let next: Option<i64> = run!(
        db,
        sqlx::query_scalar("SELECT MIN(run_at) FROM jobs WHERE state = 'queued'"),
        fetch_one
    )?;
    Ok(next.map(|at| (at - now()).max(0)))
}

/// The errors of the repository's failing jobs (of one distribution version, if given).
pub async fn errors_for(
    db: &Db,
    repository_id: i64,
    distro_version_id: Option<i64>,
) -> Result<Vec<String>> {
    Ok(run!(
        db,
        sqlx::query_scalar(
            "SELECT last_error FROM jobs WHERE last_error IS NOT NULL AND repository_id = $1
             AND ($2 IS NULL OR distro_version_id = $2) ORDER BY id",
        )
        .bind(repository_id)
        .bind(distro_version_id),
        fetch_all
    )?)
}

/// Per kind: jobs queued, jobs running, and when the oldest queued one was queued.
pub async fn depths(db: &Db) -> Result<Vec<(String, i64, i64, Option<i64>)>> {
    Ok(run!(
        db,
        sqlx::query_as(
            "SELECT kind,
                CAST(SUM(CASE WHEN state = 'queued' THEN 1 ELSE 0 END) AS BIGINT),
                CAST(SUM(CASE WHEN state = 'running' THEN 1 ELSE 0 END) AS BIGINT),
                MIN(CASE WHEN state = 'queued' THEN created_at END)
             FROM jobs GROUP BY kind ORDER BY kind",
        ),
        fetch_all
    )?)
}

/// A job whose last attempt failed; it is retried with a back-off.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Failing {
    pub id: i64,
    pub kind: String,
    pub repository: String,
    pub distro_version_id: i64,
    pub arch: String,
    pub attempts: i64,
    pub first_failed_at: Option<i64>,
    pub last_failed_at: Option<i64>,
    pub next_run_at: i64,
    pub error: String,
}

pub async fn failing(db: &Db) -> Result<Vec<Failing>> {
    Ok(run!(
        db,
        sqlx::query_as(
            "SELECT j.id, j.kind, u.name || '/' || r.name AS repository, j.distro_version_id, j.arch,
                j.attempts, j.first_failed_at, j.last_failed_at, j.run_at AS next_run_at,
                j.last_error AS error
             FROM jobs j JOIN repositories r ON r.id = j.repository_id JOIN users u ON u.id = r.owner_id
             WHERE j.last_error IS NOT NULL ORDER BY j.id",
        ),
        fetch_all
    )?)
}

/// Runs failing jobs now (one, or all with `None`); returns how many.
pub async fn retry_now(db: &Db, id: Option<i64>) -> Result<u64> {
    Ok(run!(
        db,
        sqlx::query(
            "UPDATE jobs SET run_at = $1 WHERE state = 'queued' AND last_error IS NOT NULL
             AND ($2 IS NULL OR id = $2)",
        )
        .bind(now())
        .bind(id),
        execute
    )?)
}

/// Running jobs whose lease ran out: id, kind, and when the lease ended.
pub async fn stuck(db: &Db) -> Result<Vec<(i64, String, i64)>> {
    Ok(run!(
        db,
        sqlx::query_as(
            "SELECT id, kind, lease_until FROM jobs WHERE state = 'running' AND lease_until < $1
             ORDER BY id",
        )
        .bind(now()),
        fetch_all
    )?)
}
