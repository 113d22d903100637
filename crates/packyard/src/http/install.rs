//! Install scripts and the endpoints they (and configuration-management tools) call, under
//! `/install/repositories/OWNER/REPO/`: `script.deb.sh`, `script.rpm.sh`, `config_file.list`,
//! `config_file.repo`, `tokens.text`, `gpg_key_url.list`, `gpg_key_url.repo`, `rpm_base_url`.
//!
//! For a private repository the script is fetched with a master token, which the server
//! writes into it; the script trades it at `tokens.text` for a read token named after the
//! host, and fetches the configuration with that read token, which the configuration embeds.
//! An unknown OS or distribution answers 404, so the script prints how to override it.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::app::App;
use crate::db::{self, repos::Repo, tokens::MasterToken};
use crate::distros::{self, Distro, PackageFormat};
use crate::http::api::body;
use crate::http::auth::{self, Caller};
use crate::http::error::ApiError;
use crate::keyring;

const DEB_SCRIPT: &str = include_str!("../../templates/install/script.deb.sh");
const RPM_SCRIPT: &str = include_str!("../../templates/install/script.rpm.sh");
const PYTHON_SCRIPT: &str = include_str!("../../templates/install/script.python.sh");
const NODE_SCRIPT: &str = include_str!("../../templates/install/script.node.sh");

/// How the caller may use a repository's install endpoints.
enum Access {
    /// A public repository: no token goes into scripts or configuration.
    Public,
    /// A private repository read with this read token.
    Reader(String),
    /// A private repository's master token (`previous` during a rotation's grace).
    Master { token: MasterToken, previous: bool },
}

async fn access(
    app: &App,
    headers: &HeaderMap,
    client: SocketAddr,
    owner: &str,
    name: &str,
) -> Result<(Repo, Access), ApiError> {
    let token = auth::basic_token(headers);
    let caller = auth::caller(app, token.clone(), client.ip()).await?;
    let missing = || ApiError::not_found(format!("repository {owner}/{name} not found"));
    let repo = db::repos::by_owner_and_name(&app.db, owner, name)
        .await?
        .ok_or_else(missing)?;
    if !repo.private {
        return Ok((repo, Access::Public));
    }
    let access = match caller {
        Caller::Reader { repository_id, .. } if repository_id == repo.id => {
            Access::Reader(token.unwrap_or_default())
        }
        Caller::Master { token, previous } if token.repository_id == repo.id => {
            Access::Master { token, previous }
        }
        _ => return Err(missing()),
    };
    Ok((repo, access))
}

