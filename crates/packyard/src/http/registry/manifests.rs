//! Manifests by tag or digest (stored byte for byte with their media type), tag listing with
//! pagination, deletion, the referrers API and `_catalog`.

use axum::extract::Request;
use axum::http::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, ETAG, LINK, LOCATION};
use axum::http::{HeaderMap, HeaderName, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use packyard_formats::oci;
use serde_json::json;

use super::{
    Context, DIGEST_HEADER, RegistryError, actor, digest_invalid, header_value, pagination,
};
use crate::app::App;
use crate::db;
use crate::http::auth::{self, Caller};
use crate::images::{self, Reference};
use crate::storage::BlobKey;

const OCI_SUBJECT: HeaderName = HeaderName::from_static("oci-subject");
const FILTERS_APPLIED: HeaderName = HeaderName::from_static("oci-filters-applied");

/// Tags or images listed per page when the client does not say.
const DEFAULT_PAGE: i64 = 1000;
const MAX_PAGE: i64 = 10_000;

fn manifest_unknown(reference: &str) -> RegistryError {
    RegistryError::new(
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
        format!("manifest {reference} is not known"),
    )
}

/// Whether a client's `Accept` takes `media_type`. No `Accept`, or a wildcard, takes anything;
/// the registry never converts a manifest to another type.
fn accepts(headers: &HeaderMap, media_type: &str) -> bool {
    let mut listed = headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.split(';').next().unwrap_or_default().trim())
        .filter(|t| !t.is_empty())
        .peekable();
    if listed.peek().is_none() {
        return true;
    }
    listed.any(|t| t == media_type || t == "*/*" || t == "application/*")
}

pub(super) async fn get(
    ctx: &Context<'_>,
    reference: &str,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response, RegistryError> {
    let image = ctx.image;
    let db = &ctx.app.db;
    let (manifest, tag) = match Reference::parse(reference)? {
        Reference::Tag(tag) => (
            db::oci::manifest_by_tag(db, image.repo.id, &image.image, &tag).await?,
            Some(tag),
        ),
        Reference::Digest(hex) => (
            db::oci::manifest_by_digest(db, image.repo.id, &image.image, &hex).await?,
            None,
        ),
    };
    let manifest = manifest.ok_or_else(|| manifest_unknown(reference))?;
    if !accepts(headers, &manifest.media_type) {
        return Err(manifest_unknown(reference).detail(json!({
            "reason": format!(
                "the manifest is {}, which the request's Accept header does not include",
                manifest.media_type
            )
        })));
    }
    let key = BlobKey::from_sha256(&manifest.sha256)?;
    let bytes = match ctx
        .app
        .cache
        .small_blob(&ctx.app.blobs, &key, manifest.manifest_size as u64)
        .await?
    {
        Some(bytes) => bytes,
        None => ctx.app.blobs.get_bytes(&key).await?,
    };
    let digest = manifest.digest();
    let response_headers = [
        (CONTENT_TYPE, header_value(&manifest.media_type)),
        (DIGEST_HEADER, header_value(&digest)),
        (ETAG, header_value(&format!("\"{digest}\""))),
        (CONTENT_LENGTH, header_value(&bytes.len().to_string())),
    ];
    if method == Method::HEAD {
        return Ok((StatusCode::OK, response_headers).into_response());
    }
    let request = crate::http::repo::send::Request {
        method,
        headers,
        client: ctx.client.ip(),
        read_token: ctx.read_token(),
    };
    crate::http::repo::send::record_download(ctx.app, &request, (manifest.package_id, "oci"));
    count_pull(ctx, tag);
    Ok((StatusCode::OK, response_headers, bytes).into_response())
}

/// Counts a pull of the tag it was pulled by, off the request path (the manifest's download
/// is recorded as any package file's).
fn count_pull(ctx: &Context<'_>, tag: Option<String>) {
    if let Some(tag) = tag {
        let (app, repository_id, image) =
            (ctx.app.clone(), ctx.image.repo.id, ctx.image.image.clone());
        tokio::spawn(async move {
            if let Err(e) = db::oci::count_pull(&app.db, repository_id, &image, &tag).await {
                tracing::warn!(error = %format!("{e:#}"), "counting a tag's pull failed");
            }
        });
    }
}

pub(super) async fn put(
    ctx: &Context<'_>,
    reference: &str,
    request: Request,
) -> Result<Response, RegistryError> {
    let reference_parsed = Reference::parse(reference)?;
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = read_limited(request).await?;
    let image = ctx.image;
    let pushed = images::put_manifest(
        ctx.app,
        &image.repo,
        &image.image,
        &reference_parsed,
        bytes,
        content_type.as_deref(),
        &actor(ctx.caller),
    )
    .await?;
    let location = format!("/v2/{}/manifests/{}", image.name, pushed.digest);
    let mut response = (
        StatusCode::CREATED,
        [
            (LOCATION, header_value(&location)),
            (DIGEST_HEADER, header_value(&pushed.digest)),
            (CONTENT_LENGTH, header_value("0")),
        ],
    )
        .into_response();
    if let Some(subject) = pushed.subject {
        response
            .headers_mut()
            .insert(OCI_SUBJECT, header_value(&subject));
    }
    Ok(response)
}

/// A manifest's bytes, refused past the size registries accept.
async fn read_limited(request: Request) -> Result<bytes::Bytes, RegistryError> {
    let too_large = || {
        RegistryError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "MANIFEST_INVALID",
            format!("manifests are limited to {} bytes", oci::MAX_MANIFEST_BYTES),
        )
    };
    let mut stream = request.into_body().into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            RegistryError::new(
                StatusCode::BAD_REQUEST,
                "MANIFEST_INVALID",
                format!("the upload was interrupted: {e}"),
            )
        })?;
        if bytes.len() + chunk.len() > oci::MAX_MANIFEST_BYTES {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes.into())
}

