//! Blobs and their uploads: `GET`/`HEAD /v2/NAME/blobs/DIGEST` (ranges, and a presigned
//! redirect on S3), and upload sessions: monolithic (`POST ?digest=`), chunked (`POST`, then
//! `PATCH` with inclusive `Content-Range`s, then `PUT ?digest=`), streamed (one `PATCH` without
//! a range), status, cancel, and cross-repository mounts (`POST ?mount=&from=`).
//!
//! A session's bytes are staged in the data folder's `tmp/oci-uploads/ID`, its size in the
//! database (`oci_uploads`); the SHA-256 of what it holds so far is kept in memory by the
//! process that received it (`Sessions`), so finishing an upload reads nothing back. Another
//! process, or this one after a restart, hashes the staged file again instead.

use std::collections::HashMap;
use std::io::{Seek, Write};
use std::path::PathBuf;
use std::sync::Mutex;

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{CONTENT_LENGTH, CONTENT_RANGE, LOCATION, RANGE};
use axum::http::{HeaderMap, HeaderName, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use packyard_formats::oci;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::{Access, Context, DIGEST_HEADER, RegistryError, digest_invalid, header_value, resolve};
use crate::app::App;
use crate::db;
use crate::http::repo::send;
use crate::storage::BlobKey;

const UPLOAD_UUID: HeaderName = HeaderName::from_static("docker-upload-uuid");

/// The SHA-256 state of each upload session this process received the bytes of, with the size
/// it covers.
#[derive(Default)]
pub struct Sessions {
    states: Mutex<HashMap<String, (u64, Sha256)>>,
}

impl Sessions {
    /// The state of a session if it covers exactly `size` bytes; taken out while a chunk is
    /// written, so two requests never feed one state.
    fn take(&self, id: &str, size: u64) -> Option<Sha256> {
        let mut states = self.states.lock().expect("never poisoned");
        match states.remove(id) {
            Some((covered, state)) if covered == size => Some(state),
            _ => None,
        }
    }

    fn put(&self, id: &str, size: u64, state: Sha256) {
        let mut states = self.states.lock().expect("never poisoned");
        // Abandoned sessions must not pile up: their states are cheap to recompute.
        if states.len() >= 10_000 {
            states.clear();
        }
        states.insert(id.to_owned(), (size, state));
    }

    fn forget(&self, id: &str) {
        self.states.lock().expect("never poisoned").remove(id);
    }
}

fn blob_unknown(digest: &str) -> RegistryError {
    RegistryError::new(
        StatusCode::NOT_FOUND,
        "BLOB_UNKNOWN",
        format!("blob {digest} is not in this repository"),
    )
    .detail(serde_json::json!({ "digest": digest }))
}

fn upload_unknown(id: &str) -> RegistryError {
    RegistryError::new(
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
        format!("upload session {id} is not known (finished, cancelled or expired)"),
    )
}

/// `GET`/`HEAD` of a blob the image holds.
pub(super) async fn get(
    ctx: &Context<'_>,
    digest: &str,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response, RegistryError> {
    let hex = oci::sha256_of_digest(digest).map_err(digest_invalid)?;
    let image = ctx.image;
    let size = db::oci::blob_size(&ctx.app.db, image.repo.id, &image.image, hex)
        .await?
        .ok_or_else(|| blob_unknown(digest))?;
    let request = send::Request {
        method,
        headers,
        client: ctx.client.ip(),
        read_token: ctx.read_token(),
    };
    let file = send::File::blob(
        BlobKey::from_sha256(hex)?,
        size as u64,
        "application/octet-stream",
    )
    .immutable()
    .redirectable();
    let mut response = send::send(ctx.app, &request, file).await?;
    response
        .headers_mut()
        .insert(DIGEST_HEADER, header_value(digest));
    Ok(response)
}

#[derive(serde::Deserialize, Default)]
struct StartQuery {
    digest: Option<String>,
    mount: Option<String>,
    from: Option<String>,
}

/// `POST /v2/NAME/blobs/uploads/`: a mount, a monolithic upload, or a new session.
pub(super) async fn start(ctx: &Context<'_>, request: Request) -> Result<Response, RegistryError> {
    let query: StartQuery =
        serde_urlencoded::from_str(request.uri().query().unwrap_or_default()).unwrap_or_default();
    if let (Some(mount), Some(from)) = (&query.mount, &query.from)
        && let Some(response) = mount_from(ctx, mount, from).await?
    {
        return Ok(response);
    }
    if let Some(digest) = &query.digest {
        let hex = oci::sha256_of_digest(digest)
            .map_err(digest_invalid)?
            .to_owned();
        let staged = tempfile::NamedTempFile::new_in(ctx.app.blobs.tmp_dir())
            .map_err(|e| anyhow::anyhow!("creating a staging file: {e}"))?
            .into_temp_path();
        let (size, state) = append(
            ctx.app,
            staged.to_path_buf(),
            0,
            request.into_body(),
            Some(Sha256::new()),
        )
        .await?;
        return store(ctx, &staged, size, state, &hex).await;
    }
    let id = new_session_id();
    std::fs::create_dir_all(sessions_dir(ctx.app))
        .and_then(|()| std::fs::File::create(session_path(ctx.app, &id)).map(drop))
        .map_err(|e| anyhow::anyhow!("creating an upload session's file: {e}"))?;
    db::oci::create_upload(&ctx.app.db, &id, ctx.image.repo.id, &ctx.image.image).await?;
    ctx.app.oci_uploads.put(&id, 0, Sha256::new());
    Ok(session_response(ctx, StatusCode::ACCEPTED, &id, 0))
}

/// Links a blob another image holds into this one, if the caller may read that image and it
/// holds the blob; `None` otherwise, and the client gets a session instead (202).
async fn mount_from(
    ctx: &Context<'_>,
    digest: &str,
    from: &str,
) -> Result<Option<Response>, RegistryError> {
    let Ok(hex) = oci::sha256_of_digest(digest) else {
        return Ok(None);
    };
    let Ok(source) = resolve(ctx.app, ctx.caller, from, Access::Pull).await else {
        return Ok(None);
    };
    let Some(size) = db::oci::blob_size(&ctx.app.db, source.repo.id, &source.image, hex).await?
    else {
        return Ok(None);
    };
    let mut tx = ctx.app.db.begin_write().await?;
    // The collector may have taken the source's link since; look again under the write lock.
    if db::oci::blob_size_tx(&mut tx, source.repo.id, &source.image, hex)
        .await?
        .is_none()
    {
        return Ok(None);
    }
    db::oci::link_blob(&mut tx, ctx.image.repo.id, &ctx.image.image, hex, size).await?;
    tx.commit().await?;
    Ok(Some(blob_created(ctx, digest)))
}

fn blob_created(ctx: &Context<'_>, digest: &str) -> Response {
    let location = format!("/v2/{}/blobs/{digest}", ctx.image.name);
    (
        StatusCode::CREATED,
        [
            (LOCATION, header_value(&location)),
            (DIGEST_HEADER, header_value(digest)),
            (CONTENT_LENGTH, header_value("0")),
        ],
    )
        .into_response()
}

fn session_response(ctx: &Context<'_>, status: StatusCode, id: &str, size: u64) -> Response {
    let location = format!("/v2/{}/blobs/uploads/{id}", ctx.image.name);
    (
        status,
        [
            (LOCATION, header_value(&location)),
            (RANGE, header_value(&oci::session_range(size))),
            (UPLOAD_UUID, header_value(id)),
            (CONTENT_LENGTH, header_value("0")),
        ],
    )
        .into_response()
}

fn new_session_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

fn sessions_dir(app: &App) -> PathBuf {
    app.blobs.tmp_dir().join("oci-uploads")
}

fn session_path(app: &App, id: &str) -> PathBuf {
    sessions_dir(app).join(id)
}

/// The session `id` of this image, if it exists; ids are checked before they name a file.
async fn session(ctx: &Context<'_>, id: &str) -> Result<db::oci::Upload, RegistryError> {
    let well_formed = id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit());
    if !well_formed {
        return Err(upload_unknown(id));
    }
    match db::oci::upload(&ctx.app.db, id).await? {
        Some(upload)
            if upload.repository_id == ctx.image.repo.id && upload.image == ctx.image.image =>
        {
            Ok(upload)
        }
        _ => Err(upload_unknown(id)),
    }
}

/// `PATCH`: a chunk appended at the end of the session; a `Content-Range` that does not start
/// there is refused (416) with the session's range, so the client can resume.
pub(super) async fn patch(
    ctx: &Context<'_>,
    id: &str,
    request: Request,
) -> Result<Response, RegistryError> {
    let upload = session(ctx, id).await?;
    let size = upload.size as u64;
    let range = request
        .headers()
        .get(CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|v| oci::parse_chunk_range(v).ok_or(v.to_owned()));
    match range {
        Some(Ok((start, _))) if start == size => {}
        None => {}
        Some(_) => {
            let location = format!("/v2/{}/blobs/uploads/{id}", ctx.image.name);
            return Err(RegistryError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "BLOB_UPLOAD_INVALID",
                format!("the session holds {size} bytes; the next chunk starts at byte {size}"),
            )
            .header(LOCATION, location)
            .header(RANGE, oci::session_range(size))
            .header(UPLOAD_UUID, id.to_owned()));
        }
    }
    let state = ctx.app.oci_uploads.take(id, size);
    let path = session_path(ctx.app, id);
    let (new_size, state) = append(ctx.app, path, size, request.into_body(), state).await?;
    if !db::oci::grow_upload(&ctx.app.db, id, upload.size, new_size as i64).await? {
        return Err(RegistryError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "BLOB_UPLOAD_INVALID",
            "another chunk of this session arrived at the same time",
        ));
    }
    if let Some(state) = state {
        ctx.app.oci_uploads.put(id, new_size, state);
    }
    Ok(session_response(ctx, StatusCode::ACCEPTED, id, new_size))
}

