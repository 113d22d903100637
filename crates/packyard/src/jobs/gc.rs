//! Collects index generations superseded longer ago than the grace period, destroyed packages
//! past it, and the blobs that nothing refers to after that.

use std::time::Duration;

use anyhow::Result;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::db;
use crate::storage::BlobKey;

/// What one collection pass removed, or with `dry_run` would remove.
#[derive(Debug, Default, serde::Serialize)]
pub struct Collection {
    pub generations: u64,
    pub packages: u64,
    pub blobs: usize,
    pub bytes: u64,
    pub audit_events: u64,
}

/// One collection pass; with `dry_run` nothing is deleted (the transaction rolls back).
pub async fn collect(app: &App, dry_run: bool) -> Result<Collection> {
    let grace = i64::try_from(app.config.index_grace_secs).unwrap_or(i64::MAX);
    let mut tx = app.db.begin_exclusive().await?;
    let collected = db::generations::collect(&mut tx, grace).await?;
    let mut bytes = 0;
    for digest in &collected.unreferenced {
        bytes += app
            .blobs
            .size(&BlobKey::from_sha256(digest)?)
            .await?
            .unwrap_or(0);
    }
    let collection = Collection {
        generations: collected.generations,
        packages: collected.packages,
        blobs: collected.unreferenced.len(),
        bytes,
        audit_events: 0,
    };
    if dry_run {
        tx.rollback().await?;
        return Ok(collection);
    }
    // Deleting while the exclusive transaction is open: a push or publish that reuses one of
    // these digests checks for its blob inside its own write transaction, after this commits.
    for digest in &collected.unreferenced {
        app.blobs.delete(&BlobKey::from_sha256(digest)?).await?;
    }
    tx.commit().await?;
    app.cache.invalidate();
    let sessions = crate::http::registry::expire_sessions(app).await?;
    if sessions > 0 {
        tracing::info!(
            sessions,
            "dropped registry upload sessions untouched for a day"
        );
    }
    let cutoff = db::now() - crate::audit::KEEP_DAYS * 86_400;
    let audit_events = db::audit::prune(&app.db, cutoff).await?;
    Ok(Collection {
        audit_events,
        ..collection
    })
}

pub async fn run_collector(app: App, shutdown: CancellationToken) {
    let every = Duration::from_secs((app.config.index_grace_secs / 4).clamp(1, 600));
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = shutdown.cancelled() => return,
        }
        match collect(&app, false).await {
            Ok(c) if c.blobs == 0 && c.generations == 0 => {}
            Ok(c) => tracing::info!(
                generations = c.generations,
                packages = c.packages,
                blobs = c.blobs,
                size_bytes = c.bytes,
                "collected unreferenced blobs"
            ),
            Err(e) => tracing::error!(error = %format!("{e:#}"), "garbage collection failed"),
        }
    }
}
