//! What a format keeps per package name beside its versions: npm's dist-tags and deprecation
//! messages, PyPI's yanked releases. Keyed by the target (repository, distribution version,
//! name), so formats never see each other's.

use std::collections::BTreeMap;

use anyhow::Result;

use super::generations::Target;
use super::{Db, Tx, run, run_tx};

/// npm: tag -> version.
pub const TAG: &str = "tag";
/// npm: version -> message.
pub const DEPRECATED: &str = "deprecated";
/// PyPI: version -> reason (possibly empty).
pub const YANKED: &str = "yanked";

/// `key -> value` of one kind for the package a target is (its `arch` is the name).
pub async fn read(db: &Db, target: &Target, kind: &str) -> Result<BTreeMap<String, String>> {
    let rows: Vec<(String, String)> = run!(
        db,
        sqlx::query_as(
            "SELECT key, value FROM package_metadata WHERE repository_id = $1
             AND distro_version_id = $2 AND name = $3 AND kind = $4"
        )
        .bind(target.repository_id)
        .bind(target.distro_version_id)
        .bind(&target.arch)
        .bind(kind),
        fetch_all
    )?;
    Ok(rows.into_iter().collect())
}

pub async fn set(tx: &mut Tx, target: &Target, kind: &str, key: &str, value: &str) -> Result<()> {
    run_tx!(
        tx,
        sqlx::query(
            "INSERT INTO package_metadata (repository_id, distro_version_id, name, kind, key, value)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (repository_id, distro_version_id, name, kind, key)
             DO UPDATE SET value = excluded.value"
        )
        .bind(target.repository_id)
        .bind(target.distro_version_id)
        .bind(&target.arch)
        .bind(kind)
        .bind(key)
        .bind(value),
        execute
    )?;
    Ok(())
}

/// Removes one entry; whether there was one.
pub async fn remove(tx: &mut Tx, target: &Target, kind: &str, key: &str) -> Result<bool> {
    let removed = run_tx!(
        tx,
        sqlx::query(
            "DELETE FROM package_metadata WHERE repository_id = $1 AND distro_version_id = $2
             AND name = $3 AND kind = $4 AND key = $5"
        )
        .bind(target.repository_id)
        .bind(target.distro_version_id)
        .bind(&target.arch)
        .bind(kind)
        .bind(key),
        execute
    )?;
    Ok(removed > 0)
}
