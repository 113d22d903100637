//! Image tags for a repository's owner, the same actions as `packyard image ...`:
//! `POST .../images/tag.json` (`image`, `digest`, `tag`: promotion moves a tag to a digest),
//! `POST .../images/rollback.json` (`image`, `tag`: back one step), and
//! `GET .../images/history.json?image=&tag=` (every move, newest first).

use std::net::SocketAddr;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::App;
use crate::audit::{self, Actor, Event};
use crate::db;
use crate::http::api::body;
use crate::http::api::tokens::owned_repo;
use crate::http::error::ApiError;
use crate::images::{self, ImageError, Moved};

impl From<ImageError> for ApiError {
    fn from(e: ImageError) -> ApiError {
        match e {
            ImageError::ManifestUnknown(message) => ApiError::not_found(message),
            ImageError::Internal(e) => ApiError::from(e),
            other => ApiError::invalid("image", other.to_string()),
        }
    }
}

#[derive(Deserialize)]
struct Tag {
    image: String,
    digest: String,
    tag: String,
}

pub async fn tag(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Moved>, ApiError> {
    let (user, repo) = owned_repo(&app, &headers, client, &owner, &name).await?;
    let request: Tag = body::parse(&headers, &body)?;
    let sha256 = packyard_formats::oci::sha256_of_digest(&request.digest)
        .map_err(|e| ApiError::invalid("digest", e.to_string()))?;
    let moved = images::tag(
        &app,
        &repo,
        &request.image,
        sha256,
        &request.tag,
        &user.name,
    )
    .await?;
    record(&app, &user.name, client, &repo, "image.tag", &moved).await;
    Ok(Json(moved))
}

#[derive(Deserialize)]
struct Rollback {
    image: String,
    tag: String,
}

pub async fn rollback(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Moved>, ApiError> {
    let (user, repo) = owned_repo(&app, &headers, client, &owner, &name).await?;
    let request: Rollback = body::parse(&headers, &body)?;
    let moved = images::rollback(&app, &repo, &request.image, &request.tag, &user.name).await?;
    record(&app, &user.name, client, &repo, "image.rollback", &moved).await;
    Ok(Json(moved))
}

async fn record(
    app: &App,
    user: &str,
    client: SocketAddr,
    repo: &db::repos::Repo,
    action: &'static str,
    moved: &Moved,
) {
    let event = Event::new(Actor::User(user.to_owned()), action)
        .ip(client.ip())
        .repository(&repo.owner, &repo.name)
        .target(format!("{}:{}", moved.image, moved.tag))
        .details(json!({ "digest": moved.digest, "previous": moved.previous }));
    audit::record(&app.db, event).await;
}

#[derive(Deserialize)]
pub struct HistoryQuery {
    image: String,
    tag: String,
}

pub async fn history(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name)): Path<(String, String)>,
    Query(query): Query<HistoryQuery>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let (_, repo) = owned_repo(&app, &headers, client, &owner, &name).await?;
    let moves = db::oci::history(&app.db, repo.id, &query.image, &query.tag).await?;
    Ok(Json(json!(moves)))
}
