//! The OCI registry at `/v2/` (distribution specification 1.1): what skopeo, podman, docker,
//! oras and helm send. Registry names are `OWNER/REPO/IMAGE[/...]`, so an image lives in a
//! Packyard repository and takes its visibility and tokens: API tokens push and pull, read
//! tokens pull. Credentials come as HTTP basic auth (`user:TOKEN`, or the token as user name);
//! a request without any that needs them gets a `Basic` challenge, as `docker login` expects.
//!
//! `blobs.rs` serves blobs and upload sessions, `manifests.rs` manifests, tags, referrers and
//! the catalog; what a manifest push or a tag move does to the database is `images.rs`.

mod blobs;
mod manifests;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::header::WWW_AUTHENTICATE;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use packyard_formats::oci;
use serde_json::json;

pub use blobs::{Sessions, expire_sessions};

use crate::app::App;
use crate::db::repos::Repo;
use crate::http::auth::{self, Caller};
use crate::http::error::ApiError;
use crate::images::ImageError;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/v2", get(version_check))
        .route("/v2/", get(version_check))
        .route("/v2/{*path}", any(dispatch))
}

const API_VERSION: HeaderName = HeaderName::from_static("docker-distribution-api-version");
const DIGEST_HEADER: HeaderName = HeaderName::from_static("docker-content-digest");
const CHALLENGE: &str = "Basic realm=\"Packyard\", charset=\"UTF-8\"";

/// An error as registries answer it: `{"errors": [{"code", "message", "detail"}]}`.
#[derive(Debug)]
pub struct RegistryError {
    status: StatusCode,
    code: &'static str,
    message: String,
    detail: serde_json::Value,
    headers: Vec<(HeaderName, String)>,
}

impl RegistryError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        RegistryError {
            status,
            code,
            message: message.into(),
            detail: serde_json::Value::Null,
            headers: Vec::new(),
        }
    }

    fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }

    fn header(mut self, name: HeaderName, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    fn unauthorized() -> Self {
        RegistryError::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "authentication required: use an API token, or a read token to pull",
        )
    }

    fn name_unknown(name: &str) -> Self {
        RegistryError::new(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            format!("repository name {name} not known to registry"),
        )
        .detail(json!({ "name": name }))
    }

    fn internal(e: anyhow::Error) -> Self {
        tracing::error!(error = %format!("{e:#}"), "registry request failed");
        RegistryError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNKNOWN",
            "internal error; the server log has the details",
        )
    }
}

impl From<anyhow::Error> for RegistryError {
    fn from(e: anyhow::Error) -> Self {
        ApiError::from(e).into()
    }
}

impl From<ApiError> for RegistryError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Internal(e) => RegistryError::internal(e),
            ApiError::TooManyRequests => RegistryError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TOOMANYREQUESTS",
                "too many failed authentications from this address; wait a minute",
            ),
            ApiError::Unauthenticated => RegistryError::unauthorized(),
            ApiError::PayloadTooLarge(message) => {
                RegistryError::new(StatusCode::PAYLOAD_TOO_LARGE, "SIZE_INVALID", message)
            }
            ApiError::Busy(message) => {
                RegistryError::new(StatusCode::SERVICE_UNAVAILABLE, "TOOMANYREQUESTS", message)
                    .header(axum::http::header::RETRY_AFTER, "1".into())
            }
            ApiError::StorageUnavailable(message) | ApiError::DatabaseUnavailable(message) => {
                RegistryError::new(StatusCode::SERVICE_UNAVAILABLE, "UNKNOWN", message)
                    .header(axum::http::header::RETRY_AFTER, "1".into())
            }
            ApiError::InsufficientStorage(message) => {
                RegistryError::new(StatusCode::INSUFFICIENT_STORAGE, "UNKNOWN", message)
            }
            ApiError::BadRequest(message) => {
                RegistryError::new(StatusCode::BAD_REQUEST, "BLOB_UPLOAD_INVALID", message)
            }
            other => {
                let response = other.into_response();
                RegistryError::new(response.status(), "UNKNOWN", "request failed")
            }
        }
    }
}