/// `PUT ?digest=`: the last chunk (if any), then the blob is checked against the digest and
/// stored.
pub(super) async fn finish(
    ctx: &Context<'_>,
    id: &str,
    request: Request,
) -> Result<Response, RegistryError> {
    let query: StartQuery =
        serde_urlencoded::from_str(request.uri().query().unwrap_or_default()).unwrap_or_default();
    let digest = query.digest.ok_or_else(|| {
        RegistryError::new(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            "finishing an upload needs ?digest=sha256:...",
        )
    })?;
    let hex = oci::sha256_of_digest(&digest)
        .map_err(digest_invalid)?
        .to_owned();
    let upload = session(ctx, id).await?;
    let size = upload.size as u64;
    let state = ctx.app.oci_uploads.take(id, size);
    let path = session_path(ctx.app, id);
    let (size, state) = append(ctx.app, path.clone(), size, request.into_body(), state).await?;
    let response = store(ctx, &path, size, state, &hex).await;
    if response.is_ok() {
        db::oci::delete_upload(&ctx.app.db, id).await?;
        let _ = std::fs::remove_file(&path);
    } else {
        // A wrong digest ends the session, as distribution does: the bytes are not the blob.
        cancel_session(ctx.app, id).await?;
    }
    response
}

/// Checks staged bytes against `hex` and stores them as the image's blob.
async fn store(
    ctx: &Context<'_>,
    path: &std::path::Path,
    size: u64,
    state: Option<Sha256>,
    hex: &str,
) -> Result<Response, RegistryError> {
    let actual = match state {
        Some(state) => hex::encode(state.finalize()),
        None => {
            let path = path.to_owned();
            tokio::task::spawn_blocking(move || hash_file(&path))
                .await
                .map_err(anyhow::Error::from)?
                .map_err(|e| anyhow::anyhow!("hashing a staged upload: {e}"))?
        }
    };
    let digest = format!("sha256:{hex}");
    if actual != hex {
        return Err(RegistryError::new(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            format!("the uploaded bytes are sha256:{actual}, not {digest}"),
        )
        .detail(serde_json::json!({ "digest": digest })));
    }
    let key = BlobKey::from_sha256(hex)?;
    let app = ctx.app;
    app.blobs.put_file(&key, path).await?;
    let mut tx = app.db.begin_write().await?;
    // The collector deletes blobs under the write lock; check again now that we hold it.
    app.blobs.put_file_again(&key, path).await?;
    db::oci::link_blob(
        &mut tx,
        ctx.image.repo.id,
        &ctx.image.image,
        hex,
        size as i64,
    )
    .await?;
    tx.commit().await?;
    Ok(blob_created(ctx, &digest))
}

