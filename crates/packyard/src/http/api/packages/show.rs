//! `GET /api/v1/repos/OWNER/REPO/package/deb/OS/DIST/NAME/ARCH/VERSION.json` and the same
//! path ending in `versions.json`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use crate::app::App;
use crate::db;
use crate::distros;
use crate::http::error::ApiError;
use crate::http::{auth, present};

pub async fn show(
    State(app): State<App>,
    Path((owner, name, path)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let user = auth::optional_user(&app, &headers).await?;
    let repo = auth::readable_repo(&app, user.as_ref(), &owner, &name).await?;
    let parts: Vec<&str> = path.split('/').collect();
    let ["deb", os, dist, package, arch, last] = parts.as_slice() else {
        return Err(ApiError::not_found(format!("no package at {path}")));
    };
    let last = last.strip_suffix(".json").unwrap_or(last);
    let distro = distros::by_path(os, dist)
        .ok_or_else(|| ApiError::not_found(format!("unknown distribution {os}/{dist}")))?;
    let versions =
        db::packages::by_name_and_arch(&app.db, repo.id, distro.id, package, arch).await?;
    let base = auth::base_url(&app, &headers);
    if last == "versions" {
        let all: Vec<_> = versions
            .iter()
            .map(|p| present::package(&base, &repo, distro, p))
            .collect();
        return Ok(Json(all).into_response());
    }
    // The version may be given with its epoch (`1:2.0-1`) or without it (`2.0-1`).
    let found = versions
        .iter()
        .find(|p| p.version == last)
        .or_else(|| {
            versions
                .iter()
                .find(|p| p.version.split_once(':').is_some_and(|(_, v)| v == last))
        })
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "{package} {last} ({arch}) is not in {owner}/{name} {os}/{dist}"
            ))
        })?;
    Ok(Json(present::package(&base, &repo, distro, found)).into_response())
}
