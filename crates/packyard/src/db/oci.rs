//! Container images: the blobs each image holds, what each manifest refers to, tags and their
//! history, and upload sessions. A manifest itself is a package row (format `oci`).

use anyhow::Result;

use super::{Db, Tx, now, run, run_tx};

/// A live manifest of an image.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Manifest {
    pub package_id: i64,
    /// The SHA-256 of its bytes (its digest without `sha256:`), also its blob's key.
    pub sha256: String,
    pub media_type: String,
    pub artifact_type: Option<String>,
    pub manifest_size: i64,
    /// The manifest and everything it refers to, in bytes.
    pub total_size: i64,
    pub created_at: i64,
    /// JSON list of platforms.
    pub platforms: String,
}

impl Manifest {
    pub fn digest(&self) -> String {
        format!("sha256:{}", self.sha256)
    }
}

const MANIFEST: &str = "SELECT p.id AS package_id, p.sha256, m.media_type, m.artifact_type,
    m.manifest_size, p.size AS total_size, p.created_at, m.platforms
    FROM packages p JOIN oci_manifests m ON m.package_id = p.id";

fn by_digest_sql() -> String {
    format!(
        "{MANIFEST} WHERE p.repository_id = $1 AND p.name = $2 AND p.sha256 = $3
         AND p.format = 'oci' AND p.deleted_at IS NULL"
    )
}

pub async fn manifest_by_digest(
    db: &Db,
    repository_id: i64,
    image: &str,
    sha256: &str,
) -> Result<Option<Manifest>> {
    Ok(run!(
        db,
        sqlx::query_as(sqlx::AssertSqlSafe(by_digest_sql()))
            .bind(repository_id)
            .bind(image)
            .bind(sha256),
        fetch_optional
    )?)
}

pub async fn manifest_by_tag(
    db: &Db,
    repository_id: i64,
    image: &str,
    tag: &str,
) -> Result<Option<Manifest>> {
    let sql = format!(
        "{MANIFEST} JOIN oci_tags t ON t.package_id = p.id
         WHERE t.repository_id = $1 AND t.image = $2 AND t.tag = $3 AND p.deleted_at IS NULL"
    );
    Ok(run!(
        db,
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(repository_id)
            .bind(image)
            .bind(tag),
        fetch_optional
    )?)
}

/// As `manifest_by_digest`, inside a write transaction.
pub async fn manifest_by_digest_tx(
    tx: &mut Tx,
    repository_id: i64,
    image: &str,
    sha256: &str,
) -> Result<Option<Manifest>> {
    Ok(run_tx!(
        tx,
        sqlx::query_as(sqlx::AssertSqlSafe(by_digest_sql()))
            .bind(repository_id)
            .bind(image)
            .bind(sha256),
        fetch_optional
    )?)
}

/// The size of a blob the image holds, if it holds it.
const BLOB_SIZE: &str =
    "SELECT size FROM oci_blobs WHERE repository_id = $1 AND image = $2 AND sha256 = $3";

pub async fn blob_size(
    db: &Db,
    repository_id: i64,
    image: &str,
    sha256: &str,
) -> Result<Option<i64>> {
    Ok(run!(
        db,
        sqlx::query_scalar(BLOB_SIZE)
            .bind(repository_id)
            .bind(image)
            .bind(sha256),
        fetch_optional
    )?)
}

/// As `blob_size`, inside a write transaction.
pub async fn blob_size_tx(
    tx: &mut Tx,
    repository_id: i64,
    image: &str,
    sha256: &str,
) -> Result<Option<i64>> {
    Ok(run_tx!(
        tx,
        sqlx::query_scalar(BLOB_SIZE)
            .bind(repository_id)
            .bind(image)
            .bind(sha256),
        fetch_optional
    )?)
}

