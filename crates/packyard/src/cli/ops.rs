//! The operator's runbook commands on the configured database and storage (also while
//! servers run): `reindex`, `status`, `jobs retry`, `fsck` and `gc`, as text or `--json`.

use std::time::Duration;

use anyhow::{Context, Result};
use clap::Subcommand;
use serde_json::json;

use super::ConfigArgs;
use crate::app::App;
use crate::audit::{self, Actor, Event};
use crate::db;
use crate::distros;
use crate::reindex::{self, Scope};

#[derive(clap::Args)]
pub struct ReindexArgs {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(flatten)]
    remote: super::client::Remote,
    /// OWNER/REPO, or OWNER/REPO/OS/DIST for one distribution
    target: Option<String>,
    /// Every repository
    #[arg(long, conflicts_with = "target")]
    all: bool,
    /// Only this package file (with OWNER/REPO/OS/DIST)
    #[arg(long)]
    package: Option<String>,
    /// First render each package's index entries again from its stored file
    #[arg(long)]
    rerender: bool,
    /// Return once the rebuilt indexes are current and every package is indexed
    #[arg(long)]
    wait: bool,
    /// How long --wait waits: seconds, or 30m, 1h
    #[arg(long, default_value = "10m")]
    timeout: String,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
pub enum JobsCommand {
    /// Run failing jobs again now instead of after their back-off
    Retry {
        #[command(flatten)]
        config: ConfigArgs,
        /// The job's id (`packyard status` lists failing jobs)
        id: Option<i64>,
        /// Every failing job
        #[arg(long, conflicts_with = "id")]
        failed: bool,
        #[arg(long)]
        json: bool,
    },
}

