//! `/OWNER/REPO/tokens`: packagecloud's tokens page. "Custom Master Tokens" with Revoke and
//! Rotate; "Create Master Token" with a name field (the new value shown for copying); the
//! read tokens each master token minted, with the host they were named after and their last
//! use. Revoking and rotating ask first, and say how many read tokens stop working.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::repo::{self, RepoHead};
use super::session::{Posted, Visitor};
use super::{Layout, UiError, render, see_other, view};
use crate::app::App;
use crate::config::parse_duration_secs;
use crate::db::{self, repos::Repo, tokens::MasterToken};
use crate::http::api::tokens::{audit, check_token_name};
use crate::http::auth;

pub struct ReadRow {
    pub id: i64,
    pub name: String,
    pub created: String,
    pub last_used: String,
    pub expires: String,
}

pub struct MasterRow {
    pub id: i64,
    pub name: String,
    pub value: view::Snippet,
    pub masked: String,
    pub created: String,
    /// When the previous value stops working, during a rotation's grace.
    pub grace_until: Option<String>,
    pub reads: Vec<ReadRow>,
    pub script: view::Snippet,
}

/// What the page asks before it acts.
pub struct Ask {
    pub question: String,
    pub action: &'static str,
    pub master: i64,
    pub read: i64,
    pub grace: String,
    pub button: &'static str,
}

#[derive(Template)]
#[template(path = "ui/tokens.html")]
struct TokensPage {
    l: Layout,
    r: RepoHead,
    masters: Vec<MasterRow>,
    ask: Option<Ask>,
    message: Option<String>,
    /// A master token made or rotated by this very request, shown for copying.
    fresh: Option<view::Snippet>,
}

fn mask(value: &str) -> String {
    let shown: String = value.chars().take(4).collect();
    format!("{shown}…")
}

async fn tokens_page(
    app: &App,
    visitor: &Visitor,
    repo: &Repo,
    base: &str,
    ask: Option<Ask>,
    message: Option<String>,
    fresh: Option<view::Snippet>,
) -> Result<Response, UiError> {
    let now = db::now();
    let last_used: std::collections::HashMap<String, i64> =
        db::downloads::read_tokens_last_used(&app.db, repo.id)
            .await?
            .into_iter()
            .collect();
    let mut masters = Vec::new();
    for m in db::tokens::masters(&app.db, repo.id).await? {
        let reads = db::tokens::read_tokens(&app.db, m.id)
            .await?
            .into_iter()
            .map(|r| ReadRow {
                last_used: last_used
                    .get(&r.name)
                    .map_or_else(|| "never".to_owned(), |at| view::relative(*at, now)),
                id: r.id,
                created: view::datetime(r.created_at),
                expires: r
                    .expires_at
                    .map_or_else(|| "never".to_owned(), view::datetime),
                name: r.name,
            })
            .collect();
        let (scheme, host) = base.split_once("://").unwrap_or(("http", base));
        masters.push(MasterRow {
            id: m.id,
            masked: mask(&m.value),
            value: view::Snippet::new(format!("master-{}", m.id), format!("Value of {}", m.name), m.value.clone()),
            script: view::Snippet::new(
                format!("master-script-{}", m.id),
                format!("Install script with {}", m.name),
                format!(
                    "curl -s {scheme}://{}:@{host}/install/repositories/{}/{}/script.deb.sh | sudo bash",
                    m.value, repo.owner, repo.name
                ),
            ),
            created: view::datetime(m.created_at),
            grace_until: m
                .previous_expires_at
                .filter(|at| *at > now)
                .map(view::datetime),
            reads,
            name: m.name,
        });
    }
    let (l, r) = repo::head(app, visitor, repo, true, "Tokens");
    render(
        visitor,
        &TokensPage {
            l,
            r,
            masters,
            ask,
            message,
            fresh,
        },
    )
}

#[derive(Deserialize, Default)]
pub struct AskQuery {
    /// `revoke`, `rotate` or `revoke-read`.
    confirm: Option<String>,
    master: Option<i64>,
    read: Option<i64>,
    grace: Option<String>,
}

async fn master_of(app: &App, repo: &Repo, id: Option<i64>) -> Result<MasterToken, UiError> {
    let id = id.ok_or_else(|| UiError::BadRequest("which master token?".into()))?;
    db::tokens::master(&app.db, repo.id, &id.to_string())
        .await?
        .filter(|m| m.id == id)
        .ok_or(UiError::NotFound)
}

