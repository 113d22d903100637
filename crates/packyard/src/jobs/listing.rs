//! The package lists of the targets this process published, kept so that the next publish of
//! a target asks the database only for packages added since, instead of listing all of them.
//!
//! A kept list is trusted only as far as it can be checked: it records the committed
//! watermark it was brought up to (every package with a lower id had committed by then), the
//! next publish reads the live packages above that watermark together with the live count,
//! and if the merged list does not have exactly that many packages (a destroy, or an id
//! reused on SQLite), the whole list is read again. Lists older than the index grace period
//! are dropped, since the collector may have removed and reused ids they hold.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::db::Db;
use crate::db::generations::Target;
use crate::db::packages::{self, IndexEntry};

struct Listing {
    taken_at: Instant,
    watermark: i64,
    /// In id order, without bodies.
    entries: Vec<IndexEntry>,
}

#[derive(Default)]
pub struct Listings {
    kept: Mutex<HashMap<Target, Listing>>,
}

/// A target's live packages, and the watermark to keep them under once published.
pub struct Listed {
    pub entries: Vec<IndexEntry>,
    pub watermark: i64,
    /// Whether only the packages above the kept list's watermark were read.
    pub incremental: bool,
}

impl Listings {
    /// `watermark` is the committed watermark of the job's claim, when there is one; without
    /// it one is taken now.
    pub async fn list(
        &self,
        db: &Db,
        target: &Target,
        max_age: Duration,
        watermark: Option<i64>,
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
            let (added, live) =
                packages::index_list_since(db, repository_id, distro_version_id, listing.watermark)
                    .await?;
            let entries = merge(listing.entries, added);
            if entries.len() as i64 == live {
                return Ok(Listed {
                    entries,
                    watermark,
                    incremental: true,
                });
            }
        }
        let entries = packages::index_list(db, repository_id, distro_version_id).await?;
        Ok(Listed {
            entries,
            watermark,
            incremental: false,
        })
    }

    pub fn forget(&self, target: &Target) {
        self.kept
            .lock()
            .expect("the listing lock is never poisoned")
            .remove(target);
    }

    /// Keeps what a publish just committed: `entries` are all indexed now.
    pub fn keep(&self, target: &Target, watermark: i64, mut entries: Vec<IndexEntry>) {
        for entry in &mut entries {
            entry.body = None;
            entry.indexed = true;
        }
        let listing = Listing {
            taken_at: Instant::now(),
            watermark,
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
    merged.reserve(tail.len() + added.len());
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
                architecture: "amd64".into(),
                body: None,
                indexed: true,
            })
            .collect()
    }

    fn ids(entries: &[IndexEntry]) -> Vec<i64> {
        entries.iter().map(|e| e.id).collect()
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
        added[1].indexed = false;
        let merged = merge(entries(&[1, 5]), added);
        assert_eq!(ids(&merged), [1, 4, 5, 7]);
        assert!(!merged[2].indexed, "the newer row of 5 wins");
    }
}