pub async fn reindex(args: ReindexArgs) -> Result<()> {
    let timeout = crate::config::parse_duration_secs(&args.timeout).with_context(|| {
        format!(
            "--timeout {:?} is not a duration such as 600, 10m or 1h",
            args.timeout
        )
    })?;
    if super::client_form(&args.config, &args.remote) {
        let target = match (&args.target, args.all, args.rerender) {
            (Some(target), false, false) => target,
            _ => {
                return Err(crate::client::Exit::usage(
                    "through a server, reindex takes OWNER/REPO or OWNER/REPO/OS/DIST; \
                     --all and --rerender work on the data folder (--data-dir or --config)",
                )
                .into());
            }
        };
        let wait = args.wait.then(|| Duration::from_secs(timeout as u64));
        return super::client::reindex(
            &args.remote,
            target,
            args.package.as_deref(),
            wait,
            args.json,
        )
        .await;
    }
    let app = App::open(args.config.load()?).await?;
    let mut scopes = Vec::new();
    match (&args.target, args.all) {
        (Some(target), false) => {
            let parts: Vec<&str> = target.split('/').collect();
            let (owner, name, distro) = match parts.as_slice() {
                [owner, name] => (*owner, *name, None),
                [owner, name, os, dist] => {
                    let distro = distros::by_path(os, dist)
                        .with_context(|| format!("{os}/{dist} is not a known distribution"))?;
                    (*owner, *name, Some(distro))
                }
                _ => {
                    anyhow::bail!("the target is OWNER/REPO or OWNER/REPO/OS/DIST, not {target:?}")
                }
            };
            let repo = db::repos::by_owner_and_name(&app.db, owner, name)
                .await?
                .with_context(|| format!("no repository {owner}/{name}"))?;
            scopes.push((repo, distro));
        }
        (None, true) => {
            anyhow::ensure!(args.package.is_none(), "--package needs OWNER/REPO/OS/DIST");
            for repo in db::repos::all(&app.db).await? {
                scopes.push((repo, None));
            }
        }
        _ => anyhow::bail!("name OWNER/REPO[/OS/DIST], or --all"),
    }
    let mut reports = Vec::new();
    for (repo, distro) in &scopes {
        let scope = Scope {
            repo,
            distro: *distro,
            filename: args.package.as_deref(),
        };
        let report = reindex::reindex(&app, &scope, args.rerender).await;
        let mut event = Event::new(Actor::local(), "reindex")
            .repository(&repo.owner, &repo.name)
            .details(json!({ "rerender": args.rerender, "package": args.package }))
            .result(&report, false);
        if let Some(distro) = distro {
            event = event.target(format!("{}/{}", distro.os, distro.dist));
        }
        audit::record(&app.db, event).await;
        let report = report?;
        if !args.json {
            println!(
                "{}/{}: {} target(s) queued for a rebuild{}",
                repo.owner,
                repo.name,
                report.targets_queued,
                if args.rerender {
                    format!(", {} package(s) rendered again", report.rerendered)
                } else {
                    String::new()
                }
            );
        }
        reports.push(
            json!({ "repository": format!("{}/{}", repo.owner, repo.name), "report": report }),
        );
    }
    if args.wait {
        for (repo, distro) in &scopes {
            let scope = Scope {
                repo,
                distro: *distro,
                filename: None,
            };
            reindex::wait(&app, &scope, Duration::from_secs(timeout as u64)).await?;
        }
        if !args.json {
            println!("the rebuilt indexes are current");
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    }
    Ok(())
}

pub async fn status(config: ConfigArgs, json: bool) -> Result<()> {
    let app = App::open(config.load()?).await?;
    let status = crate::status::collect(&app).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(());
    }
    let now = db::now();
    println!(
        "packyard {} ({}, {})",
        status.build.version, status.build.commit, status.build.build_date
    );
    println!(
        "database: {} (schema {}); storage: {}",
        status.database.kind, status.database.schema_version, status.storage
    );
    if status.processes.is_empty() {
        println!("processes: none seen in the last 2 minutes");
    }
    for p in &status.processes {
        println!(
            "process: {} role {} version {}, up {}s, seen {}s ago",
            p.instance,
            p.role,
            p.version,
            now - p.started_at,
            now - p.seen_at
        );
    }
    println!(
        "queue: {} job(s){}",
        status.queue_depth,
        status
            .oldest_queued_age_secs
            .map(|age| format!(", oldest queued {age}s ago"))
            .unwrap_or_default()
    );
    for q in &status.queue {
        println!("  {}: {} queued, {} running", q.kind, q.queued, q.running);
    }
    for f in &status.failing_jobs {
        println!(
            "failing job {} ({} {} {}/{}): {} attempt(s), next at {}: {}",
            f.id,
            f.kind,
            f.repository,
            distros::by_id(f.distro_version_id)
                .map(|d| format!("{}/{}", d.os, d.dist))
                .unwrap_or_default(),
            f.arch,
            f.attempts,
            audit::datetime(f.next_run_at),
            f.error
        );
    }
    for t in &status.targets {
        println!(
            "published: {} {} at {}{}{}",
            t.repository,
            t.target,
            audit::datetime(t.published_at),
            t.build_ms
                .map(|ms| format!(", built in {ms} ms"))
                .unwrap_or_default(),
            t.push_to_visible_ms
                .map(|ms| format!(", visible {ms} ms after the push"))
                .unwrap_or_default(),
        );
    }
    match &status.soonest_key_expiry {
        Some(k) => println!(
            "soonest key expiry: {} {} on {} ({} days)",
            k.repository,
            k.fingerprint,
            crate::keys::date(k.expires_at),
            k.days_left
        ),
        None => println!("soonest key expiry: none"),
    }
    match status.last_backup_at {
        Some(at) => println!("last backup: {}", audit::datetime(at)),
        None => println!("last backup: never"),
    }
    Ok(())
}

pub async fn jobs(command: JobsCommand) -> Result<()> {
    match command {
        JobsCommand::Retry {
            config,
            id,
            failed,
            json,
        } => {
            anyhow::ensure!(
                id.is_some() || failed,
                "name a job id, or --failed for every failing job"
            );
            let app = App::open(config.load()?).await?;
            let retried = db::jobs::retry_now(&app.db, id).await?;
            if let Some(id) = id {
                anyhow::ensure!(
                    retried == 1,
                    "job {id} is not a failing job (`packyard status` lists them)"
                );
            }
            let event = Event::new(Actor::local(), "jobs.retry")
                .details(json!({ "id": id, "retried": retried }));
            audit::record(&app.db, event).await;
            if json {
                println!("{}", json!({ "retried": retried }));
            } else {
                println!("{retried} job(s) will run at once");
            }
            Ok(())
        }
    }
}

