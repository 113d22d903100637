//! Webhooks and their deliveries: the delivery log is also the queue delivery workers claim
//! from.

use anyhow::Result;

use super::{Db, Tx, now, now_ms, run, run_tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Webhook {
    pub id: i64,
    pub repository_id: i64,
    pub url: String,
    /// Sealed with the deployment's secret key.
    pub secret: String,
    pub events: String,
    pub created_at: i64,
}

impl Webhook {
    pub fn wants(&self, event: &str) -> bool {
        self.events == "*" || self.events.split(',').any(|e| e.trim() == event)
    }
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Delivery {
    pub id: i64,
    pub webhook_id: i64,
    pub message_id: String,
    pub event: String,
    #[serde(skip)]
    pub payload: String,
    pub created_ms: i64,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_ms: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub delivered_ms: Option<i64>,
}

const HOOK: &str = "id, repository_id, url, secret, events, created_at";
const DELIVERY: &str = "id, webhook_id, message_id, event, payload, created_ms, state, attempts,
    next_attempt_ms, last_status, last_error, delivered_ms";

pub async fn create(
    db: &Db,
    repository_id: i64,
    url: &str,
    sealed: &str,
    events: &str,
) -> Result<Webhook> {
    let sql = format!(
        "INSERT INTO webhooks (repository_id, url, secret, events, created_at)
         VALUES ($1, $2, $3, $4, $5) RETURNING {HOOK}"
    );
    Ok(run!(
        db,
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(repository_id)
            .bind(url)
            .bind(sealed)
            .bind(events)
            .bind(now()),
        fetch_one
    )?)
}

pub async fn list(db: &Db, repository_id: i64) -> Result<Vec<Webhook>> {
    let sql = format!("SELECT {HOOK} FROM webhooks WHERE repository_id = $1 ORDER BY id");
    Ok(run!(
        db,
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(repository_id),
        fetch_all
    )?)
}

pub async fn by_id(db: &Db, id: i64) -> Result<Option<Webhook>> {
    let sql = format!("SELECT {HOOK} FROM webhooks WHERE id = $1");
    Ok(run!(
        db,
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id),
        fetch_optional
    )?)
}

pub async fn remove(db: &Db, id: i64) -> Result<()> {
    run!(
        db,
        sqlx::query("DELETE FROM webhooks WHERE id = $1").bind(id),
        execute
    )?;
    Ok(())
}

/// Whether the repository has any webhook (most have none, and skip building payloads).
pub async fn any(tx: &mut Tx, repository_id: i64) -> Result<bool> {
    let found: Option<i64> = run_tx!(
        tx,
        sqlx::query_scalar("SELECT id FROM webhooks WHERE repository_id = $1 LIMIT 1")
            .bind(repository_id),
        fetch_optional
    )?;
    Ok(found.is_some())
}

/// Queues `event` for every webhook of the repository that wants it, inside the transaction
/// that made it happen.
pub async fn enqueue(
    tx: &mut Tx,
    repository_id: i64,
    event: &str,
    message_id: &str,
    payload: &str,
) -> Result<()> {
    let sql = format!("SELECT {HOOK} FROM webhooks WHERE repository_id = $1");
    let hooks: Vec<Webhook> = run_tx!(
        tx,
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(repository_id),
        fetch_all
    )?;
    for hook in hooks.iter().filter(|h| h.wants(event)) {
        insert(tx, hook.id, event, message_id, payload).await?;
    }
    Ok(())
}

/// Queues one delivery (a test event, or a redelivery under the same message id).
pub async fn insert(
    tx: &mut Tx,
    webhook_id: i64,
    event: &str,
    message_id: &str,
    payload: &str,
) -> Result<()> {
    let at = now_ms();
    run_tx!(
        tx,
        sqlx::query(
            "INSERT INTO webhook_deliveries (webhook_id, message_id, event, payload, created_ms, state, next_attempt_ms)
             VALUES ($1, $2, $3, $4, $5, 'pending', $5)"
        )
        .bind(webhook_id)
        .bind(message_id)
        .bind(event)
        .bind(payload)
        .bind(at),
        execute
    )?;
    Ok(())
}

/// The newest deliveries of a webhook.
pub async fn deliveries(db: &Db, webhook_id: i64, limit: i64) -> Result<Vec<Delivery>> {
    let sql = format!(
        "SELECT {DELIVERY} FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY id DESC LIMIT $2"
    );
    Ok(run!(
        db,
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(webhook_id)
            .bind(limit),
        fetch_all
    )?)
}

pub async fn delivery(db: &Db, id: i64) -> Result<Option<Delivery>> {
    let sql = format!("SELECT {DELIVERY} FROM webhook_deliveries WHERE id = $1");
    Ok(run!(
        db,
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id),
        fetch_optional
    )?)
}

