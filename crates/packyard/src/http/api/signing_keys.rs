//! A repository's signing keys for its owner, the same actions as `packyard key ...`:
//! `GET .../gpg_keys/signing.json` (states, expiry, adoption), `POST .../gpg_keys/rotate.json`,
//! `POST .../gpg_keys/import.json`, `POST .../gpg_keys/FINGERPRINT/retire.json`,
//! `POST .../gpg_keys/FINGERPRINT/extend.json` and `GET .../gpg_keys/FINGERPRINT/export.asc`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use packyard_api::Flag;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::App;
use crate::audit::Actor;
use crate::db::repos::Repo;
use crate::http::api::body::{self, Number};
use crate::http::error::ApiError;
use crate::keys::{self, KeyChange, KeyError};
use crate::sign::KeyAlgorithm;

impl From<KeyError> for ApiError {
    fn from(e: KeyError) -> ApiError {
        match e {
            KeyError::NotFound(message) => ApiError::not_found(message),
            KeyError::Refused(message) => ApiError::invalid("key", message),
            KeyError::Import(e) => ApiError::invalid("keydata", e.to_string()),
            KeyError::Internal(e) => ApiError::Internal(e),
        }
    }
}

async fn owned(
    app: &App,
    headers: &HeaderMap,
    client: SocketAddr,
    owner: &str,
    name: &str,
) -> Result<(Actor, Arc<Repo>), ApiError> {
    let (user, repo) = super::tokens::owned_repo(app, headers, client, owner, name).await?;
    Ok((Actor::User(user.name), repo))
}

fn parse<T: for<'de> Deserialize<'de> + Default>(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<T, ApiError> {
    if body.is_empty() {
        Ok(T::default())
    } else {
        body::parse(headers, body)
    }
}

/// A count of days, as JSON sends it or as a form field.
fn days(field: &'static str, days: Option<Number>) -> Result<Option<u32>, ApiError> {
    body::number(field, days)?
        .map(u32::try_from)
        .transpose()
        .map_err(|_| ApiError::invalid(field, "must be a whole number of days"))
}

fn flag(flag: &Option<Flag>) -> bool {
    flag.as_ref().is_some_and(Flag::is_set)
}

fn changed(change: KeyChange) -> Json<Value> {
    Json(json!(change))
}

pub async fn list(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let (_, repo) = owned(&app, &headers, client, &owner, &name).await?;
    let (keys, adoption) = keys::list(&app, &repo).await?;
    Ok(Json(json!({ "keys": keys, "adoption": adoption })))
}

#[derive(Deserialize, Default)]
struct Rotation {
    algorithm: Option<String>,
    days: Option<Number>,
    stage: Option<Flag>,
}

pub async fn rotate(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (actor, repo) = owned(&app, &headers, client, &owner, &name).await?;
    let rotation: Rotation = parse(&headers, &body)?;
    let algorithm = rotation
        .algorithm
        .as_deref()
        .map(str::parse::<KeyAlgorithm>)
        .transpose()
        .map_err(|e| ApiError::invalid("algorithm", format!("{e:#}")))?;
    let days = days("days", rotation.days)?;
    let change = keys::rotate(&app, &repo, algorithm, days, flag(&rotation.stage)).await;
    keys::audit(
        &app,
        actor,
        Some(client.ip()),
        &repo,
        "key.rotate",
        None,
        &change,
    )
    .await;
    Ok((StatusCode::CREATED, changed(change?)))
}

#[derive(Deserialize, Default)]
struct Import {
    keydata: Option<String>,
    stage: Option<Flag>,
}

pub async fn import(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (actor, repo) = owned(&app, &headers, client, &owner, &name).await?;
    let import: Import = parse(&headers, &body)?;
    let keydata = import
        .keydata
        .ok_or_else(|| ApiError::invalid("keydata", "is missing: the armored private key"))?;
    let change = keys::import(&app, &repo, &keydata, flag(&import.stage)).await;
    keys::audit(
        &app,
        actor,
        Some(client.ip()),
        &repo,
        "key.import",
        None,
        &change,
    )
    .await;
    Ok((StatusCode::CREATED, changed(change?)))
}

#[derive(Deserialize, Default)]
struct Retirement {
    force: Option<Flag>,
}

pub async fn retire(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name, fingerprint)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (actor, repo) = owned(&app, &headers, client, &owner, &name).await?;
    let retirement: Retirement = parse(&headers, &body)?;
    let change = keys::retire(&app, &repo, &fingerprint, flag(&retirement.force)).await;
    keys::audit(
        &app,
        actor,
        Some(client.ip()),
        &repo,
        "key.retire",
        Some(&fingerprint),
        &change,
    )
    .await;
    Ok(changed(change?))
}

#[derive(Deserialize, Default)]
struct Extension {
    days: Option<Number>,
}

pub async fn extend(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name, fingerprint)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (actor, repo) = owned(&app, &headers, client, &owner, &name).await?;
    let extension: Extension = parse(&headers, &body)?;
    let days = days("days", extension.days)?.ok_or_else(|| {
        ApiError::invalid("days", "is missing: days from now until the key expires")
    })?;
    let change = keys::extend(&app, &repo, &fingerprint, days).await;
    keys::audit(
        &app,
        actor,
        Some(client.ip()),
        &repo,
        "key.extend",
        Some(&fingerprint),
        &change,
    )
    .await;
    Ok(changed(change?))
}

pub async fn export(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name, fingerprint)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (_, repo) = owned(&app, &headers, client, &owner, &name).await?;
    let armored = keys::export(&app, &repo, Some(&fingerprint)).await?;
    Ok(([(header::CONTENT_TYPE, "application/pgp-keys")], armored).into_response())
}
