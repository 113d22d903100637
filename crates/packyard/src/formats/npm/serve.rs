//! The npm registry over HTTP: packuments (abbreviated when npm asks for
//! `application/vnd.npm.install-v1+json`), tarballs, dist-tags, publish, deprecate and
//! unpublish (npm's `PUT`s of an edited packument and `DELETE`s), login, whoami and ping.

use std::net::SocketAddr;

use axum::Json;
use axum::body::Body;
use axum::http::header::ACCEPT;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use bytes::Bytes;
use packyard_formats::npm::{self, NpmPath};
use serde_json::{Value, json};

use super::{ABBREVIATED, FULL, TARBALL_PREFIX};
use crate::app::App;
use crate::audit::{self, Actor, Event};
use crate::db::{
    self, generations, generations::Target, packages::Package, repos::Repo, users::User,
};
use crate::distros::{self, Distro};
use crate::formats::PackageFormat;
use crate::http::auth;
use crate::http::error::ApiError;
use crate::http::repo::send::{self, File, Request};
use crate::ingest::{self, PushError};
use crate::storage::BlobKey;

/// The distribution every npm package belongs to (`node/1`).
pub fn distro() -> &'static Distro {
    distros::by_os_dist("node", "1").expect("node/1 is a distribution")
}

fn target(repo: &Repo, name: &str) -> Target {
    Target {
        repository_id: repo.id,
        distro_version_id: distro().id,
        arch: name.to_owned(),
    }
}

async fn live_versions(app: &App, repo: &Repo, name: &str) -> Result<Vec<Package>, ApiError> {
    Ok(db::packages::by_name_and_arch(&app.db, repo.id, distro().id, name, None).await?)
}

pub async fn read(
    app: &App,
    repo: &Repo,
    path: NpmPath,
    request: &Request<'_>,
) -> Result<Response, ApiError> {
    match path {
        NpmPath::Package { name } => {
            let accept = request
                .headers
                .get(ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let (document, content_type) = if accept.contains("application/vnd.npm.install-v1+json")
            {
                (ABBREVIATED, "application/vnd.npm.install-v1+json")
            } else {
                (FULL, "application/json")
            };
            let target = target(repo, &name);
            let load = generations::current_document(&app.db, &target, document);
            let stored = app
                .cache
                .document(&target, document, load)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("no package {name}")))?;
            let text = std::str::from_utf8(&stored.body).map_err(anyhow::Error::from)?;
            let base = auth::base_url(app, request.headers);
            let registry = format!("{base}/{}/{}/npm/", repo.owner, repo.name);
            let body = text.replace(
                &format!("\"tarball\":\"{TARBALL_PREFIX}"),
                &format!("\"tarball\":\"{registry}"),
            );
            send::send(app, request, File::dynamic(content_type, body.into())).await
        }
        NpmPath::Tarball { name, filename } => {
            let stored = match name.split_once('/') {
                Some((scope, _)) => format!("{scope}/{filename}"),
                None => filename.clone(),
            };
            let package = db::packages::by_filename(&app.db, repo.id, distro().id, &stored)
                .await?
                .filter(|p| p.name == name)
                .ok_or_else(|| ApiError::not_found(filename.clone()))?;
            let file = File::blob(
                BlobKey::from_sha256(&package.sha256)?,
                package.size as u64,
                "application/octet-stream",
            )
            .immutable()
            .modified_at(package.created_at)
            .counting(package.id, "node");
            send::send(app, request, file).await
        }
        NpmPath::DistTags { name, tag: None } => {
            let tags = dist_tags(app, repo, &name).await?;
            Ok(Json(tags).into_response())
        }
        NpmPath::Ping => Ok(Json(json!({})).into_response()),
        _ => Err(ApiError::not_found("not found")),
    }
}

