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

/// A fetch of one of a repository's signed documents by a host.
#[derive(Debug, Clone)]
pub struct IndexFetch {
    pub repository_id: i64,
    /// `host_key` of the request.
    pub host: String,
    pub fetched_at: i64,
}

/// How download records and index fetches name a host: its read token's name, or its address
/// and user agent (`ip_address || ' ' || user_agent` in SQL).
pub fn host_key(read_token: Option<&str>, ip_address: &str, user_agent: &str) -> String {
    match read_token {
        Some(token) => token.to_owned(),
        None => format!("{ip_address} {user_agent}"),
    }
}

/// A user agent as it is stored: at most 512 characters.
pub fn stored_user_agent(user_agent: &str) -> String {
    user_agent.chars().take(512).collect()
}

/// Stores a batch of downloads in one transaction, one row per set of downloads alike in
/// package, second, client, user agent and token, and the latest index fetch of each host.
pub async fn record(db: &Db, batch: &[Download], fetches: &[IndexFetch]) -> Result<()> {
    let mut latest: HashMap<(i64, &str), i64> = HashMap::new();
    for f in fetches {
        let at = latest
            .entry((f.repository_id, f.host.as_str()))
            .or_default();
        *at = (*at).max(f.fetched_at);
    }
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
        run_tx!(
            &mut tx,
            sqlx::query("UPDATE packages SET download_count = download_count + $2 WHERE id = $1")
                .bind(package_id)
                .bind(count),
            execute
        )?;
    }
    for ((repository_id, host), fetched_at) in latest {
        run_tx!(
            &mut tx,
            sqlx::query(
                "INSERT INTO index_fetches (repository_id, host, fetched_at)
                 SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM repositories WHERE id = $1)
                 ON CONFLICT (repository_id, host) DO UPDATE SET fetched_at = excluded.fetched_at
                 WHERE index_fetches.fetched_at < excluded.fetched_at",
            )
            .bind(repository_id)
            .bind(host)
            .bind(fetched_at),
            execute
        )?;
    }
    tx.commit().await
}

/// The hosts that fetched one of the repository's signed documents at `since` or later.
pub async fn index_hosts_since(db: &Db, repository_id: i64, since: i64) -> Result<Vec<String>> {
    Ok(run!(
        db,
        sqlx::query_scalar(
            "SELECT host FROM index_fetches WHERE repository_id = $1 AND fetched_at >= $2",
        )
        .bind(repository_id)
        .bind(since),
        fetch_all
    )?)
}

/// The hosts that downloaded a package named `name` from the repository, with the versions
/// they downloaded.
pub async fn hosts_with_versions(
    db: &Db,
    repository_id: i64,
    name: &str,
) -> Result<Vec<(String, String)>> {
    Ok(run!(
        db,
        sqlx::query_as(
            "SELECT DISTINCT COALESCE(d.read_token, d.ip_address || ' ' || d.user_agent), p.version
             FROM downloads d JOIN packages p ON p.id = d.package_id
             WHERE p.repository_id = $1 AND p.name = $2",
        )
        .bind(repository_id)
        .bind(name),
        fetch_all
    )?)
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

/// Downloads of a repository's packages since `since`, as (second, count), for its daily
/// chart.
pub async fn repository_daily(db: &Db, repository_id: i64, since: i64) -> Result<Vec<(i64, i64)>> {
    Ok(run!(
        db,
        sqlx::query_as(
            "SELECT d.downloaded_at, d.count FROM downloads d JOIN packages p ON p.id = d.package_id
             WHERE p.repository_id = $1 AND d.downloaded_at >= $2",
        )
        .bind(repository_id)
        .bind(since),
        fetch_all
    )?)
}

/// When each read token (by name) of a repository last downloaded a package.
pub async fn read_tokens_last_used(db: &Db, repository_id: i64) -> Result<Vec<(String, i64)>> {
    Ok(run!(
        db,
        sqlx::query_as(
            "SELECT d.read_token, CAST(MAX(d.downloaded_at) AS BIGINT) FROM downloads d
             JOIN packages p ON p.id = d.package_id
             WHERE p.repository_id = $1 AND d.read_token IS NOT NULL GROUP BY d.read_token",
        )
        .bind(repository_id),
        fetch_all
    )?)
}
