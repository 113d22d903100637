//! Signing in and out, and the signed-in user's own account: API token, password, sessions.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::http::header::USER_AGENT;
use axum::response::Response;
use serde::Deserialize;

use super::session::{self, Posted, Visitor};
use super::{Layout, UiError, render, see_other, view};
use crate::app::App;
use crate::audit::{self, Actor, Event};
use crate::db;

#[derive(Template)]
#[template(path = "ui/login.html")]
struct LoginPage {
    l: Layout,
    login: String,
    error: Option<&'static str>,
    /// Where to go after signing in.
    next: String,
}

#[derive(Deserialize, Default)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
}

/// `next` if it is a path of this site, else nothing.
fn local(next: &str) -> String {
    if super::is_local_path(next) {
        next.chars().take(2000).collect()
    } else {
        String::new()
    }
}

pub async fn login_page(
    State(app): State<App>,
    Query(query): Query<NextQuery>,
    visitor: Visitor,
) -> Result<Response, UiError> {
    let next = local(&query.next);
    if visitor.user.is_some() {
        return Ok(see_other(if next.is_empty() { "/" } else { &next }));
    }
    let l = Layout::new(&app, &visitor, "Sign in");
    render(
        &visitor,
        &LoginPage {
            l,
            login: String::new(),
            error: None,
            next,
        },
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    login: String,
    password: String,
    #[serde(default)]
    next: String,
}

/// Checks the password (failures count against the address, as the API's do), then starts a
/// new session: a fresh id, whatever cookie came in.
pub async fn login(
    State(app): State<App>,
    headers: HeaderMap,
    Posted { visitor, form }: Posted<LoginForm>,
) -> Result<Response, UiError> {
    if app.auth_failures.blocked(visitor.client) {
        return Err(UiError::TooManyRequests);
    }
    let login = form.login.trim();
    let user = if login.is_empty() || login.len() > 320 || form.password.len() > 1024 {
        None
    } else {
        db::users::by_login(&app.db, login, &form.password).await?
    };
    let Some(user) = user else {
        app.auth_failures.record(visitor.client);
        let event = Event::new(Actor::User(login.chars().take(64).collect()), "ui.login")
            .ip(visitor.client)
            .outcome(audit::Outcome::Refused);
        audit::record(&app.db, event).await;
        let l = Layout::new(&app, &visitor, "Sign in");
        let mut response = render(
            &visitor,
            &LoginPage {
                l,
                login: login.chars().take(320).collect(),
                error: Some("That user name or password is not right."),
                next: local(&form.next),
            },
        )?;
        *response.status_mut() = axum::http::StatusCode::UNAUTHORIZED;
        return Ok(response);
    };
    let user_agent = headers
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let id =
        db::sessions::create(&app.db, user.id, &visitor.client.to_string(), user_agent).await?;
    let event = Event::new(Actor::User(user.name.clone()), "ui.login").ip(visitor.client);
    audit::record(&app.db, event).await;
    let next = local(&form.next);
    let mut response = see_other(&if next.is_empty() {
        format!("/{}", user.name)
    } else {
        next
    });
    let (name, value) = session::session_cookie(Some(&id), visitor.is_secure());
    response.headers_mut().append(name, value);
    Ok(response)
}

#[derive(Deserialize)]
pub struct Empty {}

/// Ends this session: its row is deleted, so the cookie is worthless even if kept.
pub async fn logout(
    State(app): State<App>,
    Posted { visitor, .. }: Posted<Empty>,
) -> Result<Response, UiError> {
    if let Some(id) = visitor.session_id() {
        db::sessions::delete(&app.db, id).await?;
    }
    let mut response = see_other("/");
    let (name, value) = session::session_cookie(None, visitor.is_secure());
    response.headers_mut().append(name, value);
    Ok(response)
}

struct SessionRow {
    current: bool,
    started: String,
    last_seen: String,
    address: String,
    agent: String,
}

#[derive(Template)]
#[template(path = "ui/account.html")]
struct AccountPage {
    l: Layout,
    name: String,
    email: String,
    tokens: i64,
    token_created: String,
    new_token: Option<view::Snippet>,
    message: Option<String>,
    sessions: Vec<SessionRow>,
    orgs: Vec<String>,
}

async fn account_page(
    app: &App,
    visitor: &Visitor,
    new_token: Option<String>,
    message: Option<String>,
) -> Result<Response, UiError> {
    let user = visitor.require_user()?;
    let (email, tokens, token_created) = db::users::account(&app.db, user.id).await?;
    let now = db::now();
    let current = visitor.session_hash();
    let sessions = db::sessions::list(&app.db, user.id)
        .await?
        .into_iter()
        .map(|s| SessionRow {
            current: current.as_deref() == Some(s.id_hash.as_str()),
            started: view::datetime(s.created_at),
            last_seen: view::relative(s.last_seen_at, now),
            address: s.ip_address.unwrap_or_default(),
            agent: s.user_agent.unwrap_or_default(),
        })
        .collect();
    let orgs = db::users::orgs_of(&app.db, user.id)
        .await?
        .into_iter()
        .map(|o| o.name)
        .collect();
    let l = Layout::new(app, visitor, "Account").crumb("/account", "Account");
    render(
        visitor,
        &AccountPage {
            l,
            name: user.name.clone(),
            email: email.unwrap_or_default(),
            tokens,
            token_created: token_created.map(view::datetime).unwrap_or_default(),
            new_token: new_token.map(|t| view::Snippet::new("new-api-token", "API token", t)),
            message,
            sessions,
            orgs,
        },
    )
}

pub async fn page(State(app): State<App>, visitor: Visitor) -> Result<Response, UiError> {
    account_page(&app, &visitor, None, None).await
}

/// Replaces the user's API tokens with a new one, shown on this response only (only its
/// hash is kept).
pub async fn regenerate_token(
    State(app): State<App>,
    Posted { visitor, .. }: Posted<Empty>,
) -> Result<Response, UiError> {
    let user = visitor.require_user()?;
    let token = db::users::regenerate_token(&app.db, user.id).await?;
    // The old token stops working here at once, and in other processes when they hear of it.
    app.tokens_changed().await?;
    let event = Event::new(Actor::User(user.name.clone()), "token.regenerate")
        .ip(visitor.client)
        .target(user.name.clone());
    audit::record(&app.db, event).await;
    account_page(&app, &visitor, Some(token), None).await
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current: String,
    new: String,
    confirm: String,
}

pub async fn change_password(
    State(app): State<App>,
    Posted { visitor, form }: Posted<PasswordForm>,
) -> Result<Response, UiError> {
    let user = visitor.require_user()?;
    if app.auth_failures.blocked(visitor.client) {
        return Err(UiError::TooManyRequests);
    }
    let valid = db::users::by_login(&app.db, &user.name, &form.current)
        .await?
        .is_some_and(|u| u.id == user.id);
    let message = if !valid {
        app.auth_failures.record(visitor.client);
        "The current password is not right; nothing was changed."
    } else if form.new.chars().count() < 12 || form.new.len() > 1024 {
        "The new password must have at least 12 characters."
    } else if form.new != form.confirm {
        "The new password and its confirmation differ."
    } else {
        db::users::set_password(&app.db, user.id, &form.new).await?;
        if let Some(hash) = visitor.session_hash() {
            db::sessions::delete_others(&app.db, user.id, &hash).await?;
        }
        let event = Event::new(Actor::User(user.name.clone()), "user.password").ip(visitor.client);
        audit::record(&app.db, event).await;
        "Password changed; your other sessions were signed out."
    };
    account_page(&app, &visitor, None, Some(message.to_owned())).await
}

pub async fn end_other_sessions(
    State(app): State<App>,
    Posted { visitor, .. }: Posted<Empty>,
) -> Result<Response, UiError> {
    let user = visitor.require_user()?;
    let hash = visitor.session_hash().unwrap_or_default();
    let ended = db::sessions::delete_others(&app.db, user.id, &hash).await?;
    let message = format!("Signed out {ended} other session(s).");
    account_page(&app, &visitor, None, Some(message)).await
}
