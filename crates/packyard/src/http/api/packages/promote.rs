//! `POST /api/v1/repos/OWNER/REPO/OS/DIST/FILENAME/promote.json` with `destination=OWNER/REPO`
//! (`package_cloud promote`): moves the package, as packagecloud does; `copy=true` keeps it in
//! the source repository too.

use std::net::{IpAddr, SocketAddr};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::HeaderMap;
use packyard_api as api;
use serde::Deserialize;

use serde_json::json;

use crate::app::App;
use crate::audit::{self, Actor, Event};
use crate::db::{packages::Package, repos::Repo, users::User};
use crate::distros::{self, Distro};
use crate::http::api::body;
use crate::http::error::ApiError;
use crate::http::{auth, present};
use crate::ingest::{self, PushError};

#[derive(Deserialize)]
struct Promotion {
    destination: String,
    #[serde(default)]
    copy: Option<api::Flag>,
}

pub async fn promote(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name, os, dist, filename)): Path<(String, String, String, String, String)>,
    Query(scope): Query<super::ScopeQuery>,
    headers: HeaderMap,
    request: Bytes,
) -> Result<Json<api::Package>, ApiError> {
    let filename = scope.filename(filename);
    let user = auth::require_user(&app, &headers, client.ip()).await?;
    let source = auth::writable_repo(&app, &user, &owner, &name).await?;
    let promotion: Promotion = body::parse(&headers, &request)?;
    let (dest_owner, dest_name) = promotion
        .destination
        .split_once('/')
        .ok_or_else(|| ApiError::invalid("destination", "must be OWNER/REPO"))?;
    let destination = auth::writable_repo(&app, &user, dest_owner, dest_name).await?;
    if destination.id == source.id {
        return Err(ApiError::invalid(
            "destination",
            "is the package's own repository",
        ));
    }
    let distro = distros::by_path(&os, &dist)
        .ok_or_else(|| ApiError::not_found(format!("unknown distribution {os}/{dist}")))?;
    let package = ingest::by_filename(&app, source.id, distro, &filename)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!("{filename} is not in {owner}/{name} {os}/{dist}"))
        })?;
    let keep = promotion.copy.as_ref().is_some_and(api::Flag::is_set);
    let promoted = promote_package(
        &app,
        &user,
        client.ip(),
        &source,
        &destination,
        distro,
        &package,
        keep,
    )
    .await?;
    Ok(Json(present::package(
        &auth::base_url(&app, &headers),
        &destination,
        distro,
        &promoted,
    )))
}

/// Moves (or with `keep`, copies) a package to another repository the user may change,
/// queueing both publishes, and records it.
#[allow(clippy::too_many_arguments)]
pub async fn promote_package(
    app: &App,
    user: &User,
    ip: IpAddr,
    source: &Repo,
    destination: &Repo,
    distro: &Distro,
    package: &Package,
    keep: bool,
) -> Result<Package, ApiError> {
    let promoted = ingest::promote(app, source, destination, distro, package, keep).await;
    let refused = !matches!(promoted, Err(PushError::Internal(_)));
    let event = Event::new(Actor::User(user.name.clone()), "package.promote")
        .ip(ip)
        .repository(&source.owner, &source.name)
        .target(format!("{}/{}/{}", distro.os, distro.dist, package.filename))
        .details(
            json!({ "destination": format!("{}/{}", destination.owner, destination.name), "copy": keep, "sha256": package.sha256 }),
        )
        .result(&promoted, refused);
    audit::record(&app.db, event).await;
    promoted.map_err(|e| match e {
        PushError::Conflict(m) => ApiError::invalid("filename", m),
        PushError::Internal(e) => ApiError::from(e),
        PushError::BadPackage(m) | PushError::BadFilename(m) => ApiError::invalid("package", m),
    })
}