/// The dist-tags as the packument shows them.
async fn dist_tags(app: &App, repo: &Repo, name: &str) -> Result<Value, ApiError> {
    let versions = live_versions(app, repo, name).await?;
    if versions.is_empty() {
        return Err(ApiError::not_found(format!("no package {name}")));
    }
    let mut parsed: Vec<_> = versions
        .iter()
        .filter_map(|p| Some((npm::normalize_version(&p.version).ok()?, p.version.clone())))
        .collect();
    parsed.sort_by(|a, b| a.0.cmp(&b.0));
    let stored = db::metadata::read(&app.db, &target(repo, name), db::metadata::TAG).await?;
    Ok(json!(super::effective_tags(stored, &parsed)))
}

/// Requests that change something, and the ones that need the caller: whoami, login, audit.
#[allow(clippy::too_many_arguments)]
pub async fn write(
    app: &App,
    client: SocketAddr,
    headers: &HeaderMap,
    method: &Method,
    owner: &str,
    repo_name: &str,
    path: NpmPath,
    body: Body,
) -> Result<Response, ApiError> {
    let limit = usize::try_from(app.config.max_upload_bytes.saturating_mul(3) / 2 + (1 << 20))
        .unwrap_or(usize::MAX);
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::PayloadTooLarge("the request is larger than the upload limit allows".into())
    })?;
    match (method.clone(), &path) {
        (Method::PUT, NpmPath::Login { user }) => return login(app, client, user, &bytes).await,
        (Method::POST, NpmPath::Audit) => return Ok(Json(json!({})).into_response()),
        // `/-/v1/login` among them: npm falls back to the couch login on a 404.
        (_, NpmPath::Other) => return Err(ApiError::not_found("no such registry endpoint")),
        _ => {}
    }
    let user = auth::require_user(app, headers, client.ip()).await?;
    let path = match method.clone() {
        Method::GET => return whoami(&user),
        _ => path_for_write(method, path)?,
    };
    let repo = auth::writable_repo(app, &user, owner, repo_name).await?;
    match path {
        Write::Put { name } => {
            let body: Value = serde_json::from_slice(&bytes)
                .map_err(|e| ApiError::BadRequest(format!("the body is not JSON: {e}")))?;
            let has_attachments = body["_attachments"]
                .as_object()
                .is_some_and(|a| !a.is_empty());
            if has_attachments {
                publish(app, client, &user, &repo, &name, &body).await
            } else {
                update(app, &user, client, &repo, &name, &body).await
            }
        }
        Write::UnpublishAll { name } => {
            let versions = live_versions(app, &repo, &name).await?;
            yank(app, &user, client, &repo, &name, &versions).await?;
            Ok(Json(json!({ "ok": true })).into_response())
        }
        Write::DeleteTarball { name, filename } => {
            let versions: Vec<Package> = live_versions(app, &repo, &name)
                .await?
                .into_iter()
                .filter(|p| p.filename.rsplit('/').next() == Some(filename.as_str()))
                .collect();
            yank(app, &user, client, &repo, &name, &versions).await?;
            Ok(Json(json!({ "ok": true })).into_response())
        }
        Write::SetTag { name, tag } => {
            let version: String = serde_json::from_slice(&bytes).map_err(|_| {
                ApiError::BadRequest("the body is a JSON string: the version".into())
            })?;
            if npm::is_semver_like(&tag) {
                return Err(ApiError::BadRequest(format!(
                    "{tag} looks like a version range; a tag must not"
                )));
            }
            let version = npm::normalize_version(&version)
                .map_err(|e| ApiError::BadRequest(e.to_string()))?
                .to_string();
            if !live_versions(app, &repo, &name)
                .await?
                .iter()
                .any(|p| p.version == version)
            {
                return Err(ApiError::not_found(format!(
                    "{name}@{version} is not published"
                )));
            }
            let mut tx = app.db.begin_write().await?;
            db::metadata::set(
                &mut tx,
                &target(&repo, &name),
                db::metadata::TAG,
                &tag,
                &version,
            )
            .await?;
            republish(app, tx, &repo, &name).await?;
            Ok((StatusCode::CREATED, Json(json!({ "ok": true }))).into_response())
        }
        Write::RemoveTag { name, tag } => {
            if tag == "latest" {
                return Err(ApiError::BadRequest(
                    "the latest tag cannot be removed".into(),
                ));
            }
            let mut tx = app.db.begin_write().await?;
            if !db::metadata::remove(&mut tx, &target(&repo, &name), db::metadata::TAG, &tag)
                .await?
            {
                return Err(ApiError::not_found(format!("{name} has no tag {tag}")));
            }
            republish(app, tx, &repo, &name).await?;
            Ok(Json(json!({ "ok": true })).into_response())
        }
    }
}

