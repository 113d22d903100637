//! `packyard webhook add|list|test|deliveries|redeliver|remove`: a repository's webhooks and
//! their delivery log, on the configured database (also while servers run, whose delivery
//! workers send what is queued).

use anyhow::Result;
use clap::Subcommand;
use serde_json::json;

use super::ConfigArgs;
use crate::app::App;
use crate::audit::{self, Actor, Event};
use crate::db::{self, repos::Repo, webhooks::Webhook};
use crate::webhooks;

#[derive(Subcommand)]
pub enum WebhookCommand {
    /// Send the repository's events to URL; prints the signing secret, once
    Add {
        #[command(flatten)]
        config: ConfigArgs,
        /// OWNER/REPO
        repository: String,
        url: String,
        /// Comma-separated events (package.pushed, package.visible, package.yanked,
        /// package.promoted, snapshot.restored, job.failed, key.rotated) [default: all]
        #[arg(long)]
        events: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// The repository's webhooks
    List {
        #[command(flatten)]
        config: ConfigArgs,
        repository: String,
        #[arg(long)]
        json: bool,
    },
    /// Queue a `webhook.test` event for a webhook
    Test {
        #[command(flatten)]
        config: ConfigArgs,
        repository: String,
        id: i64,
    },
    /// A webhook's newest deliveries and how each went
    Deliveries {
        #[command(flatten)]
        config: ConfigArgs,
        repository: String,
        id: i64,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Send a delivery again, under its message id
    Redeliver {
        #[command(flatten)]
        config: ConfigArgs,
        repository: String,
        /// The delivery's id (`webhook deliveries` lists them)
        delivery: i64,
    },
    /// Stop sending events to a webhook
    Remove {
        #[command(flatten)]
        config: ConfigArgs,
        repository: String,
        id: i64,
    },
}

pub async fn run(command: WebhookCommand) -> Result<()> {
    match command {
        WebhookCommand::Add {
            config,
            repository,
            url,
            events,
            json,
        } => {
            let (app, repo) = super::open_repo(&config, &repository).await?;
            let (hook, secret) = webhooks::add(&app, repo.id, &url, events.as_deref()).await?;
            audited(&app, &repo, "webhook.add", &hook).await;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &json!({ "id": hook.id, "url": hook.url, "events": hook.events, "secret": secret })
                    )?
                );
            } else {
                println!(
                    "webhook {} sends {} events of {repository} to {}",
                    hook.id, hook.events, hook.url
                );
                println!("{secret}");
                eprintln!("the signing secret above is shown this once");
            }
            Ok(())
        }
        WebhookCommand::List {
            config,
            repository,
            json,
        } => {
            let (app, repo) = super::open_repo(&config, &repository).await?;
            let hooks = db::webhooks::list(&app.db, repo.id).await?;
            if json {
                let list: Vec<_> = hooks
                    .iter()
                    .map(|h| json!({ "id": h.id, "url": h.url, "events": h.events, "created_at": h.created_at }))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(());
            }
            for h in &hooks {
                println!("{:>5}  {}  {}", h.id, h.url, h.events);
            }
            Ok(())
        }
        WebhookCommand::Test {
            config,
            repository,
            id,
        } => {
            let (app, repo) = super::open_repo(&config, &repository).await?;
            let hook = find(&app, &repo, id).await?;
            webhooks::test(&app, &hook).await?;
            println!("queued a webhook.test event for webhook {id}");
            Ok(())
        }
        WebhookCommand::Deliveries {
            config,
            repository,
            id,
            limit,
            json,
        } => {
            let (app, repo) = super::open_repo(&config, &repository).await?;
            find(&app, &repo, id).await?;
            let list = db::webhooks::deliveries(&app.db, id, limit).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(());
            }
            for d in &list {
                println!(
                    "{:>6}  {:<18}  {:<9}  attempts {}  {}  {}",
                    d.id,
                    d.event,
                    d.state,
                    d.attempts,
                    d.last_status.map_or("-".into(), |s| s.to_string()),
                    d.last_error.as_deref().unwrap_or("")
                );
            }
            Ok(())
        }
        WebhookCommand::Redeliver {
            config,
            repository,
            delivery,
        } => {
            let (app, repo) = super::open_repo(&config, &repository).await?;
            let found = db::webhooks::delivery(&app.db, delivery)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no delivery {delivery}"))?;
            find(&app, &repo, found.webhook_id).await?;
            webhooks::redeliver(&app, &found).await?;
            println!("queued delivery {delivery} ({}) again", found.event);
            Ok(())
        }
        WebhookCommand::Remove {
            config,
            repository,
            id,
        } => {
            let (app, repo) = super::open_repo(&config, &repository).await?;
            let hook = find(&app, &repo, id).await?;
            db::webhooks::remove(&app.db, id).await?;
            audited(&app, &repo, "webhook.remove", &hook).await;
            println!("removed webhook {id}");
            Ok(())
        }
    }
}

async fn audited(app: &App, repo: &Repo, action: &'static str, hook: &Webhook) {
    let event = Event::new(Actor::local(), action)
        .repository(&repo.owner, &repo.name)
        .target(hook.url.clone())
        .details(json!({ "id": hook.id, "events": hook.events }));
    audit::record(&app.db, event).await;
}

async fn find(app: &App, repo: &Repo, id: i64) -> Result<Webhook> {
    db::webhooks::by_id(&app.db, id)
        .await?
        .filter(|h| h.repository_id == repo.id)
        .ok_or_else(|| anyhow::anyhow!("{}/{} has no webhook {id}", repo.owner, repo.name))
}
