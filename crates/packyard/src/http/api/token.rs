//! `GET /api/v1/token.json` with basic auth `email:password`: the user's API token, as the
//! package_cloud CLI asks for it when it has no configuration yet. Each call issues a new token.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use base64::Engine as _;
use serde_json::{Value, json};

use crate::app::App;
use crate::audit::{self, Actor, Event, Outcome};
use crate::db;
use crate::http::error::ApiError;

pub async fn token(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let credentials = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
        .and_then(|encoded| {
            base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()
        })
        .and_then(|decoded| String::from_utf8(decoded).ok());
    let Some((email, password)) = credentials.as_deref().and_then(|c| c.split_once(':')) else {
        return Err(ApiError::Unauthenticated);
    };
    if app.auth_failures.blocked(client.ip()) {
        return Err(ApiError::TooManyRequests);
    }
    let Some(user) = db::users::by_login(&app.db, email, password).await? else {
        app.auth_failures.record(client.ip());
        let event = Event::new(Actor::User(email.chars().take(200).collect()), "user.login")
            .ip(client.ip())
            .outcome(Outcome::Refused);
        audit::record(&app.db, event).await;
        return Err(ApiError::Unauthenticated);
    };
    let token = db::users::create_token(&app.db, user.id).await?;
    audit::record(
        &app.db,
        Event::new(Actor::User(user.name.clone()), "user.login").ip(client.ip()),
    )
    .await;
    Ok(Json(json!({ "token": token })))
}
