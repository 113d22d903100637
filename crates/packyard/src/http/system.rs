//! `GET /api/system`: the build for anyone (`version`, `commit`, `build_date`, as deployment
//! checks read it); for administrators also the backends, roles, uptime, queue, last publish,
//! soonest key expiry and last backup.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};

use crate::app::App;
use crate::db;
use crate::http::auth;
use crate::http::error::ApiError;
use crate::status;

pub async fn system(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let user = auth::optional_user(&app, &headers, client.ip()).await?;
    let admin = match &user {
        Some(user) => db::users::is_admin(&app.db, user.id).await?,
        None => false,
    };
    if !admin {
        return Ok(Json(json!(status::BUILD)));
    }
    let status = status::collect(&app).await?;
    let mut body = json!(status);
    body["uptime_secs"] = json!(app.started.elapsed().as_secs());
    body["role"] = json!(app.config.role.name());
    Ok(Json(body))
}
