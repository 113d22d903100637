//! Repository files as clients read them: `/OWNER/REPO/gpgkey`, the APT tree under
//! `/OWNER/REPO/OS/`, the YUM trees under `/OWNER/REPO/OS/VERSION/ARCH/`, and raw files, also
//! reachable as `/priv/TOKEN/OWNER/REPO/...`. Errors of reads are bare status codes; apt only
//! looks at those. Writes (`PUT`/`DELETE` of raw files) answer as the API does.

mod feed;
pub(crate) mod send;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use packyard_formats::npm::NpmPath;
use packyard_formats::pypi::PypiPath;
use packyard_formats::repo_path::RepoPath;

use crate::app::App;
use crate::db;
use crate::formats::{anyfile, deb, npm, python, rpm};
use crate::http::auth;
use crate::http::error::ApiError;

// The request itself rather than its method and headers as extractors: those would be
// copied out of it on every request.
pub async fn serve(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name, path)): Path<(String, String, String)>,
    request: Request,
) -> Response {
    let (method, headers) = (request.method(), request.headers());
    if method != Method::GET && method != Method::HEAD {
        return write(&app, client, &owner, &name, &path, request)
            .await
            .unwrap_or_else(IntoResponse::into_response);
    }
    let token = auth::basic_token(headers);
    respond(&app, client, token, &owner, &name, &path, method, headers).await
}

/// `PUT` and `DELETE` of the paths that take them.
async fn write(
    app: &App,
    client: SocketAddr,
    owner: &str,
    name: &str,
    path: &str,
    request: Request,
) -> Result<Response, ApiError> {
    let method = request.method().clone();
    let (parts, body) = request.into_parts();
    match (RepoPath::parse(path), method) {
        (
            Some(RepoPath::Raw {
                name: file_name,
                version,
                filename,
            }),
            m,
        ) if m == Method::PUT || m == Method::DELETE => {
            let headers = &parts.headers;
            if m == Method::PUT {
                let file = (file_name.as_str(), version.as_str(), filename.as_str());
                return anyfile::serve::upload(app, client, headers, owner, name, file, body).await;
            }
            let wanted = anyfile::serve::Wanted::Raw {
                name: &file_name,
                version: &version,
                filename: &filename,
            };
            anyfile::serve::delete(app, client, headers, owner, name, wanted).await
        }
        (Some(RepoPath::Npm(npm_path)), m) => {
            npm::serve::write(app, client, &parts.headers, &m, owner, name, npm_path, body).await
        }
        (None, _) if path.starts_with("raw/") => Err(ApiError::BadRequest(format!(
            "{path:?} is not a raw file path: raw/NAME/VERSION/FILE, each part 1 to 200 \
             characters without '/', '\\', '..', spaces, control characters, '\"', '%', '?' \
             or '#', not starting with '.'"
        ))),
        (Some(RepoPath::Pypi(PypiPath::Upload)), m) if m == Method::POST => {
            let request = Request::from_parts(parts, body);
            python::serve::upload(app, client, owner, name, request).await
        }
        _ => Ok(StatusCode::METHOD_NOT_ALLOWED.into_response()),
    }
}

/// `/priv/TOKEN/OWNER/REPO/...`: the token in the path instead of the header.
pub async fn serve_with_path_token(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((token, owner, name, path)): Path<(String, String, String, String)>,
    request: Request,
) -> Response {
    let (method, headers) = (request.method(), request.headers());
    respond(
        &app,
        client,
        Some(token),
        &owner,
        &name,
        &path,
        method,
        headers,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn respond(
    app: &App,
    client: SocketAddr,
    token: Option<String>,
    owner: &str,
    name: &str,
    path: &str,
    method: &Method,
    headers: &HeaderMap,
) -> Response {
    match dispatch(app, client, token, owner, name, path, method, headers).await {
        Ok(response) => response,
        Err(ApiError::Internal(e)) => {
            tracing::error!(error = %format!("{e:#}"), path = %path, "serving a repository file failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        Err(ApiError::TooManyRequests) => StatusCode::TOO_MANY_REQUESTS.into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

#[allow(clippy::too_many_arguments)]
async fn dispatch(
    app: &App,
    client: SocketAddr,
    token: Option<String>,
    owner: &str,
    name: &str,
    path: &str,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let parsed = RepoPath::parse(path).ok_or_else(|| ApiError::not_found(path))?;
    // Credentials that match nothing do not stop reads of a public repository: a host with a
    // stale token in its source line keeps working.
    let caller = auth::caller(app, token, client.ip()).await?;
    let repo = auth::repo_for_reader(app, &caller, owner, name).await?;
    let read_token = match &caller {
        auth::Caller::Reader { name, .. } => Some(name.clone()),
        _ => None,
    };
    let request = send::Request {
        method,
        headers,
        client: client.ip(),
        read_token,
    };
    match parsed {
        RepoPath::GpgKey => {
            // Signing keys and package keys: what apt's signed-by and dnf's gpgkey= need.
            let keys = db::gpg_keys::list(&app.db, repo.id).await?;
            let armored: Vec<String> = keys.into_iter().map(|k| k.public_armored).collect();
            let keyring = crate::sign::keyring(&armored)?;
            let file = send::File::dynamic("application/pgp-keys", keyring.into());
            Ok(send::send(app, &request, file).await?)
        }
        RepoPath::Feed => {
            let base = auth::base_url(app, headers);
            let xml = feed::atom(app, &repo, &base).await?;
            let file = send::File::dynamic("application/atom+xml; charset=utf-8", xml.into());
            Ok(send::send(app, &request, file).await?)
        }
        RepoPath::GpgKeyFile { name } => {
            let key = db::gpg_keys::by_name(&app.db, repo.id, &name)
                .await?
                .ok_or_else(|| ApiError::not_found(name))?;
            let file = send::File::dynamic("application/pgp-keys", key.public_armored.into());
            Ok(send::send(app, &request, file).await?)
        }
        RepoPath::Apt { os, path } => deb::serve::serve(app, &repo, &os, path, &request).await,
        RepoPath::Yum {
            os,
            version,
            arch,
            path,
        } => rpm::serve::serve(app, &repo, &os, &version, &arch, path, &request).await,
        RepoPath::AnyFile { filename } => {
            let wanted = anyfile::serve::Wanted::Pushed {
                filename: &filename,
            };
            anyfile::serve::download(app, &repo, wanted, &request).await
        }
        RepoPath::Pypi(path) => python::serve::read(app, &repo, path, &request).await,
        RepoPath::Npm(NpmPath::WhoAmI) => match &caller {
            auth::Caller::User(user) => {
                Ok(axum::Json(serde_json::json!({ "username": user.name })).into_response())
            }
            _ => Err(ApiError::Unauthenticated),
        },
        RepoPath::Npm(path) => npm::serve::read(app, &repo, path, &request).await,
        RepoPath::Raw {
            name,
            version,
            filename,
        } => {
            let wanted = anyfile::serve::Wanted::Raw {
                name: &name,
                version: &version,
                filename: &filename,
            };
            anyfile::serve::download(app, &repo, wanted, &request).await
        }
    }
}
