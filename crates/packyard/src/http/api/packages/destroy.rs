//! `DELETE /api/v1/repos/OWNER/REPO/OS/DIST/FILENAME` (`package_cloud yank`): the package
//! leaves the index on the next publish; its blob is collected after the grace period.

use std::net::{IpAddr, SocketAddr};

use axum::Json;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};

use crate::app::App;
use crate::audit::{self, Actor, Event};
use crate::db::{self, packages::Package, repos::Repo, users::User};
use crate::distros::{self, Distro};
use crate::http::auth;
use crate::http::error::ApiError;
use crate::ingest;

pub async fn destroy(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name, os, dist, filename)): Path<(String, String, String, String, String)>,
    Query(scope): Query<super::ScopeQuery>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let filename = scope.filename(filename);
    let user = auth::require_user(&app, &headers, client.ip()).await?;
    let repo = auth::writable_repo(&app, &user, &owner, &name).await?;
    let distro = distros::by_path(&os, &dist)
        .ok_or_else(|| ApiError::not_found(format!("unknown distribution {os}/{dist}")))?;
    let package = ingest::by_filename(&app, repo.id, distro, &filename)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!("{filename} is not in {owner}/{name} {os}/{dist}"))
        })?;
    destroy_package(&app, &user, client.ip(), &repo, distro, &package).await?;
    Ok(Json(json!({})))
}

/// Takes a package out of its target's index (its file stays downloadable for the grace
/// period), queues the publish, and records who did it. The keyring package is refused.
pub async fn destroy_package(
    app: &App,
    user: &User,
    ip: IpAddr,
    repo: &Repo,
    distro: &Distro,
    package: &Package,
) -> Result<(), ApiError> {
    let (owner, name, filename) = (&repo.owner, &repo.name, &package.filename);
    if crate::keyring::is_keyring(repo, &package.name) {
        return Err(ApiError::invalid(
            "package",
            format!(
                "{} is the repository's keyring package, which Packyard keeps in step with its signing keys; \
                 it cannot be destroyed",
                package.name
            ),
        ));
    }
    let mut tx = app.db.begin_write().await?;
    db::packages::mark_deleted(&mut tx, package.id).await?;
    // An image's manifest takes its tags with it (other packages have none).
    crate::images::untag(&mut tx, repo.id, &package.name, package.id, &user.name).await?;
    ingest::enqueue_publishes(&mut tx, repo, distro, &package.name, &package.architecture).await?;
    let data = crate::webhooks::package_data(&format!("{owner}/{name}"), package);
    crate::webhooks::emit_tx(&mut tx, repo.id, "package.yanked", data).await?;
    tx.commit().await?;
    app.queued();
    tracing::info!(repository = %format!("{owner}/{name}"), filename = %filename, "destroyed package");
    let event = Event::new(Actor::User(user.name.clone()), "package.yank")
        .ip(ip)
        .repository(owner, name)
        .target(format!("{}/{}/{filename}", distro.os, distro.dist))
        .details(
            json!({ "name": package.name, "version": package.version, "sha256": package.sha256 }),
        );
    audit::record(&app.db, event).await;
    Ok(())
}
