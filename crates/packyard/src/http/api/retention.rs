//! A repository's retention for its owner, the same actions as `packyard retention ...`:
//! `GET .../retention.json` (the rules), `POST .../retention.json` with `keep_last`,
//! `keep_days`, `protect` and optionally `target=OS/DIST` (sets a rule),
//! `GET .../retention/preview.json` and `POST .../retention/apply.json` (what goes, and the
//! bytes freed).

use std::net::SocketAddr;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::App;
use crate::audit::{self, Actor, Event};
use crate::db;
use crate::http::api::body::{self, Number};
use crate::http::api::tokens::owned_repo;
use crate::http::error::ApiError;
use crate::retention::{self, Plan, RuleSpec};

fn rules_json(rules: &[db::retention::Rule]) -> Value {
    let rules: Vec<Value> = rules
        .iter()
        .map(|r| {
            json!({
                "target": retention::target_name(r),
                "keep_last": r.keep_last,
                "keep_days": r.keep_days,
                "protect": r.protect,
                "tags": r.tags,
                "updated_at": r.updated_at,
            })
        })
        .collect();
    json!({ "rules": rules })
}

pub async fn show(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let (_, repo) = owned_repo(&app, &headers, client, &owner, &name).await?;
    Ok(Json(rules_json(
        &db::retention::rules(&app.db, repo.id).await?,
    )))
}

// Not `#[serde(flatten)]` with `RuleSpec`: flattened form fields stay strings.
#[derive(Deserialize, Default)]
struct Request {
    keep_last: Option<Number>,
    keep_days: Option<Number>,
    protect: Option<String>,
    target: Option<String>,
    tags: Option<String>,
}

pub async fn set(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (user, repo) = owned_repo(&app, &headers, client, &owner, &name).await?;
    let request: Request = body::parse(&headers, &body)?;
    let target = request
        .target
        .as_deref()
        .filter(|t| !t.is_empty() && *t != "*");
    let spec = RuleSpec {
        keep_last: body::number("keep_last", request.keep_last)?,
        keep_days: body::number("keep_days", request.keep_days)?,
        protect: request.protect,
        tags: request.tags,
    };
    let rule = retention::set(&app, &repo, target, &spec)
        .await
        .map_err(|e| ApiError::invalid("retention", format!("{e:#}")))?;
    let event = Event::new(Actor::User(user.name.clone()), "retention.set")
        .ip(client.ip())
        .repository(&owner, &name)
        .target(retention::target_name(&rule))
        .details(json!(rule));
    audit::record(&app.db, event).await;
    Ok(Json(rules_json(
        &db::retention::rules(&app.db, repo.id).await?,
    )))
}

pub async fn preview(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Plan>, ApiError> {
    let (_, repo) = owned_repo(&app, &headers, client, &owner, &name).await?;
    Ok(Json(retention::plan(&app, &repo).await?))
}

pub async fn apply(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Plan>, ApiError> {
    let (user, repo) = owned_repo(&app, &headers, client, &owner, &name).await?;
    let actor = Actor::User(user.name.clone());
    Ok(Json(
        retention::apply(&app, &repo, actor, Some(client.ip())).await?,
    ))
}
