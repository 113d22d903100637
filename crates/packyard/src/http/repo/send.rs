//! Sends one repository file with the HTTP caching and range semantics apt and proxies use:
//! `ETag`/`If-None-Match`, `Last-Modified`/`If-Modified-Since`, single `Range` requests, `HEAD`,
//! and `Cache-Control` that marks content-addressed files immutable.

use std::io::Read;
use std::ops::Range;

use axum::body::Body;
use axum::http::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE,
    ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED, LOCATION, RANGE,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use packyard_formats::digest::sha256_hex;

use crate::app::App;
use crate::config::DownloadMode;
use crate::db::generations::IndexFile;
use crate::http::error::ApiError;
use crate::read_cache::Document;
use crate::storage::BlobKey;

pub struct Request<'a> {
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
    pub client: std::net::IpAddr,
    /// The name of the read token the request came with, for download records.
    pub read_token: Option<String>,
}

enum Source {
    Blob(BlobKey),
    /// Blobs whose concatenation is the file, with their sizes.
    Segments(Vec<(BlobKey, u64)>),
    /// Blobs whose concatenation is a gzip file; the file is what it decompresses to.
    Gunzip(Vec<BlobKey>),
    Memory(Bytes),
}

pub struct File {
    source: Source,
    size: u64,
    content_type: &'static str,
    etag: String,
    immutable: bool,
    modified_at: Option<i64>,
    /// The package a full GET downloads, and its format.
    package_id: Option<(i64, &'static str)>,
    /// The file name a browser or `curl -J` saves it under, for files sent as attachments.
    attachment: Option<String>,
    /// Whether a blob may be sent as a redirect to a presigned URL without being a package's
    /// file (an image's layer).
    redirectable: bool,
}

impl File {
    fn new(source: Source, size: u64, content_type: &'static str, sha256: &str) -> File {
        File {
            source,
            size,
            content_type,
            etag: format!("\"{sha256}\""),
            immutable: false,
            modified_at: None,
            package_id: None,
            attachment: None,
            redirectable: false,
        }
    }

    pub fn blob(key: BlobKey, size: u64, content_type: &'static str) -> File {
        let sha256 = key.sha256().to_owned();
        File::new(Source::Blob(key), size, content_type, &sha256)
    }

    /// An index file of a generation: its blob, its segments, or its `.gz` decompressed.
    pub fn index(index: &IndexFile, content_type: &'static str) -> Result<File, ApiError> {
        let blobs = index
            .segments
            .iter()
            .map(|s| Ok((BlobKey::from_sha256(&s.blob_sha256)?, s.size as u64)))
            .collect::<Result<Vec<_>, ApiError>>()?;
        let whole = BlobKey::from_sha256(&index.blob_sha256)?;
        let source = match (index.gunzip, blobs.is_empty()) {
            (true, true) => Source::Gunzip(vec![whole]),
            (true, false) => Source::Gunzip(blobs.into_iter().map(|(key, _)| key).collect()),
            (false, true) => Source::Blob(whole),
            (false, false) => Source::Segments(blobs),
        };
        Ok(File::new(
            source,
            index.size as u64,
            content_type,
            &index.sha256,
        ))
    }

    pub fn dynamic(content_type: &'static str, data: Bytes) -> File {
        let sha256 = sha256_hex(&data);
        File::new(
            Source::Memory(data.clone()),
            data.len() as u64,
            content_type,
            &sha256,
        )
    }

    /// A signed document of the current generation, as the read cache holds it.
    pub fn document(content_type: &'static str, document: &Document) -> File {
        let body = document.body.clone();
        File::new(
            Source::Memory(body),
            document.body.len() as u64,
            content_type,
            &document.sha256,
        )
        .modified_at(document.created_at)
    }

    /// Lets a blob go out as a redirect to presigned storage, as package files do.
    pub fn redirectable(mut self) -> File {
        self.redirectable = true;
        self
    }

    pub fn immutable(mut self) -> File {
        self.immutable = true;
        self
    }

    /// Counts a full GET of this file as a download of `package_id`, a package of `format`.
    pub fn counting(mut self, package_id: i64, format: &'static str) -> File {
        self.package_id = Some((package_id, format));
        self
    }

