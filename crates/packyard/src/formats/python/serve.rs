//! The simple repository API over HTTP: pages negotiated between JSON and HTML (`Vary:
//! Accept`), redirects to normalized names, files and their METADATA, and twine's uploads.

use std::net::SocketAddr;

use axum::extract::{FromRequest, Multipart, Request as HttpRequest};
use axum::http::header::{ACCEPT, LOCATION, VARY};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use packyard_formats::pypi::{self, PageType, PypiPath};

use super::{HTML, JSON};
use crate::app::App;
use crate::audit::{self, Actor, Event};
use crate::db::{self, generations, generations::Target, repos::Repo};
use crate::distros::{self, Distro};
use crate::http::auth;
use crate::http::error::ApiError;
use crate::http::repo::send::{self, File, Request};
use crate::ingest::{self, PushError};
use crate::storage::BlobKey;

/// The distribution every Python package belongs to (`python/1`).
pub fn distro() -> &'static Distro {
    distros::by_os_dist("python", "1").expect("python/1 is a distribution")
}

fn redirect(to: String) -> Response {
    let mut response = StatusCode::MOVED_PERMANENTLY.into_response();
    if let Ok(value) = HeaderValue::from_str(&to) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

/// The live file `filename` whose SHA-256 is `sha256`, as its URL names it.
async fn stored_file(
    app: &App,
    repo: &Repo,
    sha256: &str,
    filename: &str,
) -> Result<db::packages::Package, ApiError> {
    db::packages::by_filename(&app.db, repo.id, distro().id, filename)
        .await?
        .filter(|p| p.sha256 == sha256)
        .ok_or_else(|| ApiError::not_found(filename))
}

pub async fn read(
    app: &App,
    repo: &Repo,
    path: PypiPath,
    request: &Request<'_>,
) -> Result<Response, ApiError> {
    let base = format!("/{}/{}/pypi", repo.owner, repo.name);
    match path {
        PypiPath::Root { slash: false } => Ok(redirect(format!("{base}/simple/"))),
        PypiPath::Project { name, slash } if !slash || pypi::normalize_name(&name) != name => Ok(
            redirect(format!("{base}/simple/{}/", pypi::normalize_name(&name))),
        ),
        PypiPath::Root { .. } => page(app, repo, "", request).await,
        PypiPath::Project { name, .. } => page(app, repo, &name, request).await,
        PypiPath::File { sha256, filename } => {
            let package = stored_file(app, repo, &sha256, &filename).await?;
            let content_type = if filename.ends_with(".whl") || filename.ends_with(".zip") {
                "application/zip"
            } else {
                "application/gzip"
            };
            let file = File::blob(
                BlobKey::from_sha256(&sha256)?,
                package.size as u64,
                content_type,
            )
            .immutable()
            .modified_at(package.created_at)
            .counting(package.id, "python");
            send::send(app, request, file).await
        }
        PypiPath::Metadata { sha256, filename } => {
            let package = stored_file(app, repo, &sha256, &filename).await?;
            let metadata = db::packages::entries(&app.db, package.id)
                .await?
                .into_iter()
                .find(|(part, _)| part == "metadata")
                .ok_or_else(|| ApiError::not_found(format!("{filename}.metadata")))?;
            let file = File::dynamic("text/plain; charset=utf-8", metadata.1.into()).immutable();
            send::send(app, request, file).await
        }
        PypiPath::Upload => Err(ApiError::not_found("uploads are POSTed here")),
    }
}

/// A project page, or the root with an empty `name`, in the representation asked for.
async fn page(
    app: &App,
    repo: &Repo,
    name: &str,
    request: &Request<'_>,
) -> Result<Response, ApiError> {
    let accept = request.headers.get(ACCEPT).and_then(|v| v.to_str().ok());
    let Some(page_type) = pypi::negotiate(accept) else {
        let mut response = (
            StatusCode::NOT_ACCEPTABLE,
            "acceptable: application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html, text/html\n",
        )
            .into_response();
        response
            .headers_mut()
            .insert(VARY, HeaderValue::from_static("Accept"));
        return Ok(response);
    };
    let target = Target {
        repository_id: repo.id,
        distro_version_id: distro().id,
        arch: name.to_owned(),
    };
    let document = if page_type == PageType::Json {
        JSON
    } else {
        HTML
    };
    let load = generations::current_document(&app.db, &target, document);
    let found = app.cache.document(&target, document, load).await?;
    let response = match found {
        Some(document) => {
            let file = File::document(page_type.content_type(), &document);
            send::send(app, request, file).await?
        }
        // A repository without Python packages has an empty root page.
        None if name.is_empty() => {
            let body = match page_type {
                PageType::Json => pypi::json_root_page(&[]),
                _ => pypi::html_root_page(&[]),
            };
            let file = File::dynamic(page_type.content_type(), body.into());
            send::send(app, request, file).await?
        }
        None => return Err(ApiError::not_found(format!("no project {name}"))),
    };
    let mut response = response;
    response
        .headers_mut()
        .insert(VARY, HeaderValue::from_static("Accept"));
    Ok(response)
}

/// twine's `file_upload`: the multipart form of the legacy upload API. 200 on success (and
/// for the same file again), 409 "File already exists" for other bytes under a taken name,
/// 400 naming the problem otherwise.
pub async fn upload(
    app: &App,
    client: SocketAddr,
    owner: &str,
    name: &str,
    request: HttpRequest,
) -> Result<Response, ApiError> {
    let headers = request.headers().clone();
    // twine sends `__token__` and the token, or the token as the user (`auth::basic_token`).
    let user = auth::require_user(app, &headers, client.ip()).await?;
    let repo = auth::writable_repo(app, &user, owner, name).await?;
    let mut multipart = Multipart::from_request(request, app)
        .await
        .map_err(|e| ApiError::BadRequest(format!("not a multipart upload: {e}")))?;
    let bad_body = |e: axum::extract::multipart::MultipartError| {
        ApiError::BadRequest(format!("invalid multipart body: {e}"))
    };
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut staged = None;
    while let Some(field) = multipart.next_field().await.map_err(bad_body)? {
        let field_name = field.name().unwrap_or_default().to_owned();
        if field_name == "content" {
            let filename = field.file_name().unwrap_or_default().to_owned();
            staged = Some(crate::http::api::packages::push::stage(app, field, filename).await?);
        } else if fields.len() < 200 {
            let value = field.text().await.map_err(bad_body)?;
            fields.push((field_name, value));
        }
    }
    let field = |key: &str| fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.trim());
    if field(":action").is_some_and(|a| a != "file_upload") {
        return Err(ApiError::BadRequest(format!(
            "only :action=file_upload is supported, not {:?}",
            field(":action").unwrap_or_default()
        )));
    }
    let (staged, _temp) =
        staged.ok_or_else(|| ApiError::BadRequest("the upload has no content".into()))?;
    // What the form says must be what the file is; ingest checks the file against its own
    // metadata, so the name and version are checked against the file name here.
    let file =
        pypi::parse_file_name(&staged.filename).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if let Some(form_name) = field("name")
        && pypi::normalize_name(form_name) != pypi::normalize_name(&file.name)
    {
        return Err(ApiError::BadRequest(format!(
            "the form names {form_name}, the file {}",
            staged.filename
        )));
    }
    if let Some(form_version) = field("version") {
        let same = pypi::normalize_version(form_version)
            .ok()
            .zip(pypi::normalize_version(&file.version).ok())
            .is_some_and(|(a, b)| a == b);
        if !same {
            return Err(ApiError::BadRequest(format!(
                "the form's version {form_version} is not the file's ({})",
                staged.filename
            )));
        }
    }
    if let Some(digest) = field("sha256_digest").filter(|d| !d.is_empty())
        && !digest.eq_ignore_ascii_case(&staged.digests.sha256)
    {
        return Err(ApiError::BadRequest(format!(
            "sha256_digest {digest} is not the SHA-256 of the uploaded file ({})",
            staged.digests.sha256
        )));
    }
    if let Some(digest) = field("md5_digest").filter(|d| !d.is_empty())
        && !digest.eq_ignore_ascii_case(&staged.digests.md5)
    {
        return Err(ApiError::BadRequest(format!(
            "md5_digest {digest} is not the MD5 of the uploaded file"
        )));
    }
    let pushed = ingest::push(app, &repo, distro(), &staged).await;
    let event = Event::new(Actor::User(user.name.clone()), "package.push")
        .ip(client.ip())
        .repository(owner, name)
        .target(format!("python/1/{}", staged.filename))
        .details(serde_json::json!({ "sha256": staged.digests.sha256, "via": "twine" }))
        .result(&pushed, !matches!(pushed, Err(PushError::Internal(_))));
    audit::record(&app.db, event).await;
    match pushed {
        Ok(_) => Ok((StatusCode::OK, "OK\n").into_response()),
        Err(PushError::Conflict(m)) => {
            Ok((StatusCode::CONFLICT, format!("File already exists: {m}\n")).into_response())
        }
        Err(PushError::BadPackage(m) | PushError::BadFilename(m)) => Err(ApiError::BadRequest(m)),
        Err(PushError::Internal(e)) => Err(ApiError::Internal(e)),
    }
}
