//! `POST /api/v1/repos/OWNER/REPO/packages.json`, multipart with `package[package_file]` and
//! `package[distro_version_id]`.
//!
//! The file is streamed to a temporary file by a blocking task that hashes it as it writes
//! (MD5, SHA-1, SHA-256, SHA-512 in one pass, split over two threads), so memory stays flat
//! whatever the file's size.

use std::io::Write;

use std::net::{IpAddr, SocketAddr};

use axum::Json;
use axum::extract::{ConnectInfo, Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use futures::StreamExt;
use packyard_api as api;
use packyard_formats::digest::MultiHasher;
use tempfile::TempPath;
use tokio::sync::mpsc;

use serde_json::json;

use crate::app::App;
use crate::audit::{self, Actor, Event};
use crate::db::{packages::Package, repos::Repo, users::User};
use crate::distros::{self, Distro};
use crate::http::api::packages::wait::{WaitQuery, until_indexed};
use crate::http::error::ApiError;
use crate::http::{auth, present};
use crate::ingest::{self, PushError, Staged};

pub async fn push(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name)): Path<(String, String)>,
    Query(wait): Query<WaitQuery>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Result<(StatusCode, Json<api::Package>), ApiError> {
    let started = std::time::Instant::now();
    let user = auth::require_user(&app, &headers, client.ip()).await?;
    let repo = auth::writable_repo(&app, &user, &owner, &name).await?;
    let wait = wait.limit()?;
    let auth_ms = started.elapsed().as_secs_f64() * 1000.0;
    let form = read_form(&app, multipart).await?;
    let upload_ms = started.elapsed().as_secs_f64() * 1000.0 - auth_ms;

    let (mut staged, _temp) = form
        .file
        .ok_or_else(|| ApiError::invalid("package_file", "is missing"))?;
    let (source_files, _temps): (Vec<_>, Vec<_>) = form.source_files.into_iter().unzip();
    staged.source_files = source_files;
    let distro_id = form
        .distro_version_id
        .ok_or_else(|| ApiError::invalid("distro_version_id", "is missing"))?;
    let distro = distro_id
        .trim()
        .parse()
        .ok()
        .and_then(distros::by_id)
        .ok_or_else(|| ApiError::invalid("distro_version_id", format!("{distro_id:?} is not a known distribution version id; see /api/v1/distributions.json")))?;
    let stored_at = std::time::Instant::now();
    let (mut package, _is_new) =
        push_staged(&app, &user, client.ip(), &repo, distro, &staged).await?;
    // Where a push's time goes, beside the ingest's own line ("pushed package").
    tracing::info!(package = %package.filename, auth_ms, upload_ms,
        store_ms = stored_at.elapsed().as_secs_f64() * 1000.0, "push request");
    if let Some(limit) = wait.filter(|_| !package.indexed) {
        package.indexed = until_indexed(&app, package.id, limit).await?;
    }
    let base = auth::base_url(&app, &headers);
    Ok((
        StatusCode::CREATED,
        Json(present::package(&base, &repo, distro, &package)),
    ))
}

/// Stores a staged package in `repo` for `distro` as `user` pushed it, with its metric and
/// audit event; the package and whether it is new (false for an identical re-push).
pub async fn push_staged(
    app: &App,
    user: &User,
    ip: IpAddr,
    repo: &Repo,
    distro: &Distro,
    staged: &Staged,
) -> Result<(Package, bool), ApiError> {
    let event = Event::new(Actor::User(user.name.clone()), "package.push")
        .ip(ip)
        .repository(&repo.owner, &repo.name)
        .target(format!("{}/{}/{}", distro.os, distro.dist, staged.filename));
    // A new package's event commits with it; every other outcome is recorded here.
    let pushed = ingest::push_recorded(app, repo, distro, staged, Some(&event)).await;
    let details = match &pushed {
        Ok((package, is_new)) => ingest::package_details(package, *is_new),
        Err(_) => json!({ "filename": staged.filename }),
    };
    let refused = !matches!(pushed, Err(PushError::Internal(_)));
    let result = match &pushed {
        Ok((_, true)) => "created",
        Ok((_, false)) => "unchanged",
        Err(_) if refused => "rejected",
        Err(_) => "failed",
    };
    let format = distro.format.name();
    metrics::counter!("packyard_pushes_total", "format" => format, "result" => result).increment(1);
    if !matches!(pushed, Ok((_, true))) {
        audit::record(&app.db, event.details(details).result(&pushed, refused)).await;
    }
    pushed.map_err(|e| match e {
        PushError::BadPackage(m) => ApiError::invalid("package_file", m),
        PushError::BadFilename(m) => ApiError::invalid("filename", m),
        PushError::Conflict(m) => ApiError::invalid("filename", m),
        PushError::Internal(e) => ApiError::from(e),
    })
}

/// The most files one push may bring besides the package (a `.dsc` names a few).
const MAX_SOURCE_FILES: usize = 64;