    pub fn modified_at(mut self, secs: i64) -> File {
        self.modified_at = Some(secs);
        self
    }

    /// Sends the file as an attachment named `filename` (a name checked to need no quoting),
    /// with its SHA-256 in `X-Checksum-Sha256` as artifact repositories send it.
    pub fn attachment(mut self, filename: &str) -> File {
        self.attachment = Some(filename.to_owned());
        self
    }
}

impl Request<'_> {
    /// Records that this request's host fetched one of `repository_id`'s signed documents.
    pub fn record_index_fetch(&self, app: &App, repository_id: i64) {
        use crate::db::downloads::{IndexFetch, host_key, stored_user_agent};
        let user_agent = self
            .headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let seen = (
            repository_id,
            self.read_token.as_deref(),
            self.client,
            user_agent,
        );
        if !app.downloads.index_fetch_is_news(&seen) {
            return;
        }
        let host = host_key(
            self.read_token.as_deref(),
            &self.client.to_string(),
            &stored_user_agent(user_agent),
        );
        app.downloads.record_index_fetch(IndexFetch {
            repository_id,
            host,
            fetched_at: crate::db::now(),
        });
    }
}

pub async fn send(app: &App, request: &Request<'_>, mut file: File) -> Result<Response, ApiError> {
    let mut headers = HeaderMap::new();
    headers.insert(ETAG, header(&file.etag));
    if let Some(filename) = &file.attachment {
        headers.insert(
            CONTENT_DISPOSITION,
            header(&format!("attachment; filename=\"{filename}\"")),
        );
        headers.insert("x-checksum-sha256", header(file.etag.trim_matches('"')));
    }
    let cache = if file.immutable {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    let modified = file
        .modified_at
        .and_then(|secs| u64::try_from(secs).ok())
        .map(|secs| std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs));
    if let Some(modified) = modified {
        headers.insert(LAST_MODIFIED, header(&httpdate::fmt_http_date(modified)));
    }
    if not_modified(request.headers, &file.etag, modified) {
        return Ok((StatusCode::NOT_MODIFIED, headers).into_response());
    }
    if let Some(redirect) = redirect(app, request, &file).await? {
        return Ok(redirect);
    }
    if let Source::Blob(key) = &file.source {
        // Serve what is stored: if it ever differs from what the database recorded, the client
        // sees a checksum mismatch rather than a connection cut short.
        if let Some(bytes) = app.cache.small_blob(&app.blobs, key, file.size).await? {
            file.size = bytes.len() as u64;
            file.source = Source::Memory(bytes);
        } else {
            file.size = app
                .blobs
                .size(key)
                .await?
                .ok_or_else(|| missing_blob(key))?;
        }
    }
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(file.content_type));

    let ranged = !matches!(file.source, Source::Gunzip(_));
    if ranged {
        headers.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    }
    let range = match request.headers.get(RANGE).and_then(|v| v.to_str().ok()) {
        Some(spec) if ranged => match parse_range(spec, file.size) {
            RangeRequest::Whole => None,
            RangeRequest::Part(start, end) => Some(start..end),
            RangeRequest::Unsatisfiable => {
                headers.insert(CONTENT_RANGE, header(&format!("bytes */{}", file.size)));
                return Ok((StatusCode::RANGE_NOT_SATISFIABLE, headers).into_response());
            }
        },
        _ => None,
    };
    let status = match &range {
        Some(r) => {
            headers.insert(
                CONTENT_RANGE,
                header(&format!("bytes {}-{}/{}", r.start, r.end - 1, file.size)),
            );
            StatusCode::PARTIAL_CONTENT
        }
        None => StatusCode::OK,
    };
    let length = range.as_ref().map_or(file.size, |r| r.end - r.start);
    headers.insert(CONTENT_LENGTH, header(&length.to_string()));
    if request.method == Method::HEAD {
        return Ok((status, headers).into_response());
    }
    // A download starts at byte 0; later ranges are the same download resuming.
    if let Some(package_id) = file
        .package_id
        .filter(|_| range.as_ref().is_none_or(|r| r.start == 0))
    {
        record_download(app, request, package_id);
    }

    let body = match file.source {
        Source::Memory(data) => {
            let data = match range {
                Some(r) => data.slice(r.start as usize..r.end as usize),
                None => data,
            };
            Body::from(data)
        }
        Source::Blob(key) => {
            let read = app
                .blobs
                .get(&key, range)
                .await?
                .ok_or_else(|| missing_blob(&key))?;
            Body::from_stream(read.stream)
        }
        Source::Segments(segments) => {
            let wanted = range.unwrap_or(0..file.size);
            let keep = app.cache.keeps(file.size);
            Body::from_stream(segment_stream(app.clone(), segments, wanted, keep))
        }
        Source::Gunzip(keys) => Body::from_stream(gunzip_stream(app.clone(), keys, file.size)),
    };
    Ok((status, headers, body).into_response())
}