enum Write {
    Put { name: String },
    UnpublishAll { name: String },
    DeleteTarball { name: String, filename: String },
    SetTag { name: String, tag: String },
    RemoveTag { name: String, tag: String },
}

fn path_for_write(method: &Method, path: NpmPath) -> Result<Write, ApiError> {
    Ok(match (method.clone(), path) {
        (Method::PUT, NpmPath::Package { name } | NpmPath::Revision { name }) => {
            Write::Put { name }
        }
        (Method::DELETE, NpmPath::Revision { name }) => Write::UnpublishAll { name },
        (Method::DELETE, NpmPath::Tarball { name, filename }) => {
            Write::DeleteTarball { name, filename }
        }
        (
            Method::PUT,
            NpmPath::DistTags {
                name,
                tag: Some(tag),
            },
        ) => Write::SetTag { name, tag },
        (
            Method::DELETE,
            NpmPath::DistTags {
                name,
                tag: Some(tag),
            },
        ) => Write::RemoveTag { name, tag },
        _ => return Err(ApiError::not_found("no such registry endpoint")),
    })
}

fn whoami(user: &User) -> Result<Response, ApiError> {
    Ok(Json(json!({ "username": user.name })).into_response())
}

/// `npm login` (the couch flavour): name or email and password for a new API token.
async fn login(
    app: &App,
    client: SocketAddr,
    user: &str,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let body: Value = serde_json::from_slice(body)
        .map_err(|_| ApiError::BadRequest("the body is not JSON".into()))?;
    let password = body["password"].as_str().unwrap_or_default();
    if app.auth_failures.blocked(client.ip()) {
        return Err(ApiError::TooManyRequests);
    }
    let login = body["name"].as_str().unwrap_or(user);
    let Some(found) = db::users::by_login(&app.db, login, password).await? else {
        app.auth_failures.record(client.ip());
        return Err(ApiError::Unauthenticated);
    };
    let token = db::users::create_token(&app.db, found.id).await?;
    audit::record(
        &app.db,
        Event::new(Actor::User(found.name.clone()), "user.login").ip(client.ip()),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({ "ok": true, "id": format!("org.couchdb.user:{}", found.name), "token": token }),
        ),
    )
        .into_response())
}

/// Queues the package's packument after a change to its tags or deprecations.
async fn republish(app: &App, mut tx: db::Tx, repo: &Repo, name: &str) -> Result<(), ApiError> {
    db::jobs::enqueue(
        &mut tx,
        PackageFormat::Node.publish_job(),
        &target(repo, name),
    )
    .await?;
    tx.commit().await?;
    app.queued();
    Ok(())
}

async fn yank(
    app: &App,
    user: &User,
    client: SocketAddr,
    repo: &Repo,
    name: &str,
    versions: &[Package],
) -> Result<(), ApiError> {
    let mut tx = app.db.begin_write().await?;
    for package in versions {
        db::packages::mark_deleted(&mut tx, package.id).await?;
        db::metadata::remove(
            &mut tx,
            &target(repo, name),
            db::metadata::DEPRECATED,
            &package.version,
        )
        .await?;
    }
    republish(app, tx, repo, name).await?;
    for package in versions {
        let event = Event::new(Actor::User(user.name.clone()), "package.yank")
            .ip(client.ip())
            .repository(&repo.owner, &repo.name)
            .target(format!("node/1/{}", package.filename))
            .details(json!({ "name": package.name, "version": package.version, "sha256": package.sha256 }));
        audit::record(&app.db, event).await;
    }
    Ok(())
}

