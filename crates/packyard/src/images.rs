//! Container images as the product knows them: a pushed manifest becomes a package row (see
//! `formats/oci`), tags point at manifests and remember every move, and promotion is moving a
//! tag (`tag`), undone one step at a time by `rollback`. The registry's HTTP face is
//! `http/registry/`; the API's is `http/api/images.rs`; the command line's `cli/image.rs`.

use anyhow::Context;
use bytes::Bytes;
use packyard_formats::digest::FileDigests;
use packyard_formats::oci::{self, Kind, Manifest};
use serde_json::json;
use thiserror::Error;

use crate::app::App;
use crate::db::packages::{Inserted, NewPackage, Package};
use crate::db::{self, Tx, oci::TagMove, repos::Repo};
use crate::distros::{self, Distro};
use crate::formats::{PackageFormat, oci as format};
use crate::storage::BlobKey;

/// The distribution every image's manifests are rows of.
pub fn distro() -> &'static Distro {
    distros::DISTROS
        .iter()
        .find(|d| d.format == PackageFormat::Oci)
        .expect("the distribution table has oci/1")
}

/// What went wrong, in the registry's error codes.
#[derive(Debug, Error)]
pub enum ImageError {
    #[error("{0}")]
    ManifestInvalid(String),
    #[error("{0}")]
    DigestInvalid(String),
    #[error("{message}")]
    BlobUnknown { message: String, digest: String },
    #[error("{0}")]
    ManifestUnknown(String),
    #[error("{0}")]
    Unsupported(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// A manifest reference: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    /// The SHA-256 hex of a `sha256:` digest.
    Digest(String),
}

impl Reference {
    pub fn parse(reference: &str) -> Result<Reference, ImageError> {
        if oci::is_digest_reference(reference) {
            let hex = oci::sha256_of_digest(reference).map_err(|e| match e {
                oci::DigestError::Unsupported(_) => ImageError::Unsupported(e.to_string()),
                oci::DigestError::Malformed(_) => ImageError::DigestInvalid(e.to_string()),
            })?;
            Ok(Reference::Digest(hex.to_owned()))
        } else if oci::is_valid_tag(reference) {
            Ok(Reference::Tag(reference.to_owned()))
        } else {
            Err(ImageError::ManifestInvalid(format!(
                "{reference:?} is neither a tag ([A-Za-z0-9_][A-Za-z0-9._-]{{0,127}}) nor a digest"
            )))
        }
    }
}

/// What a manifest push did.
pub struct Pushed {
    pub digest: String,
    pub subject: Option<String>,
}

/// The largest image configuration read for its platform.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Stores a pushed manifest of `image` byte for byte, after checking that everything it refers
/// to is there, and points `reference` at it when that is a tag.
pub async fn put_manifest(
    app: &App,
    repo: &Repo,
    image: &str,
    reference: &Reference,
    bytes: Bytes,
    content_type: Option<&str>,
    actor: &str,
) -> Result<Pushed, ImageError> {
    let manifest = oci::parse_manifest(&bytes, content_type).map_err(|e| match e {
        oci::ManifestError::Unsupported(_) => ImageError::Unsupported(e.to_string()),
        _ => ImageError::ManifestInvalid(e.to_string()),
    })?;
    let digests = FileDigests::of(&bytes);
    if let Reference::Digest(hex) = reference
        && *hex != digests.sha256
    {
        return Err(ImageError::DigestInvalid(format!(
            "the manifest's digest is sha256:{}, not the sha256:{hex} it was pushed as",
            digests.sha256
        )));
    }
    let key = BlobKey::from_sha256(&digests.sha256)?;
    app.blobs.put_bytes(&key, bytes.clone()).await?;
    let architecture = architecture(app, repo, image, &manifest).await?;
    let platforms = match manifest.kind {
        Kind::Image => vec![architecture.clone()],
        Kind::Index => manifest
            .manifests
            .iter()
            .filter_map(|m| m.platform.clone())
            .collect(),
    };
    let platforms = serde_json::to_string(&platforms).context("encoding platforms")?;

    let mut tx = app.db.begin_write().await?;
    // The collector deletes blobs under the write lock; check again now that we hold it.
    app.blobs.put_bytes_again(&key, bytes.clone()).await?;
    let (references, referred_size) = check_references(&mut tx, repo, image, &manifest).await?;
    let total = bytes.len() as i64 + referred_size;
    let filename = format::filename(image, &digests.sha256);
    let version = format!("sha256:{}", digests.sha256);
    let new = NewPackage {
        repository_id: repo.id,
        distro_version_id: distro().id,
        format: PackageFormat::Oci.name(),
        name: image,
        version: &version,
        architecture: &architecture,
        filename: &filename,
        size: total,
        md5: &digests.md5,
        sha1: &digests.sha1,
        sha256: &digests.sha256,
        sha512: &digests.sha512,
        dependencies: "{}",
        entries: &[],
        files: &[],
    };
    let repository = format!("{}/{}", repo.owner, repo.name);
    match db::packages::insert(&mut tx, &new).await? {
        Inserted::New(package) => {
            db::packages::mark_indexed(&mut tx, &[package.id]).await?;
            let subject = manifest.subject.as_ref().map(|s| s.digest.as_str());
            db::oci::insert_manifest(
                &mut tx,
                &db::oci::NewManifest {
                    package_id: package.id,
                    media_type: &manifest.media_type,
                    artifact_type: manifest.artifact_type.as_deref(),
                    subject,
                    manifest_size: bytes.len() as i64,
                    platforms: &platforms,
                    references: &references,
                },
            )
            .await?;
            let mut data = crate::webhooks::package_data(&repository, &package);
            data["image"] = image.into();
            data["digest"] = version.clone().into();
            data["media_type"] = manifest.media_type.clone().into();
            data["tag"] = match reference {
                Reference::Tag(tag) => tag.clone().into(),
                Reference::Digest(_) => serde_json::Value::Null,
            };
            crate::webhooks::emit_tx(&mut tx, repo.id, "image.pushed", data).await?;
            tracing::info!(repository = %repository, image = %image, digest = %version,
                media_type = %manifest.media_type, size_bytes = total, "pushed manifest");
        }
        // The same bytes again: only the tag may move.
        Inserted::Conflict(existing) if existing.sha256 == digests.sha256 => {}
        Inserted::Conflict(existing) => {
            return Err(anyhow::anyhow!(
                "{} is in the way of manifest {version}",
                existing.filename
            )
            .into());
        }
    }
    // A manifest's blobs stay the image's as long as it lives.
    for (kind, sha256, size) in &references {
        if *kind == "blob" {
            db::oci::link_blob(&mut tx, repo.id, image, sha256, *size).await?;
        }
    }
    if let Reference::Tag(tag) = reference {
        let manifest = db::oci::manifest_by_digest_tx(&mut tx, repo.id, image, &digests.sha256)
            .await?
            .context("the manifest just stored is gone")?;
        move_tag(&mut tx, repo, image, tag, &manifest, actor, false).await?;
    }
    db::repos::touch_last_push(&mut tx, repo.id).await?;
    tx.commit().await.context("committing the manifest")?;
    app.queued();
    Ok(Pushed {
        digest: format!("sha256:{}", digests.sha256),
        subject: manifest.subject.map(|s| s.digest),
    })
}

/// The row's architecture: the image's platform, `index` or `artifact`.
async fn architecture(
    app: &App,
    repo: &Repo,
    image: &str,
    manifest: &Manifest,
) -> Result<String, ImageError> {
    let config = match (manifest.kind, &manifest.config) {
        (Kind::Index, _) => return Ok(format::INDEX.to_owned()),
        (Kind::Image, _) if manifest.artifact_type.is_some() => {
            return Ok(format::ARTIFACT.to_owned());
        }
        (Kind::Image, Some(config)) => config,
        (Kind::Image, None) => return Ok(format::ARTIFACT.to_owned()),
    };
    let hex = oci::sha256_of_digest(&config.digest)
        .map_err(|e| ImageError::ManifestInvalid(e.to_string()))?;
    let held = db::oci::blob_size(&app.db, repo.id, image, hex).await?;
    let platform = match held {
        Some(size) if (size as u64) <= MAX_CONFIG_BYTES => {
            let bytes = app.blobs.get_bytes(&BlobKey::from_sha256(hex)?).await?;
            oci::config_platform(&bytes)
        }
        // Missing: `check_references` says so with the right error.
        _ => None,
    };
    Ok(platform.unwrap_or_else(|| "unknown".to_owned()))
}

/// Checks that the image holds every blob (or, for an index, every manifest) `manifest` names,
/// with the sizes it says; returns them as references and their total size.
async fn check_references(
    tx: &mut Tx,
    repo: &Repo,
    image: &str,
    manifest: &Manifest,
) -> Result<(Vec<(&'static str, String, i64)>, i64), ImageError> {
    let mut references = Vec::new();
    let mut total = 0;
    let hex_of = |digest: &str| -> Result<String, ImageError> {
        oci::sha256_of_digest(digest)
            .map(str::to_owned)
            .map_err(|e| ImageError::ManifestInvalid(e.to_string()))
    };
    let unknown = |what: &str, digest: &str| ImageError::BlobUnknown {
        message: format!("{what} {digest} is not in {image}; push it first"),
        digest: digest.to_owned(),
    };
    for blob in manifest.blobs() {
        let hex = hex_of(&blob.digest)?;
        let size = db::oci::blob_size_tx(tx, repo.id, image, &hex)
            .await?
            .ok_or_else(|| unknown("blob", &blob.digest))?;
        if size as u64 != blob.size {
            return Err(ImageError::ManifestInvalid(format!(
                "blob {} has {size} bytes, not the {} the manifest says",
                blob.digest, blob.size
            )));
        }
        if !references.iter().any(|(_, h, _)| *h == hex) {
            references.push(("blob", hex, size));
            total += size;
        }
    }
    for child in &manifest.manifests {
        let hex = hex_of(&child.digest)?;
        let found = db::oci::manifest_by_digest_tx(tx, repo.id, image, &hex)
            .await?
            .ok_or_else(|| unknown("manifest", &child.digest))?;
        if !references.iter().any(|(_, h, _)| *h == hex) {
            references.push(("manifest", hex, found.total_size));
            total += found.total_size;
        }
    }
    Ok((references, total))
}

/// Points `tag` at `manifest`, with a `tag.moved` event when it moved.
async fn move_tag(
    tx: &mut Tx,
    repo: &Repo,
    image: &str,
    tag: &str,
    manifest: &db::oci::Manifest,
    actor: &str,
    rollback: bool,
) -> anyhow::Result<Option<Option<String>>> {
    match db::oci::set_tag(tx, repo.id, image, tag, manifest, actor, rollback).await? {
        TagMove::Unchanged => Ok(None),
        TagMove::Moved { previous } => {
            let data = json!({
                "repository": format!("{}/{}", repo.owner, repo.name),
                "image": image, "tag": tag, "digest": manifest.digest(),
                "previous": previous, "rollback": rollback, "actor": actor,
            });
            crate::webhooks::emit_tx(tx, repo.id, "tag.moved", data).await?;
            tracing::info!(repository = %format!("{}/{}", repo.owner, repo.name), image = %image,
                tag = %tag, digest = %manifest.digest(), previous = ?previous, "moved tag");
            Ok(Some(previous))
        }
    }
}

/// What a tag move did, for the API and the command line.
#[derive(Debug, serde::Serialize)]
pub struct Moved {
    pub image: String,
    pub tag: String,
    pub digest: String,
    /// What the tag pointed at before; `None` for a new tag.
    pub previous: Option<String>,
    /// False when the tag already pointed there.
    pub moved: bool,
}

impl Moved {
    /// `moved` as `move_tag` returned it: `None` when nothing changed, else the previous digest.
    fn of(
        image: &str,
        tag: &str,
        manifest: &db::oci::Manifest,
        moved: Option<Option<String>>,
    ) -> Moved {
        Moved {
            image: image.to_owned(),
            tag: tag.to_owned(),
            digest: manifest.digest(),
            moved: moved.is_some(),
            previous: moved.flatten(),
        }
    }
}

/// Moves `tag` of `image` to the manifest `sha256` (promotion: `:prod` to a tested digest).
pub async fn tag(
    app: &App,
    repo: &Repo,
    image: &str,
    sha256: &str,
    tag: &str,
    actor: &str,
) -> Result<Moved, ImageError> {
    if !oci::is_valid_tag(tag) {
        return Err(ImageError::ManifestInvalid(format!(
            "{tag:?} is not a valid tag"
        )));
    }
    let mut tx = app.db.begin_write().await?;
    let manifest = db::oci::manifest_by_digest_tx(&mut tx, repo.id, image, sha256)
        .await?
        .ok_or_else(|| {
            ImageError::ManifestUnknown(format!("{image} has no manifest sha256:{sha256}"))
        })?;
    let moved = move_tag(&mut tx, repo, image, tag, &manifest, actor, false).await?;
    tx.commit().await?;
    app.queued();
    Ok(Moved::of(image, tag, &manifest, moved))
}

/// Moves `tag` back to where it pointed before its last move that no rollback undid yet; a
/// second rollback goes one more step back.
pub async fn rollback(
    app: &App,
    repo: &Repo,
    image: &str,
    tag: &str,
    actor: &str,
) -> Result<Moved, ImageError> {
    let mut tx = app.db.begin_write().await?;
    let last = db::oci::last_undoable_move(&mut tx, repo.id, image, tag).await?;
    let Some((last, previous)) = last.and_then(|m| m.previous.clone().map(|p| (m, p))) else {
        return Err(ImageError::ManifestUnknown(format!(
            "{image}:{tag} has no earlier digest to roll back to"
        )));
    };
    let hex = oci::sha256_of_digest(&previous).map_err(|e| anyhow::anyhow!("{e}"))?;
    let manifest = db::oci::manifest_by_digest_tx(&mut tx, repo.id, image, hex)
        .await?
        .ok_or_else(|| {
            ImageError::ManifestUnknown(format!(
                "{image}:{tag} pointed at {previous} before, which has been deleted since"
            ))
        })?;
    let moved = move_tag(&mut tx, repo, image, tag, &manifest, actor, true).await?;
    db::oci::mark_undone(&mut tx, last.id).await?;
    tx.commit().await?;
    app.queued();
    Ok(Moved::of(image, tag, &manifest, moved))
}

/// Deletes a manifest by digest, with the tags pointing at it; its blobs go to the collector
/// once nothing else names them.
pub async fn delete_manifest(
    app: &App,
    repo: &Repo,
    image: &str,
    sha256: &str,
    actor: &str,
) -> Result<(), ImageError> {
    let mut tx = app.db.begin_write().await?;
    let manifest = db::oci::manifest_by_digest_tx(&mut tx, repo.id, image, sha256)
        .await?
        .ok_or_else(|| {
            ImageError::ManifestUnknown(format!("{image} has no manifest sha256:{sha256}"))
        })?;
    db::packages::mark_deleted(&mut tx, manifest.package_id).await?;
    untag(&mut tx, repo.id, image, manifest.package_id, actor).await?;
    tx.commit().await?;
    app.queued();
    tracing::info!(repository = %format!("{}/{}", repo.owner, repo.name), image = %image,
        digest = %manifest.digest(), "deleted manifest");
    Ok(())
}

/// Deletes the tags pointing at a manifest being destroyed, recording each.
pub async fn untag(
    tx: &mut Tx,
    repository_id: i64,
    image: &str,
    package_id: i64,
    actor: &str,
) -> anyhow::Result<()> {
    for tag in db::oci::tags_of_tx(tx, package_id).await? {
        db::oci::delete_tag(tx, repository_id, image, &tag, actor).await?;
    }
    Ok(())
}

/// Deletes a tag; the manifest stays.
pub async fn delete_tag(
    app: &App,
    repo: &Repo,
    image: &str,
    tag: &str,
    actor: &str,
) -> Result<(), ImageError> {
    let mut tx = app.db.begin_write().await?;
    if !db::oci::delete_tag(&mut tx, repo.id, image, tag, actor).await? {
        return Err(ImageError::ManifestUnknown(format!(
            "{image} has no tag {tag}"
        )));
    }
    tx.commit().await?;
    app.queued();
    Ok(())
}

/// An image's manifest as API v1 and the web UI add it to a package: tags with their pulls,
/// digest, platforms, media type and the manifest's own size.
pub async fn details(app: &App, package: &Package) -> anyhow::Result<serde_json::Value> {
    let Some(manifest) = db::oci::manifest_by_digest(
        &app.db,
        package.repository_id,
        &package.name,
        &package.sha256,
    )
    .await?
    else {
        return Ok(serde_json::Value::Null);
    };
    let tags = db::oci::tags_of(&app.db, package.id).await?;
    let platforms: Vec<String> = serde_json::from_str(&manifest.platforms).unwrap_or_default();
    Ok(json!({
        "image": package.name,
        "digest": manifest.digest(),
        "media_type": manifest.media_type,
        "artifact_type": manifest.artifact_type,
        "manifest_size": manifest.manifest_size,
        "total_size": manifest.total_size,
        "platforms": platforms,
        "tags": tags.iter().map(|(tag, pulls)| json!({"tag": tag, "pulls": pulls})).collect::<Vec<_>>(),
    }))
}

/// A tag the images' retention rule lets go.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TagCandidate {
    pub image: String,
    pub tag: String,
    pub digest: String,
    pub moved_at: i64,
}

/// A manifest the images' retention rule lets go.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ManifestCandidate {
    pub image: String,
    pub digest: String,
    /// The manifest and everything it refers to.
    pub size: i64,
    pub pushed_at: i64,
    #[serde(skip)]
    pub package_id: i64,
}

