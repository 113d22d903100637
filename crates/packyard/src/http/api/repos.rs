//! `GET /api/v1/repos.json`, `POST /api/v1/repos.json`, `GET /api/v1/repos/OWNER/REPO.json`.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use packyard_api as api;
use serde::Deserialize;

use crate::app::App;
use crate::audit::{self, Actor, Event};
use crate::db;
use crate::http::api::{body, page};
use crate::http::auth;
use crate::http::error::ApiError;
use crate::http::present;

#[derive(Deserialize)]
pub struct PageQuery {
    page: Option<i64>,
    per_page: Option<i64>,
}

/// The caller's repositories, paginated.
pub async fn list(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Query(query): Query<PageQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let user = auth::require_user(&app, &headers, client.ip()).await?;
    let base = auth::base_url(&app, &headers);
    let (page, per_page) = page::number_and_size(query.page, query.per_page);
    let repos = db::repos::list_for_owner(&app.db, user.id).await?;
    let total = repos.len() as i64;
    let mut out = Vec::new();
    for repo in repos
        .iter()
        .skip(((page - 1) * per_page) as usize)
        .take(per_page as usize)
    {
        let count = db::repos::package_count(&app.db, repo.id).await?;
        out.push(present::repository(&base, repo, count));
    }
    let body = serde_json::to_value(out).map_err(anyhow::Error::from)?;
    Ok(page::paginated(
        body,
        &base,
        "/api/v1/repos.json",
        page,
        per_page,
        total,
    ))
}

pub async fn show(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<api::Repository>, ApiError> {
    let name = name.strip_suffix(".json").unwrap_or(&name);
    let user = auth::optional_user(&app, &headers, client.ip()).await?;
    let repo = auth::readable_repo(&app, user.as_ref(), &owner, name).await?;
    let count = db::repos::package_count(&app.db, repo.id).await?;
    Ok(Json(present::repository(
        &auth::base_url(&app, &headers),
        &repo,
        count,
    )))
}

pub async fn create(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<api::Repository>), ApiError> {
    let user = auth::require_user(&app, &headers, client.ip()).await?;
    let request: api::CreateRepository = body::parse(&headers, &body)?;
    let name = request.repository.name.trim();
    validate_name(name)?;
    let flag = |f: &Option<api::Flag>| f.as_ref().is_some_and(api::Flag::is_set);
    let private = flag(&request.repository.private);

    let key = crate::keys::generate_for(&app, &user.name, name, None, None).await?;
    let new = db::repos::NewRepo {
        owner_id: user.id,
        name,
        private,
        index_zstd: flag(&request.repository.index_zstd),
        index_xz: flag(&request.repository.index_xz),
    };
    let Some(id) = db::repos::create(&app.db, &new, &key).await? else {
        return Err(ApiError::invalid("name", "has already been taken"));
    };
    let repo = db::repos::by_id(&app.db, id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("repository {id} vanished"))?;
    tracing::info!(owner = %user.name, repository = %name, private, "created repository");
    let event = Event::new(Actor::User(user.name.clone()), "repository.create")
        .ip(client.ip())
        .repository(&user.name, name)
        .details(serde_json::json!({ "private": private }));
    audit::record(&app.db, event).await;
    Ok((
        StatusCode::CREATED,
        Json(present::repository(
            &auth::base_url(&app, &headers),
            &repo,
            0,
        )),
    ))
}

fn validate_name(name: &str) -> Result<(), ApiError> {
    let valid = !name.is_empty()
        && name.len() <= 100
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if valid && !name.ends_with(".json") {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "name",
            "must be 1 to 100 letters, digits, '-', '_' or '.', starting with a letter or digit",
        ))
    }
}
