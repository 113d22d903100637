//! Snapshots for a repository's owner, the same actions as `packyard snapshot ...` and
//! `packyard promote-all`: `GET, POST .../snapshots.json` (list; create with `name`),
//! `GET, DELETE .../snapshots/NAME`, `GET .../snapshots/NAME/diff.json[?against=OTHER]`,
//! `POST .../snapshots/NAME/restore.json`, and `POST .../promote_all.json` on the destination
//! with `source=OWNER/REPO`, optional `snapshot` and `dry_run`.

use std::net::SocketAddr;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use packyard_api::Flag;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::App;
use crate::audit::Actor;
use crate::db;
use crate::http::api::body;
use crate::http::api::tokens::owned_repo;
use crate::http::auth;
use crate::http::error::ApiError;
use crate::snapshots::{self, Diff, Entry, Promotion, SnapshotError};

impl From<SnapshotError> for ApiError {
    fn from(e: SnapshotError) -> ApiError {
        match e {
            SnapshotError::NotFound(message) => ApiError::not_found(message),
            SnapshotError::Refused(message) => ApiError::invalid("snapshot", message),
            SnapshotError::Internal(e) => ApiError::Internal(e),
        }
    }
}

fn strip_json(name: &str) -> &str {
    name.strip_suffix(".json").unwrap_or(name)
}

pub async fn list(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let (_, repo) = owned_repo(&app, &headers, client, &owner, &name).await?;
    Ok(Json(json!(db::snapshots::list(&app.db, repo.id).await?)))
}

#[derive(Deserialize)]
struct Create {
    name: String,
}

pub async fn create(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (user, repo) = owned_repo(&app, &headers, client, &owner, &name).await?;
    let request: Create = body::parse(&headers, &body)?;
    let created =
        snapshots::create(&app, &repo, &request.name, Actor::User(user.name.clone())).await?;
    Ok((StatusCode::CREATED, Json(json!(created))))
}

pub async fn show(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name, snapshot)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let (_, repo) = owned_repo(&app, &headers, client, &owner, &name).await?;
    let snapshot = snapshots::find(&app, &repo, strip_json(&snapshot)).await?;
    let packages = snapshots::content(&app, &repo, Some(&snapshot.name)).await?;
    let entries: Vec<Entry> = packages.iter().map(Entry::of).collect();
    Ok(Json(json!({ "snapshot": snapshot, "packages": entries })))
}

pub async fn delete(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name, snapshot)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let (user, repo) = owned_repo(&app, &headers, client, &owner, &name).await?;
    snapshots::delete(
        &app,
        &repo,
        strip_json(&snapshot),
        Actor::User(user.name.clone()),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default)]
pub struct Against {
    against: Option<String>,
}

pub async fn diff(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name, snapshot)): Path<(String, String, String)>,
    Query(against): Query<Against>,
    headers: HeaderMap,
) -> Result<Json<Diff>, ApiError> {
    let (_, repo) = owned_repo(&app, &headers, client, &owner, &name).await?;
    let from = snapshots::content(&app, &repo, Some(&snapshot)).await?;
    let other = against.against.as_deref().filter(|a| !a.is_empty());
    let to = snapshots::content(&app, &repo, other).await?;
    Ok(Json(snapshots::diff(&from, &to)))
}

pub async fn restore(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name, snapshot)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Json<Diff>, ApiError> {
    let (user, repo) = owned_repo(&app, &headers, client, &owner, &name).await?;
    let actor = Actor::User(user.name.clone());
    Ok(Json(
        snapshots::restore(&app, &repo, &snapshot, actor).await?,
    ))
}

#[derive(Deserialize)]
struct PromoteAll {
    source: String,
    snapshot: Option<String>,
    dry_run: Option<Flag>,
}

pub async fn promote_all(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Promotion>, ApiError> {
    let (user, destination) = owned_repo(&app, &headers, client, &owner, &name).await?;
    let request: PromoteAll = body::parse(&headers, &body)?;
    let (source_owner, source_name) = request
        .source
        .split_once('/')
        .ok_or_else(|| ApiError::invalid("source", "must be OWNER/REPO"))?;
    let source = auth::writable_repo(&app, &user, source_owner, source_name).await?;
    let dry_run = request.dry_run.as_ref().is_some_and(Flag::is_set);
    let snapshot = request.snapshot.as_deref().filter(|s| !s.is_empty());
    let actor = Actor::User(user.name.clone());
    Ok(Json(
        snapshots::promote_all(&app, &source, &destination, snapshot, dry_run, actor).await?,
    ))
}