fn text(body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

fn script(
    app: &App,
    headers: &HeaderMap,
    repo: &Repo,
    access: &Access,
    template: &str,
) -> Response {
    // The value the caller presented: during a rotation's grace, a host still holding the
    // previous value is not handed the new one.
    let master = match access {
        Access::Master {
            token,
            previous: true,
        } => token.previous_value.as_deref().unwrap_or_default(),
        Access::Master {
            token,
            previous: false,
        } => token.value.as_str(),
        _ => "",
    };
    let body = template
        .replace("@@BASE_URL@@", &auth::base_url(app, headers))
        .replace("@@OWNER@@", &repo.owner)
        .replace("@@REPO@@", &repo.name)
        .replace(
            "@@KEYRING_PACKAGE@@",
            &keyring::package_name(&repo.owner, &repo.name),
        )
        .replace(
            "@@DEB_KEYRING@@",
            &keyring::deb_keyring_path(&repo.owner, &repo.name),
        )
        .replace(
            "@@RPM_KEY@@",
            &keyring::rpm_key_path(&repo.owner, &repo.name),
        )
        .replace("@@MASTER_TOKEN@@", master);
    (
        [
            (header::CONTENT_TYPE, "text/x-shellscript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// `script.deb.sh`, `script.rpm.sh`, `script.python.sh` (pip's configuration for the simple
/// index) and `script.node.sh` (npm's for the registry).
pub async fn script_file(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name, file)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let template = match file.as_str() {
        "script.deb.sh" => DEB_SCRIPT,
        "script.rpm.sh" => RPM_SCRIPT,
        "script.python.sh" => PYTHON_SCRIPT,
        "script.node.sh" => NODE_SCRIPT,
        _ => return Err(ApiError::not_found(format!("no install file {file}"))),
    };
    let (repo, access) = access(&app, &headers, client, &owner, &name).await?;
    Ok(script(&app, &headers, &repo, &access, template))
}

#[derive(Deserialize)]
pub struct Target {
    os: Option<String>,
    dist: Option<String>,
    /// The host a master token mints a read token for.
    name: Option<String>,
    /// `script` when the install script asks: it has installed the keyring file first.
    source: Option<String>,
}

impl Target {
    fn distro(&self, format: PackageFormat) -> Result<&'static Distro, ApiError> {
        let (Some(os), Some(dist)) = (self.os.as_deref(), self.dist.as_deref()) else {
            return Err(ApiError::not_found("os= and dist= are required"));
        };
        distros::by_path(&os.to_lowercase(), &dist.to_lowercase())
            .filter(|d| d.format == format)
            .ok_or_else(|| {
                ApiError::not_found(format!("{os}/{dist} is not a supported distribution"))
            })
    }
}

/// The read token to embed in configuration for `access`, minting one for `host` when the
/// caller holds a master token.
async fn read_token(
    app: &App,
    access: &Access,
    host: Option<&str>,
) -> Result<Option<String>, ApiError> {
    match access {
        Access::Public => Ok(None),
        Access::Reader(token) => Ok(Some(token.clone())),
        Access::Master { token, previous } => {
            let host = host.filter(|h| !h.is_empty()).ok_or_else(|| {
                ApiError::invalid(
                    "name",
                    "is required with a master token: the host the read token is for",
                )
            })?;
            let expires = if *previous {
                token.previous_expires_at
            } else {
                None
            };
            let minted = db::tokens::mint_read(&app.db, token, host, expires).await?;
            Ok(Some(minted.value))
        }
    }
}

/// What configuration for a repository is written with.
struct Configured {
    repo: Repo,
    /// This server's URL.
    base: String,
    /// This server's URL with the read token for it, if the repository is private.
    url: String,
}

/// Checks the caller's access and works out the URL that configuration embeds; a master
/// token mints the read token of `host`.
async fn configure(request: &ConfigRequest) -> Result<Configured, ApiError> {
    let ConfigRequest {
        app,
        client,
        owner,
        name,
        target,
        headers,
    } = request;
    let (repo, access) = access(app, headers, *client, owner, name).await?;
    let token = read_token(app, &access, target.name.as_deref()).await?;
    let base = auth::base_url(app, headers);
    let url = base_with_token(&base, token.as_deref());
    Ok(Configured { repo, base, url })
}

/// What every configuration endpoint reads from its request.
pub struct ConfigRequest {
    app: App,
    client: SocketAddr,
    owner: String,
    name: String,
    target: Target,
    headers: HeaderMap,
}

impl FromRequestParts<App> for ConfigRequest {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let ConnectInfo(client) = ConnectInfo::<SocketAddr>::from_request_parts(parts, app)
            .await
            .map_err(IntoResponse::into_response)?;
        let Path((owner, name)) = Path::<(String, String)>::from_request_parts(parts, app)
            .await
            .map_err(IntoResponse::into_response)?;
        let Query(target) = Query::<Target>::from_request_parts(parts, app)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(ConfigRequest {
            app: app.clone(),
            client,
            owner,
            name,
            target,
            headers: parts.headers.clone(),
        })
    }
}

/// `http://HOST` with `TOKEN:@` before the host when there is a token.
fn base_with_token(base: &str, token: Option<&str>) -> String {
    match (token, base.split_once("://")) {
        (Some(token), Some((scheme, rest))) => format!("{scheme}://{token}:@{rest}"),
        _ => base.to_owned(),
    }
}

pub async fn config_list(request: ConfigRequest) -> Result<Response, ApiError> {
    let (owner, name) = (&request.owner, &request.name);
    let distro = request.target.distro(PackageFormat::Deb)?;
    let Configured { base, url, .. } = configure(&request).await?;
    // The keyring package's file: `apt-get upgrade` keeps it current as keys change.
    let keyring = keyring::deb_keyring_path(owner, name);
    // The deb-src line as packagecloud writes it: every distribution lists Sources, even
    // without source packages, so `apt-get update` succeeds either way.
    let source = format!(
        "[signed-by={keyring}] {url}/{owner}/{name}/{}/ {} main",
        distro.os, distro.dist
    );
    Ok(text(format!(
        "# this file was generated by {base} for the repository at {base}/{owner}/{name}\n\
         deb {source}\n\
         deb-src {source}\n"
    )))
}

pub async fn config_repo(request: ConfigRequest) -> Result<Response, ApiError> {
    let (owner, name) = (&request.owner, &request.name);
    let distro = request.target.distro(PackageFormat::Rpm)?;
    let Configured { repo, base, url } = configure(&request).await?;
    let keys = db::gpg_keys::list(&request.app.db, repo.id).await?;
    // Package signatures are checked when the owner uploaded the keys they are made with.
    let gpgcheck = u8::from(keys.iter().any(|k| k.keytype == "package"));
    let tls = if base.starts_with("https://") {
        "sslverify=1\nsslcacert=/etc/pki/tls/certs/ca-bundle.crt\n"
    } else {
        ""
    };
    // dnf fails when any gpgkey= location cannot be read at the moment it imports keys, so
    // the keyring package's file is listed only for the install script, which puts it there
    // before dnf first runs; configuration management gets the URL alone.
    let installed_key = match request.target.source.as_deref() {
        Some("script") => format!(" file://{}", keyring::rpm_key_path(owner, name)),
        _ => String::new(),
    };
    let section = |id: &str, arch: &str| {
        format!(
            "[{id}]\nname={id}\nbaseurl={url}/{owner}/{name}/{}/{}/{arch}\nrepo_gpgcheck=1\ngpgcheck={gpgcheck}\n\
             enabled=1\ngpgkey={url}/{owner}/{name}/gpgkey{installed_key}\n{tls}metadata_expire=300\n",
            distro.os, distro.dist
        )
    };
    let id = format!("{owner}_{name}");
    Ok(text(format!(
        "{}\n{}",
        section(&id, "$basearch"),
        section(&format!("{id}-source"), "SRPMS")
    )))
}

pub async fn rpm_base_url(request: ConfigRequest) -> Result<Response, ApiError> {
    let (owner, name) = (&request.owner, &request.name);
    let distro = request.target.distro(PackageFormat::Rpm)?;
    let Configured { url, .. } = configure(&request).await?;
    Ok(text(format!(
        "{url}/{owner}/{name}/{}/{}/$basearch\n",
        distro.os, distro.dist
    )))
}

/// `gpg_key_url.list` and `gpg_key_url.repo`: where the repository's keyring is.
pub async fn gpg_key_url(request: ConfigRequest) -> Result<Response, ApiError> {
    let (owner, name) = (&request.owner, &request.name);
    let Configured { url, .. } = configure(&request).await?;
    Ok(text(format!("{url}/{owner}/{name}/gpgkey\n")))
}

#[derive(Deserialize)]
struct TokenRequest {
    name: String,
}

/// `POST tokens.text` with a master token and `name=HOST`: the host's read token, as text.
pub async fn tokens_text(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
    request: Bytes,
) -> Result<Response, ApiError> {
    let (_, access) = access(&app, &headers, client, &owner, &name).await?;
    if !matches!(access, Access::Master { .. }) {
        return Err(ApiError::not_found(format!(
            "repository {owner}/{name} not found"
        )));
    }
    let request: TokenRequest = body::parse(&headers, &request)?;
    let token = read_token(&app, &access, Some(request.name.trim()))
        .await?
        .unwrap_or_default();
    Ok((StatusCode::CREATED, text(token)).into_response())
}
