//! What serving a repository file reads on every request, kept in memory: repositories by
//! name, what token values are, documents and files of publish targets, pool files, and the
//! bytes of small blobs.
//!
//! Everything but blob bytes describes state that changes, and is dropped wholesale whenever
//! it may have: this process bumps the epoch after it publishes, destroys or moves a package,
//! and on PostgreSQL after another process announces a change (`LISTEN`). Credentials have an
//! epoch of their own, which packages changing does not move: a push or a publish leaves what
//! tokens are alone, so pushes do not look their token up again after every other push.
//! Changes of tokens and users (`App::tokens_changed`) and every announcement from another
//! process move both; while that
//! connection is down nothing is kept. What no announcement reaches (another process on the
//! same SQLite file) is seen once entries expire (`cache_ttl_ms`). An entry loaded before a bump is never stored
//! after it, so a slow read cannot bring back what the bump dropped.
//!
//! Blobs are content-addressed and never change, so their bytes are kept until the memory
//! budget (`cache_mib`) pushes them out, oldest first.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::Result;
use bytes::Bytes;

use crate::db::generations::{IndexFile, Target};
use crate::db::packages::{Package, TargetSummary};
use crate::db::repos::Repo;
use crate::db::tokens::Credential;
use crate::storage::{BlobKey, Blobs};

/// Entries per kind; a full shelf is emptied rather than managed entry by entry.
const MAX_ENTRIES: usize = 20_000;
/// The largest blob kept, as a share of the budget.
const MAX_BLOB_SHARE: usize = 16;

/// A signed document of a target's current generation.
pub struct Document {
    pub body: Bytes,
    pub created_at: i64,
    pub sha256: String,
}

/// An index file, located by its path in the current generation, by its path in any
/// retained one, or by a digest (`by-hash`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FileKey {
    Current(String),
    Retained(String),
    ByHash {
        dir: String,
        column: &'static str,
        hex: String,
    },
}

pub struct ReadCache {
    epoch: AtomicU64,
    /// The epoch of `credentials`: moved by `invalidate` but not by `packages_changed`.
    credentials_epoch: AtomicU64,
    /// Woken at every invalidation, for requests that wait for a publish (`?wait=`).
    changed: tokio::sync::Notify,
    /// The longest an entry is trusted without an announcement of change.
    ttl: Duration,
    /// False while changes made by other processes could go unannounced.
    enabled: AtomicBool,
    repos: Shelf<String, Arc<Repo>>,
    documents: Shelf<(Target, &'static str), Arc<Document>>,
    files: Shelf<(Target, FileKey), Arc<IndexFile>>,
    pool: Shelf<(i64, i64, String), Arc<Package>>,
    /// The web UI's per-target counts and sizes of a repository, by its id.
    summaries: Shelf<i64, Arc<Vec<TargetSummary>>>,
    /// What token values are, by the SHA-256 of the value: private reads authorize from here.
    credentials: Shelf<String, Arc<Credential>>,
    blobs: BlobBytes,
}

impl ReadCache {
    /// A cache keeping up to `budget` bytes of blobs and other entries for up to `ttl`;
    /// `enabled` says whether every change is announced from the start (false on PostgreSQL
    /// until the listener is connected).
    pub fn new(budget: usize, ttl: Duration, enabled: bool) -> ReadCache {
        ReadCache {
            epoch: AtomicU64::new(0),
            credentials_epoch: AtomicU64::new(0),
            changed: tokio::sync::Notify::new(),
            ttl,
            enabled: AtomicBool::new(enabled),
            repos: Shelf::default(),
            documents: Shelf::default(),
            files: Shelf::default(),
            pool: Shelf::default(),
            summaries: Shelf::default(),
            credentials: Shelf::default(),
            blobs: BlobBytes::new(budget),
        }
    }

    /// Drops everything that describes changing state.
    pub fn invalidate(&self) {
        self.credentials_epoch.fetch_add(1, Ordering::AcqRel);
        self.packages_changed();
    }