impl From<ImageError> for RegistryError {
    fn from(e: ImageError) -> Self {
        let message = e.to_string();
        match e {
            ImageError::ManifestInvalid(_) => {
                RegistryError::new(StatusCode::BAD_REQUEST, "MANIFEST_INVALID", message)
            }
            ImageError::DigestInvalid(_) => {
                RegistryError::new(StatusCode::BAD_REQUEST, "DIGEST_INVALID", message)
            }
            ImageError::BlobUnknown { digest, .. } => {
                RegistryError::new(StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN", message)
                    .detail(json!({ "digest": digest }))
            }
            ImageError::ManifestUnknown(_) => {
                RegistryError::new(StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN", message)
            }
            ImageError::Unsupported(_) => {
                RegistryError::new(StatusCode::BAD_REQUEST, "UNSUPPORTED", message)
            }
            ImageError::Internal(e) => e.into(),
        }
    }
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let body = json!({
            "errors": [{ "code": self.code, "message": self.message, "detail": self.detail }]
        });
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static(CHALLENGE));
        }
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        response
    }
}

/// The token of a registry client: the password of basic auth (`docker login -u ANY -p
/// TOKEN`), or the user name when the password is empty (`curl -u TOKEN:`), or a bearer token.
fn registry_token(headers: &HeaderMap) -> Option<String> {
    let token = match auth::credentials(headers)? {
        auth::Credentials::Bearer(token) => token,
        auth::Credentials::Basic { user, password } if password.is_empty() => user,
        auth::Credentials::Basic { password, .. } => password,
    };
    (!token.is_empty()).then_some(token)
}

/// Who is asking, from the request's credentials; credentials that match nothing are refused
/// with a challenge (a registry cannot serve a stale token the way apt sources may).
async fn caller(
    app: &App,
    headers: &HeaderMap,
    client: SocketAddr,
) -> Result<Caller, RegistryError> {
    match auth::caller(app, registry_token(headers), client.ip()).await? {
        Caller::Invalid => Err(RegistryError::unauthorized()),
        caller => Ok(caller),
    }
}

/// `GET /v2/`: 200 to a client with valid credentials, a challenge to one without, which makes
/// clients that hold credentials send them from then on.
async fn version_check(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let response = match caller(&app, &headers, client).await {
        Ok(Caller::Anonymous) => RegistryError::unauthorized().into_response(),
        Ok(_) => axum::Json(json!({})).into_response(),
        Err(e) => e.into_response(),
    };
    with_version(response)
}

fn with_version(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(API_VERSION, HeaderValue::from_static("registry/2.0"));
    response
}

/// What a registry path names after `/v2/NAME/`.
#[derive(Debug, PartialEq, Eq)]
enum Endpoint {
    Blob(String),
    /// `blobs/uploads/`: a new session.
    Uploads,
    /// `blobs/uploads/ID`.
    Upload(String),
    Manifest(String),
    Tags,
    Referrers(String),
}

/// Splits `NAME/ENDPOINT...` from the right, since a name may hold any of the endpoint words.
fn parse_path(path: &str) -> Option<(&str, Endpoint)> {
    let segments: Vec<&str> = path.split('/').collect();
    let n = segments.len();
    let name_before = |count: usize| {
        let cut = n.checked_sub(count)?;
        (cut > 0).then(|| {
            let len = segments[..cut].iter().map(|s| s.len() + 1).sum::<usize>() - 1;
            &path[..len]
        })
    };
    let at = |i: usize| n.checked_sub(i).map(|i| segments[i]);
    match (at(3), at(2), at(1)) {
        (Some("blobs"), Some("uploads"), Some("")) => Some((name_before(3)?, Endpoint::Uploads)),
        (Some("blobs"), Some("uploads"), Some(id)) => {
            Some((name_before(3)?, Endpoint::Upload(id.to_owned())))
        }
        (_, Some("blobs"), Some("uploads")) => Some((name_before(2)?, Endpoint::Uploads)),
        (_, Some("blobs"), Some(digest)) => {
            Some((name_before(2)?, Endpoint::Blob(digest.to_owned())))
        }
        (_, Some("manifests"), Some(reference)) if !reference.is_empty() => {
            Some((name_before(2)?, Endpoint::Manifest(reference.to_owned())))
        }
        (_, Some("tags"), Some("list")) => Some((name_before(2)?, Endpoint::Tags)),
        (_, Some("referrers"), Some(digest)) => {
            Some((name_before(2)?, Endpoint::Referrers(digest.to_owned())))
        }
        _ => None,
    }
}

