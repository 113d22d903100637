//! `/-/status` for administrators: what `packyard status` shows (build, backends, processes,
//! the job queue, failing jobs with Retry, each target's last publish and lag, the soonest
//! key expiry, the last backup), and a reindex of every repository.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;

use super::session::{Posted, Visitor};
use super::{Layout, UiError, render, view};
use crate::app::App;
use crate::audit::{self, Actor, Event};
use crate::db;
use crate::reindex::{self, Scope};
use crate::status;

pub struct Row {
    pub cells: Vec<String>,
}

pub struct FailingRow {
    pub id: i64,
    pub target: String,
    pub attempts: i64,
    pub since: String,
    pub next: String,
    pub error: String,
}

#[derive(Template)]
#[template(path = "ui/status.html")]
struct StatusPage {
    l: Layout,
    facts: Vec<(&'static str, String)>,
    processes: Vec<Row>,
    queue: Vec<Row>,
    failing: Vec<FailingRow>,
    targets: Vec<Row>,
    message: Option<String>,
}

fn require_admin(visitor: &Visitor) -> Result<(), UiError> {
    visitor.require_user()?;
    if visitor.admin {
        Ok(())
    } else {
        Err(UiError::NotFound)
    }
}

async fn status_page(
    app: &App,
    visitor: &Visitor,
    message: Option<String>,
) -> Result<Response, UiError> {
    require_admin(visitor)?;
    let s = status::collect(app).await?;
    let now = db::now();
    let ago = |at: Option<i64>| at.map_or_else(|| "never".to_owned(), |at| view::relative(at, now));
    let facts = vec![
        (
            "Version",
            format!(
                "{} ({}, built {})",
                s.build.version, s.build.commit, s.build.build_date
            ),
        ),
        (
            "Database",
            format!("{} (schema {})", s.database.kind, s.database.schema_version),
        ),
        ("Storage", s.storage.clone()),
        ("Roles seen", s.roles.join(", ")),
        ("Jobs queued or running", view::count(s.queue_depth)),
        (
            "Oldest queued job",
            s.oldest_queued_age_secs
                .map_or_else(|| "none".to_owned(), |a| format!("{a} s")),
        ),
        ("Last publish", ago(s.last_publish_at)),
        (
            "Soonest key expiry",
            s.soonest_key_expiry.as_ref().map_or_else(
                || "none".to_owned(),
                |k| {
                    format!(
                        "{} in {} days ({})",
                        k.repository,
                        k.days_left,
                        view::datetime(k.expires_at)
                    )
                },
            ),
        ),
        ("Last backup", ago(s.last_backup_at)),
    ];
    let processes = s
        .processes
        .iter()
        .map(|p| Row {
            cells: vec![
                p.instance.clone(),
                p.role.clone(),
                p.version.clone(),
                view::relative(p.started_at, now),
                view::relative(p.seen_at, now),
            ],
        })
        .collect();
    let queue = s
        .queue
        .iter()
        .map(|q| Row {
            cells: vec![
                q.kind.clone(),
                q.queued.to_string(),
                q.running.to_string(),
                q.oldest_queued_age_secs
                    .map_or_else(String::new, |a| format!("{a} s")),
            ],
        })
        .collect();
    let failing = s
        .failing_jobs
        .iter()
        .map(|f| FailingRow {
            id: f.id,
            target: format!(
                "{} {}",
                f.repository,
                db::generations::Target {
                    repository_id: 0,
                    distro_version_id: f.distro_version_id,
                    arch: f.arch.clone(),
                }
                .label()
            ),
            attempts: f.attempts,
            since: ago(f.first_failed_at),
            next: view::relative(f.next_run_at, now),
            error: f.error.clone(),
        })
        .collect();
    let targets = s
        .targets
        .iter()
        .map(|t| Row {
            cells: vec![
                t.repository.clone(),
                t.target.clone(),
                view::relative(t.published_at, now),
                t.build_ms.map_or_else(String::new, view::duration_ms),
                t.push_to_visible_ms
                    .map_or_else(String::new, view::duration_ms),
            ],
        })
        .collect();
    let l = Layout::new(app, visitor, "Status").crumb("/-/status", "Status");
    render(
        visitor,
        &StatusPage {
            l,
            facts,
            processes,
            queue,
            failing,
            targets,
            message,
        },
    )
}

pub async fn status(State(app): State<App>, visitor: Visitor) -> Result<Response, UiError> {
    status_page(&app, &visitor, None).await
}

#[derive(Deserialize)]
pub struct RetryForm {
    job: Option<i64>,
}

/// Runs a failing job (or every one) again now.
pub async fn retry(
    State(app): State<App>,
    Posted { visitor, form }: Posted<RetryForm>,
) -> Result<Response, UiError> {
    require_admin(&visitor)?;
    let retried = db::jobs::retry_now(&app.db, form.job).await?;
    app.queued();
    let user = visitor.require_user()?;
    let event = Event::new(Actor::User(user.name.clone()), "job.retry")
        .ip(visitor.client)
        .details(serde_json::json!({ "job": form.job, "retried": retried }));
    audit::record(&app.db, event).await;
    status_page(
        &app,
        &visitor,
        Some(format!("{retried} job(s) will run again now.")),
    )
    .await
}

#[derive(Deserialize)]
pub struct Empty {}

/// Queues a rebuild of every target of every repository.
pub async fn reindex(
    State(app): State<App>,
    Posted { visitor, .. }: Posted<Empty>,
) -> Result<Response, UiError> {
    require_admin(&visitor)?;
    let mut queued = 0;
    for repo in db::repos::all(&app.db).await? {
        let scope = Scope {
            repo: &repo,
            distro: None,
            filename: None,
        };
        queued += reindex::reindex(&app, &scope, false).await?.targets_queued;
    }
    app.queued();
    let user = visitor.require_user()?;
    let event = Event::new(Actor::User(user.name.clone()), "reindex")
        .ip(visitor.client)
        .details(serde_json::json!({ "targets_queued": queued }));
    audit::record(&app.db, event).await;
    status_page(
        &app,
        &visitor,
        Some(format!("{queued} target(s) queued for a rebuild.")),
    )
    .await
}

pub struct EventRow {
    pub at: String,
    pub actor: String,
    pub address: String,
    pub action: String,
    pub repository: String,
    pub target: String,
    pub outcome: String,
    pub details: String,
}

#[derive(Template)]
#[template(path = "ui/audit.html")]
struct AuditPage {
    l: Layout,
    since: String,
    repo: String,
    action: String,
    actor: String,
    events: Vec<EventRow>,
    shown: String,
}

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    #[serde(default)]
    since: String,
    #[serde(default)]
    repo: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    actor: String,
}