    /// Drops everything that describes changing state but credentials: after a commit that
    /// changed packages or what is published, and nothing of tokens or users.
    pub fn packages_changed(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_waiters();
    }

    /// Completes at the next invalidation after it is enabled (`Notified::enable`) or first
    /// polled: after this process publishes, or another one announces a change.
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }

    /// Keeps nothing until `resume`: announcements of changes may be missed meanwhile.
    pub fn suspend(&self) {
        self.enabled.store(false, Ordering::Release);
        self.invalidate();
    }

    pub fn resume(&self) {
        self.invalidate();
        self.enabled.store(true, Ordering::Release);
    }

    pub async fn repo<F>(&self, owner: &str, name: &str, load: F) -> Result<Option<Arc<Repo>>>
    where
        F: Future<Output = Result<Option<Repo>>>,
    {
        self.through(&self.repos, format!("{owner}/{name}"), async {
            Ok(load.await?.map(Arc::new))
        })
        .await
    }

    /// What a token value is; `key` is the SHA-256 of the value. Only tokens that exist are
    /// kept, and every change of tokens drops them (`App::tokens_changed`).
    pub async fn credential<F>(&self, key: String, load: F) -> Result<Option<Arc<Credential>>>
    where
        F: Future<Output = Result<Option<Credential>>>,
    {
        let load = async { Ok(load.await?.map(Arc::new)) };
        self.through_at(&self.credentials, &self.credentials_epoch, key, load)
            .await
    }

    /// A repository's live packages counted by target, architecture and format. A push
    /// alone does not drop it; the publish that follows does (or the TTL).
    pub async fn summary<F>(&self, repository_id: i64, load: F) -> Result<Arc<Vec<TargetSummary>>>
    where
        F: Future<Output = Result<Vec<TargetSummary>>>,
    {
        let loaded = self.through(&self.summaries, repository_id, async {
            Ok(Some(Arc::new(load.await?)))
        });
        Ok(loaded.await?.unwrap_or_default())
    }

    pub async fn document<F>(
        &self,
        target: &Target,
        name: &'static str,
        load: F,
    ) -> Result<Option<Arc<Document>>>
    where
        F: Future<Output = Result<Option<(String, i64)>>>,
    {
        self.through(&self.documents, (target.clone(), name), async {
            Ok(load.await?.map(|(body, created_at)| {
                let body = Bytes::from(body);
                Arc::new(Document {
                    sha256: packyard_formats::digest::sha256_hex(&body),
                    body,
                    created_at,
                })
            }))
        })
        .await
    }

    pub async fn file<F>(
        &self,
        target: &Target,
        key: FileKey,
        load: F,
    ) -> Result<Option<Arc<IndexFile>>>
    where
        F: Future<Output = Result<Option<IndexFile>>>,
    {
        self.through(&self.files, (target.clone(), key), async {
            Ok(load.await?.map(Arc::new))
        })
        .await
    }

    pub async fn pool_file<F>(
        &self,
        repository_id: i64,
        distro_version_id: i64,
        filename: &str,
        load: F,
    ) -> Result<Option<Arc<Package>>>
    where
        F: Future<Output = Result<Option<Package>>>,
    {
        let key = (repository_id, distro_version_id, filename.to_owned());
        self.through(&self.pool, key, async { Ok(load.await?.map(Arc::new)) })
            .await
    }

    /// Whether a file of `size` bytes is small enough to keep: the segments of a larger one are
    /// read without keeping them, as its whole would push out what is kept and be gone itself
    /// before its next reading.
    pub fn keeps(&self, size: u64) -> bool {
        size <= self.blobs.max_item() as u64
    }

    /// The bytes of a blob of `size` bytes, when it is small enough to keep; `None` for a
    /// larger one, which is streamed instead. Errors when the blob is missing.
    pub async fn small_blob(
        &self,
        blobs: &Blobs,
        key: &BlobKey,
        size: u64,
    ) -> Result<Option<Bytes>> {
        if size > self.blobs.max_item() as u64 {
            return Ok(None);
        }
        if let Some(bytes) = self.blobs.get(key.sha256()) {
            return Ok(Some(bytes));
        }
        let bytes = blobs.get_bytes(key).await?;
        self.blobs.put(key.sha256(), bytes.clone());
        Ok(Some(bytes))
    }

