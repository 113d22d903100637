//! `GET /api/v1/audit.json?since=7d&repo=OWNER/REPO&limit=N`: the audit log, newest first,
//! for administrators.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::App;
use crate::config::parse_duration_secs;
use crate::db;
use crate::http::auth;
use crate::http::error::ApiError;

#[derive(Deserialize)]
pub struct Filter {
    since: Option<String>,
    repo: Option<String>,
    limit: Option<i64>,
}

pub async fn list(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(filter): Query<Filter>,
) -> Result<Json<Value>, ApiError> {
    let user = auth::require_user(&app, &headers, client.ip()).await?;
    if !db::users::is_admin(&app.db, user.id).await? {
        return Err(ApiError::Forbidden(
            "the audit log is for administrators (packyard admin create-token --admin)".into(),
        ));
    }
    let since = match filter.since.as_deref() {
        None => 7 * 86_400,
        Some(text) => parse_duration_secs(text).ok_or_else(|| {
            ApiError::invalid("since", "must be a duration such as 3600, 30m, 24h or 7d")
        })?,
    };
    let limit = filter.limit.unwrap_or(1000).clamp(1, 10_000);
    let events = db::audit::list(&app.db, db::now() - since, filter.repo.as_deref(), limit).await?;
    let events: Vec<Value> = events
        .into_iter()
        .map(|e| {
            let details: Value = serde_json::from_str(&e.details).unwrap_or(Value::Null);
            json!({
                "id": e.id, "at": e.at, "actor_kind": e.actor_kind, "actor": e.actor,
                "ip_address": e.ip_address, "action": e.action, "repository": e.repository,
                "target": e.target, "outcome": e.outcome, "details": details,
            })
        })
        .collect();
    Ok(Json(json!({ "events": events })))
}
