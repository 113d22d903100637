//! Who is calling, and which repositories they may see or change.
//!
//! Tokens travel as the HTTP basic-auth user name with an empty password, as packagecloud's
//! clients send them. A private repository is indistinguishable from a missing one to anyone
//! but its owner: both answer 404.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use base64::Engine as _;

use super::error::ApiError;
use crate::app::App;
use crate::db::{self, repos::Repo, users::User};

/// The token in an `Authorization: Basic` header, if there is one.
fn basic_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let user = decoded
        .split_once(':')
        .map_or(decoded.as_str(), |(user, _)| user);
    (!user.is_empty()).then(|| user.to_owned())
}

/// The caller, when they sent a valid API token; a wrong token is an error, no token is not.
pub async fn optional_user(app: &App, headers: &HeaderMap) -> Result<Option<User>, ApiError> {
    match basic_token(headers) {
        None => Ok(None),
        Some(token) => match db::users::by_token(&app.db, &token).await? {
            Some(user) => Ok(Some(user)),
            None => Err(ApiError::Unauthenticated),
        },
    }
}

pub async fn require_user(app: &App, headers: &HeaderMap) -> Result<User, ApiError> {
    optional_user(app, headers)
        .await?
        .ok_or(ApiError::Unauthenticated)
}

fn not_found(owner: &str, name: &str) -> ApiError {
    ApiError::not_found(format!("repository {owner}/{name} not found"))
}

/// A repository the caller may read: public, or theirs.
pub async fn readable_repo(
    app: &App,
    user: Option<&User>,
    owner: &str,
    name: &str,
) -> Result<Repo, ApiError> {
    let repo = db::repos::by_owner_and_name(&app.db, owner, name)
        .await?
        .ok_or_else(|| not_found(owner, name))?;
    let is_owner = user.is_some_and(|u| u.id == repo.owner_id);
    if repo.private && !is_owner {
        return Err(not_found(owner, name));
    }
    Ok(repo)
}

/// A repository the caller may change: theirs.
pub async fn writable_repo(
    app: &App,
    user: &User,
    owner: &str,
    name: &str,
) -> Result<Repo, ApiError> {
    let repo = readable_repo(app, Some(user), owner, name).await?;
    if repo.owner_id != user.id {
        return Err(ApiError::Forbidden(format!(
            "only {owner} may change {owner}/{name}"
        )));
    }
    Ok(repo)
}

/// The URL clients reach this server at.
pub fn base_url(app: &App, headers: &HeaderMap) -> String {
    if let Some(url) = &app.config.public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}
