//! The package lists of the targets this process published, kept so that the next publish of
//! a target asks the database only for packages added since, instead of listing all of them.
//!
//! A kept list is trusted only as far as it can be checked: it records the committed
//! watermark it was brought up to (every package with a lower id had committed by then) and
//! the distribution version's removal count (packages deleted or destroyed, counted by
//! triggers); the next publish reads the live packages above that watermark together with the
//! removal count, and if anything was removed since, the whole list is read again. Counting
//! the live packages instead would cost tens of milliseconds at a million. Lists older than
//! the index grace period are dropped too.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::db::Db;
use crate::db::generations::Target;
use crate::db::packages::{self, IndexEntry, LiveList};

struct Listing {
    taken_at: Instant,
    at: ListedAt,
    /// In id order, without bodies; every one of them in the index published from it.
    entries: Vec<IndexEntry>,
}

/// The committed watermark a list was brought up to, and the removal count it was read with.
#[derive(Debug, Clone, Copy)]
pub struct ListedAt {
    pub watermark: i64,
    removals: i64,
}

#[derive(Default)]
pub struct Listings {
    kept: Mutex<HashMap<Target, Listing>>,
}

/// A target's live packages, and what to keep them under once published.
pub struct Listed {
    pub entries: Vec<IndexEntry>,
    /// The ids among `entries` that no published index lists yet, which the publish marks
    /// indexed.
    pub unindexed: Vec<i64>,
    pub at: ListedAt,
    /// Whether only the packages above the kept list's watermark were read.
    pub incremental: bool,
}

impl Listings {
    /// `watermark` is the committed watermark of the job's claim, when there is one; without
    /// it one is taken now. Only packages of architectures `listed` in the target are read:
    /// a target holding a few packages of a distribution version of a million keeps a few
    /// entries, and a rebuild of it never holds the million beside another target's list.
    pub async fn list(
        &self,
        db: &Db,
        target: &Target,
        max_age: Duration,
        watermark: Option<i64>,
        listed: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<Listed> {
        let kept = self
            .kept
            .lock()
            .expect("the listing lock is never poisoned")
            .remove(target)
            .filter(|listing| listing.taken_at.elapsed() < max_age);
        let watermark = match watermark {
            Some(watermark) => watermark,
            None => packages::committed_watermark(db).await?,
        };
        let (repository_id, distro_version_id) = (target.repository_id, target.distro_version_id);
        if let Some(listing) = kept {
            let added = packages::index_list_since(
                db,
                repository_id,
                distro_version_id,
                listing.at.watermark,
                listed,
            )
            .await?;
            if added.removals == listing.at.removals {
                // Every kept entry is indexed, and an entry read again is the newer row.
                return Ok(Listed {
                    entries: merge(listing.entries, added.entries),
                    unindexed: added.unindexed,
                    at: ListedAt {
                        watermark,
                        removals: added.removals,
                    },
                    incremental: true,
                });
            }
        }
        let LiveList {
            entries,
            unindexed,
            removals,
        } = packages::index_list_since(db, repository_id, distro_version_id, 0, listed).await?;
        Ok(Listed {
            entries,
            unindexed,
            at: ListedAt {
                watermark,
                removals,
            },
            incremental: false,
        })
    }

    /// How many entries the list kept for `target` holds, if one is kept.
    pub fn kept_entries(&self, target: &Target) -> Option<usize> {
        let kept = self
            .kept
            .lock()
            .expect("the listing lock is never poisoned");
        kept.get(target).map(|listing| listing.entries.len())
    }

    pub fn forget(&self, target: &Target) {
        self.kept
            .lock()
            .expect("the listing lock is never poisoned")
            .remove(target);
    }

    /// Keeps what a publish just committed: `entries` are all indexed now.
    pub fn keep(&self, target: &Target, at: ListedAt, mut entries: Vec<IndexEntry>) {
        for entry in &mut entries {
            entry.body = None;
        }
        let listing = Listing {
            taken_at: Instant::now(),
            at,
            entries,
        };
        self.kept
            .lock()
            .expect("the listing lock is never poisoned")
            .insert(target.clone(), listing);
    }
}

/// `kept` with `added` put in: both in id order; an id in both takes the newer row.
fn merge(kept: Vec<IndexEntry>, added: Vec<IndexEntry>) -> Vec<IndexEntry> {
    let Some(first_added) = added.first().map(|e| e.id) else {
        return kept;
    };
    let split = kept.partition_point(|e| e.id < first_added);
    let mut kept = kept;
    let tail = kept.split_off(split);
    let mut merged = kept;
    // Out of room, the list grows by a little rather than doubling: at a million entries
    // doubling would hold 72 MB at once for 24 MB of list.
    let needed = merged.len() + tail.len() + added.len();
    if needed > merged.capacity() {
        merged.reserve_exact(packages::with_room(needed) - merged.len());
    }
    let mut tail = tail.into_iter().peekable();
    for entry in added {
        while let Some(older) = tail.next_if(|e| e.id < entry.id) {
            merged.push(older);
        }
        tail.next_if(|e| e.id == entry.id);
        merged.push(entry);
    }
    merged.extend(tail);
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(ids: &[i64]) -> Vec<IndexEntry> {
        ids.iter()
            .map(|&id| IndexEntry {
                id,
                architecture: std::sync::Arc::new("amd64".to_owned()),
                body: None,
            })
            .collect()
    }

    fn ids(entries: &[IndexEntry]) -> Vec<i64> {
        entries.iter().map(|e| e.id).collect()
    }

    #[test]
    fn an_entry_without_its_text_is_three_words() {
        // A kept list holds one for every package of its target: 24 MB at a million.
        assert_eq!(std::mem::size_of::<IndexEntry>(), 24);
    }

    #[test]
    fn a_list_out_of_room_grows_by_a_thirty_second_not_by_doubling() {
        let mut kept = entries(&(1..=40_000).collect::<Vec<_>>());
        kept.shrink_to_fit();
        let merged = merge(kept, entries(&[40_001]));
        assert_eq!(merged.len(), 40_001);
        assert!(
            (41_000..42_000).contains(&merged.capacity()),
            "{}",
            merged.capacity()
        );
        // With room left, nothing moves.
        let capacity = merged.capacity();
        let merged = merge(merged, entries(&[40_002, 40_003]));
        assert_eq!(merged.capacity(), capacity);
    }

    #[test]
    fn merging_keeps_id_order_and_takes_the_newer_row() {
        assert_eq!(ids(&merge(entries(&[1, 2, 5]), entries(&[]))), [1, 2, 5]);
        assert_eq!(
            ids(&merge(entries(&[1, 2, 5]), entries(&[6, 9]))),
            [1, 2, 5, 6, 9]
        );
        // Above the watermark, ids committed out of order: 4 shows up after 5 was kept.
        let mut added = entries(&[4, 5, 7]);
        added[1].architecture = std::sync::Arc::new("all".to_owned());
        let merged = merge(entries(&[1, 5]), added);
        assert_eq!(ids(&merged), [1, 4, 5, 7]);
        assert_eq!(*merged[2].architecture, "all", "the newer row of 5 wins");
    }
}
