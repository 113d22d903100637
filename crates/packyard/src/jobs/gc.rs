//! Collects index generations superseded longer ago than the grace period, destroyed packages
//! past it, and the blobs that nothing refers to after that.

use std::time::Duration;

use anyhow::Result;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::db;
use crate::storage::BlobKey;

/// One collection pass; returns the number of blobs deleted.
pub async fn collect(app: &App) -> Result<usize> {
    let grace = i64::try_from(app.config.index_grace_secs).unwrap_or(i64::MAX);
    let mut tx = app.db.begin_exclusive().await?;
    let unreferenced = db::generations::collect(&mut tx, grace).await?;
    // Deleting while the exclusive transaction is open: a push or publish that reuses one of
    // these digests checks for its blob inside its own write transaction, after this commits.
    for digest in &unreferenced {
        app.blobs.delete(&BlobKey::from_sha256(digest)?).await?;
    }
    tx.commit().await?;
    app.cache.invalidate();
    Ok(unreferenced.len())
}

pub async fn run_collector(app: App, shutdown: CancellationToken) {
    let every = Duration::from_secs((app.config.index_grace_secs / 4).clamp(1, 600));
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = shutdown.cancelled() => return,
        }
        match collect(&app).await {
            Ok(0) => {}
            Ok(blobs) => tracing::info!(blobs, "collected unreferenced blobs"),
            Err(e) => tracing::error!(error = %format!("{e:#}"), "garbage collection failed"),
        }
    }
}
