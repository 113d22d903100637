//! The audit log: one row per change, kept 400 days.

use anyhow::Result;

use super::{Db, Tx, run, run_tx};

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct AuditEvent {
    pub id: i64,
    pub at: i64,
    pub actor_kind: String,
    pub actor: String,
    pub ip_address: Option<String>,
    pub action: String,
    pub repository: Option<String>,
    pub target: Option<String>,
    pub outcome: String,
    /// A JSON object.
    pub details: String,
}

pub struct NewEvent<'a> {
    pub at: i64,
    pub actor_kind: &'a str,
    pub actor: &'a str,
    pub ip_address: Option<String>,
    pub action: &'a str,
    pub repository: Option<&'a str>,
    pub target: Option<&'a str>,
    pub outcome: &'a str,
    pub details: String,
}

pub async fn insert(db: &Db, event: &NewEvent<'_>) -> Result<()> {
    let mut tx = db.begin_write().await?;
    insert_tx(&mut tx, event).await?;
    tx.commit().await
}

/// Inserts `event` in `tx`, so it commits with the change it records.
pub async fn insert_tx(tx: &mut Tx, event: &NewEvent<'_>) -> Result<()> {
    run_tx!(
        tx,
        sqlx::query(
            "INSERT INTO audit_events (at, actor_kind, actor, ip_address, action, repository, target,
             outcome, details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(event.at)
        .bind(event.actor_kind)
        .bind(event.actor)
        .bind(&event.ip_address)
        .bind(event.action)
        .bind(event.repository)
        .bind(event.target)
        .bind(event.outcome)
        .bind(&event.details),
        execute
    )?;
    Ok(())
}

/// Events at `since` or later, newest first, at most `limit`, of one repository if given.
pub async fn list(
    db: &Db,
    since: i64,
    repository: Option<&str>,
    limit: i64,
) -> Result<Vec<AuditEvent>> {
    Ok(run!(
        db,
        sqlx::query_as(
            "SELECT id, at, actor_kind, actor, ip_address, action, repository, target, outcome, details
             FROM audit_events WHERE at >= $1 AND ($2 IS NULL OR repository = $2)
             ORDER BY id DESC LIMIT $3",
        )
        .bind(since)
        .bind(repository)
        .bind(limit),
        fetch_all
    )?)
}

/// Deletes events older than `before`; returns how many.
pub async fn prune(db: &Db, before: i64) -> Result<u64> {
    Ok(run!(
        db,
        sqlx::query("DELETE FROM audit_events WHERE at < $1").bind(before),
        execute
    )?)
}

/// When the last successful run of `action` happened.
pub async fn last_success(db: &Db, action: &str) -> Result<Option<i64>> {
    Ok(run!(
        db,
        sqlx::query_scalar("SELECT MAX(at) FROM audit_events WHERE action = $1 AND outcome = 'ok'")
            .bind(action),
        fetch_one
    )?)
}