    async fn through<K, V, F>(&self, shelf: &Shelf<K, V>, key: K, load: F) -> Result<Option<V>>
    where
        K: Hash + Eq,
        V: Clone,
        F: Future<Output = Result<Option<V>>>,
    {
        self.through_at(shelf, &self.epoch, key, load).await
    }

    /// As `through`, for a shelf whose entries last until `current` moves.
    async fn through_at<K, V, F>(
        &self,
        shelf: &Shelf<K, V>,
        current: &AtomicU64,
        key: K,
        load: F,
    ) -> Result<Option<V>>
    where
        K: Hash + Eq,
        V: Clone,
        F: Future<Output = Result<Option<V>>>,
    {
        let enabled = self.enabled.load(Ordering::Acquire);
        let epoch = current.load(Ordering::Acquire);
        if enabled && let Some(value) = shelf.get(&key, epoch, self.ttl) {
            return Ok(Some(value));
        }
        let value = load.await?;
        if enabled && let Some(value) = &value {
            shelf.put(key, value.clone(), epoch, current, self.ttl);
        }
        Ok(value)
    }
}

struct Entry<V> {
    value: V,
    epoch: u64,
    loaded: Instant,
}

struct Shelf<K, V> {
    entries: RwLock<HashMap<K, Entry<V>>>,
}

