//! Master tokens and read tokens of a repository (PACKAGECLOUD-API.md):
//! `GET, POST .../master_tokens`, `GET, DELETE .../master_tokens/MT`,
//! `POST .../master_tokens/MT/rotate.json`, `GET, POST .../master_tokens/MT/read_tokens.json`,
//! `GET, DELETE .../master_tokens/MT/read_tokens/ID`. MT is a master token's id, value or name.
//! Only the repository's owner sees or changes them.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::App;
use crate::audit::{self, Actor, Event};
use crate::config::parse_duration_secs;
use crate::db::users::User;
use crate::db::{self, repos::Repo, tokens::MasterToken, tokens::ReadToken};
use crate::http::api::body;
use crate::http::auth;
use crate::http::error::ApiError;

fn strip_json(segment: &str) -> &str {
    segment.strip_suffix(".json").unwrap_or(segment)
}

fn read_json(token: &ReadToken) -> Value {
    json!({ "id": token.id, "name": token.name, "value": token.value })
}

async fn master_json(app: &App, repo: &Repo, master: &MasterToken) -> Result<Value, ApiError> {
    let reads = db::tokens::read_tokens(&app.db, master.id).await?;
    Ok(json!({
        "id": master.id,
        "name": master.name,
        "value": master.value,
        "read_tokens": reads.iter().map(read_json).collect::<Vec<_>>(),
        "paths": { "self": format!("/api/v1/repos/{}/{}/master_tokens/{}", repo.owner, repo.name, master.id) },
    }))
}

/// The caller and a repository they may change (strangers learn nothing of a public
/// repository's tokens or keys either).
pub(super) async fn owned_repo(
    app: &App,
    headers: &HeaderMap,
    client: SocketAddr,
    owner: &str,
    name: &str,
) -> Result<(User, Arc<Repo>), ApiError> {
    let user = auth::require_user(app, headers, client.ip()).await?;
    let repo = auth::writable_repo(app, &user, owner, name).await?;
    Ok((user, repo))
}

/// Records a change of a token, by its name (never its value).
pub(crate) async fn audit(
    app: &App,
    user: &User,
    client: IpAddr,
    repo: &Repo,
    action: &'static str,
    token: &str,
    details: Value,
) {
    let event = Event::new(Actor::User(user.name.clone()), action)
        .ip(client)
        .repository(&repo.owner, &repo.name)
        .target(token)
        .details(details);
    audit::record(&app.db, event).await;
}

async fn find_master(app: &App, repo: &Repo, id_or_value: &str) -> Result<MasterToken, ApiError> {
    db::tokens::master(&app.db, repo.id, strip_json(id_or_value))
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no master token {id_or_value} in {}/{}",
                repo.owner, repo.name
            ))
        })
}

pub async fn list(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let (_, repo) = owned_repo(&app, &headers, client, &owner, &name).await?;
    let mut out = Vec::new();
    for master in db::tokens::masters(&app.db, repo.id).await? {
        out.push(master_json(&app, &repo, &master).await?);
    }
    Ok(Json(Value::Array(out)))
}

#[derive(Deserialize)]
struct NewMaster {
    master_token: Named,
}

#[derive(Deserialize)]
struct NewRead {
    read_token: Named,
}

#[derive(Deserialize)]
struct Named {
    name: String,
}

pub(crate) fn check_token_name(name: &str) -> Result<(), ApiError> {
    let valid = !name.is_empty() && name.len() <= 200 && !name.chars().any(char::is_control);
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "name",
            "must be 1 to 200 printable characters",
        ))
    }
}

pub async fn create(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (user, repo) = owned_repo(&app, &headers, client, &owner, &name).await?;
    let request: NewMaster = body::parse(&headers, &body)?;
    check_token_name(&request.master_token.name)?;
    let mut tx = app.db.begin_write().await?;
    let created = db::tokens::create_master(&mut tx, repo.id, &request.master_token.name).await?;
    tx.commit().await?;
    let master = created.ok_or_else(|| ApiError::invalid("name", "has already been taken"))?;
    audit(
        &app,
        &user,
        client.ip(),
        &repo,
        "token.create",
        &master.name,
        json!({ "kind": "master" }),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(master_json(&app, &repo, &master).await?),
    ))
}

