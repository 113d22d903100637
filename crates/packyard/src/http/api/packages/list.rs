//! Package listings, paginated as packagecloud's are (`?page=`, `?per_page=`; `Link`, `Total`,
//! `Per-Page`, `Max-Per-Page` headers):
//! `GET .../packages.json` (every package), `GET .../packages/TYPE[/OS[/DIST[/ARCH]]].json`
//! (grouped by name, distribution and architecture), `GET .../search.json?q=&filter=&dist=&arch=`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::App;
use crate::db::{self, packages::Filter, repos::Repo};
use crate::distros::{self, DISTROS, PackageFormat};
use crate::http::api::page;
use crate::http::error::ApiError;
use crate::http::{auth, present};

#[derive(Deserialize, Default)]
pub struct ListQuery {
    page: Option<i64>,
    per_page: Option<i64>,
    q: Option<String>,
    filter: Option<String>,
    dist: Option<String>,
    arch: Option<String>,
}

/// The distribution versions `os` or `os/dist` names, of `format` when given.
fn distro_ids(spec: &str, format: Option<PackageFormat>) -> Vec<i64> {
    let (os, dist) = match spec.split_once('/') {
        Some((os, dist)) => (os, Some(dist)),
        None => (spec, None),
    };
    DISTROS
        .iter()
        .filter(|d| d.os == os && format.is_none_or(|f| d.format == f))
        .filter(|d| {
            dist.is_none_or(|dist| distros::by_path(os, dist).is_some_and(|found| found.id == d.id))
        })
        .map(|d| d.id)
        .collect()
}

async fn readable(
    app: &App,
    headers: &HeaderMap,
    client: SocketAddr,
    owner: &str,
    name: &str,
) -> Result<Arc<Repo>, ApiError> {
    let user = auth::optional_user(app, headers, client.ip()).await?;
    auth::readable_repo(app, user.as_ref(), owner, name).await
}

pub async fn all(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name)): Path<(String, String)>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let repo = readable(&app, &headers, client, &owner, &name).await?;
    list_response(
        &app,
        &headers,
        &repo,
        &Filter::default(),
        &query,
        "packages.json",
    )
    .await
}

pub async fn search(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name)): Path<(String, String)>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let repo = readable(&app, &headers, client, &owner, &name).await?;
    let format = match query.filter.as_deref() {
        None | Some("") | Some("all") => None,
        // Types this server does not host yet match nothing.
        Some(filter) => Some(
            PackageFormat::ALL
                .iter()
                .find(|f| f.search_filter() == filter)
                .map_or("none", |f| f.name()),
        ),
    };
    let filter = Filter {
        format: format.map(str::to_owned),
        distro_version_ids: query
            .dist
            .as_deref()
            .filter(|d| !d.is_empty())
            .map(|d| distro_ids(d, None)),
        architecture: query.arch.clone().filter(|a| !a.is_empty()),
        filename: query.q.clone().filter(|q| !q.is_empty()),
        indexed: None,
    };
    list_response(&app, &headers, &repo, &filter, &query, "search.json").await
}

async fn list_response(
    app: &App,
    headers: &HeaderMap,
    repo: &Repo,
    filter: &Filter,
    query: &ListQuery,
    endpoint: &str,
) -> Result<Response, ApiError> {
    let (page, per_page) = page::number_and_size(query.page, query.per_page);
    let (packages, total) =
        db::packages::list(&app.db, repo.id, filter, (page - 1) * per_page, per_page).await?;
    let base = auth::base_url(app, headers);
    let packages: Vec<_> = packages
        .into_iter()
        .filter(|p| distros::by_id(p.distro_version_id).is_some())
        .collect();
    let mut body: Vec<packyard_api::Package> = packages
        .iter()
        .filter_map(|p| {
            Some(present::package(
                &base,
                repo,
                distros::by_id(p.distro_version_id)?,
                p,
            ))
        })
        .collect();
    present::add_image_details(app, &packages, &mut body).await?;
    let path = format!("/api/v1/repos/{}/{}/{endpoint}", repo.owner, repo.name);
    Ok(page::paginated(
        serde_json::to_value(body).map_err(anyhow::Error::from)?,
        &base,
        &path,
        page,
        per_page,
        total,
    ))
}

/// `packages/TYPE[/OS[/DIST[/ARCH]]].json`: one entry per name, distribution and architecture.
pub async fn filtered(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name, spec)): Path<(String, String, String)>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let repo = readable(&app, &headers, client, &owner, &name).await?;
    let spec = spec.strip_suffix(".json").unwrap_or(&spec);
    let parts: Vec<&str> = spec.split('/').collect();
    let format = PackageFormat::from_name(parts[0])
        .ok_or_else(|| ApiError::not_found(format!("no package type {}", parts[0])))?;
    let filter = Filter {
        format: Some(parts[0].to_owned()),
        distro_version_ids: match parts.get(1..3) {
            Some([os, dist]) => Some(distro_ids(&format!("{os}/{dist}"), Some(format))),
            _ => parts.get(1).map(|os| distro_ids(os, Some(format))),
        },
        architecture: parts.get(3).map(|a| (*a).to_owned()),
        filename: None,
        indexed: None,
    };
    // Every matching package, grouped; the page applies to the groups.
    let (packages, _) = db::packages::list(&app.db, repo.id, &filter, 0, i64::MAX / 2).await?;
    let mut groups: BTreeMap<(String, i64, String), i64> = BTreeMap::new();
    for p in &packages {
        *groups
            .entry((p.name.clone(), p.distro_version_id, p.architecture.clone()))
            .or_default() += 1;
    }
    let base = auth::base_url(&app, &headers);
    let (page, per_page) = page::number_and_size(query.page, query.per_page);
    let total = groups.len() as i64;
    let fq = format!("{}/{}", repo.owner, repo.name);
    let body: Vec<Value> = groups
        .into_iter()
        .skip(((page - 1) * per_page) as usize)
        .take(per_page as usize)
        .filter_map(|((package, distro_id, arch), count)| {
            let distro = distros::by_id(distro_id)?;
            Some(json!({
                "name": package,
                "versions_count": count,
                "versions_url": format!("/api/v1/repos/{fq}/package/{}/{}/{}/{package}/{arch}/versions.json", parts[0], distro.os, distro.dist),
                "repository_url": format!("/api/v1/repos/{fq}"),
                "repository_html_url": format!("/{fq}"),
            }))
        })
        .collect();
    let path = format!("/api/v1/repos/{fq}/packages/{spec}.json");
    Ok(page::paginated(
        Value::Array(body),
        &base,
        &path,
        page,
        per_page,
        total,
    ))
}