/// What the images' rule would let go: tags, then the manifests left untagged.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RetentionPlan {
    pub tags: Vec<TagCandidate>,
    pub manifests: Vec<ManifestCandidate>,
    /// The manifests' own bytes and those of the blobs no remaining manifest of the
    /// repository names (what the collector removes after the grace period).
    pub bytes_freed: i64,
    pub manifests_kept: usize,
}

/// The images' retention rule applied to a repository's images at `now`: of the tags matching
/// `rule.tags` (all when unset) and not `rule.protect`, each image keeps its `keep_last` most
/// recently moved; with `keep_days`, manifests untagged then and older than that go, unless a
/// manifest that stays names them (an index its platforms, a signature its subject).
pub async fn retention_plan(
    app: &App,
    repo: &Repo,
    rule: &db::retention::Rule,
    now: i64,
) -> anyhow::Result<RetentionPlan> {
    let counted = rule.tags.as_deref().map(regex::Regex::new).transpose()?;
    let protect = rule.protect.as_deref().map(regex::Regex::new).transpose()?;
    let tags = db::oci::repository_tags(&app.db, repo.id).await?;
    let manifests = db::oci::repository_manifests(&app.db, repo.id).await?;
    let references = db::oci::repository_references(&app.db, repo.id).await?;
    let mut plan = RetentionPlan::default();

    // Tags: the newest keep_last of the counted ones in each image.
    let mut by_image: std::collections::BTreeMap<&str, Vec<&db::oci::TagRow>> = Default::default();
    for tag in &tags {
        let is_counted = counted.as_ref().is_none_or(|r| r.is_match(&tag.tag))
            && !protect.as_ref().is_some_and(|r| r.is_match(&tag.tag));
        if is_counted {
            by_image.entry(&tag.image).or_default().push(tag);
        }
    }
    if let Some(keep) = rule.keep_last {
        for (_, mut counted) in by_image {
            counted.sort_by_key(|t| std::cmp::Reverse((t.updated_at, t.tag.clone())));
            for t in counted.into_iter().skip(keep.max(0) as usize) {
                plan.tags.push(TagCandidate {
                    image: t.image.clone(),
                    tag: t.tag.clone(),
                    digest: format!("sha256:{}", t.sha256),
                    moved_at: t.updated_at,
                });
            }
        }
    }
    let removed_tags: std::collections::HashSet<(&str, &str)> = plan
        .tags
        .iter()
        .map(|t| (t.image.as_str(), t.tag.as_str()))
        .collect();

    // Manifests: kept when tagged, young, or named by one that is kept.
    let young = |m: &db::oci::ManifestRow| {
        rule.keep_days
            .is_none_or(|days| m.created_at >= now - days * 86_400)
    };
    let mut kept: std::collections::HashSet<i64> = tags
        .iter()
        .filter(|t| !removed_tags.contains(&(t.image.as_str(), t.tag.as_str())))
        .map(|t| t.package_id)
        .chain(manifests.iter().filter(|m| young(m)).map(|m| m.package_id))
        .collect();
    let by_digest: std::collections::HashMap<(&str, &str), &db::oci::ManifestRow> = manifests
        .iter()
        .map(|m| ((m.image.as_str(), m.sha256.as_str()), m))
        .collect();
    loop {
        let before = kept.len();
        for (package_id, kind, sha256, _) in &references {
            if kind != "manifest" || !kept.contains(package_id) {
                continue;
            }
            let parent = manifests.iter().find(|m| m.package_id == *package_id);
            if let Some(child) =
                parent.and_then(|p| by_digest.get(&(p.image.as_str(), sha256.as_str())))
            {
                kept.insert(child.package_id);
            }
        }
        for m in &manifests {
            let subject_kept = m
                .subject
                .as_deref()
                .and_then(|s| s.strip_prefix("sha256:"))
                .is_some_and(|s| {
                    by_digest
                        .get(&(m.image.as_str(), s))
                        .is_some_and(|subject| kept.contains(&subject.package_id))
                });
            if subject_kept {
                kept.insert(m.package_id);
            }
        }
        if kept.len() == before {
            break;
        }
    }
    let mut kept_blobs = std::collections::HashSet::new();
    for (package_id, kind, sha256, _) in &references {
        if kind == "blob" && kept.contains(package_id) {
            kept_blobs.insert(sha256.as_str());
        }
    }
    let mut freed_blobs = std::collections::HashMap::new();
    for m in &manifests {
        if kept.contains(&m.package_id) {
            plan.manifests_kept += 1;
            continue;
        }
        plan.bytes_freed += m.manifest_size;
        for (package_id, kind, sha256, size) in &references {
            if *package_id == m.package_id
                && kind == "blob"
                && !kept_blobs.contains(sha256.as_str())
            {
                freed_blobs.insert(sha256.as_str(), *size);
            }
        }
        plan.manifests.push(ManifestCandidate {
            image: m.image.clone(),
            digest: format!("sha256:{}", m.sha256),
            size: m.total_size,
            pushed_at: m.created_at,
            package_id: m.package_id,
        });
    }
    plan.bytes_freed += freed_blobs.values().sum::<i64>();
    Ok(plan)
}

/// Deletes what a retention plan lets go inside `tx`.
pub async fn apply_retention(tx: &mut Tx, repo: &Repo, plan: &RetentionPlan) -> anyhow::Result<()> {
    for t in &plan.tags {
        db::oci::delete_tag(tx, repo.id, &t.image, &t.tag, "retention").await?;
    }
    for m in &plan.manifests {
        db::packages::mark_deleted(tx, m.package_id).await?;
        untag(tx, repo.id, &m.image, m.package_id, "retention").await?;
    }
    Ok(())
}
