//! Snapshots: named, immutable sets of a repository's package rows.

use anyhow::Result;

use super::{Db, now, run, run_tx};

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Snapshot {
    pub id: i64,
    #[serde(skip)]
    pub repository_id: i64,
    pub name: String,
    pub created_at: i64,
    pub created_by: String,
    /// Packages it names, and their bytes.
    pub packages: i64,
    pub bytes: i64,
}

const SELECT: &str = "SELECT s.id, s.repository_id, s.name, s.created_at, s.created_by,
    CAST(COUNT(p.id) AS BIGINT) AS packages, CAST(COALESCE(SUM(p.size), 0) AS BIGINT) AS bytes
    FROM snapshots s LEFT JOIN snapshot_packages sp ON sp.snapshot_id = s.id
    LEFT JOIN packages p ON p.id = sp.package_id";

/// Records the repository's live packages but its keyring package (named `keyring`) under
/// `name`; `None` when the name is taken.
pub async fn create(
    db: &Db,
    repository_id: i64,
    name: &str,
    created_by: &str,
    keyring: &str,
) -> Result<Option<Snapshot>> {
    let mut tx = db.begin_write().await?;
    let id: Option<i64> = run_tx!(
        &mut tx,
        sqlx::query_scalar(
            "INSERT INTO snapshots (repository_id, name, created_at, created_by)
             VALUES ($1, $2, $3, $4) ON CONFLICT (repository_id, name) DO NOTHING RETURNING id"
        )
        .bind(repository_id)
        .bind(name)
        .bind(now())
        .bind(created_by),
        fetch_optional
    )?;
    let Some(id) = id else {
        return Ok(None);
    };
    run_tx!(
        &mut tx,
        sqlx::query(
            "INSERT INTO snapshot_packages (snapshot_id, package_id)
             SELECT $1, id FROM packages WHERE repository_id = $2 AND deleted_at IS NULL
             AND name <> $3"
        )
        .bind(id)
        .bind(repository_id)
        .bind(keyring),
        execute
    )?;
    tx.commit().await?;
    by_name(db, repository_id, name).await
}

/// The repository's snapshots, newest first.
pub async fn list(db: &Db, repository_id: i64) -> Result<Vec<Snapshot>> {
    let sql = format!(
        "{SELECT} WHERE s.repository_id = $1 GROUP BY s.id, s.repository_id, s.name, s.created_at,
         s.created_by ORDER BY s.created_at DESC, s.id DESC"
    );
    Ok(run!(
        db,
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(repository_id),
        fetch_all
    )?)
}

pub async fn by_name(db: &Db, repository_id: i64, name: &str) -> Result<Option<Snapshot>> {
    let sql = format!(
        "{SELECT} WHERE s.repository_id = $1 AND s.name = $2 GROUP BY s.id, s.repository_id,
         s.name, s.created_at, s.created_by"
    );
    Ok(run!(
        db,
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(repository_id)
            .bind(name),
        fetch_optional
    )?)
}

/// Deletes a snapshot; what only it kept becomes the collector's once its grace has passed.
pub async fn delete(db: &Db, id: i64) -> Result<()> {
    run!(
        db,
        sqlx::query("DELETE FROM snapshots WHERE id = $1").bind(id),
        execute
    )?;
    Ok(())
}
