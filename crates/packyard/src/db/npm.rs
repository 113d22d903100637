//! npm's per-package metadata: dist-tags and deprecation messages.

use std::collections::BTreeMap;

use anyhow::Result;

use super::{Db, Tx, run, run_tx};

pub const TAG: &str = "tag";
pub const DEPRECATED: &str = "deprecated";

/// `key -> value` of one kind for a package.
pub async fn read(
    db: &Db,
    repository_id: i64,
    name: &str,
    kind: &str,
) -> Result<BTreeMap<String, String>> {
    let rows: Vec<(String, String)> = run!(
        db,
        sqlx::query_as(
            "SELECT key, value FROM npm_metadata WHERE repository_id = $1 AND name = $2 AND kind = $3"
        )
        .bind(repository_id)
        .bind(name)
        .bind(kind),
        fetch_all
    )?;
    Ok(rows.into_iter().collect())
}

pub async fn set(
    tx: &mut Tx,
    repository_id: i64,
    name: &str,
    kind: &str,
    key: &str,
    value: &str,
) -> Result<()> {
    run_tx!(
        tx,
        sqlx::query(
            "INSERT INTO npm_metadata (repository_id, name, kind, key, value) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (repository_id, name, kind, key) DO UPDATE SET value = excluded.value"
        )
        .bind(repository_id)
        .bind(name)
        .bind(kind)
        .bind(key)
        .bind(value),
        execute
    )?;
    Ok(())
}

/// Removes one entry; whether there was one.
pub async fn remove(
    tx: &mut Tx,
    repository_id: i64,
    name: &str,
    kind: &str,
    key: &str,
) -> Result<bool> {
    let removed = run_tx!(
        tx,
        sqlx::query(
            "DELETE FROM npm_metadata WHERE repository_id = $1 AND name = $2 AND kind = $3 AND key = $4"
        )
        .bind(repository_id)
        .bind(name)
        .bind(kind)
        .bind(key),
        execute
    )?;
    Ok(removed > 0)
}
