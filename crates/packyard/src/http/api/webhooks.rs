//! A repository's webhooks for its owner, the same actions as `packyard webhook ...`:
//! `GET, POST .../webhooks.json` (list; add with `url` and optional `events`, answering the
//! secret once), `DELETE .../webhooks/ID`, `POST .../webhooks/ID/test.json`,
//! `GET .../webhooks/ID/deliveries.json` and `POST .../webhooks/ID/deliveries/DID/redeliver.json`.

use std::net::SocketAddr;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::App;
use crate::audit::{self, Actor, Event};
use crate::db::{self, repos::Repo, webhooks::Webhook};
use crate::http::api::body;
use crate::http::api::tokens::owned_repo;
use crate::http::error::ApiError;
use crate::webhooks::{self, WebhookError};

impl From<WebhookError> for ApiError {
    fn from(e: WebhookError) -> ApiError {
        match e {
            WebhookError::Refused(message) => ApiError::invalid("url", message),
            WebhookError::NotFound(message) => ApiError::not_found(message),
            WebhookError::Internal(e) => ApiError::Internal(e),
        }
    }
}

fn hook_json(h: &Webhook) -> Value {
    json!({ "id": h.id, "url": h.url, "events": h.events, "created_at": h.created_at })
}

async fn find(app: &App, repo: &Repo, id: &str) -> Result<Webhook, ApiError> {
    let id: i64 = id
        .trim_end_matches(".json")
        .parse()
        .map_err(|_| ApiError::not_found(format!("no webhook {id}")))?;
    db::webhooks::by_id(&app.db, id)
        .await?
        .filter(|h| h.repository_id == repo.id)
        .ok_or_else(|| ApiError::not_found(format!("no webhook {id}")))
}

pub async fn list(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let (_, repo) = owned_repo(&app, &headers, client, &owner, &name).await?;
    let hooks = db::webhooks::list(&app.db, repo.id).await?;
    Ok(Json(json!(hooks.iter().map(hook_json).collect::<Vec<_>>())))
}

#[derive(Deserialize)]
struct Add {
    url: String,
    events: Option<String>,
}

pub async fn add(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (user, repo) = owned_repo(&app, &headers, client, &owner, &name).await?;
    let request: Add = body::parse(&headers, &body)?;
    let (hook, secret) =
        webhooks::add(&app, repo.id, &request.url, request.events.as_deref()).await?;
    let event = Event::new(Actor::User(user.name.clone()), "webhook.add")
        .ip(client.ip())
        .repository(&owner, &name)
        .target(hook.url.clone())
        .details(json!({ "id": hook.id, "events": hook.events }));
    audit::record(&app.db, event).await;
    let mut answer = hook_json(&hook);
    answer["secret"] = secret.into();
    Ok((StatusCode::CREATED, Json(answer)))
}

pub async fn remove(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let (user, repo) = owned_repo(&app, &headers, client, &owner, &name).await?;
    let hook = find(&app, &repo, &id).await?;
    db::webhooks::remove(&app.db, hook.id).await?;
    let event = Event::new(Actor::User(user.name.clone()), "webhook.remove")
        .ip(client.ip())
        .repository(&owner, &name)
        .target(hook.url.clone());
    audit::record(&app.db, event).await;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn test(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let (_, repo) = owned_repo(&app, &headers, client, &owner, &name).await?;
    let hook = find(&app, &repo, &id).await?;
    webhooks::test(&app, &hook).await?;
    Ok(StatusCode::ACCEPTED)
}

pub async fn deliveries(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let (_, repo) = owned_repo(&app, &headers, client, &owner, &name).await?;
    let hook = find(&app, &repo, &id).await?;
    Ok(Json(json!(
        db::webhooks::deliveries(&app.db, hook.id, 100).await?
    )))
}

pub async fn redeliver(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name, id, delivery)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let (_, repo) = owned_repo(&app, &headers, client, &owner, &name).await?;
    let hook = find(&app, &repo, &id).await?;
    let found = delivery
        .parse::<i64>()
        .ok()
        .map(|d| db::webhooks::delivery(&app.db, d));
    let found = match found {
        Some(lookup) => lookup.await?,
        None => None,
    }
    .filter(|d| d.webhook_id == hook.id)
    .ok_or_else(|| ApiError::not_found(format!("no delivery {delivery}")))?;
    webhooks::redeliver(&app, &found).await?;
    Ok(StatusCode::ACCEPTED)
}
