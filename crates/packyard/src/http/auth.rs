//! Who is calling, and which repositories they may see or change.
//!
//! Tokens travel as the HTTP basic-auth user name with an empty password, as packagecloud's
//! clients send them (or, for repository files, in the older `/priv/TOKEN/...` path form).
//! An API token speaks for a user; a read token reads one private repository; a master token
//! only mints read tokens. A private repository is indistinguishable from a missing one to
//! anyone who may not read it: both answer 404. Failed authentications are counted per client
//! address, and an address that fails too often is refused for a while.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use base64::Engine as _;

use super::error::ApiError;
use crate::app::App;
use crate::db::tokens::Credential;
use crate::db::{self, repos::Repo, tokens::MasterToken, users::User};

const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// Failed authentications per client address, in fixed one-minute windows.
pub struct FailureLimiter {
    /// Failures an address may make per window before it is refused.
    max_failures: u32,
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl FailureLimiter {
    pub fn new(max_failures: u32) -> FailureLimiter {
        FailureLimiter {
            max_failures,
            windows: Mutex::default(),
        }
    }

    pub fn blocked(&self, addr: IpAddr) -> bool {
        let windows = self
            .windows
            .lock()
            .expect("the limiter lock is never poisoned");
        windows.get(&addr).is_some_and(|(start, count)| {
            start.elapsed() < FAILURE_WINDOW && *count >= self.max_failures
        })
    }

    pub fn record(&self, addr: IpAddr) {
        metrics::counter!("packyard_auth_failures_total").increment(1);
        let mut windows = self
            .windows
            .lock()
            .expect("the limiter lock is never poisoned");
        if windows.len() > 100_000 {
            windows.retain(|_, (start, _)| start.elapsed() < FAILURE_WINDOW);
        }
        let entry = windows.entry(addr).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= FAILURE_WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
    }
}

/// What a request's credentials turned out to be.
pub enum Caller {
    Anonymous,
    User(User),
    /// A working read token of this repository.
    Reader {
        repository_id: i64,
        name: String,
    },
    /// A master token (its current value, or the previous one during a rotation's grace).
    Master {
        token: MasterToken,
        previous: bool,
    },
    /// A token that matches nothing.
    Invalid,
}

/// What an `Authorization` header carries: a bearer token, or basic-auth user and password.
pub enum Credentials {
    Bearer(String),
    Basic { user: String, password: String },
}

/// The credentials of a request, if it has any in a form this server reads.
pub fn credentials(headers: &HeaderMap) -> Option<Credentials> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        let token = encoded.trim();
        return (!token.is_empty()).then(|| Credentials::Bearer(token.to_owned()));
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':').unwrap_or((decoded.as_str(), ""));
    Some(Credentials::Basic {
        user: user.to_owned(),
        password: password.to_owned(),
    })
}

/// The token in an `Authorization` header, if there is one.
pub fn basic_token(headers: &HeaderMap) -> Option<String> {
    let token = match credentials(headers)? {
        // npm sends its `_authToken` as a bearer token.
        Credentials::Bearer(token) => token,
        // twine and pip send `__token__` as the user and the token as the password, as PyPI
        // asks; everything else sends the token as the user.
        Credentials::Basic { user, password } if user == "__token__" => password,
        Credentials::Basic { user, .. } => user,
    };
    (!token.is_empty()).then_some(token)
}

/// Resolves `token` (from the header or the path) for a client at `addr`, through the read
/// cache: a private read costs no query while nothing changed.
pub async fn caller(app: &App, token: Option<String>, addr: IpAddr) -> Result<Caller, ApiError> {
    let Some(token) = token else {
        return Ok(Caller::Anonymous);
    };
    if app.auth_failures.blocked(addr) {
        return Err(ApiError::TooManyRequests);
    }
    let key = packyard_formats::digest::sha256_hex(token.as_bytes());
    let load = db::tokens::credential(&app.db, &token);
    let credential = app.cache.credential(key, load).await?;
    let Some(credential) = credential.filter(|c| c.works_at(db::now())) else {
        app.auth_failures.record(addr);
        return Ok(Caller::Invalid);
    };
    Ok(match credential.as_ref().clone() {
        Credential::Api(user) => Caller::User(user),
        Credential::Read {
            repository_id,
            name,
            ..
        } => Caller::Reader {
            repository_id,
            name,
        },
        Credential::Master {
            token, previous, ..
        } => Caller::Master { token, previous },
    })
}

/// The API caller, when they sent a valid API token; any other token is an error, no token
/// is not.
pub async fn optional_user(
    app: &App,
    headers: &HeaderMap,
    addr: IpAddr,
) -> Result<Option<User>, ApiError> {
    match caller(app, basic_token(headers), addr).await? {
        Caller::Anonymous => Ok(None),
        Caller::User(user) => Ok(Some(user)),
        _ => Err(ApiError::Unauthenticated),
    }
}

pub async fn require_user(app: &App, headers: &HeaderMap, addr: IpAddr) -> Result<User, ApiError> {
    optional_user(app, headers, addr)
        .await?
        .ok_or(ApiError::Unauthenticated)
}

fn not_found(owner: &str, name: &str) -> ApiError {
    ApiError::not_found(format!("repository {owner}/{name} not found"))
}

/// Whether `caller` may read `repo`'s metadata, packages and keys.
pub async fn may_read(app: &App, caller: &Caller, repo: &Repo) -> Result<bool, ApiError> {
    if !repo.private {
        return Ok(true);
    }
    Ok(match caller {
        Caller::User(user) => db::users::acts_for(&app.db, user, repo.owner_id).await?,
        Caller::Reader { repository_id, .. } => *repository_id == repo.id,
        _ => false,
    })
}

/// A repository `caller` may read; 404 for a private one they may not, as for a missing one.
/// Looked up through the read cache: repository reads ask for it on every request.
pub async fn repo_for_reader(
    app: &App,
    caller: &Caller,
    owner: &str,
    name: &str,
) -> Result<Arc<Repo>, ApiError> {
    let load = db::repos::by_owner_and_name(&app.db, owner, name);
    let repo = app
        .cache
        .repo(owner, name, load)
        .await?
        .ok_or_else(|| not_found(owner, name))?;
    if may_read(app, caller, &repo).await? {
        Ok(repo)
    } else {
        Err(not_found(owner, name))
    }
}

/// A repository the API caller may read: public, or theirs.
pub async fn readable_repo(
    app: &App,
    user: Option<&User>,
    owner: &str,
    name: &str,
) -> Result<Arc<Repo>, ApiError> {
    let caller = user.map_or(Caller::Anonymous, |u| Caller::User(u.clone()));
    repo_for_reader(app, &caller, owner, name).await
}

/// A repository the caller may change: theirs, or their organisation's.
pub async fn writable_repo(
    app: &App,
    user: &User,
    owner: &str,
    name: &str,
) -> Result<Arc<Repo>, ApiError> {
    let repo = readable_repo(app, Some(user), owner, name).await?;
    if !db::users::acts_for(&app.db, user, repo.owner_id).await? {
        return Err(ApiError::Forbidden(format!(
            "only {owner} may change {owner}/{name}"
        )));
    }
    Ok(repo)
}

/// The URL clients reach this server at.
pub fn base_url(app: &App, headers: &HeaderMap) -> String {
    if let Some(url) = &app.config.public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}