/// An image in a repository, resolved for a caller.
pub struct Image {
    pub repo: Arc<Repo>,
    /// The part of the registry name after `OWNER/REPO/`.
    pub image: String,
    /// The whole registry name.
    pub name: String,
}

/// Whether the caller wants to read or to change an image.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    Pull,
    Push,
}

/// Resolves a registry name for `caller`. Strangers learn nothing: an anonymous caller is
/// challenged and any other gets `NAME_UNKNOWN`, whether the repository is private or missing.
async fn resolve(
    app: &App,
    caller: &Caller,
    name: &str,
    access: Access,
) -> Result<Image, RegistryError> {
    let refuse = || match caller {
        Caller::Anonymous => RegistryError::unauthorized(),
        _ => RegistryError::name_unknown(name),
    };
    if !oci::is_valid_name(name) {
        return Err(RegistryError::new(
            StatusCode::BAD_REQUEST,
            "NAME_INVALID",
            format!(
                "{name:?} is not a registry name: OWNER/REPO/IMAGE in lower case, each part \
                 letters and digits joined by '.', '_', '__' or '-'"
            ),
        ));
    }
    let mut parts = name.splitn(3, '/');
    let (Some(owner), Some(repo_name), Some(image)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(RegistryError::new(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            format!("{name} is not OWNER/REPO/IMAGE: images live inside a repository"),
        ));
    };
    let repo = match auth::repo_for_reader(app, caller, owner, repo_name).await {
        Ok(repo) => repo,
        Err(ApiError::NotFound(_)) => return Err(refuse()),
        Err(e) => return Err(e.into()),
    };
    if access == Access::Push {
        let may_push = match caller {
            Caller::User(user) => crate::db::users::acts_for(&app.db, user, repo.owner_id).await?,
            _ => false,
        };
        if !may_push {
            return Err(match caller {
                Caller::Anonymous => RegistryError::unauthorized(),
                _ => RegistryError::new(
                    StatusCode::FORBIDDEN,
                    "DENIED",
                    format!("only an API token of {owner} may push to {owner}/{repo_name}"),
                ),
            });
        }
    }
    Ok(Image {
        repo,
        image: image.to_owned(),
        name: name.to_owned(),
    })
}

/// The name audit records and tag history give the caller.
fn actor(caller: &Caller) -> String {
    match caller {
        Caller::User(user) => user.name.clone(),
        Caller::Reader { name, .. } => format!("read token {name}"),
        _ => "anonymous".to_owned(),
    }
}

async fn dispatch(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path(path): Path<String>,
    request: Request,
) -> Response {
    let response = route(&app, client, &path, request)
        .await
        .unwrap_or_else(IntoResponse::into_response);
    with_version(response)
}

async fn route(
    app: &App,
    client: SocketAddr,
    path: &str,
    request: Request,
) -> Result<Response, RegistryError> {
    let caller = caller(app, request.headers(), client).await?;
    let method = request.method().clone();
    if path == "_catalog" && method == Method::GET {
        return manifests::catalog(app, &caller, request.uri().query()).await;
    }
    let Some((name, endpoint)) = parse_path(path) else {
        return Err(RegistryError::new(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            format!("/v2/{path} is not a registry endpoint"),
        ));
    };
    let read = method == Method::GET || method == Method::HEAD;
    let access = if read { Access::Pull } else { Access::Push };
    let image = resolve(app, &caller, name, access).await?;
    let ctx = Context {
        app,
        caller: &caller,
        client,
        image: &image,
    };
    match (endpoint, method) {
        (Endpoint::Blob(digest), m) if read => {
            blobs::get(&ctx, &digest, &m, request.headers()).await
        }
        (Endpoint::Blob(_), Method::DELETE) => Err(RegistryError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            "blobs are not deleted one by one: delete the manifests that name them, and the \
             collector removes blobs nothing names after the grace period",
        )),
        (Endpoint::Uploads, Method::POST) => blobs::start(&ctx, request).await,
        (Endpoint::Upload(id), Method::PATCH) => blobs::patch(&ctx, &id, request).await,
        (Endpoint::Upload(id), Method::PUT) => blobs::finish(&ctx, &id, request).await,
        (Endpoint::Upload(id), Method::GET) => blobs::status(&ctx, &id).await,
        (Endpoint::Upload(id), Method::DELETE) => blobs::cancel(&ctx, &id).await,
        (Endpoint::Manifest(reference), m) if read => {
            manifests::get(&ctx, &reference, &m, request.headers()).await
        }
        (Endpoint::Manifest(reference), Method::PUT) => {
            manifests::put(&ctx, &reference, request).await
        }
        (Endpoint::Manifest(reference), Method::DELETE) => {
            manifests::delete(&ctx, &reference).await
        }
        (Endpoint::Tags, Method::GET) => manifests::tags(&ctx, request.uri().query()).await,
        (Endpoint::Referrers(digest), Method::GET) => {
            manifests::referrers(&ctx, &digest, request.uri().query()).await
        }
        _ => Err(RegistryError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            "method not allowed here",
        )),
    }
}