pub async fn show(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name, mt)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let (_, repo) = owned_repo(&app, &headers, client, &owner, &name).await?;
    let master = find_master(&app, &repo, &mt).await?;
    Ok(Json(master_json(&app, &repo, &master).await?))
}

/// Deletes a master token and its read tokens (`default` gets a new value instead).
pub async fn destroy(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name, mt)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let (user, repo) = owned_repo(&app, &headers, client, &owner, &name).await?;
    let master = find_master(&app, &repo, &mt).await?;
    db::tokens::revoke_master(&app.db, &master).await?;
    app.tokens_changed().await?;
    audit(
        &app,
        &user,
        client.ip(),
        &repo,
        "token.revoke",
        &master.name,
        json!({ "kind": "master" }),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default)]
struct Rotation {
    /// How long the old value and its read tokens keep working: `24h`, `30m`, seconds.
    grace: Option<String>,
}

pub async fn rotate(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name, mt)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (user, repo) = owned_repo(&app, &headers, client, &owner, &name).await?;
    let master = find_master(&app, &repo, &mt).await?;
    let rotation: Rotation = if body.is_empty() {
        Rotation::default()
    } else {
        body::parse(&headers, &body)?
    };
    let grace = match rotation.grace.as_deref() {
        None => 0,
        Some(text) => parse_duration_secs(text).ok_or_else(|| {
            ApiError::invalid("grace", "must be a duration such as 3600, 30m, 24h or 7d")
        })?,
    };
    let rotated = db::tokens::rotate_master(&app.db, &master, grace).await?;
    app.tokens_changed().await?;
    audit(
        &app,
        &user,
        client.ip(),
        &repo,
        "token.rotate",
        &rotated.name,
        json!({ "kind": "master", "grace_secs": grace }),
    )
    .await;
    tracing::info!(repository = %format!("{owner}/{name}"), master_token = %rotated.name, grace_secs = grace, "rotated master token");
    Ok(Json(master_json(&app, &repo, &rotated).await?))
}

pub async fn list_read(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name, mt)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let (_, repo) = owned_repo(&app, &headers, client, &owner, &name).await?;
    let master = find_master(&app, &repo, &mt).await?;
    let reads = db::tokens::read_tokens(&app.db, master.id).await?;
    Ok(Json(Value::Array(reads.iter().map(read_json).collect())))
}

pub async fn create_read(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name, mt)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (user, repo) = owned_repo(&app, &headers, client, &owner, &name).await?;
    let master = find_master(&app, &repo, &mt).await?;
    let request: NewRead = body::parse(&headers, &body)?;
    check_token_name(&request.read_token.name)?;
    let token = db::tokens::mint_read(&app.db, &master, &request.read_token.name, None).await?;
    audit(
        &app,
        &user,
        client.ip(),
        &repo,
        "token.create",
        &token.name,
        json!({ "kind": "read", "master": master.name }),
    )
    .await;
    Ok((StatusCode::CREATED, Json(read_json(&token))))
}

pub async fn show_read(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name, mt, id)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let (_, repo) = owned_repo(&app, &headers, client, &owner, &name).await?;
    let master = find_master(&app, &repo, &mt).await?;
    let id: i64 = strip_json(&id)
        .parse()
        .map_err(|_| ApiError::not_found(format!("no read token {id}")))?;
    let token = db::tokens::read_tokens(&app.db, master.id)
        .await?
        .into_iter()
        .find(|t| t.id == id)
        .ok_or_else(|| ApiError::not_found(format!("no read token {id}")))?;
    Ok(Json(read_json(&token)))
}

pub async fn destroy_read(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name, mt, id)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let (user, repo) = owned_repo(&app, &headers, client, &owner, &name).await?;
    let master = find_master(&app, &repo, &mt).await?;
    let id: i64 = strip_json(&id)
        .parse()
        .map_err(|_| ApiError::not_found(format!("no read token {id}")))?;
    if db::tokens::delete_read(&app.db, master.id, id).await? {
        app.tokens_changed().await?;
        audit(
            &app,
            &user,
            client.ip(),
            &repo,
            "token.revoke",
            &id.to_string(),
            json!({ "kind": "read", "master": master.name }),
        )
        .await;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no read token {id}")))
    }
}
