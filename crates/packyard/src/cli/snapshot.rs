//! `packyard snapshot create|list|show|diff|delete|restore OWNER/REPO [NAME]` and
//! `packyard promote-all SOURCE DEST`: snapshots, rollback and whole-channel promotion, on
//! the configured database and storage (also while servers run).

use anyhow::Result;
use clap::Subcommand;

use super::ConfigArgs;
use crate::audit::Actor;
use crate::db;
use crate::snapshots::{self, Diff};

#[derive(Subcommand)]
pub enum SnapshotCommand {
    /// Record which packages every target of the repository holds now
    Create {
        #[command(flatten)]
        config: ConfigArgs,
        /// OWNER/REPO
        repository: String,
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// The repository's snapshots, newest first
    List {
        #[command(flatten)]
        config: ConfigArgs,
        repository: String,
        #[arg(long)]
        json: bool,
    },
    /// The packages a snapshot holds
    Show {
        #[command(flatten)]
        config: ConfigArgs,
        repository: String,
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Packages added, removed and changed from a snapshot to another one (or to now)
    Diff {
        #[command(flatten)]
        config: ConfigArgs,
        repository: String,
        name: String,
        /// The other snapshot [default: the repository now]
        other: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Delete a snapshot; what only it kept goes with the collector's next run after the grace
    Delete {
        #[command(flatten)]
        config: ConfigArgs,
        repository: String,
        name: String,
    },
    /// Make every target's content equal to the snapshot's again (new, freshly signed
    /// generations that apt and dnf take after a plain update)
    Restore {
        #[command(flatten)]
        config: ConfigArgs,
        repository: String,
        name: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
pub struct PromoteAllArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// OWNER/REPO whose content is promoted
    source: String,
    /// OWNER/REPO that is made equal to it (snapshotted first, so `snapshot restore` undoes it)
    destination: String,
    /// Promote this snapshot of the source instead of its current content
    #[arg(long)]
    snapshot: Option<String>,
    /// Say what would change, and change nothing
    #[arg(long)]
    dry_run: bool,
    #[arg(long)]
    json: bool,
}

pub async fn run(command: SnapshotCommand) -> Result<()> {
    match command {
        SnapshotCommand::Create {
            config,
            repository,
            name,
            json,
        } => {
            let (app, repo) = super::open_repo(&config, &repository).await?;
            let created = snapshots::create(&app, &repo, &name, Actor::local()).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&created)?);
            } else {
                println!(
                    "snapshot {name} of {repository}: {} package(s), {} bytes",
                    created.packages, created.bytes
                );
            }
            Ok(())
        }
        SnapshotCommand::List {
            config,
            repository,
            json,
        } => {
            let (app, repo) = super::open_repo(&config, &repository).await?;
            let list = db::snapshots::list(&app.db, repo.id).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(());
            }
            println!(
                "{:<40}  {:<20}  {:>8}  {:>12}  BY",
                "NAME", "CREATED", "PACKAGES", "BYTES"
            );
            for s in &list {
                println!(
                    "{:<40}  {:<20}  {:>8}  {:>12}  {}",
                    s.name,
                    crate::audit::datetime(s.created_at),
                    s.packages,
                    s.bytes,
                    s.created_by
                );
            }
            Ok(())
        }
        SnapshotCommand::Show {
            config,
            repository,
            name,
            json,
        } => {
            let (app, repo) = super::open_repo(&config, &repository).await?;
            let packages = snapshots::content(&app, &repo, Some(&name)).await?;
            let entries: Vec<snapshots::Entry> =
                packages.iter().map(snapshots::Entry::of).collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&entries)?);
                return Ok(());
            }
            for e in &entries {
                println!(
                    "{:<18} {} {} {}  {}",
                    e.distribution, e.name, e.version, e.architecture, e.filename
                );
            }
            println!("{} package(s)", entries.len());
            Ok(())
        }
        SnapshotCommand::Diff {
            config,
            repository,
            name,
            other,
            json,
        } => {
            let (app, repo) = super::open_repo(&config, &repository).await?;
            let from = snapshots::content(&app, &repo, Some(&name)).await?;
            let to = snapshots::content(&app, &repo, other.as_deref()).await?;
            print_diff(&snapshots::diff(&from, &to), json, "")
        }
        SnapshotCommand::Delete {
            config,
            repository,
            name,
        } => {
            let (app, repo) = super::open_repo(&config, &repository).await?;
            snapshots::delete(&app, &repo, &name, Actor::local()).await?;
            println!("deleted snapshot {name} of {repository}");
            Ok(())
        }
        SnapshotCommand::Restore {
            config,
            repository,
            name,
            json,
        } => {
            let (app, repo) = super::open_repo(&config, &repository).await?;
            let changes = snapshots::restore(&app, &repo, &name, Actor::local()).await?;
            print_diff(
                &changes,
                json,
                &format!("{repository} is as snapshot {name} again: "),
            )
        }
    }
}

pub async fn promote_all(args: PromoteAllArgs) -> Result<()> {
    let (app, source) = super::open_repo(&args.config, &args.source).await?;
    let destination = super::find_repo(&app, &args.destination).await?;
    let promotion = snapshots::promote_all(
        &app,
        &source,
        &destination,
        args.snapshot.as_deref(),
        args.dry_run,
        Actor::local(),
    )
    .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&promotion)?);
        return Ok(());
    }
    let head = if args.dry_run {
        format!(
            "would make {} equal to {}: ",
            promotion.destination, promotion.source
        )
    } else {
        format!(
            "{} is now equal to {}: ",
            promotion.destination, promotion.source
        )
    };
    print_diff(&promotion.changes, false, &head)?;
    if let Some(before) = &promotion.before {
        println!(
            "undo with: packyard snapshot restore {} {before}",
            promotion.destination
        );
    }
    Ok(())
}

fn print_diff(diff: &Diff, json: bool, head: &str) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(diff)?);
        return Ok(());
    }
    for (sign, list) in [
        ("+", &diff.added),
        ("-", &diff.removed),
        ("~", &diff.changed),
    ] {
        for e in list {
            println!(
                "{sign} {:<18} {} {} {}  {}",
                e.distribution, e.name, e.version, e.architecture, e.filename
            );
        }
    }
    println!(
        "{head}{} added, {} removed, {} changed, {} unchanged",
        diff.added.len(),
        diff.removed.len(),
        diff.changed.len(),
        diff.unchanged
    );
    Ok(())
}