/// What every endpoint gets.
struct Context<'a> {
    app: &'a App,
    caller: &'a Caller,
    client: SocketAddr,
    image: &'a Image,
}

impl Context<'_> {
    fn read_token(&self) -> Option<String> {
        match self.caller {
            Caller::Reader { name, .. } => Some(name.clone()),
            _ => None,
        }
    }
}

/// `n` and `last` of a paginated listing.
fn pagination(query: Option<&str>) -> (Option<String>, Option<i64>) {
    #[derive(serde::Deserialize)]
    struct Page {
        n: Option<i64>,
        last: Option<String>,
    }
    let page: Page = serde_urlencoded::from_str(query.unwrap_or_default()).unwrap_or(Page {
        n: None,
        last: None,
    });
    (
        page.last.filter(|l| !l.is_empty()),
        page.n.filter(|n| *n >= 0),
    )
}

fn digest_invalid(e: oci::DigestError) -> RegistryError {
    match e {
        oci::DigestError::Unsupported(_) => {
            RegistryError::new(StatusCode::BAD_REQUEST, "UNSUPPORTED", e.to_string())
        }
        oci::DigestError::Malformed(_) => {
            RegistryError::new(StatusCode::BAD_REQUEST, "DIGEST_INVALID", e.to_string())
        }
    }
}

fn header_value(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).expect("generated header values are visible ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_from_the_right() {
        assert_eq!(
            parse_path("acme/stable/demo/manifests/1.0"),
            Some(("acme/stable/demo", Endpoint::Manifest("1.0".into())))
        );
        assert_eq!(
            parse_path("a/b/blobs/x/blobs/uploads/"),
            Some(("a/b/blobs/x", Endpoint::Uploads))
        );
        assert_eq!(
            parse_path("a/b/c/blobs/uploads"),
            Some(("a/b/c", Endpoint::Uploads))
        );
        assert_eq!(
            parse_path("a/b/c/blobs/uploads/abc"),
            Some(("a/b/c", Endpoint::Upload("abc".into())))
        );
        assert_eq!(
            parse_path("a/b/c/blobs/sha256:00"),
            Some(("a/b/c", Endpoint::Blob("sha256:00".into())))
        );
        assert_eq!(
            parse_path("a/b/c/tags/list"),
            Some(("a/b/c", Endpoint::Tags))
        );
        assert_eq!(
            parse_path("a/b/c/referrers/sha256:00"),
            Some(("a/b/c", Endpoint::Referrers("sha256:00".into())))
        );
        assert_eq!(parse_path("manifests/1.0"), None);
        assert_eq!(parse_path("a/b/c"), None);
    }

    #[test]
    fn registry_clients_send_the_token_as_password() {
        use axum::http::header::AUTHORIZATION;
        use base64::Engine as _;
        let mut headers = HeaderMap::new();
        let basic = |s: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(s)
            )
        };
        headers.insert(AUTHORIZATION, basic("user:tok").parse().unwrap());
        assert_eq!(registry_token(&headers).as_deref(), Some("tok"));
        headers.insert(AUTHORIZATION, basic("tok:").parse().unwrap());
        assert_eq!(registry_token(&headers).as_deref(), Some("tok"));
        headers.insert(AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(registry_token(&headers).as_deref(), Some("abc"));
        headers.insert(AUTHORIZATION, basic(":").parse().unwrap());
        assert_eq!(registry_token(&headers), None);
    }
}
