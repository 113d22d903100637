//! Download records of package files, written in batches and summed for the stats API.

use std::collections::HashMap;

use anyhow::Result;

use super::{Db, run, run_tx};

/// One download of a package file.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Download {
    pub package_id: i64,
    pub downloaded_at: i64,
    pub ip_address: String,
    pub user_agent: String,
    /// The name of the read token used, for private repositories.
    pub read_token: Option<String>,
    /// How many downloads this is: those alike in everything above share a row.
    pub count: i64,
}

/// Stores a batch of downloads in one transaction, one row per set of downloads alike in
/// package, second, client, user agent and token.
pub async fn record(db: &Db, batch: &[Download]) -> Result<()> {
    let mut rows: HashMap<(i64, i64, &str, &str, Option<&str>), i64> = HashMap::new();
    for d in batch {
        let key = (
            d.package_id,
            d.downloaded_at,
            d.ip_address.as_str(),
            d.user_agent.as_str(),
            d.read_token.as_deref(),
        );
        *rows.entry(key).or_default() += d.count;
    }
    let mut tx = db.begin_write().await?;
    for ((package_id, downloaded_at, ip_address, user_agent, read_token), count) in rows {
        run_tx!(
            &mut tx,
            sqlx::query(
                "INSERT INTO downloads (package_id, downloaded_at, ip_address, user_agent, read_token, count)
                 SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM packages WHERE id = $1)",
            )
            .bind(package_id)
            .bind(downloaded_at)
            .bind(ip_address)
            .bind(user_agent)
            .bind(read_token)
            .bind(count),
            execute
        )?;
    }
    tx.commit().await
}

pub async fn count(db: &Db, package_id: i64) -> Result<i64> {
    Ok(run!(
        db,
        sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) FROM downloads WHERE package_id = $1"
        )
        .bind(package_id),
        fetch_one
    )?)
}

/// The newest downloads first, at most `limit`, one per download.
pub async fn detail(db: &Db, package_id: i64, limit: i64) -> Result<Vec<Download>> {
    let rows: Vec<Download> = run!(
        db,
        sqlx::query_as(
            "SELECT package_id, downloaded_at, ip_address, user_agent, read_token, count
             FROM downloads WHERE package_id = $1 ORDER BY downloaded_at DESC, id DESC LIMIT $2",
        )
        .bind(package_id)
        .bind(limit),
        fetch_all
    )?;
    let limit = usize::try_from(limit).unwrap_or(0);
    let each = rows.into_iter().flat_map(|row| {
        let times = usize::try_from(row.count).unwrap_or(0);
        std::iter::repeat_n(Download { count: 1, ..row }, times)
    });
    Ok(each.take(limit).collect())
}

/// Download times, oldest first, each with how many downloads it was, for a daily series.
pub async fn times(db: &Db, package_id: i64) -> Result<Vec<(i64, i64)>> {
    Ok(run!(
        db,
        sqlx::query_as(
            "SELECT downloaded_at, count FROM downloads WHERE package_id = $1 ORDER BY downloaded_at"
        )
        .bind(package_id),
        fetch_all
    )?)
}