/// Records that the image holds a blob (again: the link's time is refreshed, so a blob pushed
/// anew is not collected before the manifest that follows it arrives).
pub async fn link_blob(
    tx: &mut Tx,
    repository_id: i64,
    image: &str,
    sha256: &str,
    size: i64,
) -> Result<()> {
    run_tx!(
        tx,
        sqlx::query(
            "INSERT INTO oci_blobs (repository_id, image, sha256, size, created_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (repository_id, image, sha256) DO UPDATE SET created_at = $5"
        )
        .bind(repository_id)
        .bind(image)
        .bind(sha256)
        .bind(size)
        .bind(now()),
        execute
    )?;
    Ok(())
}

/// What the registry keeps of a manifest beside its package row.
pub struct NewManifest<'a> {
    pub package_id: i64,
    pub media_type: &'a str,
    pub artifact_type: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub manifest_size: i64,
    pub platforms: &'a str,
    /// `(kind, sha256, size)`: `blob` for a config or layer, `manifest` for an index's entry.
    pub references: &'a [(&'static str, String, i64)],
}

pub async fn insert_manifest(tx: &mut Tx, new: &NewManifest<'_>) -> Result<()> {
    run_tx!(
        tx,
        sqlx::query(
            "INSERT INTO oci_manifests (package_id, media_type, artifact_type, subject,
             manifest_size, platforms) VALUES ($1, $2, $3, $4, $5, $6)"
        )
        .bind(new.package_id)
        .bind(new.media_type)
        .bind(new.artifact_type)
        .bind(new.subject)
        .bind(new.manifest_size)
        .bind(new.platforms),
        execute
    )?;
    for (kind, sha256, size) in new.references {
        run_tx!(
            tx,
            sqlx::query(
                "INSERT INTO oci_references (package_id, kind, sha256, size) VALUES ($1, $2, $3, $4)
                 ON CONFLICT DO NOTHING"
            )
            .bind(new.package_id)
            .bind(kind)
            .bind(sha256)
            .bind(size),
            execute
        )?;
    }
    Ok(())
}

/// The digest a tag points at, if it exists.
pub async fn tag_target_tx(
    tx: &mut Tx,
    repository_id: i64,
    image: &str,
    tag: &str,
) -> Result<Option<String>> {
    Ok(run_tx!(
        tx,
        sqlx::query_scalar(
            "SELECT p.sha256 FROM oci_tags t JOIN packages p ON p.id = t.package_id
             WHERE t.repository_id = $1 AND t.image = $2 AND t.tag = $3"
        )
        .bind(repository_id)
        .bind(image)
        .bind(tag),
        fetch_optional
    )?)
}

/// Points a tag at a manifest, recording the move when it changes anything. Returns the digest
/// it pointed at before (`None` for a new tag), or `Err` nothing when it already pointed there.
pub async fn set_tag(
    tx: &mut Tx,
    repository_id: i64,
    image: &str,
    tag: &str,
    manifest: &Manifest,
    actor: &str,
    rollback: bool,
) -> Result<TagMove> {
    let previous = tag_target_tx(tx, repository_id, image, tag).await?;
    if previous.as_deref() == Some(manifest.sha256.as_str()) {
        return Ok(TagMove::Unchanged);
    }
    run_tx!(
        tx,
        sqlx::query(
            "INSERT INTO oci_tags (repository_id, image, tag, package_id, updated_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (repository_id, image, tag) DO UPDATE SET package_id = $4, updated_at = $5"
        )
        .bind(repository_id)
        .bind(image)
        .bind(tag)
        .bind(manifest.package_id)
        .bind(now()),
        execute
    )?;
    let previous = previous.map(|sha256| format!("sha256:{sha256}"));
    record_move(
        tx,
        repository_id,
        image,
        tag,
        &manifest.digest(),
        previous.as_deref(),
        actor,
        rollback,
    )
    .await?;
    Ok(TagMove::Moved { previous })
}

pub enum TagMove {
    Unchanged,
    Moved { previous: Option<String> },
}

