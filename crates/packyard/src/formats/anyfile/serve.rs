//! Raw files over HTTP: `GET`/`HEAD` of `packages/anyfile/FILE/download` and
//! `raw/NAME/VERSION/FILE` (with `Range`, `ETag`, `Content-Disposition`, and a presigned
//! redirect when stored on S3), `PUT` and `DELETE` of `raw/NAME/VERSION/FILE` with an API token.

use std::net::SocketAddr;

use axum::Json;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::App;
use crate::audit::{self, Actor, Event};
use crate::db::{self, packages::Package, repos::Repo};
use crate::distros::{self, Distro};
use crate::http::error::ApiError;
use crate::http::repo::send::{self, File, Request};
use crate::http::{auth, present};
use crate::ingest::{self, PushError};
use crate::storage::BlobKey;

/// The distribution every raw file belongs to (`anyfile/1`).
pub fn distro() -> &'static Distro {
    distros::by_os_dist("anyfile", "1").expect("anyfile/1 is a distribution")
}

/// A raw file as a request names it.
pub enum Wanted<'a> {
    /// `packages/anyfile/FILE/download`
    Pushed { filename: &'a str },
    /// `raw/NAME/VERSION/FILE`
    Raw {
        name: &'a str,
        version: &'a str,
        filename: &'a str,
    },
}

async fn find(app: &App, repo: &Repo, wanted: &Wanted<'_>) -> Result<Option<Package>, ApiError> {
    let distro = distro();
    let by_filename = |filename: String| async move {
        db::packages::by_filename(&app.db, repo.id, distro.id, &filename).await
    };
    Ok(match wanted {
        Wanted::Pushed { filename } => by_filename(filename.to_string()).await?,
        Wanted::Raw {
            name,
            version,
            filename,
        } => match by_filename(format!("{name}/{version}/{filename}")).await? {
            Some(package) => Some(package),
            // A file pushed through API v1 is also reachable by its name and version.
            None => by_filename(filename.to_string())
                .await?
                .filter(|p| p.name == *name && p.version == *version),
        },
    })
}

pub async fn download(
    app: &App,
    repo: &Repo,
    wanted: Wanted<'_>,
    request: &Request<'_>,
) -> Result<Response, ApiError> {
    let package = find(app, repo, &wanted)
        .await?
        .ok_or_else(|| ApiError::not_found("no such file"))?;
    let content_type = mime_guess::from_path(&package.architecture)
        .first_raw()
        .unwrap_or("application/octet-stream");
    let file = File::blob(
        BlobKey::from_sha256(&package.sha256)?,
        package.size as u64,
        content_type,
    )
    .modified_at(package.created_at)
    .attachment(&package.architecture)
    .counting(package.id, "anyfile");
    send::send(app, request, file).await
}

/// `PUT raw/NAME/VERSION/FILE`: the body is the file. 201 with the package as API v1 shows
/// it; the same bytes again are 200; other bytes under a taken name are 409.
#[allow(clippy::too_many_arguments)]
pub async fn upload(
    app: &App,
    client: SocketAddr,
    headers: &HeaderMap,
    owner: &str,
    repo_name: &str,
    (name, version, filename): (&str, &str, &str),
    body: Body,
) -> Result<Response, ApiError> {
    let user = auth::require_user(app, headers, client.ip()).await?;
    let repo = auth::writable_repo(app, &user, owner, repo_name).await?;
    let stored = format!("{name}/{version}/{filename}");
    let (staged, _temp) =
        crate::http::api::packages::push::stage(app, body.into_data_stream(), stored.clone())
            .await?;
    let distro = distro();
    let pushed = ingest::push(app, &repo, distro, &staged).await;
    let event = Event::new(Actor::User(user.name.clone()), "package.push")
        .ip(client.ip())
        .repository(owner, repo_name)
        .target(format!("raw/{stored}"))
        .details(json!({ "sha256": staged.digests.sha256, "size": staged.digests.size }))
        .result(&pushed, !matches!(pushed, Err(PushError::Internal(_))));
    audit::record(&app.db, event).await;
    let (package, is_new) = pushed.map_err(|e| match e {
        PushError::BadPackage(m) | PushError::BadFilename(m) => ApiError::BadRequest(m),
        PushError::Conflict(m) => ApiError::Conflict(m),
        PushError::Internal(e) => ApiError::from(e),
    })?;
    let base = auth::base_url(app, headers);
    let status = if is_new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(present::package(&base, &repo, distro, &package)),
    )
        .into_response())
}

/// `DELETE raw/NAME/VERSION/FILE`: 204, and the file answers 404 from then on.
pub async fn delete(
    app: &App,
    client: SocketAddr,
    headers: &HeaderMap,
    owner: &str,
    repo_name: &str,
    wanted: Wanted<'_>,
) -> Result<Response, ApiError> {
    let user = auth::require_user(app, headers, client.ip()).await?;
    let repo = auth::writable_repo(app, &user, owner, repo_name).await?;
    let package = find(app, &repo, &wanted)
        .await?
        .ok_or_else(|| ApiError::not_found("no such file"))?;
    let mut tx = app.db.begin_write().await?;
    db::packages::mark_deleted(&mut tx, package.id).await?;
    tx.commit().await?;
    app.cache.invalidate();
    let event = Event::new(Actor::User(user.name.clone()), "package.yank")
        .ip(client.ip())
        .repository(owner, repo_name)
        .target(format!("anyfile/1/{}", package.filename))
        .details(
            json!({ "name": package.name, "version": package.version, "sha256": package.sha256 }),
        );
    audit::record(&app.db, event).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}