/// `DELETE` by digest removes the manifest and its tags; by tag, only the tag.
pub(super) async fn delete(ctx: &Context<'_>, reference: &str) -> Result<Response, RegistryError> {
    let image = ctx.image;
    let who = actor(ctx.caller);
    match Reference::parse(reference)? {
        Reference::Digest(hex) => {
            images::delete_manifest(ctx.app, &image.repo, &image.image, &hex, &who).await?
        }
        Reference::Tag(tag) => {
            images::delete_tag(ctx.app, &image.repo, &image.image, &tag, &who).await?
        }
    }
    Ok((StatusCode::ACCEPTED, [(CONTENT_LENGTH, header_value("0"))]).into_response())
}

/// `GET /v2/NAME/tags/list?n=&last=`: tags in lexical order, a `Link` to the next page.
pub(super) async fn tags(
    ctx: &Context<'_>,
    query: Option<&str>,
) -> Result<Response, RegistryError> {
    let (last, n) = pagination(query);
    let limit = n.unwrap_or(DEFAULT_PAGE).min(MAX_PAGE);
    let image = ctx.image;
    let mut tags = db::oci::tags(
        &ctx.app.db,
        image.repo.id,
        &image.image,
        last.as_deref(),
        limit + 1,
    )
    .await?;
    let more = tags.len() as i64 > limit;
    tags.truncate(limit as usize);
    let body = json!({ "name": image.name, "tags": tags });
    let mut response = axum::Json(body).into_response();
    if more && let Some(last) = tags.last() {
        let next = format!(
            "</v2/{}/tags/list?n={limit}&last={}>; rel=\"next\"",
            image.name,
            urlencoding(last)
        );
        response.headers_mut().insert(LINK, header_value(&next));
    }
    Ok(response)
}

/// Tags and image names need no escaping but `+`-free query encoding of what they may hold.
fn urlencoding(value: &str) -> String {
    serde_urlencoded::to_string([("", value)])
        .map(|s| s.trim_start_matches('=').to_owned())
        .unwrap_or_default()
}

/// `GET /v2/NAME/referrers/DIGEST[?artifactType=]`: an image index of the manifests whose
/// subject is the digest; empty (never 404) when there are none.
pub(super) async fn referrers(
    ctx: &Context<'_>,
    digest: &str,
    query: Option<&str>,
) -> Result<Response, RegistryError> {
    oci::sha256_of_digest(digest).map_err(digest_invalid)?;
    #[derive(serde::Deserialize, Default)]
    struct Query {
        #[serde(rename = "artifactType")]
        artifact_type: Option<String>,
    }
    let query: Query = serde_urlencoded::from_str(query.unwrap_or_default()).unwrap_or_default();
    let image = ctx.image;
    let referrers = db::oci::referrers(&ctx.app.db, image.repo.id, &image.image, digest).await?;
    let manifests: Vec<serde_json::Value> = referrers
        .iter()
        .filter(|r| {
            query
                .artifact_type
                .as_ref()
                .is_none_or(|wanted| r.artifact_type.as_ref() == Some(wanted))
        })
        .map(|r| {
            let mut descriptor = json!({
                "mediaType": r.media_type,
                "digest": format!("sha256:{}", r.sha256),
                "size": r.manifest_size,
            });
            if let Some(artifact_type) = &r.artifact_type {
                descriptor["artifactType"] = artifact_type.clone().into();
            }
            descriptor
        })
        .collect();
    let body = json!({
        "schemaVersion": 2,
        "mediaType": oci::OCI_INDEX,
        "manifests": manifests,
    });
    let mut response = (
        [(CONTENT_TYPE, header_value(oci::OCI_INDEX))],
        serde_json::to_vec(&body).map_err(anyhow::Error::from)?,
    )
        .into_response();
    if query.artifact_type.is_some() {
        response
            .headers_mut()
            .insert(FILTERS_APPLIED, header_value("artifactType"));
    }
    Ok(response)
}

/// `GET /v2/_catalog?n=&last=`: the images the caller may pull, by name.
pub(super) async fn catalog(
    app: &App,
    caller: &Caller,
    query: Option<&str>,
) -> Result<Response, RegistryError> {
    let (last, n) = pagination(query);
    let limit = n.unwrap_or(DEFAULT_PAGE).min(MAX_PAGE) as usize;
    let mut names = Vec::new();
    let mut readable: std::collections::HashMap<i64, Option<String>> = Default::default();
    for (repository_id, image) in db::oci::images(&app.db).await? {
        if let std::collections::hash_map::Entry::Vacant(entry) = readable.entry(repository_id) {
            let visible = match db::repos::by_id(&app.db, repository_id).await? {
                Some(repo) if auth::may_read(app, caller, &repo).await? => {
                    Some(format!("{}/{}", repo.owner, repo.name))
                }
                _ => None,
            };
            entry.insert(visible);
        }
        if let Some(Some(prefix)) = readable.get(&repository_id) {
            names.push(format!("{prefix}/{image}"));
        }
    }
    names.sort();
    let names: Vec<String> = names
        .into_iter()
        .filter(|name| last.as_ref().is_none_or(|last| name > last))
        .collect();
    let more = names.len() > limit;
    let page = &names[..names.len().min(limit)];
    let mut response = axum::Json(json!({ "repositories": page })).into_response();
    if more && let Some(last) = page.last() {
        let next = format!(
            "</v2/_catalog?n={limit}&last={}>; rel=\"next\"",
            urlencoding(last)
        );
        response.headers_mut().insert(LINK, header_value(&next));
    }
    Ok(response)
}