/// `npm publish`: one tarball in `_attachments`, checked against `dist.shasum` and
/// `dist.integrity` and its own package.json; its dist-tags set. 403 for a version that is
/// already published, as the public registry answers.
async fn publish(
    app: &App,
    client: SocketAddr,
    user: &User,
    repo: &Repo,
    name: &str,
    body: &Value,
) -> Result<Response, ApiError> {
    let bad = |m: String| ApiError::BadRequest(m);
    npm::validate_name(name).map_err(|e| bad(e.to_string()))?;
    let attachments = body["_attachments"]
        .as_object()
        .expect("checked by the caller");
    let [(attachment_name, attachment)] = attachments.iter().collect::<Vec<_>>()[..] else {
        return Err(bad("a publish carries exactly one tarball".into()));
    };
    let data = base64::engine::general_purpose::STANDARD
        .decode(attachment["data"].as_str().unwrap_or_default())
        .map_err(|_| bad(format!("{attachment_name} is not base64")))?;
    let versions = body["versions"]
        .as_object()
        .ok_or_else(|| bad("the body has no versions".into()))?;
    let [(version, manifest)] = versions.iter().collect::<Vec<_>>()[..] else {
        return Err(bad("a publish carries exactly one version".into()));
    };
    let sha1 = packyard_formats::digest::FileDigests::of(&data);
    if let Some(shasum) = manifest["dist"]["shasum"].as_str()
        && !shasum.eq_ignore_ascii_case(&sha1.sha1)
    {
        return Err(bad(format!(
            "dist.shasum {shasum} is not the tarball's SHA-1 ({})",
            sha1.sha1
        )));
    }
    if let Some(integrity) = manifest["dist"]["integrity"].as_str()
        && let Some(b64) = integrity.strip_prefix("sha512-")
        && base64::engine::general_purpose::STANDARD.decode(b64).ok()
            != hex::decode(&sha1.sha512).ok()
    {
        return Err(bad(format!(
            "dist.integrity {integrity} is not the tarball's"
        )));
    }
    // The tarball's own package.json must be the package and version published.
    let own = npm::read_tarball_manifest(&data[..]).map_err(|e| bad(e.to_string()))?;
    let own_version = own["version"]
        .as_str()
        .and_then(|v| npm::normalize_version(v).ok());
    let claimed = npm::normalize_version(version).map_err(|e| bad(e.to_string()))?;
    if own["name"].as_str() != Some(name) || own_version.as_ref() != Some(&claimed) {
        return Err(bad(format!(
            "the tarball's package.json is {}@{}, not {name}@{version}",
            own["name"].as_str().unwrap_or("?"),
            own["version"].as_str().unwrap_or("?")
        )));
    }
    let refused = || {
        ApiError::Forbidden(format!(
            "You cannot publish over the previously published versions: {claimed}"
        ))
    };
    let version = claimed.to_string();
    if live_versions(app, repo, name)
        .await?
        .iter()
        .any(|p| p.version == version)
    {
        return Err(refused());
    }
    // The tags go first, so the one publish the push queues lists them: `npm publish` sends
    // `latest` unless given --tag, and packagecloud moves latest on every publish without
    // one, whatever the version. A tag naming a version that is not published is not shown.
    let before = db::metadata::read(&app.db, &target(repo, name), db::metadata::TAG).await?;
    let tags: Vec<&String> = body["dist-tags"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, tagged)| {
            tagged
                .as_str()
                .and_then(|v| npm::normalize_version(v).ok())
                .as_ref()
                == Some(&claimed)
        })
        .map(|(tag, _)| tag)
        .collect();
    let mut tx = app.db.begin_write().await?;
    for tag in &tags {
        db::metadata::set(
            &mut tx,
            &target(repo, name),
            db::metadata::TAG,
            tag,
            &version,
        )
        .await?;
    }
    tx.commit().await?;
    let stream = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from(data))]);
    // npm names the attachment after the scoped name (`@acme/demo-1.0.0.tgz`); the file is
    // stored under its own name anyway.
    let upload_name = format!("{}-{claimed}.tgz", npm::bare_name(name));
    let (staged, _temp) = crate::http::api::packages::push::stage(app, stream, upload_name).await?;
    let pushed = ingest::push(app, repo, distro(), &staged).await;
    let event = Event::new(Actor::User(user.name.clone()), "package.push")
        .ip(client.ip())
        .repository(&repo.owner, &repo.name)
        .target(format!("node/1/{name}@{version}"))
        .details(json!({ "sha256": staged.digests.sha256, "via": "npm" }))
        .result(&pushed, !matches!(pushed, Err(PushError::Internal(_))));
    audit::record(&app.db, event).await;
    if !matches!(pushed, Ok((_, true))) {
        // Nothing was published: the tags are put back as they were.
        let mut tx = app.db.begin_write().await?;
        for tag in &tags {
            match before.get(*tag) {
                Some(previous) => {
                    db::metadata::set(
                        &mut tx,
                        &target(repo, name),
                        db::metadata::TAG,
                        tag,
                        previous,
                    )
                    .await?
                }
                None => {
                    db::metadata::remove(&mut tx, &target(repo, name), db::metadata::TAG, tag)
                        .await?;
                }
            }
        }
        tx.commit().await?;
    }
    match pushed {
        Ok((_, true)) => {
            Ok((StatusCode::CREATED, Json(json!({ "ok": true, "id": name }))).into_response())
        }
        Ok((_, false)) | Err(PushError::Conflict(_)) => Err(refused()),
        Err(PushError::BadPackage(m) | PushError::BadFilename(m)) => Err(bad(m)),
        Err(PushError::Internal(e)) => Err(ApiError::Internal(e)),
    }
}

