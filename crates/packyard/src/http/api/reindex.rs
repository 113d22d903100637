//! `POST /api/v1/repos/OWNER/REPO/reindex.json` with optional `os`, `dist` and `filename`:
//! rebuilds the repository's indexes (of one distribution, or for one package) from the
//! database, as `packyard reindex` does. With `?wait=SECONDS` it answers once the rebuilt
//! indexes are published (`"done": true`) or the time is up (`"done": false`).

use std::net::SocketAddr;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::App;
use crate::audit::{self, Actor, Event};
use crate::distros;
use crate::http::api::body;
use crate::http::api::packages::wait::WaitQuery;
use crate::http::auth;
use crate::http::error::ApiError;
use crate::reindex::{self, Scope};

#[derive(Deserialize, Default)]
struct Request {
    os: Option<String>,
    dist: Option<String>,
    filename: Option<String>,
}

pub async fn reindex(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name)): Path<(String, String)>,
    Query(wait): Query<WaitQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let user = auth::require_user(&app, &headers, client.ip()).await?;
    let repo = auth::writable_repo(&app, &user, &owner, &name).await?;
    let wait = wait.limit()?;
    let request: Request = if body.is_empty() {
        Request::default()
    } else {
        body::parse(&headers, &body)?
    };
    let distro = match (request.os.as_deref(), request.dist.as_deref()) {
        (Some(os), Some(dist)) => Some(distros::by_path(os, dist).ok_or_else(|| {
            ApiError::invalid("dist", format!("{os}/{dist} is not a known distribution"))
        })?),
        (None, None) => None,
        _ => return Err(ApiError::invalid("dist", "os and dist go together")),
    };
    if request.filename.is_some() && distro.is_none() {
        return Err(ApiError::invalid("filename", "needs os and dist"));
    }
    let scope = Scope {
        repo: &repo,
        distro,
        filename: request.filename.as_deref(),
    };
    let report = reindex::reindex(&app, &scope, false).await;
    let mut event = Event::new(Actor::User(user.name.clone()), "reindex")
        .ip(client.ip())
        .repository(&owner, &name)
        .result(&report, false);
    if let Some(distro) = distro {
        event = event.target(format!("{}/{}", distro.os, distro.dist));
    }
    if let Ok(report) = &report {
        event = event.details(json!(report));
    }
    audit::record(&app.db, event).await;
    let report = report.map_err(|e| {
        if e.to_string().contains("is not in") {
            ApiError::not_found(e.to_string())
        } else {
            ApiError::Internal(e)
        }
    })?;
    let mut answer = json!(report);
    if let Some(limit) = wait {
        let waited = reindex::wait(&app, &scope, limit).await;
        answer["done"] = json!(waited.is_ok());
        if let Err(e) = waited {
            answer["waiting"] = json!(format!("{e:#}"));
        } else {
            return Ok((StatusCode::OK, Json(answer)));
        }
    }
    Ok((StatusCode::ACCEPTED, Json(answer)))
}
