//! Pushes committed together.
//!
//! SQLite takes one writer at a time, and a push's transaction is a handful of statements,
//! each a round trip to the connection's thread, and a commit that syncs the write-ahead log.
//! Under concurrent pushes that write turn set the rate, not the cores: the turn was held for
//! a push's statements, each waiting for a core busy with other pushes' uploads. So pushes
//! wait in a queue instead, and one committer takes every push waiting and inserts them in
//! one transaction: each package's rows and audit event, then each target's publish job and
//! each repository's last push once for them all, and one commit. A push still gets its
//! answer only after the commit that holds it is on disk.
//!
//! When any push of a group fails (a conflict, a full disk), the group is rolled back and each
//! of its pushes is committed alone, so no push fails for another's sake. PostgreSQL takes
//! writers side by side, so there each push commits alone, at once. A push whose client went
//! away while it waited is committed all the same; pushed again, it is an identical re-push.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use anyhow::Context;
use packyard_formats::digest::FileDigests;
use tokio::sync::oneshot;

use super::{Changed, Parsed, PushError, new_package, package_details};
use crate::app::App;
use crate::audit::Event;
use crate::db::packages::{Inserted, Package};
use crate::db::{self, Db, Tx, repos::Repo};
use crate::distros::Distro;
use crate::storage::BlobKey;

/// A parsed push whose blobs are stored, on its way into the database.
pub struct Push {
    pub repo: Repo,
    pub distro: Distro,
    /// The blobs of the upload and of its source files, with where each was staged.
    pub blobs: Vec<(BlobKey, PathBuf)>,
    pub digests: FileDigests,
    pub parsed: Parsed,
    /// The target's keyring package, when the push creates the target.
    pub keyring: Option<crate::keyring::Prepared>,
    /// The audit event of a new package, recorded with its details.
    pub event: Option<Event>,
}

/// A committed push: its package (the one already there for an identical re-push), whether it
/// is new, and how many pushes its commit held.
pub struct Committed {
    pub package: Package,
    pub new: bool,
    pub group: usize,
}

/// Pushes waiting for the committer.
#[derive(Default)]
pub struct Groups {
    queue: Mutex<Queue>,
    /// Pushes committed in a group of more than one, since the process started.
    grouped: AtomicU64,
    /// Groups rolled back because one of their pushes failed, since the process started.
    split: AtomicU64,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<Waiting>,
    /// Pushes the committer took and has not answered yet.
    in_hand: usize,
    /// Whether a committer runs; it ends when it finds nothing waiting.
    committing: bool,
}

struct Waiting {
    push: Push,
    done: oneshot::Sender<Result<Committed, PushError>>,
}

/// The most pushes one transaction takes.
const MOST: usize = 64;

impl Groups {
    /// Commits `push`, with whatever pushes wait beside it on SQLite.
    pub async fn commit(&self, app: &App, push: Push) -> Result<Committed, PushError> {
        if matches!(app.db, Db::Postgres(_)) {
            return commit_alone(app, &push).await;
        }
        let (done, committed) = oneshot::channel();
        let lead = {
            let mut queue = self.lock();
            queue.waiting.push(Waiting { push, done });
            !std::mem::replace(&mut queue.committing, true)
        };
        if lead {
            tokio::spawn(commit_waiting(app.clone()));
        }
        committed.await.unwrap_or_else(|_| {
            Err(PushError::Internal(anyhow::anyhow!(
                "the push's commit was abandoned"
            )))
        })
    }

    /// Pushes waiting for the committer to take them.
    pub fn waiting(&self) -> usize {
        self.lock().waiting.len()
    }

    /// Pushes the committer took and has not answered yet.
    pub fn in_hand(&self) -> usize {
        self.lock().in_hand
    }

    /// Pushes committed in a group of more than one, since the process started.
    pub fn grouped(&self) -> u64 {
        self.grouped.load(Ordering::Relaxed)
    }

    /// Groups rolled back because one of their pushes failed, their pushes then committed one
    /// by one, since the process started.
    pub fn split(&self) -> u64 {
        self.split.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Commits groups of waiting pushes until none waits.
async fn commit_waiting(app: App) {
    let _committer = Committer(app.clone());
    loop {
        let group: Vec<Waiting> = {
            let mut queue = app.push_groups.lock();
            queue.in_hand = 0;
            if queue.waiting.is_empty() {
                queue.committing = false;
                return;
            }
            queue.in_hand = queue.waiting.len().min(MOST);
            let taken = queue.in_hand;
            queue.waiting.drain(..taken).collect()
        };
        let pushes: Vec<&Push> = group.iter().map(|w| &w.push).collect();
        match commit_together(&app, &pushes).await {
            Ok(committed) => {
                if group.len() > 1 {
                    let grouped = &app.push_groups.grouped;
                    grouped.fetch_add(group.len() as u64, Ordering::Relaxed);
                }
                for (waiting, committed) in group.into_iter().zip(committed) {
                    let _ = waiting.done.send(Ok(committed));
                }
            }
            Err(e) if group.len() == 1 => {
                let waiting = group.into_iter().next().expect("one push");
                let _ = waiting.done.send(Err(e));
            }
            Err(_) => {
                app.push_groups.split.fetch_add(1, Ordering::Relaxed);
                for waiting in group {
                    let committed = commit_alone(&app, &waiting.push).await;
                    let _ = waiting.done.send(committed);
                }
            }
        }
    }
}

/// Should the committer panic, the pushes waiting fail rather than wait forever, and the next
/// push starts a committer again.
struct Committer(App);

impl Drop for Committer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut queue = self.0.push_groups.lock();
            queue.committing = false;
            queue.in_hand = 0;
            queue.waiting.clear();
        }
    }
}

