//! Browser sessions of the web UI. The cookie holds a random 256-bit id; the table keeps its
//! SHA-256, so a copy of the database signs no one in. A session ends after `IDLE_SECS`
//! without a request, `MAX_AGE_SECS` after sign-in, or at sign-out.

use anyhow::Result;
use base64::Engine as _;
use rand::RngCore;

use super::users::User;
use super::{Db, now, run};

pub const IDLE_SECS: i64 = 12 * 3600;
pub const MAX_AGE_SECS: i64 = 7 * 86_400;
/// A request refreshes `last_seen_at` only when it is older than this: most page views write
/// nothing.
const TOUCH_AFTER_SECS: i64 = 60;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Session {
    pub id_hash: String,
    pub user_id: i64,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
}

pub fn hash(id: &str) -> String {
    packyard_formats::digest::sha256_hex(id.as_bytes())
}

/// Starts a session for `user_id` and returns the id for its cookie. Expired sessions of
/// every user are removed on the way.
pub async fn create(db: &Db, user_id: i64, ip: &str, user_agent: &str) -> Result<String> {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let at = now();
    run!(
        db,
        sqlx::query("DELETE FROM sessions WHERE last_seen_at < $1 OR created_at < $2")
            .bind(at - IDLE_SECS)
            .bind(at - MAX_AGE_SECS),
        execute
    )?;
    let user_agent: String = user_agent.chars().take(256).collect();
    run!(
        db,
        sqlx::query(
            "INSERT INTO sessions (id_hash, user_id, created_at, last_seen_at, ip_address, user_agent)
             VALUES ($1, $2, $3, $3, $4, $5)",
        )
        .bind(hash(&id))
        .bind(user_id)
        .bind(at)
        .bind(ip)
        .bind(user_agent),
        execute
    )?;
    Ok(id)
}

/// The user of a live session and whether they administer the server, refreshing the
/// session's idle clock.
pub async fn user(db: &Db, id: &str) -> Result<Option<(User, bool)>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        session: Session,
        name: String,
        is_admin: bool,
    }
    let at = now();
    let row: Option<Row> = run!(
        db,
        sqlx::query_as(
            "SELECT s.id_hash, s.user_id, s.created_at, s.last_seen_at, s.ip_address, s.user_agent,
                    u.name, u.is_admin FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.id_hash = $1",
        )
        .bind(hash(id)),
        fetch_optional
    )?;
    let Some(Row {
        session,
        name,
        is_admin,
    }) = row
    else {
        return Ok(None);
    };
    if session.last_seen_at < at - IDLE_SECS || session.created_at < at - MAX_AGE_SECS {
        delete(db, id).await?;
        return Ok(None);
    }
    if session.last_seen_at < at - TOUCH_AFTER_SECS {
        run!(
            db,
            sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id_hash = $1")
                .bind(&session.id_hash)
                .bind(at),
            execute
        )?;
    }
    let user = User {
        id: session.user_id,
        name,
    };
    Ok(Some((user, is_admin)))
}

pub async fn delete(db: &Db, id: &str) -> Result<()> {
    run!(
        db,
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1").bind(hash(id)),
        execute
    )?;
    Ok(())
}

/// Ends every session of the user but `keep` (a hash); returns how many ended.
pub async fn delete_others(db: &Db, user_id: i64, keep: &str) -> Result<u64> {
    Ok(run!(
        db,
        sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id_hash <> $2")
            .bind(user_id)
            .bind(keep),
        execute
    )?)
}

/// The user's live sessions, most recent first.
pub async fn list(db: &Db, user_id: i64) -> Result<Vec<Session>> {
    let at = now();
    Ok(run!(
        db,
        sqlx::query_as(
            "SELECT id_hash, user_id, created_at, last_seen_at, ip_address, user_agent
             FROM sessions WHERE user_id = $1 AND last_seen_at >= $2 AND created_at >= $3
             ORDER BY last_seen_at DESC",
        )
        .bind(user_id)
        .bind(at - IDLE_SECS)
        .bind(at - MAX_AGE_SECS),
        fetch_all
    )?)
}
