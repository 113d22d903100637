//! Download counting that never slows a download: serving a package file only queues a record
//! (dropping it if the queue is full), and a background task writes the queue in batches,
//! downloads alike in package, second, client, agent and token as one row. Fetches of a
//! repository's signed documents (`InRelease`, `repomd.xml`) go the same way, keeping the
//! last time each host fetched one: what key rotations measure adoption against.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
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

/// An index fetch is recorded at most once a minute per host and repository: adoption looks
/// back 14 days, and apt fetches `InRelease` on every update.
const INDEX_FETCH_EVERY_SECS: i64 = 60;
/// Hosts remembered before the memory of recent fetches starts over.
const INDEX_FETCH_HOSTS: usize = 100_000;

#[derive(Clone)]
pub struct DownloadLog {
    queue: mpsc::Sender<Record>,
    /// When each host (a hash of repository, token, address and agent) was last recorded.
    recent_fetches: Arc<Mutex<HashMap<u64, i64>>>,
}

impl DownloadLog {
    /// Starts the writer on `db`; it ends when every `DownloadLog` is dropped, after writing
    /// what is queued.
    pub fn start(db: Db) -> DownloadLog {
        let (queue, records) = mpsc::channel(8 * BATCH);
        tokio::spawn(write_batches(db, records));
        DownloadLog {
            queue,
            recent_fetches: Arc::default(),
        }
    }

    pub fn record(&self, download: Download) {
        // A full queue means the database is behind; losing a count beats delaying a download.
        let _ = self.queue.try_send(Record::Download(download));
    }

    /// Whether a fetch by this host is worth recording: none was in the last minute.
    pub fn index_fetch_is_news(&self, host: &impl Hash) -> bool {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        host.hash(&mut hasher);
        let key = hasher.finish();
        let now = db::now();
        let mut recent = self.recent_fetches.lock().expect("never poisoned");
        if recent
            .get(&key)
            .is_some_and(|at| now - at < INDEX_FETCH_EVERY_SECS)
        {
            return false;
        }
        if recent.len() >= INDEX_FETCH_HOSTS {
            recent.clear();
        }
        recent.insert(key, now);
        true
    }

    pub fn record_index_fetch(&self, fetch: IndexFetch) {
        let _ = self.queue.try_send(Record::IndexFetch(fetch));
    }
}

async fn write_batches(db: Db, mut records: mpsc::Receiver<Record>) {
    let mut batch = Vec::with_capacity(BATCH);
    while records.recv_many(&mut batch, BATCH).await > 0 {
        // Others join the batch while this task sleeps, not waiting on the queue: a waiting
        // receiver is woken by every record, a wake-up of this task per download served.
        tokio::time::sleep(LINGER).await;
        while batch.len() < BATCH {
            match records.try_recv() {
                Ok(record) => batch.push(record),
                Err(_) => break,
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