impl<K, V> Default for Shelf<K, V> {
    fn default() -> Self {
        Shelf {
            entries: RwLock::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq, V: Clone> Shelf<K, V> {
    fn get(&self, key: &K, epoch: u64, ttl: Duration) -> Option<V> {
        let entries = self.entries.read().expect("cache locks are never poisoned");
        entries
            .get(key)
            .filter(|e| e.epoch == epoch && e.loaded.elapsed() < ttl)
            .map(|e| e.value.clone())
    }

    /// Stores what was loaded in `epoch`, unless the epoch moved on while it was loading.
    fn put(&self, key: K, value: V, epoch: u64, current: &AtomicU64, ttl: Duration) {
        let mut entries = self
            .entries
            .write()
            .expect("cache locks are never poisoned");
        if current.load(Ordering::Acquire) != epoch {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, e| e.epoch == epoch && e.loaded.elapsed() < ttl);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        let loaded = Instant::now();
        entries.insert(
            key,
            Entry {
                value,
                epoch,
                loaded,
            },
        );
    }
}

/// Bytes of small blobs by SHA-256, within a budget, the oldest dropped first.
struct BlobBytes {
    budget: usize,
    inner: Mutex<BlobBytesInner>,
}

#[derive(Default)]
struct BlobBytesInner {
    bytes: HashMap<String, Bytes>,
    order: VecDeque<String>,
    total: usize,
}

impl BlobBytes {
    fn new(budget: usize) -> BlobBytes {
        BlobBytes {
            budget,
            inner: Mutex::default(),
        }
    }

    fn max_item(&self) -> usize {
        self.budget / MAX_BLOB_SHARE
    }

    fn get(&self, sha256: &str) -> Option<Bytes> {
        let inner = self.inner.lock().expect("cache locks are never poisoned");
        inner.bytes.get(sha256).cloned()
    }

    fn put(&self, sha256: &str, bytes: Bytes) {
        if bytes.len() > self.max_item() {
            return;
        }
        let mut inner = self.inner.lock().expect("cache locks are never poisoned");
        if inner.bytes.contains_key(sha256) {
            return;
        }
        while inner.total + bytes.len() > self.budget {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if let Some(dropped) = inner.bytes.remove(&oldest) {
                inner.total -= dropped.len();
            }
        }
        inner.total += bytes.len();
        inner.order.push_back(sha256.to_owned());
        inner.bytes.insert(sha256.to_owned(), bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn repo(id: i64) -> Repo {
        Repo {
            id,
            owner_id: 1,
            owner: "o".into(),
            name: "r".into(),
            private: false,
            index_zstd: false,
            index_xz: false,
            created_at: 0,
            last_push_at: None,
            keyring_version: 1,
        }
    }

    async fn cached_id(cache: &ReadCache, id: i64) -> i64 {
        let found = cache.repo("o", "r", async { Ok(Some(repo(id))) }).await;
        found.unwrap().unwrap().id
    }

    #[tokio::test]
    async fn entries_last_until_invalidated() {
        let cache = ReadCache::new(1 << 20, HOUR, true);
        assert_eq!(cached_id(&cache, 1).await, 1);
        assert_eq!(cached_id(&cache, 2).await, 1, "the first load is kept");
        cache.invalidate();
        assert_eq!(cached_id(&cache, 3).await, 3, "an invalidation drops it");
    }

    async fn cached_reader(cache: &ReadCache, repository_id: i64) -> i64 {
        let read = Credential::Read {
            repository_id,
            name: "ci".into(),
            expires_at: None,
        };
        let found = cache.credential("k".into(), async { Ok(Some(read)) }).await;
        match found.unwrap().unwrap().as_ref() {
            Credential::Read { repository_id, .. } => *repository_id,
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn credentials_outlive_changes_of_packages_but_not_invalidations() {
        let cache = ReadCache::new(1 << 20, HOUR, true);
        assert_eq!(cached_reader(&cache, 1).await, 1);
        assert_eq!(cached_id(&cache, 1).await, 1);
        cache.packages_changed();
        assert_eq!(
            cached_reader(&cache, 2).await,
            1,
            "a push keeps what tokens are"
        );
        assert_eq!(cached_id(&cache, 2).await, 2, "but drops repositories");
        cache.invalidate();
        assert_eq!(
            cached_reader(&cache, 3).await,
            3,
            "a change of tokens drops them"
        );
    }

    #[tokio::test]
    async fn a_load_overtaken_by_an_invalidation_is_not_kept() {
        let cache = ReadCache::new(1 << 20, HOUR, true);
        let found = cache
            .repo("o", "r", async {
                // A change commits and is announced while this read is in flight.
                cache.invalidate();
                Ok(Some(repo(1)))
            })
            .await;
        assert_eq!(found.unwrap().unwrap().id, 1);
        assert_eq!(cached_id(&cache, 2).await, 2);
    }

    #[tokio::test]
    async fn nothing_is_kept_while_suspended() {
        let cache = ReadCache::new(1 << 20, HOUR, false);
        assert_eq!(cached_id(&cache, 1).await, 1);
        assert_eq!(cached_id(&cache, 2).await, 2);
        cache.resume();
        assert_eq!(cached_id(&cache, 3).await, 3);
        assert_eq!(cached_id(&cache, 4).await, 3);
        cache.suspend();
        assert_eq!(cached_id(&cache, 5).await, 5);
    }

    #[tokio::test]
    async fn entries_expire() {
        let cache = ReadCache::new(1 << 20, Duration::from_millis(50), true);
        assert_eq!(cached_id(&cache, 1).await, 1);
        assert_eq!(cached_id(&cache, 2).await, 1);
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(cached_id(&cache, 2).await, 2);
    }

    #[test]
    fn blob_bytes_stay_within_the_budget() {
        let blobs = BlobBytes::new(64);
        for i in 0..10u8 {
            blobs.put(&i.to_string(), Bytes::from(vec![i; 4]));
        }
        assert_eq!(blobs.get("9").as_deref(), Some(&[9u8; 4][..]));
        blobs.put("big", Bytes::from(vec![0; 5]));
        assert!(
            blobs.get("big").is_none(),
            "larger than a sixteenth of the budget"
        );
        for i in 10..30u8 {
            blobs.put(&i.to_string(), Bytes::from(vec![i; 4]));
        }
        let inner = blobs.inner.lock().unwrap();
        assert!(inner.total <= 64);
        assert_eq!(inner.total, inner.bytes.len() * 4);
        assert!(!inner.bytes.contains_key("0"), "the oldest went first");
        assert!(inner.bytes.contains_key("29"));
    }
}
