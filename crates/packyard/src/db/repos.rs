//! Repositories and their signing keys.

use anyhow::Result;

use super::{run, run_tx};

use super::signing_keys::KeyState;
use super::{Db, Tx, now};
use crate::sign::GeneratedKey;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Repo {
    pub id: i64,
    pub owner_id: i64,
    pub owner: String,
    pub name: String,
    pub private: bool,
    pub index_zstd: bool,
    pub index_xz: bool,
    pub created_at: i64,
    pub last_push_at: Option<i64>,
    /// The version of the repository's keyring package.
    pub keyring_version: i64,
}

const SELECT: &str = "SELECT r.id, r.owner_id, u.name AS owner, r.name, r.private, r.index_zstd,
    r.index_xz, r.created_at, r.last_push_at, r.keyring_version FROM repositories r JOIN users u ON u.id = r.owner_id";

pub struct NewRepo<'a> {
    pub owner_id: i64,
    pub name: &'a str,
    pub private: bool,
    pub index_zstd: bool,
    pub index_xz: bool,
}

/// Inserts a repository with its first signing key; `Ok(None)` when the name is taken.
pub async fn create(db: &Db, repo: &NewRepo<'_>, key: &GeneratedKey) -> Result<Option<i64>> {
    let mut tx = db.begin_write().await?;
    let inserted: Option<(i64,)> =
        run_tx!(&mut tx, sqlx::query_as(
        "INSERT INTO repositories (owner_id, name, private, index_zstd, index_xz, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (owner_id, name) DO NOTHING RETURNING id",
    )
    .bind(repo.owner_id)
    .bind(repo.name)
    .bind(repo.private)
    .bind(repo.index_zstd)
    .bind(repo.index_xz)
    .bind(now()), fetch_optional)?;
    let Some((id,)) = inserted else {
        return Ok(None);
    };
    super::signing_keys::insert(&mut tx, id, key, KeyState::Active, 1).await?;
    super::tokens::create_master(&mut tx, id, "default").await?;
    tx.commit().await?;
    Ok(Some(id))
}

pub async fn by_owner_and_name(db: &Db, owner: &str, name: &str) -> Result<Option<Repo>> {
    let sql = select_where(SELECT, " WHERE u.name = $1 AND r.name = $2");
    Ok(run!(
        db,
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(owner)
            .bind(name),
        fetch_optional
    )?)
}

pub async fn by_id(db: &Db, id: i64) -> Result<Option<Repo>> {
    let sql = select_where(SELECT, " WHERE r.id = $1");
    Ok(run!(
        db,
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id),
        fetch_optional
    )?)
}

pub async fn list_for_owner(db: &Db, owner_id: i64) -> Result<Vec<Repo>> {
    let sql = select_where(SELECT, " WHERE r.owner_id = $1 ORDER BY r.name");
    Ok(run!(
        db,
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(owner_id),
        fetch_all
    )?)
}

fn select_where(select: &str, tail: &str) -> String {
    format!("{select}{tail}")
}

pub async fn touch_last_push(tx: &mut Tx, repository_id: i64) -> Result<()> {
    run_tx!(
        tx,
        sqlx::query("UPDATE repositories SET last_push_at = $1 WHERE id = $2")
            .bind(now())
            .bind(repository_id),
        execute
    )?;
    Ok(())
}

pub async fn package_count(db: &Db, repository_id: i64) -> Result<i64> {
    Ok(run!(
        db,
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM packages WHERE repository_id = $1 AND deleted_at IS NULL",
        )
        .bind(repository_id),
        fetch_one
    )?)
}

/// Raises the version of the repository's keyring package after a change of its key set;
/// returns the new version.
pub async fn next_keyring_version(tx: &mut Tx, repository_id: i64) -> Result<i64> {
    Ok(run_tx!(
        tx,
        sqlx::query_scalar(
            "UPDATE repositories SET keyring_version = keyring_version + 1 WHERE id = $1
             RETURNING keyring_version",
        )
        .bind(repository_id),
        fetch_one
    )?)
}

/// The repository's keyring version now, and whether the target `distro_version_id` has the
/// keyring package `name` of that version (`VERSION` for a .deb, `VERSION-1` for an .rpm).
pub async fn keyring_state(
    db: &Db,
    repository_id: i64,
    distro_version_id: i64,
    name: &str,
) -> Result<(i64, bool)> {
    let (version, present): (i64, i64) = run!(
        db,
        sqlx::query_as(
            "SELECT r.keyring_version, CAST(CASE WHEN EXISTS (
                 SELECT 1 FROM packages p WHERE p.repository_id = r.id AND p.distro_version_id = $2
                 AND p.name = $3 AND p.deleted_at IS NULL
                 AND (p.version = CAST(r.keyring_version AS TEXT)
                      OR p.version = CAST(r.keyring_version AS TEXT) || '-1')
             ) THEN 1 ELSE 0 END AS BIGINT) FROM repositories r WHERE r.id = $1",
        )
        .bind(repository_id)
        .bind(distro_version_id)
        .bind(name),
        fetch_one
    )?;
    Ok((version, present == 1))
}

/// Every repository, by owner and name.
pub async fn all(db: &Db) -> Result<Vec<Repo>> {
    let sql = select_where(SELECT, " ORDER BY u.name, r.name");
    Ok(run!(
        db,
        sqlx::query_as(sqlx::AssertSqlSafe(sql)),
        fetch_all
    )?)
}
