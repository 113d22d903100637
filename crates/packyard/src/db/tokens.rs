//! Master tokens and read tokens of private repositories.
//!
//! A master token mints read tokens (one per host, named after it) and cannot read packages
//! itself. Rotating a master token gives it a new value; the previous value, and every read
//! token minted before, keep working until the grace period ends, so hosts are never cut off
//! before their install script has run again. Deleting a master token ends its read tokens.

use anyhow::Result;
use base64::Engine as _;
use rand::RngCore;
use subtle::ConstantTimeEq;

use super::{Db, Tx, now, run, run_tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MasterToken {
    pub id: i64,
    pub repository_id: i64,
    pub name: String,
    pub value: String,
    pub previous_value: Option<String>,
    pub previous_expires_at: Option<i64>,
    pub created_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReadToken {
    pub id: i64,
    pub master_token_id: i64,
    pub name: String,
    pub value: String,
    pub expires_at: Option<i64>,
    pub created_at: i64,
}

const MASTER_COLUMNS: &str =
    "id, repository_id, name, value, previous_value, previous_expires_at, created_at";
const READ_COLUMNS: &str = "id, master_token_id, name, value, expires_at, created_at";

/// A new random token value: 48 URL-safe characters, the length the package_cloud CLI needs.
/// It never starts with `-`, which command lines (twine's `-p`, getopt) would read as an
/// option.
pub fn new_value() -> String {
    loop {
        let mut bytes = [0u8; 36];
        rand::thread_rng().fill_bytes(&mut bytes);
        let value = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        if !value.starts_with('-') {
            return value;
        }
    }
}

/// What a token is looked up by: the SHA-256 of its value.
fn digest(value: &str) -> String {
    packyard_formats::digest::sha256_hex(value.as_bytes())
}

/// Whether `stored` is `presented`, in time that does not depend on where they differ.
fn same(stored: &str, presented: &str) -> bool {
    bool::from(stored.as_bytes().ct_eq(presented.as_bytes()))
}

/// Fills in the digests of tokens made before they were kept (or by an older process during
/// an upgrade); run when the database is opened.
pub async fn fill_digests(db: &Db) -> Result<()> {
    let masters: Vec<(i64, String, Option<String>)> = run!(
        db,
        sqlx::query_as(
            "SELECT id, value, previous_value FROM master_tokens
             WHERE value_sha256 IS NULL OR (previous_value IS NOT NULL AND previous_value_sha256 IS NULL)"
        ),
        fetch_all
    )?;
    for (id, value, previous) in masters {
        run!(
            db,
            sqlx::query(
                "UPDATE master_tokens SET value_sha256 = $2, previous_value_sha256 = $3 WHERE id = $1"
            )
            .bind(id)
            .bind(digest(&value))
            .bind(previous.as_deref())
            .bind(previous.as_deref().map(digest)),
            execute
        )?;
    }
    let reads: Vec<(i64, String)> = run!(
        db,
        sqlx::query_as("SELECT id, value FROM read_tokens WHERE value_sha256 IS NULL"),
        fetch_all
    )?;
    for (id, value) in reads {
        run!(
            db,
            sqlx::query("UPDATE read_tokens SET value_sha256 = $2 WHERE id = $1")
                .bind(id)
                .bind(digest(&value)),
            execute
        )?;
    }
    Ok(())
}

/// Creates a master token; `Ok(None)` when the repository has one of that name already.
pub async fn create_master(
    tx: &mut Tx,
    repository_id: i64,
    name: &str,
) -> Result<Option<MasterToken>> {
    let sql = format!(
        "INSERT INTO master_tokens (repository_id, name, value, value_sha256, created_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (repository_id, name) DO NOTHING RETURNING {MASTER_COLUMNS}"
    );
    let value = new_value();
    Ok(run_tx!(
        tx,
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(repository_id)
            .bind(name)
            .bind(&value)
            .bind(digest(&value))
            .bind(now()),
        fetch_optional
    )?)
}

pub async fn masters(db: &Db, repository_id: i64) -> Result<Vec<MasterToken>> {
    let sql =
        format!("SELECT {MASTER_COLUMNS} FROM master_tokens WHERE repository_id = $1 ORDER BY id");
    Ok(run!(
        db,
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(repository_id),
        fetch_all
    )?)
}

/// A master token of the repository by its id, its current value or its name.
pub async fn master(db: &Db, repository_id: i64, id_or_value: &str) -> Result<Option<MasterToken>> {
    let id: i64 = id_or_value.parse().unwrap_or(-1);
    let sql = format!(
        "SELECT {MASTER_COLUMNS} FROM master_tokens
         WHERE repository_id = $1 AND (id = $2 OR value_sha256 = $3 OR name = $4)"
    );
    Ok(run!(
        db,
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(repository_id)
            .bind(id)
            .bind(digest(id_or_value))
            .bind(id_or_value),
        fetch_optional
    )?)
}

/// The master token `value` authenticates, if it is its current value or a previous one still
/// within its grace period. The flag says whether it was the previous value.
pub async fn master_by_value(db: &Db, value: &str) -> Result<Option<(MasterToken, bool)>> {
    let sql = format!(
        "SELECT {MASTER_COLUMNS} FROM master_tokens
         WHERE value_sha256 = $1 OR (previous_value_sha256 = $1 AND previous_expires_at > $2)"
    );
    let found: Option<MasterToken> = run!(
        db,
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(digest(value))
            .bind(now()),
        fetch_optional
    )?;
    Ok(found.and_then(|m| {
        if same(&m.value, value) {
            Some((m, false))
        } else if m.previous_value.as_deref().is_some_and(|p| same(p, value)) {
            Some((m, true))
        } else {
            None
        }
    }))
}

/// Gives a master token a new value. The old value and the read tokens minted so far keep
/// working for `grace_secs` more seconds (none when zero).
pub async fn rotate_master(db: &Db, master: &MasterToken, grace_secs: i64) -> Result<MasterToken> {
    let ends = now() + grace_secs.max(0);
    let mut tx = db.begin_write().await?;
    run_tx!(
        &mut tx,
        sqlx::query(
            "UPDATE read_tokens SET expires_at = $2
             WHERE master_token_id = $1 AND (expires_at IS NULL OR expires_at > $2)",
        )
        .bind(master.id)
        .bind(ends),
        execute
    )?;
    let sql = format!(
        "UPDATE master_tokens SET value = $2, value_sha256 = $3, previous_value = $4,
         previous_value_sha256 = $5, previous_expires_at = $6
         WHERE id = $1 RETURNING {MASTER_COLUMNS}"
    );
    let (previous, previous_expires) = if grace_secs > 0 {
        (Some(master.value.clone()), Some(ends))
    } else {
        (None, None)
    };
    let value = new_value();
    let rotated = run_tx!(
        &mut tx,
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(master.id)
            .bind(&value)
            .bind(digest(&value))
            .bind(previous.as_deref())
            .bind(previous.as_deref().map(digest))
            .bind(previous_expires),
        fetch_one
    )?;
    tx.commit().await?;
    Ok(rotated)
}

/// Deletes a master token and, with it, its read tokens.
pub async fn delete_master(db: &Db, master: &MasterToken) -> Result<()> {
    run!(
        db,
        sqlx::query("DELETE FROM master_tokens WHERE id = $1").bind(master.id),
        execute
    )?;
    Ok(())
}

/// The read tokens of a master token that still work, oldest first.
/// Ends a master token and its read tokens. The `default` one, which install scripts of
/// every repository name, is not deleted but given a new value at once.
pub async fn revoke_master(db: &Db, master: &MasterToken) -> Result<()> {
    if master.name == "default" {
        rotate_master(db, master, 0).await?;
        Ok(())
    } else {
        delete_master(db, master).await
    }
}

pub async fn read_tokens(db: &Db, master_token_id: i64) -> Result<Vec<ReadToken>> {
    let sql = format!(
        "SELECT {READ_COLUMNS} FROM read_tokens WHERE master_token_id = $1
         AND (expires_at IS NULL OR expires_at > $2) ORDER BY id"
    );
    Ok(run!(
        db,
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(master_token_id)
            .bind(now()),
        fetch_all
    )?)
}

/// Mints a read token, or returns the working one of the same name: a host running its
/// install script twice gets the same token. A token minted with a master token's previous
/// value ends with that value's grace period.
pub async fn mint_read(
    db: &Db,
    master: &MasterToken,
    name: &str,
    expires_at: Option<i64>,
) -> Result<ReadToken> {
    if expires_at.is_none()
        && let Some(existing) = read_tokens(db, master.id)
            .await?
            .into_iter()
            .find(|t| t.name == name && t.expires_at.is_none())
    {
        return Ok(existing);
    }
    let sql = format!(
        "INSERT INTO read_tokens (master_token_id, name, value, value_sha256, expires_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {READ_COLUMNS}"
    );
    let value = new_value();
    Ok(run!(
        db,
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(master.id)
            .bind(name)
            .bind(&value)
            .bind(digest(&value))
            .bind(expires_at)
            .bind(now()),
        fetch_one
    )?)
}

pub async fn delete_read(db: &Db, master_token_id: i64, id: i64) -> Result<bool> {
    let deleted = run!(
        db,
        sqlx::query("DELETE FROM read_tokens WHERE master_token_id = $1 AND id = $2")
            .bind(master_token_id)
            .bind(id),
        execute
    )?;
    Ok(deleted == 1)
}

/// The repository a read token reads, the token's name and when it stops working, if it
/// works now.
pub async fn readable_repository(
    db: &Db,
    value: &str,
) -> Result<Option<(i64, String, Option<i64>)>> {
    let found: Option<(i64, String, Option<i64>, String)> = run!(
        db,
        sqlx::query_as(
            "SELECT m.repository_id, r.name, r.expires_at, r.value FROM read_tokens r
             JOIN master_tokens m ON m.id = r.master_token_id
             WHERE r.value_sha256 = $1 AND (r.expires_at IS NULL OR r.expires_at > $2)",
        )
        .bind(digest(value))
        .bind(now()),
        fetch_optional
    )?;
    Ok(found
        .filter(|(.., stored)| same(stored, value))
        .map(|(repository_id, name, expires_at, _)| (repository_id, name, expires_at)))
}

/// What a token value is, as the request path needs it: looked up once, then kept in the read
/// cache (dropped at every change of tokens, and after `cache_ttl_ms`).
#[derive(Debug, Clone)]
pub enum Credential {
    /// An API token of this user.
    Api(super::users::User),
    /// A read token of one repository, working until `expires_at` (its master token rotated).
    Read {
        repository_id: i64,
        name: String,
        expires_at: Option<i64>,
    },
    /// A master token's value: its current one, or its previous one until `expires_at`.
    Master {
        token: MasterToken,
        previous: bool,
        expires_at: Option<i64>,
    },
}

impl Credential {
    /// Whether it still works at `now` (a cached read token or previous master value may have
    /// reached its end since it was looked up).
    pub fn works_at(&self, now: i64) -> bool {
        match self {
            Credential::Api(_) => true,
            Credential::Read { expires_at, .. } | Credential::Master { expires_at, .. } => {
                expires_at.is_none_or(|end| end > now)
            }
        }
    }
}

/// What `value` is: an API token, a working read token, or a master token's value.
pub async fn credential(db: &Db, value: &str) -> Result<Option<Credential>> {
    if let Some(user) = super::users::by_token(db, value).await? {
        return Ok(Some(Credential::Api(user)));
    }
    if let Some((repository_id, name, expires_at)) = readable_repository(db, value).await? {
        return Ok(Some(Credential::Read {
            repository_id,
            name,
            expires_at,
        }));
    }
    Ok(master_by_value(db, value).await?.map(|(token, previous)| {
        let expires_at = previous.then_some(token.previous_expires_at).flatten();
        Credential::Master {
            token,
            previous,
            expires_at,
        }
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn token_values_are_48_url_safe_characters_and_never_look_like_an_option() {
        // One value in 64 would start with `-` without the check: 2,000 would show it.
        for _ in 0..2000 {
            let value = super::new_value();
            assert_eq!(value.len(), 48);
            assert!(!value.starts_with('-'), "{value}");
            assert!(
                value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
        }
    }
}
