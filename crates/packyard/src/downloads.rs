//! Download counting that never slows a download: serving a package file only queues a record
//! (dropping it if the queue is full), and a background task writes the queue in batches,
//! downloads alike in package, second, client, agent and token as one row. Fetches of a
//! repository's signed documents (`InRelease`, `repomd.xml`) go the same way, keeping the
//! last time each host fetched one: what key rotations measure adoption against.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::db::{self, Db, downloads::Download, downloads::IndexFetch};

/// One thing to write.
enum Record {
    Download(Download),
    IndexFetch(IndexFetch),
}

/// Records queued before the oldest is written.
const BATCH: usize = 10_000;
/// How long a record may wait for others to join its batch.
const LINGER: Duration = Duration::from_millis(250);

#[derive(Clone)]
pub struct DownloadLog {
    queue: mpsc::Sender<Record>,
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
        let _ = self.queue.try_send(Record::Download(download));
    }

    pub fn record_index_fetch(&self, fetch: IndexFetch) {
        let _ = self.queue.try_send(Record::IndexFetch(fetch));
    }
}

async fn write_batches(db: Db, mut records: mpsc::Receiver<Record>) {
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
        let (mut downloads, mut fetches) = (Vec::new(), Vec::new());
        for record in batch.drain(..) {
            match record {
                Record::Download(d) => downloads.push(d),
                Record::IndexFetch(f) => fetches.push(f),
            }
        }
        if let Err(e) = db::downloads::record(&db, &downloads, &fetches).await {
            tracing::error!(error = %format!("{e:#}"), downloads = downloads.len(), index_fetches = fetches.len(),
                "recording downloads failed");
        }
    }
}