#[allow(clippy::too_many_arguments)]
async fn record_move(
    tx: &mut Tx,
    repository_id: i64,
    image: &str,
    tag: &str,
    digest: &str,
    previous: Option<&str>,
    actor: &str,
    rollback: bool,
) -> Result<()> {
    run_tx!(
        tx,
        sqlx::query(
            "INSERT INTO oci_tag_history (repository_id, image, tag, digest, previous, moved_at,
             actor, rollback) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        )
        .bind(repository_id)
        .bind(image)
        .bind(tag)
        .bind(digest)
        .bind(previous)
        .bind(now())
        .bind(actor)
        .bind(rollback),
        execute
    )?;
    Ok(())
}

/// Deletes a tag, recording it; returns whether it existed.
pub async fn delete_tag(
    tx: &mut Tx,
    repository_id: i64,
    image: &str,
    tag: &str,
    actor: &str,
) -> Result<bool> {
    let Some(previous) = tag_target_tx(tx, repository_id, image, tag).await? else {
        return Ok(false);
    };
    run_tx!(
        tx,
        sqlx::query("DELETE FROM oci_tags WHERE repository_id = $1 AND image = $2 AND tag = $3")
            .bind(repository_id)
            .bind(image)
            .bind(tag),
        execute
    )?;
    let previous = format!("sha256:{previous}");
    record_move(
        tx,
        repository_id,
        image,
        tag,
        "",
        Some(&previous),
        actor,
        false,
    )
    .await?;
    Ok(true)
}

/// The tags pointing at a manifest.
pub async fn tags_of(db: &Db, package_id: i64) -> Result<Vec<(String, i64)>> {
    Ok(run!(
        db,
        sqlx::query_as("SELECT tag, pulls FROM oci_tags WHERE package_id = $1 ORDER BY tag")
            .bind(package_id),
        fetch_all
    )?)
}

/// As `tags_of`, inside a write transaction.
pub async fn tags_of_tx(tx: &mut Tx, package_id: i64) -> Result<Vec<String>> {
    Ok(run_tx!(
        tx,
        sqlx::query_scalar("SELECT tag FROM oci_tags WHERE package_id = $1 ORDER BY tag")
            .bind(package_id),
        fetch_all
    )?)
}

/// An image's tags in lexical order, after `last`, at most `limit`.
pub async fn tags(
    db: &Db,
    repository_id: i64,
    image: &str,
    last: Option<&str>,
    limit: i64,
) -> Result<Vec<String>> {
    Ok(run!(
        db,
        sqlx::query_scalar(
            "SELECT tag FROM oci_tags WHERE repository_id = $1 AND image = $2
             AND ($3 IS NULL OR tag > $3) ORDER BY tag LIMIT $4"
        )
        .bind(repository_id)
        .bind(image)
        .bind(last)
        .bind(limit),
        fetch_all
    )?)
}

/// Counts a pull of a tag.
pub async fn count_pull(db: &Db, repository_id: i64, image: &str, tag: &str) -> Result<()> {
    run!(
        db,
        sqlx::query(
            "UPDATE oci_tags SET pulls = pulls + 1 WHERE repository_id = $1 AND image = $2 AND tag = $3"
        )
        .bind(repository_id)
        .bind(image)
        .bind(tag),
        execute
    )?;
    Ok(())
}

/// One move of a tag.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct TagHistory {
    pub id: i64,
    pub tag: String,
    /// What the tag points at from then on; empty when it was deleted.
    pub digest: String,
    pub previous: Option<String>,
    pub moved_at: i64,
    pub actor: String,
    pub rollback: bool,
    pub undone: bool,
}

/// A tag's moves, newest first.
pub async fn history(
    db: &Db,
    repository_id: i64,
    image: &str,
    tag: &str,
) -> Result<Vec<TagHistory>> {
    Ok(run!(
        db,
        sqlx::query_as(
            "SELECT id, tag, digest, previous, moved_at, actor, rollback, undone
             FROM oci_tag_history WHERE repository_id = $1 AND image = $2 AND tag = $3
             ORDER BY id DESC LIMIT 1000"
        )
        .bind(repository_id)
        .bind(image)
        .bind(tag),
        fetch_all
    )?)
}

