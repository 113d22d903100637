//! `GET /api/v1/repos/OWNER/REPO/package/deb/OS/DIST/NAME/ARCH/VERSION.json` and the same
//! path ending in `versions.json`.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use crate::app::App;
use crate::db;
use crate::distros;
use crate::http::error::ApiError;
use crate::http::{auth, present};

pub async fn show(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name, path)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let user = auth::optional_user(&app, &headers, client.ip()).await?;
    let repo = auth::readable_repo(&app, user.as_ref(), &owner, &name).await?;
    let path = path.strip_suffix(".json").unwrap_or(&path);
    let parts: Vec<&str> = path.split('/').collect();
    // deb: deb/OS/DIST/NAME/ARCH/VERSION; rpm: rpm/OS/DIST/NAME/ARCH/VERSION/RELEASE; either
    // may end in `versions` instead.
    let (os, dist, package, arch, wanted) = match parts.as_slice() {
        ["deb" | "rpm", os, dist, package, arch, "versions"] => (os, dist, package, arch, None),
        ["deb", os, dist, package, arch, version] => {
            (os, dist, package, arch, Some(version.to_string()))
        }
        ["rpm", os, dist, package, arch, version, release] => (
            os,
            dist,
            package,
            arch,
            Some(format!("{version}-{release}")),
        ),
        _ => return Err(ApiError::not_found(format!("no package at {path}"))),
    };
    let distro = distros::by_path(os, dist)
        .ok_or_else(|| ApiError::not_found(format!("unknown distribution {os}/{dist}")))?;
    let versions =
        db::packages::by_name_and_arch(&app.db, repo.id, distro.id, package, arch).await?;
    let base = auth::base_url(&app, &headers);
    let Some(last) = wanted else {
        let all: Vec<_> = versions
            .iter()
            .map(|p| present::package(&base, &repo, distro, p))
            .collect();
        return Ok(Json(all).into_response());
    };
    // The version may be given with its epoch (`1:2.0-1`) or without it (`2.0-1`).
    let found = versions
        .iter()
        .find(|p| p.version == last || p.version.ends_with(&format!(":{last}")))
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "{package} {last} ({arch}) is not in {owner}/{name} {os}/{dist}"
            ))
        })?;
    Ok(Json(present::package(&base, &repo, distro, found)).into_response())
}
