//! Snapshots, rollback and whole-channel promotion.
//!
//! A snapshot records which packages every target of a repository held (rows only; the
//! collector keeps what a snapshot names). `restore` and `promote_all` make a repository's
//! content equal to a set of packages (a snapshot of its own, or another repository's
//! content or snapshot) in one transaction: what differs is destroyed or copied in (entries
//! and blobs shared, nothing re-read), and each changed target gets one publish, a new
//! generation with a fresh `Date` and fresh signatures under the same `Origin`, `Label`,
//! `Suite` and `Codename`, so apt takes it after a plain `apt-get update`. The keyring
//! package stays as it is: it follows the signing keys, not the content.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::json;

use crate::app::App;
use crate::audit::{self, Actor, Event};
use crate::db::packages::Inserted;
use crate::db::{self, packages::Package, repos::Repo, snapshots::Snapshot};
use crate::distros;
use crate::ingest;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// One package in a listing or a difference.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub distribution: String,
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub filename: String,
    pub sha256: String,
}

impl Entry {
    pub fn of(p: &Package) -> Entry {
        Entry {
            distribution: distros::path_of(p.distro_version_id),
            name: p.name.clone(),
            version: p.version.clone(),
            architecture: p.architecture.clone(),
            filename: p.filename.clone(),
            sha256: p.sha256.clone(),
        }
    }
}