/// The newest move of a tag that a rollback may undo: not itself a rollback, not undone yet.
pub async fn last_undoable_move(
    tx: &mut Tx,
    repository_id: i64,
    image: &str,
    tag: &str,
) -> Result<Option<TagHistory>> {
    Ok(run_tx!(
        tx,
        sqlx::query_as(
            "SELECT id, tag, digest, previous, moved_at, actor, rollback, undone
             FROM oci_tag_history WHERE repository_id = $1 AND image = $2 AND tag = $3
             AND NOT rollback AND NOT undone ORDER BY id DESC LIMIT 1"
        )
        .bind(repository_id)
        .bind(image)
        .bind(tag),
        fetch_optional
    )?)
}

pub async fn mark_undone(tx: &mut Tx, history_id: i64) -> Result<()> {
    run_tx!(
        tx,
        sqlx::query("UPDATE oci_tag_history SET undone = TRUE WHERE id = $1").bind(history_id),
        execute
    )?;
    Ok(())
}

/// A manifest that names another as its subject, as the referrers API lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Referrer {
    pub sha256: String,
    pub media_type: String,
    pub artifact_type: Option<String>,
    pub manifest_size: i64,
}

pub async fn referrers(
    db: &Db,
    repository_id: i64,
    image: &str,
    subject: &str,
) -> Result<Vec<Referrer>> {
    Ok(run!(
        db,
        sqlx::query_as(
            "SELECT p.sha256, m.media_type, m.artifact_type, m.manifest_size
             FROM oci_manifests m JOIN packages p ON p.id = m.package_id
             WHERE m.subject = $3 AND p.repository_id = $1 AND p.name = $2
             AND p.deleted_at IS NULL ORDER BY p.id"
        )
        .bind(repository_id)
        .bind(image)
        .bind(subject),
        fetch_all
    )?)
}

/// Every live image: `(repository id, image)`, in name order.
pub async fn images(db: &Db) -> Result<Vec<(i64, String)>> {
    Ok(run!(
        db,
        sqlx::query_as(
            "SELECT DISTINCT repository_id, name FROM packages
             WHERE format = 'oci' AND deleted_at IS NULL ORDER BY repository_id, name"
        ),
        fetch_all
    )?)
}

/// Manifests of an image that an index names and that are still live.
pub async fn index_children_tx(tx: &mut Tx, package_id: i64) -> Result<Vec<String>> {
    Ok(run_tx!(
        tx,
        sqlx::query_scalar(
            "SELECT sha256 FROM oci_references WHERE package_id = $1 AND kind = 'manifest'"
        )
        .bind(package_id),
        fetch_all
    )?)
}

/// Whether a live index of the image names the manifest `sha256`.
pub async fn is_child_of_live_index(
    tx: &mut Tx,
    repository_id: i64,
    image: &str,
    sha256: &str,
) -> Result<bool> {
    Ok(run_tx!(
        tx,
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM oci_references r JOIN packages p ON p.id = r.package_id
             WHERE r.kind = 'manifest' AND r.sha256 = $3 AND p.repository_id = $1
             AND p.name = $2 AND p.deleted_at IS NULL)"
        )
        .bind(repository_id)
        .bind(image)
        .bind(sha256),
        fetch_one
    )?)
}

/// An upload session.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Upload {
    pub id: String,
    pub repository_id: i64,
    pub image: String,
    pub size: i64,
    pub updated_at: i64,
}

pub async fn create_upload(db: &Db, id: &str, repository_id: i64, image: &str) -> Result<()> {
    let now = now();
    run!(
        db,
        sqlx::query(
            "INSERT INTO oci_uploads (id, repository_id, image, size, created_at, updated_at)
             VALUES ($1, $2, $3, 0, $4, $4)"
        )
        .bind(id)
        .bind(repository_id)
        .bind(image)
        .bind(now),
        execute
    )?;
    Ok(())
}

pub async fn upload(db: &Db, id: &str) -> Result<Option<Upload>> {
    Ok(run!(
        db,
        sqlx::query_as(
            "SELECT id, repository_id, image, size, updated_at FROM oci_uploads WHERE id = $1"
        )
        .bind(id),
        fetch_optional
    )?)
}

