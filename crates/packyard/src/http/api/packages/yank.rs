//! `POST /api/v1/repos/OWNER/REPO/package/python/NAME/VERSION/yank.json` (optional `reason`)
//! marks a Python release yanked (PEP 592): it stays downloadable, pages say so, and pip
//! takes it only when pinned. `DELETE` of the same path takes the mark away. A destroy
//! removes a file instead.

use std::net::SocketAddr;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, Method};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::App;
use crate::audit::{self, Actor, Event};
use crate::formats::python;
use crate::http::api::body;
use crate::http::auth;
use crate::http::error::ApiError;

#[derive(Deserialize, Default)]
struct YankBody {
    #[serde(default)]
    reason: Option<String>,
}

pub async fn yank(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name, path)): Path<(String, String, String)>,
    method: Method,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let user = auth::require_user(&app, &headers, client.ip()).await?;
    let repo = auth::writable_repo(&app, &user, &owner, &name).await?;
    let parts: Vec<&str> = path.split('/').collect();
    let ["python", project, version, "yank.json"] = parts.as_slice() else {
        return Err(ApiError::not_found(format!("no package action at {path}")));
    };
    let reason = match method {
        Method::DELETE => None,
        _ => {
            let body: YankBody = match bytes.is_empty() {
                true => YankBody::default(),
                false => body::parse(&headers, &bytes)?,
            };
            Some(body.reason.unwrap_or_default())
        }
    };
    if reason.as_ref().is_some_and(|r| r.len() > 1000) {
        return Err(ApiError::invalid(
            "reason",
            "is longer than 1000 characters",
        ));
    }
    let files = python::set_yanked(&app, &repo, project, version, reason.as_deref()).await?;
    if files == 0 {
        return Err(ApiError::not_found(format!(
            "{project} {version} is not in {owner}/{name}"
        )));
    }
    let action = if reason.is_some() {
        "package.yank_mark"
    } else {
        "package.unyank"
    };
    let event = Event::new(Actor::User(user.name.clone()), action)
        .ip(client.ip())
        .repository(&owner, &name)
        .target(format!("python/{project}/{version}"))
        .details(json!({ "files": files, "reason": reason }));
    audit::record(&app.db, event).await;
    Ok(Json(json!({ "files": files, "yanked": reason.is_some() })))
}
