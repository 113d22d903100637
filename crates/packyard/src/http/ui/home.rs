//! `/` (every repository the visitor may see), `/OWNER` (one owner's), and `/orgs/ORG` (an
//! organisation's members, which its members may change).

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;

use super::session::{Posted, Visitor};
use super::{Layout, UiError, render, see_other, view};
use crate::app::App;
use crate::audit::{self, Actor, Event};
use crate::db::{self, repos::Repo};
use crate::formats::PackageFormat;
use crate::sign::NEVER_EXPIRES;

/// A repository as a row of the lists.
pub struct RepoRow {
    pub owner: String,
    pub name: String,
    pub private: bool,
    pub formats: String,
    pub packages: String,
    pub bytes: i64,
    pub size: String,
    pub last_push: String,
    /// `expires in 12 days` when the soonest signing key expires within 60 days.
    pub key_warning: Option<String>,
    pub key_urgent: bool,
}

async fn rows(app: &App, repos: &[Repo]) -> Result<Vec<RepoRow>, UiError> {
    let now = db::now();
    let mut expiry: HashMap<(String, String), i64> = HashMap::new();
    for (owner, name, key) in db::signing_keys::all_keys(&app.db).await? {
        if key.state.signs() && key.expires_at != NEVER_EXPIRES {
            let at = expiry.entry((owner, name)).or_insert(i64::MAX);
            *at = (*at).min(key.expires_at);
        }
    }
    let mut out = Vec::with_capacity(repos.len());
    for repo in repos {
        let summary = app
            .cache
            .summary(repo.id, db::packages::summary(&app.db, repo.id))
            .await?;
        let mut formats: Vec<&str> = summary
            .iter()
            .map(|t| PackageFormat::from_name(&t.format).map_or(t.format.as_str(), |f| f.label()))
            .collect();
        formats.sort_unstable();
        formats.dedup();
        let count: i64 = summary.iter().map(|t| t.count).sum();
        let bytes: i64 = summary.iter().map(|t| t.bytes).sum();
        let days_left = expiry
            .get(&(repo.owner.clone(), repo.name.clone()))
            .map(|at| (at - now).div_euclid(86_400))
            .filter(|days| *days < 60);
        out.push(RepoRow {
            owner: repo.owner.clone(),
            name: repo.name.clone(),
            private: repo.private,
            formats: formats.join(", "),
            packages: view::count(count),
            bytes,
            size: view::size(bytes),
            last_push: repo
                .last_push_at
                .map_or_else(|| "never".to_owned(), |at| view::relative(at, now)),
            key_warning: days_left.map(|d| {
                if d < 0 {
                    "signing key expired".to_owned()
                } else {
                    format!("signing key expires in {d} days")
                }
            }),
            key_urgent: days_left.is_some_and(|d| d < 14),
        });
    }
    Ok(out)
}

/// The repositories among `repos` the visitor may see: public ones, and private ones of
/// owners they act for.
async fn visible(app: &App, visitor: &Visitor, repos: Vec<Repo>) -> Result<Vec<Repo>, UiError> {
    let mut out = Vec::new();
    let mut acts_for: HashMap<i64, bool> = HashMap::new();
    for repo in repos {
        if !repo.private {
            out.push(repo);
            continue;
        }
        let Some(user) = &visitor.user else { continue };
        let allowed = match acts_for.get(&repo.owner_id) {
            Some(allowed) => *allowed,
            None => {
                let allowed = db::users::acts_for(&app.db, user, repo.owner_id).await?;
                acts_for.insert(repo.owner_id, allowed);
                allowed
            }
        };
        if allowed {
            out.push(repo);
        }
    }
    Ok(out)
}

#[derive(Template)]
#[template(path = "ui/home.html")]
struct HomePage {
    l: Layout,
    heading: String,
    caption: String,
    repos: Vec<RepoRow>,
    /// Set on an owner's page: their name, whether the visitor acts for them, and whether
    /// the owner is an organisation.
    owner: Option<String>,
    is_org: bool,
}

pub async fn index(State(app): State<App>, visitor: Visitor) -> Result<Response, UiError> {
    let repos = visible(&app, &visitor, db::repos::all(&app.db).await?).await?;
    let repos = rows(&app, &repos).await?;
    let l = Layout::new(&app, &visitor, "Repositories");
    let caption = match &visitor.user {
        Some(user) => format!("Public repositories, and those of {}", user.name),
        None => "Public repositories".to_owned(),
    };
    render(
        &visitor,
        &HomePage {
            l,
            heading: "Repositories".into(),
            caption,
            repos,
            owner: None,
            is_org: false,
        },
    )
}

