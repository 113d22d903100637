//! Who is browsing, and whether a form post really came from one of our pages.
//!
//! A signed-in browser carries `packyard_session` (HttpOnly, SameSite=Lax, Secure when the
//! public URL is https). Every form carries a token: the HMAC of the session id under the
//! server secret, or, before sign-in, of a random `packyard_form` cookie. A post is refused
//! when its token is wrong, when `Sec-Fetch-Site` says cross-site, or when its `Origin` is
//! not this server's: the token alone would not stop a page that can set cookies on a
//! sibling host, and the headers alone are missing on plain http. Cookies never
//! authenticate the API: its handlers read only the `Authorization` header.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::header::{COOKIE, HOST, ORIGIN, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use base64::Engine as _;
use cookie::{Cookie, SameSite};
use rand::RngCore;
use serde::de::DeserializeOwned;

use super::UiError;
use crate::app::App;
use crate::db::{self, users::User};

pub const SESSION_COOKIE: &str = "packyard_session";
const FORM_COOKIE: &str = "packyard_form";
/// The name of the form field that carries the token.
pub const TOKEN_FIELD: &str = "csrf";

/// The person behind a request to the UI.
pub struct Visitor {
    pub user: Option<User>,
    pub admin: bool,
    pub client: IpAddr,
    /// The session's id (from its cookie), when signed in.
    session_id: Option<String>,
    /// The anonymous form cookie, when not signed in: read from the request or minted now.
    form_key: Option<String>,
    /// Set when `form_key` was minted for this response.
    mint_form_cookie: bool,
    secure: bool,
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| Cookie::parse(pair.trim().to_owned()).ok())
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

fn random_id() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether browsers reach this server over https (its configured public URL says so).
pub fn secure(app: &App) -> bool {
    app.config
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"))
}

/// A `Set-Cookie` value for `name`; `None` deletes it.
pub fn set_cookie(name: &'static str, value: Option<&str>, secure: bool) -> HeaderValue {
    let mut cookie = Cookie::build((name, value.unwrap_or_default().to_owned()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure);
    if value.is_none() {
        cookie = cookie.max_age(cookie::time::Duration::ZERO);
    }
    HeaderValue::from_str(&cookie.build().to_string()).expect("cookie values are URL-safe")
}

impl FromRequestParts<App> for Visitor {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Visitor, UiError> {
        let client = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0.ip());
        let secure = secure(app);
        let mut visitor = Visitor {
            user: None,
            admin: false,
            client,
            session_id: None,
            form_key: None,
            mint_form_cookie: false,
            secure,
        };
        if let Some(id) = cookie_value(&parts.headers, SESSION_COOKIE)
            && let Some((user, admin)) = db::sessions::user(&app.db, &id).await?
        {
            visitor.admin = admin;
            visitor.user = Some(user);
            visitor.session_id = Some(id);
            return Ok(visitor);
        }
        match cookie_value(&parts.headers, FORM_COOKIE) {
            Some(key) => visitor.form_key = Some(key),
            None => {
                visitor.form_key = Some(random_id());
                visitor.mint_form_cookie = true;
            }
        }
        Ok(visitor)
    }
}

impl Visitor {
    fn token_message(&self) -> Option<String> {
        match (&self.session_id, &self.form_key) {
            (Some(id), _) => Some(format!("session:{id}")),
            (None, Some(key)) => Some(format!("form:{key}")),
            (None, None) => None,
        }
    }

    /// The token this visitor's forms carry.
    pub fn form_token(&self, app: &App) -> String {
        self.token_message()
            .map(|m| app.secrets.mac(m.as_bytes()))
            .unwrap_or_default()
    }

    fn token_matches(&self, app: &App, token: &str) -> bool {
        self.token_message()
            .is_some_and(|m| app.secrets.verify_mac(m.as_bytes(), token))
    }

    /// The cookie a response to this visitor must set, if any.
    pub fn cookie_to_set(&self) -> Option<HeaderValue> {
        self.mint_form_cookie
            .then(|| set_cookie(FORM_COOKIE, self.form_key.as_deref(), self.secure))
    }

    pub fn session_hash(&self) -> Option<String> {
        self.session_id.as_deref().map(db::sessions::hash)
    }

    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    /// The signed-in user, or a redirect to the sign-in page.
    pub fn require_user(&self) -> Result<&User, UiError> {
        self.user.as_ref().ok_or(UiError::SignIn)
    }

    pub fn is_secure(&self) -> bool {
        self.secure
    }
}

/// Refuses a post from another site: `Sec-Fetch-Site: cross-site`, or an `Origin` that is not
/// this server's (the public URL's, or the `Host` the request came to).
pub fn check_origin(app: &App, headers: &HeaderMap) -> Result<(), UiError> {
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if header("sec-fetch-site") == Some("cross-site") {
        return Err(UiError::CrossSite(
            "the browser says this form was sent from another site".into(),
        ));
    }
    let Some(origin) = header(ORIGIN.as_str()) else {
        return Ok(());
    };
    let ours = match &app.config.public_url {
        Some(url) => origin_of(url),
        None => header(HOST.as_str()).map(|host| format!("http://{host}")),
    };
    let forwarded_https = header(HOST.as_str()).map(|host| format!("https://{host}"));
    if Some(origin) == ours.as_deref() || Some(origin) == forwarded_https.as_deref() {
        Ok(())
    } else {
        Err(UiError::CrossSite(format!(
            "this form was sent from {origin}, which is not this server"
        )))
    }
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split('/').next()?;
    Some(format!("{scheme}://{host}"))
}

/// A form post from one of our pages: the visitor, their form decoded as `T`, and nothing
/// else gets through (token and origin checked).
pub struct Posted<T> {
    pub visitor: Visitor,
    pub form: T,
}

/// The most a UI form (not an upload) may hold.
const MAX_FORM_BYTES: usize = 64 * 1024;

impl<T: DeserializeOwned> FromRequest<App> for Posted<T> {
    type Rejection = UiError;

    async fn from_request(request: Request, app: &App) -> Result<Posted<T>, UiError> {
        let (mut parts, body) = request.into_parts();
        let visitor = Visitor::from_request_parts(&mut parts, app).await?;
        check_origin(app, &parts.headers)?;
        let body = axum::body::to_bytes(body, MAX_FORM_BYTES)
            .await
            .map_err(|_| UiError::BadRequest("the form is too large".into()))?;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
            .map_err(|_| UiError::BadRequest("the form could not be read".into()))?;
        let token = pairs
            .iter()
            .find(|(k, _)| k == TOKEN_FIELD)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default();
        verify_token(app, &visitor, token)?;
        let form = serde_urlencoded::from_bytes(&body)
            .map_err(|e| UiError::BadRequest(format!("the form is incomplete: {e}")))?;
        Ok(Posted { visitor, form })
    }
}

/// Refuses a form whose token is not this visitor's.
pub fn verify_token(app: &App, visitor: &Visitor, token: &str) -> Result<(), UiError> {
    if visitor.token_matches(app, token) {
        Ok(())
    } else {
        Err(UiError::CrossSite(
            "the form's security token is missing or out of date (were you signed out?)".into(),
        ))
    }
}

/// The `Set-Cookie` header that starts a session.
pub fn session_cookie(id: Option<&str>, secure: bool) -> (axum::http::HeaderName, HeaderValue) {
    (SET_COOKIE, set_cookie(SESSION_COOKIE, id, secure))
}
