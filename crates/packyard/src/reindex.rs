//! Reindexing: publish jobs that rebuild a repository's indexes from the database alone, even
//! when every index file it stored is gone, optionally after rendering every package's index
//! entries again from its blob (after a parser fix). Jobs coalesce with those already queued.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::app::App;
use crate::db::{self, repos::Repo};
use crate::distros::{self, Distro};
use crate::ingest;

/// What to reindex in one repository.
pub struct Scope<'a> {
    pub repo: &'a Repo,
    /// One distribution version, or all of them.
    pub distro: Option<&'static Distro>,
    /// One package (by file name, in `distro`), or all of them.
    pub filename: Option<&'a str>,
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Report {
    pub targets_queued: usize,
    /// Packages whose entries were rendered again (`rerender`).
    pub rerendered: usize,
}

/// Queues a rebuild of every target in `scope`; with `rerender`, first renders the entries of
/// each package in it again from its blob.
pub async fn reindex(app: &App, scope: &Scope<'_>, rerender: bool) -> Result<Report> {
    let repo = scope.repo;
    let package = match (scope.filename, scope.distro) {
        (Some(filename), Some(distro)) => Some(
            ingest::by_filename(app, repo.id, distro, filename)
                .await?
                .with_context(|| {
                    format!(
                        "{filename} is not in {}/{} {}/{}",
                        repo.owner, repo.name, distro.os, distro.dist
                    )
                })?,
        ),
        (Some(_), None) => {
            anyhow::bail!("a package is named with its distribution: OWNER/REPO/OS/DIST")
        }
        (None, _) => None,
    };
    let mut report = Report::default();
    if rerender {
        let packages = match &package {
            Some(package) => vec![package.clone()],
            None => db::packages::live(&app.db, repo.id, scope.distro.map(|d| d.id)).await?,
        };
        for package in &packages {
            let distro = distros::by_id(package.distro_version_id).with_context(|| {
                format!("unknown distribution version {}", package.distro_version_id)
            })?;
            ingest::rerender(app, distro, package).await?;
            report.rerendered += 1;
        }
    }

    // Distributions that have packages but were never published are rebuilt too.
    let distro_ids: Vec<i64> = match scope.distro {
        Some(distro) => vec![distro.id],
        None => db::packages::distro_versions(&app.db, repo.id).await?,
    };
    let mut tx = app.db.begin_write().await?;
    let mut targets = Vec::new();
    for target in db::generations::targets_of(&mut tx, repo.id).await? {
        if scope
            .distro
            .is_none_or(|d| d.id == target.distro_version_id)
        {
            targets.push(target);
        }
    }
    for distro_id in distro_ids {
        let Some(distro) = distros::by_id(distro_id) else {
            continue;
        };
        for target in distro.format.all_targets(&mut tx, repo.id, distro).await? {
            if !targets.contains(&target) {
                targets.push(target);
            }
        }
    }
    for target in &targets {
        let Some(distro) = distros::by_id(target.distro_version_id) else {
            continue;
        };
        let kind = distro.format.publish_job();
        db::jobs::enqueue_rebuild(&mut tx, kind, target).await?;
    }
    // Entries rendered again are not served until the rebuild lists them; without that, the
    // served index already lists every package the rebuild will (a million rows updated
    // twice for nothing at a million packages).
    if rerender {
        db::packages::mark_unindexed(
            &mut tx,
            repo.id,
            scope.distro.map(|d| d.id),
            package.as_ref().map(|p| p.id),
        )
        .await?;
    }
    tx.commit().await?;
    app.queued();
    report.targets_queued = targets.len();
    tracing::info!(repository = %format!("{}/{}", repo.owner, repo.name), targets = targets.len(),
        rerendered = report.rerendered, "queued reindex");
    Ok(report)
}

/// Waits until the reindexed targets are published and every package in `scope` is indexed.
pub async fn wait(app: &App, scope: &Scope<'_>, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let distro = scope.distro.map(|d| d.id);
    loop {
        let pending = db::jobs::pending_for(&app.db, scope.repo.id, distro).await?;
        let unindexed = db::packages::unindexed(&app.db, scope.repo.id, distro).await?;
        if pending == 0 && unindexed == 0 {
            return Ok(());
        }
        if let Some(error) = db::jobs::errors_for(&app.db, scope.repo.id, distro)
            .await?
            .pop()
        {
            anyhow::bail!("publishing failed (it is retried with a back-off): {error}");
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{pending} publish job(s) still pending and {unindexed} package(s) not indexed after {}s; \
             are index workers running (`packyard status`)?",
            timeout.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
