//! Users and their API tokens. Token values are shown once and stored as SHA-256 hashes.

use anyhow::Result;

use super::run;
use base64::Engine as _;
use rand::RngCore;
use subtle::ConstantTimeEq;

use super::{Db, now};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    pub id: i64,
    pub name: String,
}

/// Returns the user called `name`, creating it first if needed.
pub async fn find_or_create(db: &Db, name: &str) -> Result<User> {
    run!(
        db,
        sqlx::query(
            "INSERT INTO users (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(now()),
        execute
    )?;
    Ok(run!(
        db,
        sqlx::query_as("SELECT id, name FROM users WHERE name = $1").bind(name),
        fetch_one
    )?)
}

pub async fn by_name(db: &Db, name: &str) -> Result<Option<User>> {
    Ok(run!(
        db,
        sqlx::query_as("SELECT id, name FROM users WHERE name = $1").bind(name),
        fetch_optional
    )?)
}

/// Creates a new API token for `user_id` and returns its value, which is not stored.
pub async fn create_token(db: &Db, user_id: i64) -> Result<String> {
    let mut bytes = [0u8; 36];
    rand::thread_rng().fill_bytes(&mut bytes);
    // 48 URL-safe characters: the length the package_cloud CLI requires.
    let value = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    run!(
        db,
        sqlx::query("INSERT INTO api_tokens (user_id, token_hash, created_at) VALUES ($1, $2, $3)")
            .bind(user_id)
            .bind(token_hash(&value))
            .bind(now()),
        execute
    )?;
    Ok(value)
}

/// The user an API token belongs to, if the token is valid.
pub async fn by_token(db: &Db, token: &str) -> Result<Option<User>> {
    let hash = token_hash(token);
    let row: Option<(i64, String, String)> =
        run!(db, sqlx::query_as(
        "SELECT u.id, u.name, t.token_hash FROM api_tokens t JOIN users u ON u.id = t.user_id
         WHERE t.token_hash = $1",
    )
    .bind(&hash), fetch_optional)?;
    Ok(row.and_then(|(id, name, stored)| {
        bool::from(stored.as_bytes().ct_eq(hash.as_bytes())).then_some(User { id, name })
    }))
}

fn token_hash(value: &str) -> String {
    packyard_formats::digest::sha256_hex(value.as_bytes())
}
