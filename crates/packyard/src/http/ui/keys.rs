//! `/OWNER/REPO/keys` (and packagecloud's `/app/OWNER/REPO/gpg`): the repository's signing
//! keys with their expiry (a warning under 60 days), state and, for owners, how many hosts
//! have the keyring package carrying the newest key, with rotate, retire and extend.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{Redirect, Response};
use serde::Deserialize;

use super::repo::{self, RepoHead};
use super::session::{Posted, Visitor};
use super::{Layout, UiError, render, view};
use crate::app::App;
use crate::audit::Actor;
use crate::db::{self, repos::Repo};
use crate::http::error::ApiError;
use crate::keys::{self, KeyChange, KeyError};

/// Keys expiring sooner than this get a warning.
const WARN_DAYS: i64 = 60;

pub struct KeyRow {
    pub fingerprint: String,
    pub algorithm: String,
    pub created: String,
    pub expires: String,
    pub warning: Option<String>,
    pub state: String,
    pub signing: bool,
    pub keyring_version: i64,
}

pub struct KeyAsk {
    pub question: String,
    pub action: &'static str,
    pub fingerprint: String,
    pub days: String,
}

#[derive(Template)]
#[template(path = "ui/keys.html")]
struct KeysPage {
    l: Layout,
    r: RepoHead,
    owns: bool,
    keys: Vec<KeyRow>,
    adoption: Option<String>,
    ask: Option<KeyAsk>,
    message: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct KeyQuery {
    confirm: Option<String>,
    key: Option<String>,
    days: Option<String>,
}

async fn keys_page(
    app: &App,
    visitor: &Visitor,
    repo: &Repo,
    owns: bool,
    ask: Option<KeyAsk>,
    message: Option<String>,
) -> Result<Response, UiError> {
    let (views, adoption) = keys::list(app, repo).await?;
    let keys = views
        .into_iter()
        .map(|k| KeyRow {
            warning: k
                .days_left
                .filter(|d| *d < WARN_DAYS && k.state != "retired")
                .map(|d| {
                    if d < 0 {
                        "expired".to_owned()
                    } else {
                        format!("expires in {d} days")
                    }
                }),
            expires: k
                .expires_at
                .map_or_else(|| "never".to_owned(), view::datetime),
            created: view::datetime(k.created_at),
            fingerprint: k.fingerprint,
            algorithm: k.algorithm,
            state: k.state,
            signing: k.signing,
            keyring_version: k.keyring_version,
        })
        .collect();
    let adoption = owns.then(|| {
        format!(
            "{} of {} hosts that read the repository in the last {} days have keyring version {} or later ({} lagging).",
            adoption.adopted,
            adoption.hosts,
            adoption.window_days,
            adoption.keyring_version,
            adoption.lagging()
        )
    });
    let (l, r) = repo::head(app, visitor, repo, owns, "Keys");
    render(
        visitor,
        &KeysPage {
            l,
            r,
            owns,
            keys,
            adoption,
            ask,
            message,
        },
    )
}

pub async fn page(
    State(app): State<App>,
    Path((owner, name)): Path<(String, String)>,
    Query(query): Query<KeyQuery>,
    visitor: Visitor,
) -> Result<Response, UiError> {
    let (repo, owns) = repo::visible_repo(&app, &visitor, &owner, &name).await?;
    let fingerprint = query.key.unwrap_or_default();
    // The last 16 hex digits (the long key id); the query is untrusted, so no byte slicing.
    let short = fingerprint
        .get(fingerprint.len().saturating_sub(16)..)
        .unwrap_or(&fingerprint);
    let ask = match (owns, query.confirm.as_deref()) {
        (true, Some("rotate")) => Some(KeyAsk {
            question: "Make a new signing key? It signs from now on beside the current one, which keeps signing until you retire it; hosts get the new key with the keyring package.".to_owned(),
            action: "rotate",
            fingerprint: String::new(),
            days: String::new(),
        }),
        (true, Some("retire")) => Some(KeyAsk {
            question: format!("Retire key {short}? It stops signing and leaves the keyring. Refused while hosts still lack the keyring package with the newest key."),
            action: "retire",
            fingerprint,
            days: String::new(),
        }),
        (true, Some("extend")) => {
            let days = query.days.unwrap_or_else(|| "365".to_owned());
            Some(KeyAsk {
                question: format!("Extend key {short} to expire {days} days from now? apt hosts pick it up from the keyring package; dnf hosts keep the key they imported, so rotate for those."),
                action: "extend",
                fingerprint,
                days,
            })
        }
        _ => None,
    };
    keys_page(&app, &visitor, &repo, owns, ask, None).await
}

/// packagecloud's key page address.
pub async fn legacy_path(Path((owner, name)): Path<(String, String)>) -> Redirect {
    Redirect::permanent(&format!("/{owner}/{name}/keys"))
}

#[derive(Deserialize)]
pub struct KeyForm {
    action: String,
    #[serde(default)]
    fingerprint: String,
    #[serde(default)]
    days: String,
}

pub async fn act(
    State(app): State<App>,
    Path((owner, name)): Path<(String, String)>,
    Posted { visitor, form }: Posted<KeyForm>,
) -> Result<Response, UiError> {
    let repo = repo::owned_repo(&app, &visitor, &owner, &name).await?;
    let user = visitor.require_user()?;
    let actor = Actor::User(user.name.clone());
    let fingerprint = form.fingerprint.trim();
    let (action, result): (&'static str, Result<KeyChange, KeyError>) = match form.action.as_str() {
        "rotate" => (
            "key.rotate",
            keys::rotate(&app, &repo, None, None, false).await,
        ),
        "retire" => (
            "key.retire",
            keys::retire(&app, &repo, fingerprint, false).await,
        ),
        "extend" => {
            let days: u32 = form
                .days
                .trim()
                .parse()
                .map_err(|_| UiError::BadRequest("days must be a whole number".into()))?;
            (
                "key.extend",
                keys::extend(&app, &repo, fingerprint, days).await,
            )
        }
        _ => return Err(UiError::BadRequest("unknown action".into())),
    };
    keys::audit(
        &app,
        actor,
        Some(visitor.client),
        &repo,
        action,
        Some(fingerprint),
        &result,
    )
    .await;
    let message = match result {
        Ok(change) => {
            let mut m = format!(
                "Done: key {} with keyring version {}; {} target(s) queued for publishing.",
                change.fingerprint, change.keyring_version, change.targets_queued
            );
            for w in change.warnings {
                m.push(' ');
                m.push_str(&w);
            }
            m
        }
        Err(KeyError::Internal(e)) => return Err(UiError::Internal(e)),
        Err(e) => match UiError::from(ApiError::from(e)) {
            UiError::BadRequest(m) => format!("Not done: {m}"),
            other => return Err(other),
        },
    };
    let repo = db::repos::by_id(&app.db, repo.id)
        .await?
        .ok_or(UiError::NotFound)?;
    keys_page(&app, &visitor, &repo, true, None, Some(message)).await
}