/// The most events the page shows.
const AUDIT_ROWS: i64 = 500;

/// `/-/audit?since=7d&repo=OWNER/REPO&action=token.&actor=NAME`: who changed what, newest
/// first (the same log as `packyard audit` and `/api/v1/audit.json`).
pub async fn audit(
    State(app): State<App>,
    axum::extract::Query(query): axum::extract::Query<AuditQuery>,
    visitor: Visitor,
) -> Result<Response, UiError> {
    require_admin(&visitor)?;
    let since_text = if query.since.trim().is_empty() {
        "7d"
    } else {
        query.since.trim()
    };
    let since = crate::config::parse_duration_secs(since_text)
        .ok_or_else(|| UiError::BadRequest("since must be a duration such as 24h or 7d".into()))?;
    let repo = query.repo.trim();
    let events = db::audit::list(
        &app.db,
        db::now() - since,
        (!repo.is_empty()).then_some(repo),
        AUDIT_ROWS,
    )
    .await?;
    let (action, actor) = (query.action.trim(), query.actor.trim());
    let events: Vec<EventRow> = events
        .into_iter()
        .filter(|e| e.action.starts_with(action) && (actor.is_empty() || e.actor == actor))
        .map(|e| EventRow {
            at: view::datetime(e.at),
            actor: format!("{} ({})", e.actor, e.actor_kind),
            address: e.ip_address.unwrap_or_default(),
            action: e.action,
            repository: e.repository.unwrap_or_default(),
            target: e.target.unwrap_or_default(),
            outcome: e.outcome,
            details: e.details,
        })
        .collect();
    let shown = format!(
        "{} event(s) in the last {since_text}{}",
        events.len(),
        if events.len() as i64 >= AUDIT_ROWS {
            " (the newest 500)"
        } else {
            ""
        }
    );
    let l = Layout::new(&app, &visitor, "Audit log").crumb("/-/audit", "Audit log");
    render(
        &visitor,
        &AuditPage {
            l,
            since: since_text.to_owned(),
            repo: repo.to_owned(),
            action: action.to_owned(),
            actor: actor.to_owned(),
            events,
            shown,
        },
    )
}