/// Records that a session now holds `size` bytes, if it still held `from`: a chunk racing
/// another on the same session loses.
pub async fn grow_upload(db: &Db, id: &str, from: i64, size: i64) -> Result<bool> {
    let changed = run!(
        db,
        sqlx::query(
            "UPDATE oci_uploads SET size = $3, updated_at = $4 WHERE id = $1 AND size = $2"
        )
        .bind(id)
        .bind(from)
        .bind(size)
        .bind(now()),
        execute
    )?;
    Ok(changed == 1)
}

pub async fn delete_upload(db: &Db, id: &str) -> Result<bool> {
    let deleted = run!(
        db,
        sqlx::query("DELETE FROM oci_uploads WHERE id = $1").bind(id),
        execute
    )?;
    Ok(deleted == 1)
}

/// Sessions untouched since `before`, for the collector to abandon.
pub async fn stale_uploads(db: &Db, before: i64) -> Result<Vec<String>> {
    Ok(run!(
        db,
        sqlx::query_scalar("SELECT id FROM oci_uploads WHERE updated_at < $1").bind(before),
        fetch_all
    )?)
}

/// Forgets blobs that images hold without any live manifest of theirs naming them, linked
/// before `cutoff`; returns their SHA-256s (candidates for collection).
pub async fn unlink_unreferenced(tx: &mut Tx, cutoff: i64) -> Result<Vec<String>> {
    Ok(run_tx!(
        tx,
        sqlx::query_scalar(
            "DELETE FROM oci_blobs WHERE created_at < $1 AND NOT EXISTS (
                SELECT 1 FROM oci_references r JOIN packages p ON p.id = r.package_id
                WHERE r.kind = 'blob' AND r.sha256 = oci_blobs.sha256
                AND p.repository_id = oci_blobs.repository_id AND p.name = oci_blobs.image
                AND p.deleted_at IS NULL)
             RETURNING sha256"
        )
        .bind(cutoff),
        fetch_all
    )?)
}

/// A tag of a repository's image, for retention.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TagRow {
    pub image: String,
    pub tag: String,
    pub package_id: i64,
    pub updated_at: i64,
    pub sha256: String,
}

pub async fn repository_tags(db: &Db, repository_id: i64) -> Result<Vec<TagRow>> {
    Ok(run!(
        db,
        sqlx::query_as(
            "SELECT t.image, t.tag, t.package_id, t.updated_at, p.sha256
             FROM oci_tags t JOIN packages p ON p.id = t.package_id
             WHERE t.repository_id = $1 AND p.deleted_at IS NULL ORDER BY t.image, t.tag"
        )
        .bind(repository_id),
        fetch_all
    )?)
}

/// A live manifest of a repository, for retention.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ManifestRow {
    pub package_id: i64,
    pub image: String,
    pub sha256: String,
    pub created_at: i64,
    pub subject: Option<String>,
    pub manifest_size: i64,
    pub total_size: i64,
}

pub async fn repository_manifests(db: &Db, repository_id: i64) -> Result<Vec<ManifestRow>> {
    Ok(run!(
        db,
        sqlx::query_as(
            "SELECT p.id AS package_id, p.name AS image, p.sha256, p.created_at, m.subject,
             m.manifest_size, p.size AS total_size
             FROM packages p JOIN oci_manifests m ON m.package_id = p.id
             WHERE p.repository_id = $1 AND p.format = 'oci' AND p.deleted_at IS NULL
             ORDER BY p.id"
        )
        .bind(repository_id),
        fetch_all
    )?)
}

/// What the live manifests of a repository refer to: `(package id, kind, sha256, size)`.
pub async fn repository_references(
    db: &Db,
    repository_id: i64,
) -> Result<Vec<(i64, String, String, i64)>> {
    Ok(run!(
        db,
        sqlx::query_as(
            "SELECT r.package_id, r.kind, r.sha256, r.size FROM oci_references r
             JOIN packages p ON p.id = r.package_id
             WHERE p.repository_id = $1 AND p.deleted_at IS NULL"
        )
        .bind(repository_id),
        fetch_all
    )?)
}