/// A `PUT` of an edited packument (`npm deprecate`, `npm unpublish NAME@VERSION`): versions
/// it leaves out are unpublished, `deprecated` messages set or cleared, dist-tags replaced.
async fn update(
    app: &App,
    user: &User,
    client: SocketAddr,
    repo: &Repo,
    name: &str,
    body: &Value,
) -> Result<Response, ApiError> {
    let live = live_versions(app, repo, name).await?;
    if live.is_empty() {
        return Err(ApiError::not_found(format!("no package {name}")));
    }
    let versions = body["versions"].as_object().cloned().unwrap_or_default();
    let gone: Vec<Package> = live
        .iter()
        .filter(|p| !versions.contains_key(&p.version))
        .cloned()
        .collect();
    let mut tx = app.db.begin_write().await?;
    for (version, manifest) in &versions {
        if !live.iter().any(|p| &p.version == version) {
            continue;
        }
        match manifest["deprecated"].as_str().filter(|m| !m.is_empty()) {
            Some(message) => {
                db::metadata::set(
                    &mut tx,
                    &target(repo, name),
                    db::metadata::DEPRECATED,
                    version,
                    message,
                )
                .await?
            }
            None => {
                db::metadata::remove(
                    &mut tx,
                    &target(repo, name),
                    db::metadata::DEPRECATED,
                    version,
                )
                .await?;
            }
        }
    }
    if let Some(tags) = body["dist-tags"].as_object() {
        for (tag, _) in db::metadata::read(&app.db, &target(repo, name), db::metadata::TAG).await? {
            if !tags.contains_key(&tag) {
                db::metadata::remove(&mut tx, &target(repo, name), db::metadata::TAG, &tag).await?;
            }
        }
        for (tag, version) in tags {
            if let Some(version) = version.as_str().filter(|v| versions.contains_key(*v)) {
                db::metadata::set(
                    &mut tx,
                    &target(repo, name),
                    db::metadata::TAG,
                    tag,
                    version,
                )
                .await?;
            }
        }
    }
    republish(app, tx, repo, name).await?;
    if !gone.is_empty() {
        yank(app, user, client, repo, name, &gone).await?;
    }
    Ok((StatusCode::OK, Json(json!({ "ok": true }))).into_response())
}