/// The text of the gzip members in the blobs `keys`, of `expected` bytes, decompressed a
/// blob at a time (a segment holds whole members): an index of a million packages is served
/// without holding its 900 MB of text. More or fewer bytes than recorded end the response in
/// an error, and a blob never decompresses to more than `expected`.
fn gunzip_stream(
    app: App,
    keys: Vec<BlobKey>,
    expected: u64,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> {
    let pieces = futures::stream::iter(keys)
        .map(move |key| {
            let app = app.clone();
            async move {
                let compressed = app.blobs.get_bytes(&key).await?;
                let plain = tokio::task::spawn_blocking(move || {
                    let mut out = Vec::new();
                    flate2::read::MultiGzDecoder::new(&compressed[..])
                        .take(expected + 1)
                        .read_to_end(&mut out)?;
                    std::io::Result::Ok(Bytes::from(out))
                })
                .await??;
                anyhow::Ok(plain)
            }
        })
        .buffered(SEGMENTS_AHEAD)
        .map_err(std::io::Error::other);
    futures::stream::try_unfold(
        (Box::pin(pieces), 0u64),
        move |(mut pieces, sent)| async move {
            match pieces.try_next().await? {
                Some(piece) => {
                    let sent = sent + piece.len() as u64;
                    if sent > expected {
                        return Err(std::io::Error::other(format!(
                            "decompressed index exceeds the {expected} bytes recorded"
                        )));
                    }
                    Ok(Some((piece, (pieces, sent))))
                }
                None if sent == expected => Ok(None),
                None => Err(std::io::Error::other(format!(
                    "decompressed index has {sent} bytes, expected {expected}"
                ))),
            }
        },
    )
}

/// Segments read ahead of the one being sent.
const SEGMENTS_AHEAD: usize = 4;

/// The bytes `wanted` of the concatenation of `segments`, read a few segments at a time.
fn segment_stream(
    app: App,
    segments: Vec<(BlobKey, u64)>,
    wanted: Range<u64>,
    keep: bool,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> {
    let mut start = 0;
    let pieces: Vec<(BlobKey, u64, Range<u64>)> = segments
        .into_iter()
        .filter_map(|(key, size)| {
            let span = start..start + size;
            start += size;
            let (from, to) = (wanted.start.max(span.start), wanted.end.min(span.end));
            (from < to).then(|| (key, size, from - span.start..to - span.start))
        })
        .collect();
    futures::stream::iter(pieces)
        .map(move |(key, size, part)| {
            let app = app.clone();
            async move {
                read_segment(&app, &key, size, part, keep)
                    .await
                    .map_err(std::io::Error::other)
            }
        })
        // A few reads ahead, in order: each is a round trip when the blobs are in S3.
        .buffered(SEGMENTS_AHEAD)
}

async fn read_segment(
    app: &App,
    key: &BlobKey,
    size: u64,
    part: Range<u64>,
    keep: bool,
) -> anyhow::Result<Bytes> {
    let kept = match keep {
        true => app.cache.small_blob(&app.blobs, key, size).await?,
        false => None,
    };
    let bytes = match kept {
        Some(bytes) => bytes,
        None => app.blobs.get_bytes(key).await?,
    };
    anyhow::ensure!(
        bytes.len() as u64 == size,
        "segment {} has {} bytes, {size} were recorded",
        key.sha256(),
        bytes.len()
    );
    Ok(bytes.slice(part.start as usize..part.end as usize))
}

/// Package files in S3 are fetched from S3 itself: a `302` to a presigned URL, given only
/// after the request was authorized. Index files are always served by this process, so what
/// a client verifies against `InRelease` or `repomd.xml` comes from one place.
async fn redirect(
    app: &App,
    request: &Request<'_>,
    file: &File,
) -> Result<Option<Response>, ApiError> {
    let Source::Blob(key) = &file.source else {
        return Ok(None);
    };
    if file.package_id.is_none() && !file.redirectable {
        return Ok(None);
    }
    if request.method != Method::GET || app.config.download_mode != DownloadMode::Redirect {
        return Ok(None);
    }
    let expiry = std::time::Duration::from_secs(app.config.download_url_expiry_secs);
    let Some(url) = app.blobs.presigned_get(key, expiry).await? else {
        return Ok(None);
    };
    let resumed = request
        .headers
        .get(RANGE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|spec| !spec.trim().starts_with("bytes=0-"));
    if let Some(package_id) = file.package_id.filter(|_| !resumed) {
        record_download(app, request, package_id);
    }
    let headers = [
        (LOCATION, header(&url)),
        // The URL expires: neither clients nor proxies may keep the redirect.
        (CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ];
    Ok(Some((StatusCode::FOUND, headers).into_response()))
}

pub(crate) fn record_download(
    app: &App,
    request: &Request<'_>,
    (package_id, format): (i64, &'static str),
) {
    crate::http::metrics::downloads(format).increment(1);
    let user_agent = request
        .headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    app.downloads.record(crate::db::downloads::Download {
        package_id,
        downloaded_at: crate::db::now(),
        ip_address: request.client.to_string(),
        user_agent: crate::db::downloads::stored_user_agent(user_agent.unwrap_or_default()),
        read_token: request.read_token.clone(),
        count: 1,
    });
}

fn missing_blob(key: &BlobKey) -> ApiError {
    ApiError::Internal(anyhow::anyhow!(
        "blob {} is referenced but missing from storage",
        key.sha256()
    ))
}

fn header(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).expect("generated header values are visible ASCII")
}

fn not_modified(headers: &HeaderMap, etag: &str, modified: Option<std::time::SystemTime>) -> bool {
    if let Some(tags) = headers.get(IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        return tags
            .split(',')
            .map(str::trim)
            .any(|t| t == "*" || t.trim_start_matches("W/") == etag);
    }
    let since = headers
        .get(IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok());
    matches!((since, modified), (Some(since), Some(modified)) if modified <= since)
}

#[derive(Debug, PartialEq, Eq)]
enum RangeRequest {
    Whole,
    Part(u64, u64),
    Unsatisfiable,
}

/// A single `bytes=` range (RFC 9110, section 14.1.2) as a half-open interval; several ranges
/// or a malformed header get the whole file, as the RFC allows.
fn parse_range(spec: &str, size: u64) -> RangeRequest {
    let Some(spec) = spec.trim().strip_prefix("bytes=") else {
        return RangeRequest::Whole;
    };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((start, end)) = spec.split_once('-') else {
        return RangeRequest::Whole;
    };
    let (start, end) = (start.trim(), end.trim());
    let parsed = match (start.parse::<u64>(), end.parse::<u64>()) {
        (Ok(s), Ok(e)) if s <= e => Some((s, e.saturating_add(1).min(size))),
        (Ok(s), Err(_)) if end.is_empty() => Some((s, size)),
        (Err(_), Ok(n)) if start.is_empty() => {
            if n == 0 {
                return RangeRequest::Unsatisfiable;
            }
            Some((size.saturating_sub(n), size))
        }
        _ => None,
    };
    match parsed {
        None => RangeRequest::Whole,
        Some((s, _)) if s >= size => RangeRequest::Unsatisfiable,
        Some((s, e)) => RangeRequest::Part(s, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), RangeRequest::Part(0, 10));
        assert_eq!(parse_range("bytes=90-", 100), RangeRequest::Part(90, 100));
        assert_eq!(parse_range("bytes=-10", 100), RangeRequest::Part(90, 100));
        assert_eq!(
            parse_range("bytes=50-500", 100),
            RangeRequest::Part(50, 100)
        );
        assert_eq!(parse_range("bytes=100-", 100), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), RangeRequest::Whole);
        assert_eq!(parse_range("items=0-1", 100), RangeRequest::Whole);
        assert_eq!(parse_range("bytes=9-1", 100), RangeRequest::Whole);
    }
}
