//! Users and their API tokens. Token values are shown once and stored as SHA-256 hashes.

use anyhow::Result;

use super::run;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use subtle::ConstantTimeEq;

use super::{Db, now};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    pub id: i64,
    pub name: String,
}

/// Names that would collide with the server's own top-level paths.
const RESERVED: &[&str] = &[
    "api", "install", "priv", "healthz", "readyz", "metrics", // served paths
    "app", "static", "login", "logout", "account", "orgs", // the web UI's pages
    "v2",   // container registries
];

/// Owner names appear in URLs and file names on hosts (`OWNER_REPO.list`): 1 to 64 lower-case
/// letters, digits, `-`, `_` or `.`, starting with a letter or digit, and not a reserved path.
pub fn check_name(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
    anyhow::ensure!(
        valid,
        "user name {name:?} is invalid: use 1 to 64 lower-case letters, digits, '-', '_' or '.'"
    );
    anyhow::ensure!(
        !RESERVED.contains(&name),
        "user name {name:?} is reserved for the server's own paths"
    );
    Ok(())
}

/// Returns the user called `name`, creating it first if needed.
pub async fn find_or_create(db: &Db, name: &str) -> Result<User> {
    check_name(name)?;
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
    let value = super::tokens::new_value();
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

/// Sets a user's login email and password (stored as an argon2 hash), creating the user if new.
pub async fn set_login(db: &Db, name: &str, email: &str, password: &str) -> Result<User> {
    let user = find_or_create(db, name).await?;
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    let hash = argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))?
        .to_string();
    run!(
        db,
        sqlx::query("UPDATE users SET email = $2, password_hash = $3 WHERE id = $1")
            .bind(user.id)
            .bind(email)
            .bind(hash),
        execute
    )?;
    Ok(user)
}

/// The user whose email (or name) and password these are.
pub async fn by_login(db: &Db, email: &str, password: &str) -> Result<Option<User>> {
    let row: Option<(i64, String, Option<String>)> = run!(
        db,
        sqlx::query_as(
            "SELECT id, name, password_hash FROM users WHERE (email = $1 OR name = $1) AND NOT is_org"
        )
            .bind(email),
        fetch_optional
    )?;
    let Some((id, name, Some(hash))) = row else {
        return Ok(None);
    };
    let parsed =
        PasswordHash::new(&hash).map_err(|e| anyhow::anyhow!("stored password hash: {e}"))?;
    let valid = argon2::Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    Ok(valid.then_some(User { id, name }))
}

/// Sets a user's password (argon2), keeping their email.
pub async fn set_password(db: &Db, user_id: i64, password: &str) -> Result<()> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    let hash = argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))?
        .to_string();
    run!(
        db,
        sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
            .bind(user_id)
            .bind(hash),
        execute
    )?;
    Ok(())
}

/// Replaces every API token of the user with a new one and returns its value.
pub async fn regenerate_token(db: &Db, user_id: i64) -> Result<String> {
    run!(
        db,
        sqlx::query("DELETE FROM api_tokens WHERE user_id = $1").bind(user_id),
        execute
    )?;
    create_token(db, user_id).await
}

/// A user's email, their API tokens' count and when the newest was made.
pub async fn account(db: &Db, user_id: i64) -> Result<(Option<String>, i64, Option<i64>)> {
    Ok(run!(
        db,
        sqlx::query_as(
            "SELECT u.email, CAST(COUNT(t.id) AS BIGINT), MAX(t.created_at) FROM users u
             LEFT JOIN api_tokens t ON t.user_id = u.id WHERE u.id = $1 GROUP BY u.email",
        )
        .bind(user_id),
        fetch_one
    )?)
}

/// Whether the owner `name` is an organisation, and its id.
pub async fn org_by_name(db: &Db, name: &str) -> Result<Option<User>> {
    Ok(run!(
        db,
        sqlx::query_as("SELECT id, name FROM users WHERE name = $1 AND is_org").bind(name),
        fetch_optional
    )?)
}

/// The members of an organisation, by name.
pub async fn members(db: &Db, org_id: i64) -> Result<Vec<User>> {
    Ok(run!(
        db,
        sqlx::query_as(
            "SELECT u.id, u.name FROM org_members m JOIN users u ON u.id = m.user_id
             WHERE m.org_id = $1 ORDER BY u.name",
        )
        .bind(org_id),
        fetch_all
    )?)
}

/// The organisations the user belongs to.
pub async fn orgs_of(db: &Db, user_id: i64) -> Result<Vec<User>> {
    Ok(run!(
        db,
        sqlx::query_as(
            "SELECT u.id, u.name FROM org_members m JOIN users u ON u.id = m.org_id
             WHERE m.user_id = $1 ORDER BY u.name",
        )
        .bind(user_id),
        fetch_all
    )?)
}

pub async fn remove_member(db: &Db, org_id: i64, user_id: i64) -> Result<bool> {
    Ok(run!(
        db,
        sqlx::query("DELETE FROM org_members WHERE org_id = $1 AND user_id = $2")
            .bind(org_id)
            .bind(user_id),
        execute
    )? > 0)
}

/// Creates an organisation (an owner that cannot log in) with `members`, who may push to
/// its repositories.
pub async fn create_org(db: &Db, name: &str, members: &[User]) -> Result<User> {
    let org = find_or_create(db, name).await?;
    run!(
        db,
        sqlx::query("UPDATE users SET is_org = TRUE WHERE id = $1").bind(org.id),
        execute
    )?;
    for member in members {
        run!(
            db,
            sqlx::query(
                "INSERT INTO org_members (org_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
            )
            .bind(org.id)
            .bind(member.id),
            execute
        )?;
    }
    Ok(org)
}

/// Whether `user` owns what `owner_id` owns: it is that user, or a member of that organisation.
pub async fn acts_for(db: &Db, user: &User, owner_id: i64) -> Result<bool> {
    if user.id == owner_id {
        return Ok(true);
    }
    let member: Option<i64> = run!(
        db,
        sqlx::query_scalar("SELECT user_id FROM org_members WHERE org_id = $1 AND user_id = $2")
            .bind(owner_id)
            .bind(user.id),
        fetch_optional
    )?;
    Ok(member.is_some())
}

/// Whether the user administers the server: reads the audit log and all of /api/system.
pub async fn is_admin(db: &Db, user_id: i64) -> Result<bool> {
    Ok(run!(
        db,
        sqlx::query_scalar("SELECT is_admin FROM users WHERE id = $1").bind(user_id),
        fetch_one
    )?)
}

pub async fn set_admin(db: &Db, user_id: i64, admin: bool) -> Result<()> {
    run!(
        db,
        sqlx::query("UPDATE users SET is_admin = $2 WHERE id = $1")
            .bind(user_id)
            .bind(admin),
        execute
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_name;

    #[test]
    fn owner_names() {
        for ok in ["admin", "acme-corp", "team.a", "x1"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Admin", "a/b", "../x", "api", "priv", "install", "-x"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
