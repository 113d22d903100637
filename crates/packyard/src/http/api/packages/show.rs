//! `GET /api/v1/repos/OWNER/REPO/package/deb/OS/DIST/NAME/ARCH/VERSION.json` (rpm:
//! `.../ARCH/VERSION/RELEASE.json`), the same path ending in `versions.json`, and a package's
//! download stats under `.../stats/downloads/{count,detail,series/daily}.json`.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::BTreeMap;

use crate::app::App;
use crate::db;
use crate::distros;
use crate::http::api::packages::wait::{WaitQuery, until_indexed};
use crate::http::error::ApiError;
use crate::http::{auth, present};

pub async fn show(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name, path)): Path<(String, String, String)>,
    Query(wait): Query<WaitQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let user = auth::optional_user(&app, &headers, client.ip()).await?;
    let repo = auth::readable_repo(&app, user.as_ref(), &owner, &name).await?;
    let wait = wait.limit()?;
    let path = path.strip_suffix(".json").unwrap_or(&path);
    let (path, stat) = match path.split_once("/stats/downloads/") {
        Some((package, stat)) => (package, Some(stat)),
        None => (path, None),
    };
    let parts: Vec<&str> = path.split('/').collect();
    // deb: deb/OS/DIST/NAME/ARCH/VERSION; rpm: rpm/OS/DIST/NAME/ARCH/VERSION/RELEASE; either
    // may end in `versions` instead.
    let (os, dist, package, arch, wanted): (&str, &str, String, Option<&str>, Option<String>) =
        match parts.as_slice() {
            // dsc: dsc/OS/DIST/NAME/ARCH/VERSION, the architecture segment not consulted
            // (packagecloud writes `i386 amd64 all` there).
            ["dsc", os, dist, package, _, "versions"] => {
                (os, dist, package.to_string(), None, None)
            }
            ["dsc", os, dist, package, _, version] => (
                os,
                dist,
                package.to_string(),
                None,
                Some(version.to_string()),
            ),
            ["deb" | "rpm", os, dist, package, arch, "versions"] => {
                (os, dist, package.to_string(), Some(*arch), None)
            }
            ["deb", os, dist, package, arch, version] => (
                os,
                dist,
                package.to_string(),
                Some(*arch),
                Some(version.to_string()),
            ),
            ["rpm", os, dist, package, arch, version, release] => (
                os,
                dist,
                package.to_string(),
                Some(*arch),
                Some(format!("{version}-{release}")),
            ),
            // node: node/NAME/VERSION, a scoped NAME as @scope%2Fname (decoded before this).
            ["node", scope, bare, last] if scope.starts_with('@') => {
                let wanted = (*last != "versions").then(|| last.to_string());
                ("node", "1", format!("{scope}/{bare}"), None, wanted)
            }
            // anyfile, python and node: FORMAT/NAME/VERSION, every file of that version.
            [os @ ("anyfile" | "python" | "node"), package, last] => {
                let wanted = (*last != "versions").then(|| last.to_string());
                (os, "1", package.to_string(), None, wanted)
            }
            // oci: oci/IMAGE/DIGEST, the image's name possibly of several segments.
            ["oci", image @ .., last] if !image.is_empty() => {
                let wanted = (*last != "versions").then(|| last.to_string());
                ("oci", "1", image.join("/"), None, wanted)
            }
            _ => return Err(ApiError::not_found(format!("no package at {path}"))),
        };
    let package = package.as_str();
    let distro = distros::by_path(os, dist)
        .ok_or_else(|| ApiError::not_found(format!("unknown distribution {os}/{dist}")))?;
    let mut versions =
        db::packages::by_name_and_arch(&app.db, repo.id, distro.id, package, arch).await?;
    // A deb distribution holds binary and source packages of the same name.
    versions.retain(|p| p.format == parts[0]);
    let base = auth::base_url(&app, &headers);
    let Some(last) = wanted else {
        let mut all: Vec<_> = versions
            .iter()
            .map(|p| present::package(&base, &repo, distro, p))
            .collect();
        present::add_image_details(&app, &versions, &mut all).await?;
        return Ok(Json(all).into_response());
    };
    // The version may be given with its epoch (`1:2.0-1`) or without it (`2.0-1`).
    let found = versions
        .iter()
        .find(|p| p.version == last || p.version.ends_with(&format!(":{last}")))
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "{package} {last} ({}) is not in {owner}/{name} {os}/{dist}",
                arch.unwrap_or("any architecture")
            ))
        })?;
    match stat {
        None => {
            let mut found = found.clone();
            if let Some(limit) = wait.filter(|_| !found.indexed) {
                found.indexed = until_indexed(&app, found.id, limit).await?;
            }
            let mut shown = [present::package(&base, &repo, distro, &found)];
            present::add_image_details(&app, std::slice::from_ref(&found), &mut shown).await?;
            let [shown] = shown;
            Ok(Json(shown).into_response())
        }
        Some(stat) => download_stats(&app, found.id, stat).await,
    }
}

/// `{"value": N}`, the newest downloads, or downloads per day keyed `YYYYMMDDZ`.
async fn download_stats(app: &App, package_id: i64, stat: &str) -> Result<Response, ApiError> {
    match stat {
        "count" => Ok(
            Json(json!({ "value": db::downloads::count(&app.db, package_id).await? }))
                .into_response(),
        ),
        "detail" => {
            let rows = db::downloads::detail(&app.db, package_id, 1000).await?;
            let rows: Vec<Value> = rows
                .iter()
                .map(|d| {
                    json!({
                        "downloaded_at": present::timestamp(d.downloaded_at),
                        "ip_address": d.ip_address,
                        "user_agent": d.user_agent,
                        "source": "repository",
                        "read_token": d.read_token,
                    })
                })
                .collect();
            Ok(Json(rows).into_response())
        }
        "series/daily" => {
            let format = time::macros::format_description!("[year][month][day]Z");
            let mut series: BTreeMap<String, i64> = BTreeMap::new();
            for (at, count) in db::downloads::times(&app.db, package_id).await? {
                let day = time::OffsetDateTime::from_unix_timestamp(at)
                    .ok()
                    .and_then(|t| t.format(&format).ok())
                    .unwrap_or_default();
                *series.entry(day).or_default() += count;
            }
            Ok(Json(series).into_response())
        }
        other => Err(ApiError::not_found(format!(
            "no download statistic {other}"
        ))),
    }
}
