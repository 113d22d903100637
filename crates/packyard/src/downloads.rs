//! Download counting that never slows a download: serving a package file only queues a record
//! (dropping it if the queue is full), and a background task writes the queue in batches,
//! downloads alike in package, second, client, agent and token as one row.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::db::{self, Db, downloads::Download};

/// Records queued before the oldest is written.
const BATCH: usize = 10_000;
/// How long a record may wait for others to join its batch.
const LINGER: Duration = Duration::from_millis(250);

#[derive(Clone)]
pub struct DownloadLog {
    queue: mpsc::Sender<Download>,
}

impl DownloadLog {
    /// Starts the writer on `db`; it ends when every `DownloadLog` is dropped, after writing
    /// what is queued.
    pub fn start(db: Db) -> DownloadLog {
        let (queue, records) = mpsc::channel(8 * BATCH);
        tokio::spawn(write_batches(db, records));
        DownloadLog { queue }
    }

    pub fn record(&self, download: Download) {
        // A full queue means the database is behind; losing a count beats delaying a download.
        let _ = self.queue.try_send(download);
    }
}

async fn write_batches(db: Db, mut records: mpsc::Receiver<Download>) {
    let mut batch = Vec::with_capacity(BATCH);
    while records.recv_many(&mut batch, BATCH).await > 0 {
        let deadline = tokio::time::Instant::now() + LINGER;
        while batch.len() < BATCH {
            let room = BATCH - batch.len();
            let more = records.recv_many(&mut batch, room);
            match tokio::time::timeout_at(deadline, more).await {
                Ok(received) if received > 0 => {}
                _ => break,
            }
        }
        if let Err(e) = db::downloads::record(&db, &batch).await {
            tracing::error!(error = %format!("{e:#}"), downloads = batch.len(), "recording downloads failed");
        }
        batch.clear();
    }
}
