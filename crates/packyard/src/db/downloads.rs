//! Download records of package files, written in batches and summed for the stats API.

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
}

/// Stores a batch of downloads in one transaction.
pub async fn record(db: &Db, batch: &[Download]) -> Result<()> {
    let mut tx = db.begin_write().await?;
    for d in batch {
        run_tx!(
            &mut tx,
            sqlx::query(
                "INSERT INTO downloads (package_id, downloaded_at, ip_address, user_agent, read_token)
                 SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM packages WHERE id = $1)",
            )
            .bind(d.package_id)
            .bind(d.downloaded_at)
            .bind(&d.ip_address)
            .bind(&d.user_agent)
            .bind(&d.read_token),
            execute
        )?;
    }
    tx.commit().await
}

pub async fn count(db: &Db, package_id: i64) -> Result<i64> {
    Ok(run!(
        db,
        sqlx::query_scalar("SELECT COUNT(*) FROM downloads WHERE package_id = $1").bind(package_id),
        fetch_one
    )?)
}

/// The newest downloads first, at most `limit`.
pub async fn detail(db: &Db, package_id: i64, limit: i64) -> Result<Vec<Download>> {
    Ok(run!(
        db,
        sqlx::query_as(
            "SELECT package_id, downloaded_at, ip_address, user_agent, read_token FROM downloads
             WHERE package_id = $1 ORDER BY downloaded_at DESC, id DESC LIMIT $2",
        )
        .bind(package_id)
        .bind(limit),
        fetch_all
    )?)
}

/// Download times, oldest first, for a daily series.
pub async fn times(db: &Db, package_id: i64) -> Result<Vec<i64>> {
    Ok(run!(
        db,
        sqlx::query_scalar(
            "SELECT downloaded_at FROM downloads WHERE package_id = $1 ORDER BY downloaded_at"
        )
        .bind(package_id),
        fetch_all
    )?)
}
