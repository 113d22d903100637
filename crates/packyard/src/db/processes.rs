//! The processes that run: each announces itself every half minute, so `status` can tell
//! which roles are up.

use anyhow::Result;

use super::{Db, now, run};

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Process {
    pub instance: String,
    pub role: String,
    pub version: String,
    pub started_at: i64,
    pub seen_at: i64,
}

pub async fn heartbeat(
    db: &Db,
    instance: &str,
    role: &str,
    version: &str,
    started_at: i64,
) -> Result<()> {
    run!(
        db,
        sqlx::query(
            "INSERT INTO processes (instance, role, version, started_at, seen_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (instance) DO UPDATE SET role = excluded.role, version = excluded.version,
             started_at = excluded.started_at, seen_at = excluded.seen_at",
        )
        .bind(instance)
        .bind(role)
        .bind(version)
        .bind(started_at)
        .bind(now()),
        execute
    )?;
    Ok(())
}

/// A process that stops cleanly says so; one that dies ages out.
pub async fn gone(db: &Db, instance: &str) -> Result<()> {
    run!(
        db,
        sqlx::query("DELETE FROM processes WHERE instance = $1").bind(instance),
        execute
    )?;
    Ok(())
}

/// Processes seen since `since`, and deletes those not seen for a day.
pub async fn seen_since(db: &Db, since: i64) -> Result<Vec<Process>> {
    run!(
        db,
        sqlx::query("DELETE FROM processes WHERE seen_at < $1").bind(now() - 86_400),
        execute
    )?;
    Ok(run!(
        db,
        sqlx::query_as(
            "SELECT instance, role, version, started_at, seen_at FROM processes
             WHERE seen_at >= $1 ORDER BY role, instance",
        )
        .bind(since),
        fetch_all
    )?)
}