async fn commit_alone(app: &App, push: &Push) -> Result<Committed, PushError> {
    let mut committed = commit_together(app, &[push]).await?;
    Ok(committed.remove(0))
}

/// Inserts `pushes` in one transaction and commits it; nothing of any of them is kept when one
/// fails.
async fn commit_together(app: &App, pushes: &[&Push]) -> Result<Vec<Committed>, PushError> {
    let mut tx = app.db.begin_write().await?;
    let mut hooked = HashMap::new();
    let mut committed = Vec::with_capacity(pushes.len());
    for push in pushes {
        committed.push(insert(app, &mut tx, push, &mut hooked).await?);
    }
    // One publish job per target and one last push per repository, however many pushes.
    let mut changed = Changed::default();
    for (push, committed) in pushes.iter().zip(&committed) {
        if committed.new {
            changed.add(&push.repo, &push.distro, &committed.package);
        }
    }
    changed.enqueue(&mut tx).await?;
    tx.commit().await.context("committing the package")?;
    if changed.added > 0 {
        app.queued();
    }
    let group = pushes.len();
    for committed in &mut committed {
        committed.group = group;
    }
    Ok(committed)
}

/// One push's rows in `tx`. `hooked` remembers which repositories have webhooks.
async fn insert(
    app: &App,
    tx: &mut Tx,
    push: &Push,
    hooked: &mut HashMap<i64, bool>,
) -> Result<Committed, PushError> {
    let Push {
        repo,
        distro,
        parsed,
        ..
    } = push;
    // The collector deletes blobs under the write lock; check again now that we hold it.
    super::put_blobs_again(app, &push.blobs).await?;
    for file in &parsed.files {
        let held =
            db::packages::live_companion_sha256(tx, repo.id, distro.id, &file.filename).await?;
        if held.is_some_and(|sha256| sha256 != file.sha256) {
            return Err(PushError::Conflict(format!(
                "has already been taken: {}/{} already has a different {}",
                distro.os, distro.dist, file.filename
            )));
        }
    }
    let dependencies =
        serde_json::to_string(&parsed.dependencies).context("encoding dependencies")?;
    let new = new_package(repo, distro, &push.digests, parsed, &dependencies);
    let existing = match db::packages::insert(tx, &new).await? {
        Inserted::New(package) => {
            let hooks = match hooked.get(&repo.id) {
                Some(&hooks) => hooks,
                None => {
                    let hooks = db::webhooks::any(tx, repo.id).await?;
                    hooked.insert(repo.id, hooks);
                    hooks
                }
            };
            if hooks {
                let repository = format!("{}/{}", repo.owner, repo.name);
                let data = crate::webhooks::package_data(&repository, &package);
                crate::webhooks::emit_tx(tx, repo.id, "package.pushed", data).await?;
            }
            if let Some(keyring) = &push.keyring {
                crate::keyring::insert(app, tx, repo, distro, keyring).await?;
            }
            if let Some(event) = &push.event {
                let event = event.clone().details(package_details(&package, true));
                crate::audit::record_tx(tx, &event).await?;
            }
            return Ok(Committed {
                package,
                new: true,
                group: 1,
            });
        }
        Inserted::Conflict(existing) => existing,
    };
    if existing.sha256 == push.digests.sha256 {
        return Ok(Committed {
            package: existing,
            new: false,
            group: 1,
        });
    }
    let target = format!("{}/{}", distro.os, distro.dist);
    let same_identity = existing.name == parsed.name
        && existing.version == parsed.version
        && existing.architecture == parsed.architecture;
    let message = if same_identity {
        format!(
            "has already been taken: {} {} ({}) is already in {target} with different contents ({}); \
             destroy it first or push a new version",
            parsed.name, parsed.version, parsed.architecture, existing.filename
        )
    } else {
        format!(
            "has already been taken: {target} already has a file named {}",
            existing.filename
        )
    };
    Err(PushError::Conflict(message))
}