/// What differs between two sets of packages, by distribution and file name.
#[derive(Debug, Default, Serialize)]
pub struct Diff {
    pub added: Vec<Entry>,
    pub removed: Vec<Entry>,
    /// The same file name with other bytes: `to`'s side.
    pub changed: Vec<Entry>,
    pub unchanged: usize,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// A snapshot name: letters, digits, `.`, `_` and `-`, not starting with `.`.
pub fn check_name(name: &str) -> Result<(), SnapshotError> {
    let valid = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if valid {
        Ok(())
    } else {
        Err(SnapshotError::Refused(format!(
            "{:?} is not a snapshot name: use up to 100 letters, digits, '.', '_' and '-'",
            name.chars().take(100).collect::<String>()
        )))
    }
}

pub async fn create(
    app: &App,
    repo: &Repo,
    name: &str,
    actor: Actor,
) -> Result<Snapshot, SnapshotError> {
    check_name(name)?;
    let by = actor.name().to_owned();
    let keyring = crate::keyring::package_name(&repo.owner, &repo.name);
    let created = db::snapshots::create(&app.db, repo.id, name, &by, &keyring)
        .await?
        .ok_or_else(|| {
            SnapshotError::Refused(format!(
                "{}/{} already has a snapshot named {name}",
                repo.owner, repo.name
            ))
        })?;
    let event = Event::new(actor, "snapshot.create")
        .repository(&repo.owner, &repo.name)
        .target(name.to_owned())
        .details(json!({ "packages": created.packages, "bytes": created.bytes }));
    audit::record(&app.db, event).await;
    Ok(created)
}

pub async fn find(app: &App, repo: &Repo, name: &str) -> Result<Snapshot, SnapshotError> {
    db::snapshots::by_name(&app.db, repo.id, name)
        .await?
        .ok_or_else(|| {
            SnapshotError::NotFound(format!(
                "{}/{} has no snapshot named {name}",
                repo.owner, repo.name
            ))
        })
}

/// A snapshot's packages, or with `None` the repository's live ones; never its keyring.
pub async fn content(
    app: &App,
    repo: &Repo,
    snapshot: Option<&str>,
) -> Result<Vec<Package>, SnapshotError> {
    let mut packages = match snapshot {
        Some(name) => {
            let snapshot = find(app, repo, name).await?;
            db::packages::in_snapshot(&app.db, snapshot.id).await?
        }
        None => db::packages::live(&app.db, repo.id, None).await?,
    };
    // Images are kept by their tags, not by snapshots.
    packages.retain(|p| {
        !crate::keyring::is_keyring(repo, &p.name)
            && crate::formats::PackageFormat::name_in_package_lifecycle(&p.format)
    });
    Ok(packages)
}

pub async fn delete(app: &App, repo: &Repo, name: &str, actor: Actor) -> Result<(), SnapshotError> {
    let snapshot = find(app, repo, name).await?;
    db::snapshots::delete(&app.db, snapshot.id).await?;
    let event = Event::new(actor, "snapshot.delete")
        .repository(&repo.owner, &repo.name)
        .target(name.to_owned());
    audit::record(&app.db, event).await;
    Ok(())
}

/// What changes going from `from` to `to`.
pub fn diff(from: &[Package], to: &[Package]) -> Diff {
    let key = |p: &Package| (p.distro_version_id, p.filename.clone());
    let before: BTreeMap<_, &Package> = from.iter().map(|p| (key(p), p)).collect();
    let after: BTreeMap<_, &Package> = to.iter().map(|p| (key(p), p)).collect();
    let mut diff = Diff::default();
    for (k, p) in &after {
        match before.get(k) {
            None => diff.added.push(Entry::of(p)),
            Some(old) if old.sha256 != p.sha256 => diff.changed.push(Entry::of(p)),
            Some(_) => diff.unchanged += 1,
        }
    }
    for (k, p) in &before {
        if !after.contains_key(k) {
            diff.removed.push(Entry::of(p));
        }
    }
    diff
}

/// Makes `repo`'s content (keyring aside) equal to `wanted`: one transaction, one publish per
/// changed target. The difference it made.
async fn make_equal(app: &App, repo: &Repo, wanted: Vec<Package>) -> Result<Diff, SnapshotError> {
    let current = content(app, repo, None).await?;
    let changes = diff(&current, &wanted);
    if changes.is_empty() {
        return Ok(changes);
    }
    let key = |p: &Package| (p.distro_version_id, p.filename.clone());
    let before: BTreeMap<_, &Package> = current.iter().map(|p| (key(p), p)).collect();
    let after: BTreeMap<_, &Package> = wanted.iter().map(|p| (key(p), p)).collect();
    let differs = |a: &Package, b: Option<&&Package>| b.is_none_or(|b| b.sha256 != a.sha256);
    let going: Vec<&Package> = current
        .iter()
        .filter(|p| differs(p, after.get(&key(p))))
        .collect();
    // Read what the copies need before taking the write lock.
    let mut copies = Vec::new();
    let mut keyrings = BTreeMap::new();
    for source in wanted.iter().filter(|p| differs(p, before.get(&key(p)))) {
        let distro = distros::by_id(source.distro_version_id)
            .with_context(|| format!("unknown distribution {}", source.distro_version_id))?;
        let entries = db::packages::entries(&app.db, source.id).await?;
        let files = db::packages::files(&app.db, source.id).await?;
        if let std::collections::btree_map::Entry::Vacant(slot) = keyrings.entry(distro.id) {
            let missing = crate::keyring::missing_in(app, repo, distro)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            slot.insert(missing);
        }
        copies.push((distro, source, entries, files));
    }
    let mut tx = app.db.begin_write().await?;
    let mut queued = BTreeSet::new();
    for old in going {
        let Some(distro) = distros::by_id(old.distro_version_id) else {
            continue;
        };
        db::packages::mark_deleted(&mut tx, old.id).await?;
        if queued.insert((distro.id, old.name.clone(), old.architecture.clone())) {
            ingest::enqueue_publishes(&mut tx, repo, distro, &old.name, &old.architecture).await?;
        }
    }
    for (distro, source, entries, files) in &copies {
        let entries: Vec<(&str, String)> = entries
            .iter()
            .map(|(part, body)| (part.as_str(), body.clone()))
            .collect();
        let new = ingest::copy_of(repo.id, distro, source, &entries, files);
        match db::packages::insert(&mut tx, &new).await? {
            Inserted::New(copy) => {
                if queued.insert((distro.id, copy.name.clone(), copy.architecture.clone())) {
                    ingest::enqueue_publishes(
                        &mut tx,
                        repo,
                        distro,
                        &copy.name,
                        &copy.architecture,
                    )
                    .await?;
                }
            }
            Inserted::Conflict(existing) if existing.sha256 == source.sha256 => {}
            Inserted::Conflict(existing) => {
                return Err(SnapshotError::Refused(format!(
                    "{} changed while this ran: {} holds other bytes now; try again",
                    distros::path_of(distro.id),
                    existing.filename
                )));
            }
        }
        if let Some(Some(keyring)) = keyrings.remove(&distro.id) {
            crate::keyring::insert(app, &mut tx, repo, distro, &keyring)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
    }
    db::repos::touch_last_push(&mut tx, repo.id).await?;
    tx.commit().await?;
    app.queued();
    Ok(changes)
}

/// Makes the repository's content equal to its snapshot's.
pub async fn restore(
    app: &App,
    repo: &Repo,
    name: &str,
    actor: Actor,
) -> Result<Diff, SnapshotError> {
    let wanted = content(app, repo, Some(name)).await?;
    let changes = make_equal(app, repo, wanted).await?;
    tracing::info!(repository = %format!("{}/{}", repo.owner, repo.name), snapshot = name,
        added = changes.added.len(), removed = changes.removed.len(), changed = changes.changed.len(), "restored snapshot");
    let mut data = summary(&changes);
    data["repository"] = format!("{}/{}", repo.owner, repo.name).into();
    data["snapshot"] = name.into();
    crate::webhooks::emit(app, repo.id, "snapshot.restored", data).await;
    let event = Event::new(actor, "snapshot.restore")
        .repository(&repo.owner, &repo.name)
        .target(name.to_owned())
        .details(summary(&changes));
    audit::record(&app.db, event).await;
    Ok(changes)
}

fn summary(changes: &Diff) -> serde_json::Value {
    json!({ "added": changes.added.len(), "removed": changes.removed.len(), "changed": changes.changed.len(), "unchanged": changes.unchanged })
}

/// What `promote_all` did: the difference, and the snapshot of the destination taken first
/// (its undo: `snapshot restore DEST NAME`).
#[derive(Debug, Serialize)]
pub struct Promotion {
    pub source: String,
    pub destination: String,
    pub before: Option<String>,
    #[serde(flatten)]
    pub changes: Diff,
}

/// Makes every target of `dest` equal to `source`'s (or to its snapshot `snapshot`), after
/// snapshotting `dest`; with `dry_run` only says what would change.
pub async fn promote_all(
    app: &App,
    source: &Repo,
    dest: &Repo,
    snapshot: Option<&str>,
    dry_run: bool,
    actor: Actor,
) -> Result<Promotion, SnapshotError> {
    if source.id == dest.id {
        return Err(SnapshotError::Refused(
            "the source and the destination are the same repository".into(),
        ));
    }
    let wanted = content(app, source, snapshot).await?;
    let names = (
        format!("{}/{}", source.owner, source.name),
        format!("{}/{}", dest.owner, dest.name),
    );
    if dry_run {
        let current = content(app, dest, None).await?;
        return Ok(Promotion {
            source: names.0,
            destination: names.1,
            before: None,
            changes: diff(&current, &wanted),
        });
    }
    let stamp = time::OffsetDateTime::now_utc()
        .format(&time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .map_err(anyhow::Error::from)?;
    let mut before = format!("before-promote-all-{stamp}");
    let mut taken = None;
    for attempt in 1..=10 {
        let keyring = crate::keyring::package_name(&dest.owner, &dest.name);
        if let Some(s) =
            db::snapshots::create(&app.db, dest.id, &before, actor.name(), &keyring).await?
        {
            taken = Some(s);
            break;
        }
        before = format!("before-promote-all-{stamp}-{attempt}");
    }
    taken.context("could not name the snapshot taken before promoting")?;
    let changes = make_equal(app, dest, wanted).await?;
    let event = Event::new(actor, "repository.promote_all")
        .repository(&dest.owner, &dest.name)
        .target(names.0.clone())
        .details(json!({ "snapshot": snapshot, "before": before, "changes": summary(&changes) }));
    audit::record(&app.db, event).await;
    Ok(Promotion {
        source: names.0,
        destination: names.1,
        before: Some(before),
        changes,
    })
}
