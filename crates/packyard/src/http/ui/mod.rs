//! The web UI: server-rendered pages (askama templates under `templates/ui/`) for browsing
//! repositories and packages, copying install instructions, uploading, and managing tokens,
//! signing keys, accounts and the server. Every page works without JavaScript but for the
//! copy buttons; every change is a POST with a form token (`session`). Pages answer only
//! to browsers' paths: repository files, install scripts and the API are untouched.

mod account;
mod admin;
pub(crate) mod assets;
mod home;
mod keys;
mod packages;
mod repo;
pub(crate) mod session;
mod tokens;
mod upload;
pub(crate) mod view;

use askama::Template;
use axum::Router;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, REFERRER_POLICY, RETRY_AFTER,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::app::App;
use crate::http::error::ApiError;
use session::Visitor;

const POLICY: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; \
    script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The UI's routes. Static segments win over the repository files' `/{owner}/{repo}/{*path}`.
pub fn routes() -> Router<App> {
    Router::new()
        .route("/", get(home::index))
        .route("/static/{file}", get(assets::serve))
        .route("/login", get(account::login_page).post(account::login))
        .route("/logout", post(account::logout))
        .route("/account", get(account::page))
        .route("/account/token", post(account::regenerate_token))
        .route("/account/password", post(account::change_password))
        .route("/account/sessions", post(account::end_other_sessions))
        .route("/orgs/{org}", get(home::org))
        .route("/orgs/{org}/members", post(home::change_member))
        .route("/-/status", get(admin::status))
        .route("/-/audit", get(admin::audit))
        .route("/-/retry", post(admin::retry))
        .route("/-/reindex", post(admin::reindex))
        .route("/{owner}", get(home::owner))
        .route("/{owner}/{repo}", get(repo::page))
        .route("/{owner}/{repo}/read-token", post(repo::mint_read_token))
        .route("/{owner}/{repo}/packages", get(packages::list))
        .route(
            "/{owner}/{repo}/packages/{*path}",
            get(packages::show).post(packages::act),
        )
        .route(
            "/{owner}/{repo}/upload",
            get(upload::page)
                .post(upload::upload)
                // Each file is held to the upload limit as it streams (`stage`).
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route(
            "/{owner}/{repo}/tokens",
            get(tokens::page).post(tokens::act),
        )
        .route("/{owner}/{repo}/keys", get(keys::page).post(keys::act))
        .route("/app/{owner}/{repo}/gpg", get(keys::legacy_path))
        .route("/{owner}/{repo}/stats", get(packages::stats))
        .layer(axum::middleware::from_fn(finish))
}

/// What every UI response carries: the content policy (no inline script or style), no
/// framing, no sniffing, and pages kept out of shared caches. A page that needs a signed-in
/// visitor sends them to `/login` with the way back (`?next=`).
async fn finish(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let wanted = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let is_get = request.method() == axum::http::Method::GET;
    let mut response = next.run(request).await;
    let page = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if response.status() == StatusCode::NOT_FOUND && is_get && page {
        // Maybe private: offer to sign in and come back (the same for a missing page).
        response = not_found_page(Some(&wanted));
    }
    let to_login = response.status() == StatusCode::SEE_OTHER
        && response
            .headers()
            .get(LOCATION)
            .is_some_and(|l| l == "/login");
    if to_login && is_get {
        let query = serde_urlencoded::to_string([("next", wanted.as_str())]).unwrap_or_default();
        if let Ok(value) = HeaderValue::from_str(&format!("/login?{query}")) {
            response.headers_mut().insert(LOCATION, value);
        }
    }
    let headers = response.headers_mut();
    let html = headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if html {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// What the layout of every page needs.
pub struct Layout {
    pub title: String,
    pub user: Option<String>,
    pub admin: bool,
    pub csrf: String,
    pub css: &'static str,
    pub js: &'static str,
    /// Links above the heading: (href, label), the last one the current page.
    pub crumbs: Vec<(String, String)>,
}

impl Layout {
    pub fn new(app: &App, visitor: &Visitor, title: impl Into<String>) -> Layout {
        Layout {
            title: title.into(),
            user: visitor.user.as_ref().map(|u| u.name.clone()),
            admin: visitor.admin,
            csrf: visitor.form_token(app),
            css: assets::css_path(),
            js: assets::js_path(),
            crumbs: Vec::new(),
        }
    }

    pub fn crumb(mut self, href: impl Into<String>, label: impl Into<String>) -> Layout {
        self.crumbs.push((href.into(), label.into()));
        self
    }
}

/// A rendered page, with the form cookie a first visit needs.
pub fn render(visitor: &Visitor, template: &impl Template) -> Result<Response, UiError> {
    let body = template
        .render()
        .map_err(|e| UiError::Internal(anyhow::anyhow!("rendering a page: {e}")))?;
    let mut response = (
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        body,
    )
        .into_response();
    if let Some(cookie) = visitor.cookie_to_set() {
        response
            .headers_mut()
            .append(axum::http::header::SET_COOKIE, cookie);
    }
    Ok(response)
}

/// Whether `path` is a path of this site (not `//host/...`, which browsers read as another
/// site), so a sign-in may return there.
pub fn is_local_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && !path.starts_with("/\\")
        && !path.chars().any(char::is_control)
}

/// A redirect after a successful post (303, so a reload does not post again).
pub fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

/// Why a page could not be shown. Each kind is a page of its own with the status code;
/// a private repository a visitor may not read is `NotFound`, as a missing one.
#[derive(Debug)]
pub enum UiError {
    /// Not signed in: to the sign-in page, and back here after.
    SignIn,
    NotFound,
    Forbidden(String),
    /// A form post from elsewhere, or without its token.
    CrossSite(String),
    BadRequest(String),
    /// Refused with the status the API gives the same refusal: a conflict (409), an upload too
    /// large (413), too slow (408) or for a full disk (507).
    Refused(StatusCode, String),
    /// The database or the blob storage did not answer, or the process is at its limit of
    /// uploads: 503 with `Retry-After`, as the API answers.
    Unavailable(String),
    TooManyRequests,
    Internal(anyhow::Error),
}

impl From<anyhow::Error> for UiError {
    fn from(e: anyhow::Error) -> UiError {
        UiError::Internal(e)
    }
}

impl From<ApiError> for UiError {
    fn from(e: ApiError) -> UiError {
        match e {
            ApiError::NotFound(_) => UiError::NotFound,
            ApiError::Unauthenticated => UiError::SignIn,
            ApiError::Forbidden(m) => UiError::Forbidden(m),
            ApiError::BadRequest(m) => UiError::BadRequest(m),
            ApiError::Conflict(m) => UiError::Refused(StatusCode::CONFLICT, m),
            ApiError::PayloadTooLarge(m) => UiError::Refused(StatusCode::PAYLOAD_TOO_LARGE, m),
            ApiError::RequestTimeout(m) => UiError::Refused(StatusCode::REQUEST_TIMEOUT, m),
            ApiError::InsufficientStorage(m) => {
                tracing::error!(error = %m, "an upload found the disk full");
                UiError::Refused(StatusCode::INSUFFICIENT_STORAGE, m)
            }
            ApiError::Busy(m) => UiError::Unavailable(m),
            ApiError::StorageUnavailable(m) => {
                tracing::error!(error = %m, "the blob storage failed a request");
                UiError::Unavailable(m)
            }
            ApiError::DatabaseUnavailable(m) => {
                tracing::error!(error = %m, "the database failed a request");
                UiError::Unavailable(m)
            }
            ApiError::Invalid { field, message } => {
                UiError::BadRequest(format!("{field} {message}"))
            }
            ApiError::TooManyRequests => UiError::TooManyRequests,
            ApiError::Internal(e) => UiError::Internal(e),
        }
    }
}

#[derive(Template)]
#[template(path = "ui/error.html")]
struct ErrorPage {
    l: Layout,
    heading: &'static str,
    message: String,
    /// Where signing in from this page returns to.
    sign_in_next: Option<String>,
}

const NOT_FOUND: &str =
    "There is nothing here, or it is private and you are not signed in as someone who may see it.";

fn error_page(
    status: StatusCode,
    heading: &'static str,
    message: String,
    sign_in_next: Option<String>,
) -> Response {
    let page = ErrorPage {
        l: Layout {
            title: heading.to_owned(),
            user: None,
            admin: false,
            csrf: String::new(),
            css: assets::css_path(),
            js: assets::js_path(),
            crumbs: Vec::new(),
        },
        heading,
        message,
        sign_in_next,
    };
    let body = page.render().unwrap_or_else(|_| heading.to_owned());
    (
        status,
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// The 404 page, with a sign-in link that returns to `path`.
fn not_found_page(path: Option<&str>) -> Response {
    let next = path.map(|p| serde_urlencoded::to_string([("next", p)]).unwrap_or_default());
    error_page(
        StatusCode::NOT_FOUND,
        "Not found",
        NOT_FOUND.to_owned(),
        next,
    )
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let (status, heading, message) = match self {
            UiError::SignIn => return see_other("/login"),
            UiError::NotFound => return not_found_page(None),
            UiError::Forbidden(m) => (StatusCode::FORBIDDEN, "Not allowed", m),
            UiError::CrossSite(m) => (
                StatusCode::FORBIDDEN,
                "Form refused",
                format!("{m}. Go back, reload the page and try again."),
            ),
            UiError::BadRequest(m) => (StatusCode::BAD_REQUEST, "That did not work", m),
            UiError::Refused(status, m) => (status, "That did not work", m),
            UiError::Unavailable(m) => {
                let status = StatusCode::SERVICE_UNAVAILABLE;
                let mut page = error_page(status, "Try again shortly", m, None);
                page.headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from_static("1"));
                return page;
            }
            UiError::TooManyRequests => (
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts",
                "Too many failed sign-ins from your address; wait a minute and try again."
                    .to_owned(),
            ),
            UiError::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "a UI page failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The server could not show this page; the error is in its log.".to_owned(),
                )
            }
        };
        error_page(status, heading, message, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page refused for the database, the storage or a full disk says so with the status the
    /// API gives, not as a bad request.
    #[test]
    fn refusals_keep_the_status_the_api_gives_them() {
        let cases = [
            (ApiError::DatabaseUnavailable("down".into()), 503),
            (ApiError::StorageUnavailable("down".into()), 503),
            (ApiError::Busy("busy".into()), 503),
            (ApiError::InsufficientStorage("full".into()), 507),
            (ApiError::PayloadTooLarge("big".into()), 413),
            (ApiError::RequestTimeout("slow".into()), 408),
            (ApiError::Conflict("taken".into()), 409),
            (ApiError::BadRequest("bad".into()), 400),
        ];
        for (error, status) in cases {
            let response = UiError::from(error).into_response();
            assert_eq!(response.status().as_u16(), status);
            let retry = response.headers().get(RETRY_AFTER);
            assert_eq!(retry.is_some(), status == 503, "Retry-After with {status}");
        }
    }
}