fn hash_file(path: &std::path::Path) -> std::io::Result<String> {
    packyard_formats::digest::sha256_hex_of(std::fs::File::open(path)?)
}

/// `GET` of a session: where it stands.
pub(super) async fn status(ctx: &Context<'_>, id: &str) -> Result<Response, RegistryError> {
    let upload = session(ctx, id).await?;
    Ok(session_response(
        ctx,
        StatusCode::NO_CONTENT,
        id,
        upload.size as u64,
    ))
}

/// `DELETE` of a session: its bytes are dropped.
pub(super) async fn cancel(ctx: &Context<'_>, id: &str) -> Result<Response, RegistryError> {
    session(ctx, id).await?;
    cancel_session(ctx.app, id).await?;
    Ok((
        StatusCode::NO_CONTENT,
        [(CONTENT_LENGTH, header_value("0"))],
    )
        .into_response())
}

async fn cancel_session(app: &App, id: &str) -> anyhow::Result<()> {
    db::oci::delete_upload(&app.db, id).await?;
    app.oci_uploads.forget(id);
    let _ = std::fs::remove_file(session_path(app, id));
    Ok(())
}

/// Drops sessions untouched for a day, with their staged bytes; the collector calls this.
pub async fn expire_sessions(app: &App) -> anyhow::Result<usize> {
    let stale = db::oci::stale_uploads(&app.db, db::now() - 86_400).await?;
    for id in &stale {
        cancel_session(app, id).await?;
    }
    Ok(stale.len())
}

