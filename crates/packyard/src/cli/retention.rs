//! `packyard retention set|show|preview|apply OWNER/REPO`: a repository's retention rules and
//! their runs, on the configured database and storage (also while servers run).

use anyhow::Result;
use clap::Subcommand;
use serde_json::json;

use super::ConfigArgs;
use crate::audit::Actor;
use crate::db;
use crate::retention::{self, Plan, RuleSpec};

#[derive(Subcommand)]
pub enum RetentionCommand {
    /// Set the repository's rule, or with --target the rule of one of its distributions
    /// (which then wins there); a rule without --keep-last and --keep-days removes it
    Set {
        #[command(flatten)]
        config: ConfigArgs,
        /// OWNER/REPO
        repository: String,
        /// Keep the newest N versions of each package name, architecture and distribution,
        /// in the format's version order
        #[arg(long)]
        keep_last: Option<i64>,
        /// Keep versions pushed within the last D days
        #[arg(long)]
        keep_days: Option<i64>,
        /// Keep versions matching this regular expression (for images: tags never removed)
        #[arg(long)]
        protect: Option<String>,
        /// Only this distribution, OS/DIST; oci/1 for container images, whose --keep-last
        /// counts tags and --keep-days is how long an untagged manifest stays
        #[arg(long)]
        target: Option<String>,
        /// For images: the tags --keep-last counts (a regular expression; all when unset)
        #[arg(long)]
        tags: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// The repository's rules
    Show {
        #[command(flatten)]
        config: ConfigArgs,
        repository: String,
        #[arg(long)]
        json: bool,
    },
    /// What the rules would yank now, and the bytes freed
    Preview {
        #[command(flatten)]
        config: ConfigArgs,
        repository: String,
        #[arg(long)]
        json: bool,
    },
    /// Yank what the rules let go, one publish per distribution (servers also do this daily)
    Apply {
        #[command(flatten)]
        config: ConfigArgs,
        repository: String,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(command: RetentionCommand) -> Result<()> {
    match command {
        RetentionCommand::Set {
            config,
            repository,
            keep_last,
            keep_days,
            protect,
            target,
            tags,
            json,
        } => {
            let (app, repo) = super::open_repo(&config, &repository).await?;
            let spec = RuleSpec {
                keep_last,
                keep_days,
                protect,
                tags,
            };
            let rule = retention::set(&app, &repo, target.as_deref(), &spec).await?;
            let event = crate::audit::Event::new(Actor::local(), "retention.set")
                .repository(&repo.owner, &repo.name)
                .target(retention::target_name(&rule))
                .details(json!(rule));
            crate::audit::record(&app.db, event).await;
            if json {
                println!("{}", serde_json::to_string_pretty(&rule)?);
            } else {
                print_rules(&db::retention::rules(&app.db, repo.id).await?);
            }
            Ok(())
        }
        RetentionCommand::Show {
            config,
            repository,
            json,
        } => {
            let (app, repo) = super::open_repo(&config, &repository).await?;
            let rules = db::retention::rules(&app.db, repo.id).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rules)?);
            } else {
                print_rules(&rules);
            }
            Ok(())
        }
        RetentionCommand::Preview {
            config,
            repository,
            json,
        } => {
            let (app, repo) = super::open_repo(&config, &repository).await?;
            let plan = retention::plan(&app, &repo).await?;
            print_plan(&plan, json, "would yank")
        }
        RetentionCommand::Apply {
            config,
            repository,
            json,
        } => {
            let (app, repo) = super::open_repo(&config, &repository).await?;
            let plan = retention::apply(&app, &repo, Actor::local(), None).await?;
            print_plan(&plan, json, "yanked")
        }
    }
}

fn print_rules(rules: &[db::retention::Rule]) {
    if rules.is_empty() {
        println!("no retention rules: every version is kept");
        return;
    }
    println!(
        "{:<20}  {:>9}  {:>9}  {:<20}  TAGS",
        "TARGET", "KEEP LAST", "KEEP DAYS", "PROTECT"
    );
    for rule in rules {
        println!(
            "{:<20}  {:>9}  {:>9}  {:<20}  {}",
            retention::target_name(rule),
            rule.keep_last.map_or("-".into(), |n| n.to_string()),
            rule.keep_days.map_or("-".into(), |n| n.to_string()),
            rule.protect.as_deref().unwrap_or("-"),
            rule.tags.as_deref().unwrap_or("-"),
        );
    }
}

fn print_plan(plan: &Plan, json: bool, verb: &str) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(plan)?);
        return Ok(());
    }
    for c in &plan.candidates {
        println!(
            "{verb} {:<18} {} {} {}  ({} bytes, pushed {})",
            c.distribution,
            c.name,
            c.version,
            c.architecture,
            c.size,
            crate::audit::datetime(c.pushed_at)
        );
    }
    let images = &plan.images;
    for t in &images.tags {
        println!("{verb} tag {}:{} ({})", t.image, t.tag, t.digest);
    }
    for m in &images.manifests {
        println!(
            "{verb} image {}@{}  ({} bytes, pushed {})",
            m.image,
            m.digest,
            m.size,
            crate::audit::datetime(m.pushed_at)
        );
    }
    println!(
        "{}: {verb} {} package(s), {} tag(s), {} image manifest(s), {} bytes; {} kept",
        plan.repository,
        plan.candidates.len(),
        images.tags.len(),
        images.manifests.len(),
        plan.bytes_freed,
        plan.packages_kept + images.manifests_kept
    );
    Ok(())
}