pub async fn fsck(config: ConfigArgs, repair: bool, json: bool) -> Result<()> {
    let app = App::open(config.load()?).await?;
    let report = crate::fsck::check(&app, repair).await?;
    let event = Event::new(Actor::local(), "fsck")
        .details(json!({ "problems": report.problems.len(), "repair": repair, "repaired": report.repaired }))
        .outcome(if report.healthy() { audit::Outcome::Ok } else { audit::Outcome::Failed });
    audit::record(&app.db, event).await;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for p in &report.problems {
            println!(
                "FAIL {} {} {}: {}",
                p.kind,
                p.repository.as_deref().unwrap_or("-"),
                p.target.as_deref().unwrap_or("-"),
                p.detail
            );
        }
        for r in &report.repaired {
            println!("queued a rebuild of {r}");
        }
        println!(
            "checked {} package(s) and {} target(s): {} problem(s)",
            report.packages_checked,
            report.targets_checked,
            report.problems.len()
        );
    }
    anyhow::ensure!(
        report.healthy(),
        "fsck found {} problem(s)",
        report.problems.len()
    );
    Ok(())
}

pub async fn gc(config: ConfigArgs, dry_run: bool, json: bool) -> Result<()> {
    let app = App::open(config.load()?).await?;
    let collection = crate::jobs::gc::collect(&app, dry_run).await?;
    if !dry_run {
        let event = Event::new(Actor::local(), "gc").details(json!(collection));
        audit::record(&app.db, event).await;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&collection)?);
    } else {
        println!(
            "{} {} generation(s), {} destroyed package row(s), {} blob(s) ({} bytes){}",
            if dry_run { "would remove" } else { "removed" },
            collection.generations,
            collection.packages,
            collection.blobs,
            collection.bytes,
            if dry_run {
                String::new()
            } else {
                format!(
                    ", {} audit event(s) past {} days",
                    collection.audit_events,
                    audit::KEEP_DAYS
                )
            }
        );
    }
    Ok(())
}

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BackupArgs {
    #[command(subcommand)]
    command: Option<BackupCommand>,
    #[command(flatten)]
    config: ConfigArgs,
    /// The backup folder (made if missing; a later run into it copies only new files)
    #[arg(long)]
    to: Option<std::path::PathBuf>,
    /// Also copy the server secret that seals the signing keys (keep the backup as safe as
    /// the keys)
    #[arg(long)]
    include_secret: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
pub enum BackupCommand {
    /// Check every file a backup's manifest lists
    Verify { dir: std::path::PathBuf },
}

pub async fn backup(args: BackupArgs) -> Result<()> {
    if let Some(BackupCommand::Verify { dir }) = &args.command {
        let (manifest, problems) = crate::backup::verify(dir)?;
        for problem in &problems {
            println!("FAIL {problem}");
        }
        anyhow::ensure!(
            problems.is_empty(),
            "the backup is damaged: {} problem(s)",
            problems.len()
        );
        println!(
            "backup of Packyard {} (schema {}) from {}: {} file(s) intact",
            manifest.packyard_version,
            manifest.schema_version,
            audit::datetime(manifest.created_at),
            manifest.files.len()
        );
        return Ok(());
    }
    let dir = args
        .to
        .as_deref()
        .context("name the backup folder with --to DIR")?;
    let app = App::open(args.config.load()?).await?;
    let report = crate::backup::backup(&app, dir, args.include_secret).await;
    let event = Event::new(Actor::local(), "backup")
        .target(dir.display().to_string())
        .details(match &report {
            Ok(r) => json!({ "blobs": r.blobs, "blobs_copied": r.blobs_copied, "include_secret": args.include_secret }),
            Err(_) => json!({}),
        })
        .result(&report, false);
    audit::record(&app.db, event).await;
    let report = report?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "backed up the {} database and {} package file(s) ({} new) to {}",
            report.manifest.database,
            report.blobs,
            report.blobs_copied,
            dir.display()
        );
    }
    if !args.include_secret {
        eprintln!(
            "warning: the server secret is not in the backup; a restore needs the same secret (PACKYARD_SECRET_KEY, \
             secret_key, or DATA_DIR/secret.key) to open the signing keys, or a backup made with --include-secret"
        );
    }
    Ok(())
}

pub async fn restore(config: ConfigArgs, from: &std::path::Path, json: bool) -> Result<()> {
    let config = config.load()?;
    let report = crate::backup::restore(config.clone(), from).await;
    if let Ok(db) = db::Db::open(&config.database_url()).await {
        let event = Event::new(Actor::local(), "restore")
            .target(from.display().to_string())
            .details(match &report {
                Ok(r) => json!(r),
                Err(_) => json!({}),
            })
            .result(&report, false);
        audit::record(&db, event).await;
    }
    let report = report?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "restored schema {} and {} package file(s); {} target(s) queued for a rebuild (run the server, or wait with `packyard reindex --all --wait`)",
            report.schema_version, report.blobs, report.targets_queued
        );
    }
    Ok(())
}