/// Appends a request body to the staged file at `path`, which holds `offset` bytes, feeding
/// `state` (the SHA-256 of those bytes) when there is one; returns the new size and state. A
/// body cut short or over the upload limit leaves the file as it was.
async fn append(
    app: &App,
    path: PathBuf,
    offset: u64,
    body: Body,
    mut state: Option<Sha256>,
) -> Result<(u64, Option<Sha256>), RegistryError> {
    let _permit = app.upload_permit()?;
    let limit = app.config.max_upload_bytes;
    let idle = std::time::Duration::from_secs(app.config.upload_idle_timeout_secs.max(1));
    let (tx, mut rx) = mpsc::channel::<Bytes>(16);
    let writer = tokio::task::spawn_blocking(move || {
        let mut file = std::fs::OpenOptions::new().write(true).open(&path)?;
        // Bytes past `offset` are a failed chunk's: they were never acknowledged.
        file.set_len(offset)?;
        file.seek(std::io::SeekFrom::Start(offset))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        let mut written = 0u64;
        while let Some(chunk) = rx.blocking_recv() {
            if let Some(state) = state.as_mut() {
                state.update(&chunk);
            }
            out.write_all(&chunk)?;
            written += chunk.len() as u64;
        }
        out.flush()?;
        Ok::<_, std::io::Error>((written, state, out))
    });
    let mut stream = body.into_data_stream();
    let mut received = offset;
    let mut failure = None;
    loop {
        let Ok(next) = tokio::time::timeout(idle, stream.next()).await else {
            failure = Some(RegistryError::new(
                StatusCode::REQUEST_TIMEOUT,
                "BLOB_UPLOAD_INVALID",
                format!("the upload sent nothing for {} seconds", idle.as_secs()),
            ));
            break;
        };
        let Some(chunk) = next else { break };
        match chunk {
            Ok(chunk) => {
                received += chunk.len() as u64;
                if received > limit {
                    failure = Some(RegistryError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "SIZE_INVALID",
                        format!("the blob is larger than the {limit} byte upload limit"),
                    ));
                    break;
                }
                if tx.send(chunk).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                failure = Some(RegistryError::new(
                    StatusCode::BAD_REQUEST,
                    "BLOB_UPLOAD_INVALID",
                    format!("the upload was interrupted: {e}"),
                ));
                break;
            }
        }
    }
    drop(tx);
    let (written, state, out) = writer
        .await
        .map_err(anyhow::Error::from)?
        .map_err(|e| anyhow::Error::new(e).context("writing a staged upload"))?;
    if let Some(failure) = failure {
        let _ = out.into_inner().map(|f| f.set_len(offset));
        return Err(failure);
    }
    Ok((offset + written, state))
}