/// Takes the next due delivery for `lease_ms`, counting the attempt; one worker gets each.
pub async fn claim_due(db: &Db, lease_ms: i64) -> Result<Option<Delivery>> {
    let at = now_ms();
    let sql = format!(
        "UPDATE webhook_deliveries SET next_attempt_ms = $1, attempts = attempts + 1
         WHERE id = (SELECT id FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_ms <= $2
                     ORDER BY next_attempt_ms, id LIMIT 1)
           AND state = 'pending' AND next_attempt_ms <= $2
         RETURNING {DELIVERY}"
    );
    Ok(run!(
        db,
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(at + lease_ms)
            .bind(at),
        fetch_optional
    )?)
}

/// Records an attempt: delivered, to be tried again at `retry_at_ms`, or given up.
pub async fn record(
    db: &Db,
    id: i64,
    status: Option<u16>,
    error: Option<&str>,
    retry_at_ms: Option<i64>,
) -> Result<()> {
    let delivered = status.is_some_and(|s| (200..300).contains(&s));
    let state = match (delivered, retry_at_ms) {
        (true, _) => "delivered",
        (false, Some(_)) => "pending",
        (false, None) => "failed",
    };
    run!(
        db,
        sqlx::query(
            "UPDATE webhook_deliveries SET state = $1, last_status = $2, last_error = $3,
             next_attempt_ms = COALESCE($4, next_attempt_ms),
             delivered_ms = CASE WHEN $1 = 'delivered' THEN $5 ELSE delivered_ms END
             WHERE id = $6"
        )
        .bind(state)
        .bind(status.map(i64::from))
        .bind(error)
        .bind(retry_at_ms)
        .bind(now_ms())
        .bind(id),
        execute
    )?;
    Ok(())
}

/// Of these packages, those never indexed before (their `package.visible` is still to come).
pub async fn first_visible(tx: &mut Tx, ids: &[i64]) -> Result<Vec<i64>> {
    let mut found = Vec::new();
    for batch in ids.chunks(1000) {
        // Integers only: a literal list is safe.
        let list = batch
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let sql = format!("SELECT id FROM packages WHERE id IN ({list}) AND indexed_ms IS NULL");
        let ids: Vec<i64> = run_tx!(tx, sqlx::query_scalar(sqlx::AssertSqlSafe(sql)), fetch_all)?;
        found.extend(ids);
    }
    Ok(found)
}

/// Claims the announcement of a key's expiry at `threshold` days: true for the one caller
/// that moves it there first.
pub async fn claim_expiry_announcement(db: &Db, key_id: i64, threshold: i64) -> Result<bool> {
    let moved = run!(
        db,
        sqlx::query(
            "UPDATE signing_keys SET expiry_announced_days = $1
             WHERE id = $2 AND (expiry_announced_days IS NULL OR expiry_announced_days > $1)"
        )
        .bind(threshold)
        .bind(key_id),
        execute
    )?;
    Ok(moved == 1)
}

/// The repository a signing key belongs to.
pub async fn key_repository(db: &Db, key_id: i64) -> Result<i64> {
    Ok(run!(
        db,
        sqlx::query_scalar("SELECT repository_id FROM signing_keys WHERE id = $1").bind(key_id),
        fetch_one
    )?)
}