pub async fn page(
    State(app): State<App>,
    Path((owner, name)): Path<(String, String)>,
    Query(query): Query<AskQuery>,
    headers: axum::http::HeaderMap,
    visitor: Visitor,
) -> Result<Response, UiError> {
    let repo = repo::owned_repo(&app, &visitor, &owner, &name).await?;
    let ask = match query.confirm.as_deref() {
        Some("revoke") => {
            let master = master_of(&app, &repo, query.master).await?;
            let reads = db::tokens::read_tokens(&app.db, master.id).await?.len();
            let question = if master.name == "default" {
                format!(
                    "Revoke the default master token? It gets a new value at once; its {reads} read token(s) stop working, and hosts must run the install script again with the new value."
                )
            } else {
                format!(
                    "Revoke the master token {}? It and its {reads} read token(s) stop working at once.",
                    master.name
                )
            };
            Some(Ask {
                question,
                action: "revoke",
                master: master.id,
                read: 0,
                grace: String::new(),
                button: "Revoke",
            })
        }
        Some("rotate") => {
            let master = master_of(&app, &repo, query.master).await?;
            let reads = db::tokens::read_tokens(&app.db, master.id).await?.len();
            let grace = query.grace.unwrap_or_else(|| "24h".to_owned());
            Some(Ask {
                question: format!(
                    "Rotate {}? It gets a new value; the old value and its {reads} read token(s) keep working for {grace}, then stop.",
                    master.name
                ),
                action: "rotate",
                master: master.id,
                read: 0,
                grace,
                button: "Rotate",
            })
        }
        Some("revoke-read") => {
            let master = master_of(&app, &repo, query.master).await?;
            let read = db::tokens::read_tokens(&app.db, master.id)
                .await?
                .into_iter()
                .find(|r| Some(r.id) == query.read)
                .ok_or(UiError::NotFound)?;
            Some(Ask {
                question: format!(
                    "Revoke the read token {}? The host using it can no longer read {owner}/{name}.",
                    read.name
                ),
                action: "revoke-read",
                master: master.id,
                read: read.id,
                grace: String::new(),
                button: "Revoke",
            })
        }
        _ => None,
    };
    let base = auth::base_url(&app, &headers);
    tokens_page(&app, &visitor, &repo, &base, ask, None, None).await
}

#[derive(Deserialize)]
pub struct TokenForm {
    action: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    master: Option<i64>,
    #[serde(default)]
    read: Option<i64>,
    #[serde(default)]
    grace: String,
}

/// `create` (name), `rotate` (master, grace), `revoke` (master), `revoke-read` (master, read).
pub async fn act(
    State(app): State<App>,
    Path((owner, name)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    Posted { visitor, form }: Posted<TokenForm>,
) -> Result<Response, UiError> {
    let repo = repo::owned_repo(&app, &visitor, &owner, &name).await?;
    let user = visitor.require_user()?;
    let base = auth::base_url(&app, &headers);
    let ip = visitor.client;
    let (message, fresh) = match form.action.as_str() {
        "create" => {
            let token_name = form.name.trim();
            check_token_name(token_name)?;
            let mut tx = app.db.begin_write().await?;
            let created = db::tokens::create_master(&mut tx, repo.id, token_name).await?;
            tx.commit().await?;
            let Some(master) = created else {
                let message = format!("There is a master token called {token_name} already.");
                return tokens_page(&app, &visitor, &repo, &base, None, Some(message), None).await;
            };
            audit(
                &app,
                user,
                ip,
                &repo,
                "token.create",
                &master.name,
                json!({ "kind": "master" }),
            )
            .await;
            (
                format!("Master token {} created.", master.name),
                Some(view::Snippet::new(
                    "fresh-token",
                    format!("New master token {}", master.name),
                    master.value,
                )),
            )
        }
        "rotate" => {
            let master = master_of(&app, &repo, form.master).await?;
            let grace = parse_duration_secs(form.grace.trim()).ok_or_else(|| {
                UiError::BadRequest(
                    "the grace period must be a duration such as 30m, 24h or 7d".into(),
                )
            })?;
            let rotated = db::tokens::rotate_master(&app.db, &master, grace).await?;
            app.tokens_changed().await?;
            audit(
                &app,
                user,
                ip,
                &repo,
                "token.rotate",
                &rotated.name,
                json!({ "kind": "master", "grace_secs": grace }),
            )
            .await;
            (
                format!(
                    "Master token {} rotated; the old value works until the grace period ends.",
                    rotated.name
                ),
                Some(view::Snippet::new(
                    "fresh-token",
                    format!("New value of {}", rotated.name),
                    rotated.value,
                )),
            )
        }
        "revoke" => {
            let master = master_of(&app, &repo, form.master).await?;
            db::tokens::revoke_master(&app.db, &master).await?;
            app.tokens_changed().await?;
            audit(
                &app,
                user,
                ip,
                &repo,
                "token.revoke",
                &master.name,
                json!({ "kind": "master" }),
            )
            .await;
            return Ok(see_other(&format!("/{owner}/{name}/tokens")));
        }
        "revoke-read" => {
            let master = master_of(&app, &repo, form.master).await?;
            let id = form
                .read
                .ok_or_else(|| UiError::BadRequest("which read token?".into()))?;
            if !db::tokens::delete_read(&app.db, master.id, id).await? {
                return Err(UiError::NotFound);
            }
            app.tokens_changed().await?;
            audit(
                &app,
                user,
                ip,
                &repo,
                "token.revoke",
                &id.to_string(),
                json!({ "kind": "read", "master": master.name }),
            )
            .await;
            return Ok(see_other(&format!("/{owner}/{name}/tokens")));
        }
        _ => return Err(UiError::BadRequest("unknown action".into())),
    };
    tokens_page(&app, &visitor, &repo, &base, None, Some(message), fresh).await
}
