//! Public keys of a repository as the API lists them: its signing keys (`repo`) and the keys
//! uploaded for its packages (`package`).

use anyhow::Result;

use super::run;

use super::{Db, now};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct GpgKey {
    pub name: String,
    pub fingerprint: String,
    pub keytype: String,
    pub public_armored: String,
}

/// Signing keys first (named after their fingerprint), then uploaded keys, oldest first.
pub async fn list(db: &Db, repository_id: i64) -> Result<Vec<GpgKey>> {
    let signing = super::signing_keys::published(db, repository_id).await?;
    let mut keys: Vec<GpgKey> = signing
        .into_iter()
        .map(|(fingerprint, public_armored)| GpgKey {
            name: format!(
                "repo-{}",
                fingerprint[fingerprint.len().saturating_sub(16)..].to_lowercase()
            ),
            fingerprint,
            keytype: "repo".into(),
            public_armored,
        })
        .collect();
    let uploaded: Vec<GpgKey> = run!(db, sqlx::query_as(
        "SELECT name, fingerprint, keytype, public_armored FROM gpg_keys WHERE repository_id = $1 ORDER BY id",
    )
    .bind(repository_id), fetch_all)?;
    keys.extend(uploaded);
    Ok(keys)
}

pub async fn by_name(db: &Db, repository_id: i64, name: &str) -> Result<Option<GpgKey>> {
    Ok(list(db, repository_id)
        .await?
        .into_iter()
        .find(|k| k.name == name))
}

/// Stores an uploaded key; `Ok(false)` when the repository has a key of that name already.
pub async fn insert(db: &Db, repository_id: i64, key: &GpgKey) -> Result<bool> {
    let inserted = run!(db, sqlx::query(
        "INSERT INTO gpg_keys (repository_id, name, fingerprint, keytype, public_armored, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (repository_id, name) DO NOTHING",
    )
    .bind(repository_id)
    .bind(&key.name)
    .bind(&key.fingerprint)
    .bind(&key.keytype)
    .bind(&key.public_armored)
    .bind(now()), execute)?;
    Ok(inserted == 1)
}

pub async fn delete(db: &Db, repository_id: i64, name: &str) -> Result<bool> {
    let deleted = run!(
        db,
        sqlx::query("DELETE FROM gpg_keys WHERE repository_id = $1 AND name = $2")
            .bind(repository_id)
            .bind(name),
        execute
    )?;
    Ok(deleted == 1)
}
