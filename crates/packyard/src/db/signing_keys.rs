//! A repository's signing keys and their states: `next`, `active`, `retiring`, `retired`.

use anyhow::Result;

use super::{Db, Tx, now, run, run_tx};
use crate::sign::GeneratedKey;

/// Where a key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// In the keyring package and `/gpgkey`, not signing yet.
    Next,
    /// Signs every document.
    Active,
    /// Signs every document while hosts move to a newer key.
    Retiring,
    /// Neither signs nor is published.
    Retired,
}

impl KeyState {
    pub fn name(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retiring => "retiring",
            KeyState::Retired => "retired",
        }
    }

    fn parse(name: &str) -> KeyState {
        match name {
            "next" => KeyState::Next,
            "active" => KeyState::Active,
            "retiring" => KeyState::Retiring,
            _ => KeyState::Retired,
        }
    }

    /// Whether the key signs documents (until it expires).
    pub fn signs(self) -> bool {
        matches!(self, KeyState::Active | KeyState::Retiring)
    }

    /// Whether the key is in the keyring package and served at `/gpgkey`.
    pub fn published(self) -> bool {
        self != KeyState::Retired
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct Row {
    id: i64,
    fingerprint: String,
    public_armored: String,
    secret_armored: String,
    created_at: i64,
    expires_at: i64,
    state: String,
    keyring_version: i64,
}

#[derive(Debug, Clone)]
pub struct SigningKey {
    pub id: i64,
    pub fingerprint: String,
    pub public_armored: String,
    /// Sealed with the server secret.
    pub secret_armored: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub state: KeyState,
    pub keyring_version: i64,
}

impl SigningKey {
    /// Whether the key signs documents made at `now`.
    pub fn usable_at(&self, now: i64) -> bool {
        self.state.signs() && self.expires_at > now
    }
}

impl From<Row> for SigningKey {
    fn from(row: Row) -> SigningKey {
        SigningKey {
            id: row.id,
            fingerprint: row.fingerprint,
            public_armored: row.public_armored,
            secret_armored: row.secret_armored,
            created_at: row.created_at,
            expires_at: row.expires_at,
            state: KeyState::parse(&row.state),
            keyring_version: row.keyring_version,
        }
    }
}

const SELECT: &str =
    "SELECT id, fingerprint, public_armored, secret_armored, created_at, expires_at,
    state, keyring_version FROM signing_keys WHERE repository_id = $1 ORDER BY id";

/// Every key of the repository, retired ones included, oldest first.
pub async fn list(db: &Db, repository_id: i64) -> Result<Vec<SigningKey>> {
    let rows: Vec<Row> = run!(db, sqlx::query_as(SELECT).bind(repository_id), fetch_all)?;
    Ok(rows.into_iter().map(SigningKey::from).collect())
}

/// As `list`, inside a write transaction (the key set cannot change under it).
pub async fn list_tx(tx: &mut Tx, repository_id: i64) -> Result<Vec<SigningKey>> {
    let rows: Vec<Row> = run_tx!(tx, sqlx::query_as(SELECT).bind(repository_id), fetch_all)?;
    Ok(rows.into_iter().map(SigningKey::from).collect())
}

/// Adds a key in `state`, carried first by keyring version `keyring_version`.
pub async fn insert(
    tx: &mut Tx,
    repository_id: i64,
    key: &GeneratedKey,
    state: KeyState,
    keyring_version: i64,
) -> Result<()> {
    run_tx!(
        tx,
        sqlx::query(
            "INSERT INTO signing_keys (repository_id, fingerprint, public_armored, secret_armored,
             created_at, expires_at, state, keyring_version, state_changed_at, active)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(repository_id)
        .bind(&key.fingerprint)
        .bind(&key.public_armored)
        .bind(&key.secret_armored)
        .bind(key.created_at)
        .bind(key.expires_at)
        .bind(state.name())
        .bind(keyring_version)
        .bind(now())
        .bind(state.signs()),
        execute
    )?;
    Ok(())
}

pub async fn set_state(tx: &mut Tx, key_id: i64, state: KeyState) -> Result<()> {
    run_tx!(
        tx,
        sqlx::query(
            "UPDATE signing_keys SET state = $2, state_changed_at = $3, active = $4 WHERE id = $1"
        )
        .bind(key_id)
        .bind(state.name())
        .bind(now())
        .bind(state.signs()),
        execute
    )?;
    Ok(())
}

/// Stores a key's new self-signature: its armors and expiry change, its fingerprint does not.
pub async fn replace_material(tx: &mut Tx, key_id: i64, key: &GeneratedKey) -> Result<()> {
    run_tx!(
        tx,
        sqlx::query(
            "UPDATE signing_keys SET public_armored = $2, secret_armored = $3, expires_at = $4
             WHERE id = $1",
        )
        .bind(key_id)
        .bind(&key.public_armored)
        .bind(&key.secret_armored)
        .bind(key.expires_at),
        execute
    )?;
    Ok(())
}

/// The sealed secret keys that sign documents made now: active and retiring, not expired.
pub async fn signing_secrets(db: &Db, repository_id: i64) -> Result<Vec<String>> {
    Ok(run!(
        db,
        sqlx::query_scalar(
            "SELECT secret_armored FROM signing_keys
             WHERE repository_id = $1 AND state IN ('active', 'retiring') AND expires_at > $2
             ORDER BY id",
        )
        .bind(repository_id)
        .bind(now()),
        fetch_all
    )?)
}

/// Fingerprints and armored public keys of every key that is not retired, oldest first: the
/// keyring.
pub async fn published(db: &Db, repository_id: i64) -> Result<Vec<(String, String)>> {
    Ok(run!(
        db,
        sqlx::query_as(
            "SELECT fingerprint, public_armored FROM signing_keys
             WHERE repository_id = $1 AND state <> 'retired' ORDER BY id",
        )
        .bind(repository_id),
        fetch_all
    )?)
}

/// Every key of every repository, in any state, with the repository's owner and name: for
/// expiry warnings, status, metrics and restores.
pub async fn all_keys(db: &Db) -> Result<Vec<(String, String, SigningKey)>> {
    #[derive(sqlx::FromRow)]
    struct Owned {
        owner: String,
        repo: String,
        #[sqlx(flatten)]
        key: Row,
    }
    let rows: Vec<Owned> = run!(
        db,
        sqlx::query_as(
            "SELECT u.name AS owner, r.name AS repo, k.id, k.fingerprint, k.public_armored,
             k.secret_armored, k.created_at, k.expires_at, k.state, k.keyring_version
             FROM signing_keys k JOIN repositories r ON r.id = k.repository_id
             JOIN users u ON u.id = r.owner_id ORDER BY u.name, r.name, k.id",
        ),
        fetch_all
    )?;
    Ok(rows
        .into_iter()
        .map(|row| (row.owner, row.repo, row.key.into()))
        .collect())
}