/// `POST /api/v1/repos/OWNER/REPO/packages/contents.json` with a `.dsc` as
/// `package[package_file]`: the files it names, which `package_cloud` checks against the
/// local files before it pushes them as `package[source_files][]`.
pub async fn contents(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Result<Json<serde_json::Value>, ApiError> {
    let user = auth::require_user(&app, &headers, client.ip()).await?;
    auth::writable_repo(&app, &user, &owner, &name).await?;
    let form = read_form(&app, multipart).await?;
    let (staged, _temp) = form
        .file
        .ok_or_else(|| ApiError::invalid("package_file", "is missing"))?;
    let dsc = crate::formats::dsc::read(&staged)
        .await
        .map_err(|e| match e {
            PushError::Internal(e) => ApiError::from(e),
            other => ApiError::invalid("package_file", other.to_string()),
        })?;
    let files: Vec<_> = dsc
        .files
        .iter()
        .map(|f| json!({ "filename": f.name, "size": f.size, "md5sum": f.md5 }))
        .collect();
    Ok(Json(json!({ "files": files })))
}

struct Form {
    distro_version_id: Option<String>,
    /// The staged file and the guard that deletes it when the request ends.
    file: Option<(Staged, TempPath)>,
    /// The files a `.dsc` names, staged likewise.
    source_files: Vec<(Staged, TempPath)>,
}

async fn read_form(app: &App, mut multipart: Multipart) -> Result<Form, ApiError> {
    let mut form = Form {
        distro_version_id: None,
        file: None,
        source_files: Vec::new(),
    };
    let bad_body = |e: axum::extract::multipart::MultipartError| {
        ApiError::BadRequest(format!("invalid multipart body: {e}"))
    };
    while let Some(field) = multipart.next_field().await.map_err(bad_body)? {
        match field.name().unwrap_or_default() {
            "package[distro_version_id]" | "distro_version_id" => {
                form.distro_version_id = Some(field.text().await.map_err(bad_body)?);
            }
            "package[package_file]" | "package_file" => {
                if form.file.is_some() {
                    return Err(ApiError::invalid(
                        "package_file",
                        "only one file may be pushed per request",
                    ));
                }
                let filename = field.file_name().unwrap_or_default().to_owned();
                form.file = Some(stage(app, field, filename).await?);
            }
            "package[source_files][]" | "source_files[]" => {
                if form.source_files.len() >= MAX_SOURCE_FILES {
                    return Err(ApiError::invalid(
                        "source_files",
                        format!("at most {MAX_SOURCE_FILES} source files come with a package"),
                    ));
                }
                let filename = field.file_name().unwrap_or_default().to_owned();
                form.source_files.push(stage(app, field, filename).await?);
            }
            _ => {}
        }
    }
    Ok(form)
}

/// Writes an upload (a multipart field, a request body) to a temporary file, hashing it on
/// the way, within the size limit.
pub async fn stage<S, E>(
    app: &App,
    body: S,
    filename: String,
) -> Result<(Staged, TempPath), ApiError>
where
    S: futures::Stream<Item = Result<Bytes, E>>,
    E: std::fmt::Display,
{
    let _permit = app.upload_permit()?;
    let mut body = std::pin::pin!(body);
    let limit = app.config.max_upload_bytes;
    let idle = std::time::Duration::from_secs(app.config.upload_idle_timeout_secs.max(1));
    let file = tempfile::NamedTempFile::new_in(app.blobs.tmp_dir())
        .map_err(|e| anyhow::anyhow!("creating a staging file: {e}"))?;
    let (file, path) = file.into_parts();
    let (tx, mut rx) = mpsc::channel::<Bytes>(16);
    // Half of the digests on a helper thread: hashing, not the network, limits a large upload.
    let writer = tokio::task::spawn_blocking(move || {
        let (mut hasher, mut helper_hasher) = MultiHasher::halves();
        let (to_helper, from_writer) = std::sync::mpsc::sync_channel::<Bytes>(16);
        let helper = std::thread::spawn(move || {
            for chunk in from_writer {
                helper_hasher.update(&chunk);
            }
            helper_hasher.finish()
        });
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        let written = (|| {
            while let Some(chunk) = rx.blocking_recv() {
                // A send fails only if the helper is gone, which `join` reports below.
                let _ = to_helper.send(chunk.clone());
                hasher.update(&chunk);
                out.write_all(&chunk)?;
            }
            out.flush()
        })();
        drop(to_helper);
        let helper_digests = helper
            .join()
            .map_err(|_| std::io::Error::other("the hashing thread panicked"))?;
        written?;
        Ok::<_, std::io::Error>(hasher.finish().merge(helper_digests))
    });
    let mut received: u64 = 0;
    let mut failure = None;
    loop {
        let Ok(next) = tokio::time::timeout(idle, body.next()).await else {
            failure = Some(ApiError::RequestTimeout(format!(
                "the upload sent nothing for {} seconds",
                idle.as_secs()
            )));
            break;
        };
        match next.transpose() {
            Ok(Some(chunk)) => {
                received += chunk.len() as u64;
                if received > limit {
                    failure = Some(ApiError::PayloadTooLarge(format!(
                        "package is larger than the {limit} byte upload limit"
                    )));
                    break;
                }
                if tx.send(chunk).await.is_err() {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                failure = Some(ApiError::BadRequest(format!("upload interrupted: {e}")));
                break;
            }
        }
    }
    drop(tx);
    let digests = writer
        .await
        .map_err(anyhow::Error::from)?
        .map_err(|e| anyhow::Error::new(e).context("writing the staging file"))?;
    if let Some(failure) = failure {
        return Err(failure);
    }
    let staged = Staged::new(path.to_path_buf(), filename, digests);
    Ok((staged, path))
}