pub async fn owner(
    State(app): State<App>,
    Path(owner): Path<String>,
    visitor: Visitor,
) -> Result<Response, UiError> {
    let user = db::users::by_name(&app.db, &owner)
        .await?
        .ok_or(UiError::NotFound)?;
    let repos = db::repos::list_for_owner(&app.db, user.id).await?;
    let repos = visible(&app, &visitor, repos).await?;
    let is_org = db::users::org_by_name(&app.db, &owner).await?.is_some();
    // An owner with nothing the visitor may see looks like no owner at all.
    if repos.is_empty() && visitor.user.as_ref().is_none_or(|u| u.name != owner) && !is_org {
        return Err(UiError::NotFound);
    }
    let repos = rows(&app, &repos).await?;
    let l = Layout::new(&app, &visitor, owner.clone()).crumb(format!("/{owner}"), owner.clone());
    render(
        &visitor,
        &HomePage {
            l,
            heading: owner.clone(),
            caption: format!("Repositories of {owner}"),
            repos,
            owner: Some(owner),
            is_org,
        },
    )
}

#[derive(Template)]
#[template(path = "ui/org.html")]
struct OrgPage {
    l: Layout,
    org: String,
    members: Vec<String>,
    message: Option<String>,
}

async fn org_page(
    app: &App,
    visitor: &Visitor,
    org_name: &str,
    message: Option<String>,
) -> Result<Response, UiError> {
    let org = db::users::org_by_name(&app.db, org_name)
        .await?
        .ok_or(UiError::NotFound)?;
    let members: Vec<String> = db::users::members(&app.db, org.id)
        .await?
        .into_iter()
        .map(|m| m.name)
        .collect();
    let member = visitor
        .user
        .as_ref()
        .is_some_and(|u| members.contains(&u.name));
    // Who belongs to an organisation is its members' business.
    if !member && !visitor.admin {
        return Err(UiError::NotFound);
    }
    let l = Layout::new(app, visitor, format!("Organisation {org_name}"))
        .crumb(format!("/{org_name}"), org_name)
        .crumb(format!("/orgs/{org_name}"), "Members");
    render(
        visitor,
        &OrgPage {
            l,
            org: org_name.to_owned(),
            members,
            message,
        },
    )
}

pub async fn org(
    State(app): State<App>,
    Path(org): Path<String>,
    visitor: Visitor,
) -> Result<Response, UiError> {
    org_page(&app, &visitor, &org, None).await
}

#[derive(Deserialize)]
pub struct MemberForm {
    user: String,
    action: String,
}

/// Adds or removes a member. Members may; the last member cannot leave (someone must be
/// able to push).
pub async fn change_member(
    State(app): State<App>,
    Path(org_name): Path<String>,
    Posted { visitor, form }: Posted<MemberForm>,
) -> Result<Response, UiError> {
    let user = visitor.require_user()?.clone();
    let org = db::users::org_by_name(&app.db, &org_name)
        .await?
        .ok_or(UiError::NotFound)?;
    let members = db::users::members(&app.db, org.id).await?;
    if !members.iter().any(|m| m.id == user.id) && !visitor.admin {
        return Err(UiError::NotFound);
    }
    let name = form.user.trim();
    let message = match form.action.as_str() {
        "add" => match db::users::by_name(&app.db, name).await? {
            Some(member) if db::users::org_by_name(&app.db, name).await?.is_none() => {
                db::users::create_org(&app.db, &org_name, &[member]).await?;
                format!("{name} is now a member.")
            }
            _ => format!("There is no user called {name}."),
        },
        "remove" => match members.iter().find(|m| m.name == name) {
            Some(_) if members.len() == 1 => "The last member cannot be removed.".to_owned(),
            Some(member) => {
                db::users::remove_member(&app.db, org.id, member.id).await?;
                format!("{name} is no longer a member.")
            }
            None => format!("{name} is not a member."),
        },
        _ => return Err(UiError::BadRequest("unknown action".into())),
    };
    let event = Event::new(Actor::User(user.name.clone()), "org.members")
        .ip(visitor.client)
        .target(org_name.clone())
        .details(serde_json::json!({ "action": form.action, "user": name }));
    audit::record(&app.db, event).await;
    if message.ends_with("member.") && form.action == "remove" && name == user.name {
        return Ok(see_other("/account"));
    }
    org_page(&app, &visitor, &org_name, Some(message)).await
}
