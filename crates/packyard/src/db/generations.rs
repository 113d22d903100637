//! APT index generations, their files, the current-generation pointer, and the chunk cache.

use anyhow::Result;

use super::{Db, Tx, now};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Generation {
    pub id: i64,
    pub created_at: i64,
    pub release: String,
    pub in_release: String,
    pub release_gpg: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IndexFile {
    pub path: String,
    pub size: i64,
    pub md5: String,
    pub sha1: String,
    pub sha256: String,
    pub sha512: String,
    pub blob_sha256: String,
    pub gunzip: bool,
}

/// A cached compressed chunk of one architecture's Packages file.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Chunk {
    pub architecture: String,
    pub chunk_no: i64,
    pub fingerprint: String,
    pub gz: Vec<u8>,
    pub zst: Option<Vec<u8>>,
}

pub struct NewGeneration<'a> {
    pub repository_id: i64,
    pub distro_version_id: i64,
    pub release: &'a str,
    pub in_release: &'a str,
    pub release_gpg: &'a str,
    pub files: &'a [IndexFile],
    /// Chunks to store (new or changed), and the full set of chunk keys still in use.
    pub changed_chunks: &'a [Chunk],
    pub live_chunks: &'a [(String, i64)],
    /// Packages that become visible with this generation.
    pub newly_indexed: &'a [i64],
}

pub async fn current(
    db: &Db,
    repository_id: i64,
    distro_version_id: i64,
) -> Result<Option<Generation>> {
    Ok(sqlx::query_as(
        "SELECT g.id, g.created_at, g.release, g.in_release, g.release_gpg
         FROM publish_targets t JOIN apt_generations g ON g.id = t.current_generation_id
         WHERE t.repository_id = $1 AND t.distro_version_id = $2",
    )
    .bind(repository_id)
    .bind(distro_version_id)
    .fetch_optional(db.pool())
    .await?)
}

/// A file of the current generation by its path under `dists/DIST/`.
pub async fn current_file(
    db: &Db,
    repository_id: i64,
    distro_version_id: i64,
    path: &str,
) -> Result<Option<IndexFile>> {
    Ok(sqlx::query_as(
        "SELECT f.path, f.size, f.md5, f.sha1, f.sha256, f.sha512, f.blob_sha256, f.gunzip
         FROM publish_targets t JOIN apt_generation_files f ON f.generation_id = t.current_generation_id
         WHERE t.repository_id = $1 AND t.distro_version_id = $2 AND f.path = $3",
    )
    .bind(repository_id)
    .bind(distro_version_id)
    .bind(path)
    .fetch_optional(db.pool())
    .await?)
}

/// A file of any retained generation of the target, by one of its digests, for `by-hash`.
/// `column` is one of the fixed digest column names.
pub async fn file_by_hash(
    db: &Db,
    repository_id: i64,
    distro_version_id: i64,
    dir: &str,
    column: DigestColumn,
    hex: &str,
) -> Result<Option<IndexFile>> {
    let sql = format!(
        "SELECT f.path, f.size, f.md5, f.sha1, f.sha256, f.sha512, f.blob_sha256, f.gunzip
         FROM apt_generation_files f JOIN apt_generations g ON g.id = f.generation_id
         WHERE g.repository_id = $1 AND g.distro_version_id = $2 AND f.{} = $3
         AND f.path LIKE $4 LIMIT 1",
        column.name()
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(repository_id)
        .bind(distro_version_id)
        .bind(hex)
        .bind(format!("{dir}/%"))
        .fetch_optional(db.pool())
        .await?)
}

#[derive(Debug, Clone, Copy)]
pub enum DigestColumn {
    Md5,
    Sha1,
    Sha256,
    Sha512,
}

impl DigestColumn {
    fn name(self) -> &'static str {
        match self {
            DigestColumn::Md5 => "md5",
            DigestColumn::Sha1 => "sha1",
            DigestColumn::Sha256 => "sha256",
            DigestColumn::Sha512 => "sha512",
        }
    }
}

pub async fn chunks(db: &Db, repository_id: i64, distro_version_id: i64) -> Result<Vec<Chunk>> {
    Ok(sqlx::query_as(
        "SELECT architecture, chunk_no, fingerprint, gz, zst FROM apt_chunks
         WHERE repository_id = $1 AND distro_version_id = $2",
    )
    .bind(repository_id)
    .bind(distro_version_id)
    .fetch_all(db.pool())
    .await?)
}

/// Stores a generation and makes it current within the caller's transaction: either every
/// file row, the pointer, the chunk cache and the `indexed` flags change, or none does.
pub async fn publish(tx: &mut Tx, new: &NewGeneration<'_>) -> Result<i64> {
    // Strictly increasing per target: `Last-Modified` of InRelease is this time, and a client
    // revalidating with If-Modified-Since must see two publishes in one second as a change.
    let previous: Option<i64> = sqlx::query_scalar(
        "SELECT MAX(created_at) FROM apt_generations WHERE repository_id = $1 AND distro_version_id = $2",
    )
    .bind(new.repository_id)
    .bind(new.distro_version_id)
    .fetch_one(&mut **tx)
    .await?;
    let created_at = previous.map_or(now(), |p| now().max(p + 1));
    let (generation_id,): (i64,) = sqlx::query_as(
        "INSERT INTO apt_generations (repository_id, distro_version_id, created_at, release,
         in_release, release_gpg) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(new.repository_id)
    .bind(new.distro_version_id)
    .bind(created_at)
    .bind(new.release)
    .bind(new.in_release)
    .bind(new.release_gpg)
    .fetch_one(&mut **tx)
    .await?;
    for file in new.files {
        sqlx::query(
            "INSERT INTO apt_generation_files (generation_id, path, size, md5, sha1, sha256,
             sha512, blob_sha256, gunzip) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(generation_id)
        .bind(&file.path)
        .bind(file.size)
        .bind(&file.md5)
        .bind(&file.sha1)
        .bind(&file.sha256)
        .bind(&file.sha512)
        .bind(&file.blob_sha256)
        .bind(file.gunzip)
        .execute(&mut **tx)
        .await?;
    }
    sqlx::query(
        "INSERT INTO publish_targets (repository_id, distro_version_id, current_generation_id, published_at)
         VALUES ($1, $2, $3, $4) ON CONFLICT (repository_id, distro_version_id)
         DO UPDATE SET current_generation_id = excluded.current_generation_id,
                       published_at = excluded.published_at",
    )
    .bind(new.repository_id)
    .bind(new.distro_version_id)
    .bind(generation_id)
    .bind(now())
    .execute(&mut **tx)
    .await?;

    for chunk in new.changed_chunks {
        sqlx::query(
            "INSERT INTO apt_chunks (repository_id, distro_version_id, architecture, chunk_no,
             fingerprint, gz, zst) VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (repository_id, distro_version_id, architecture, chunk_no)
             DO UPDATE SET fingerprint = excluded.fingerprint, gz = excluded.gz, zst = excluded.zst",
        )
        .bind(new.repository_id)
        .bind(new.distro_version_id)
        .bind(&chunk.architecture)
        .bind(chunk.chunk_no)
        .bind(&chunk.fingerprint)
        .bind(&chunk.gz)
        .bind(&chunk.zst)
        .execute(&mut **tx)
        .await?;
    }
    let stored: Vec<(String, i64)> = sqlx::query_as(
        "SELECT architecture, chunk_no FROM apt_chunks WHERE repository_id = $1 AND distro_version_id = $2",
    )
    .bind(new.repository_id)
    .bind(new.distro_version_id)
    .fetch_all(&mut **tx)
    .await?;
    for (architecture, chunk_no) in stored {
        if !new
            .live_chunks
            .iter()
            .any(|(a, n)| *a == architecture && *n == chunk_no)
        {
            sqlx::query(
                "DELETE FROM apt_chunks WHERE repository_id = $1 AND distro_version_id = $2
                 AND architecture = $3 AND chunk_no = $4",
            )
            .bind(new.repository_id)
            .bind(new.distro_version_id)
            .bind(&architecture)
            .bind(chunk_no)
            .execute(&mut **tx)
            .await?;
        }
    }
    super::packages::mark_indexed(tx, new.newly_indexed).await?;
    Ok(generation_id)
}

/// Number of generations ever kept for a target (current and retained ones).
pub async fn count(db: &Db, repository_id: i64, distro_version_id: i64) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM apt_generations WHERE repository_id = $1 AND distro_version_id = $2",
    )
    .bind(repository_id)
    .bind(distro_version_id)
    .fetch_one(db.pool())
    .await?)
}

/// Deletes superseded generations older than `grace_secs` and destroyed packages whose grace
/// has passed; returns the blob digests nothing refers to any more. The caller deletes those
/// blobs before committing, so a writer that reuses a digest (and checks for its blob inside
/// its own write transaction) never commits a row whose blob is gone.
pub async fn collect(tx: &mut Tx, grace_secs: i64) -> Result<Vec<String>> {
    let cutoff = now() - grace_secs;
    let candidates: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT f.blob_sha256 FROM apt_generation_files f
         JOIN apt_generations g ON g.id = f.generation_id
         WHERE g.created_at < $1 AND g.id NOT IN (SELECT current_generation_id FROM publish_targets)
         UNION
         SELECT DISTINCT sha256 FROM packages WHERE deleted_at IS NOT NULL AND deleted_at < $1",
    )
    .bind(cutoff)
    .fetch_all(&mut **tx)
    .await?;
    sqlx::query(
        "DELETE FROM apt_generations WHERE created_at < $1
         AND id NOT IN (SELECT current_generation_id FROM publish_targets)",
    )
    .bind(cutoff)
    .execute(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM packages WHERE deleted_at IS NOT NULL AND deleted_at < $1")
        .bind(cutoff)
        .execute(&mut **tx)
        .await?;
    let mut unreferenced = Vec::new();
    for digest in candidates {
        let used: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM apt_generation_files WHERE blob_sha256 = $1)
                 OR EXISTS (SELECT 1 FROM packages WHERE sha256 = $1)",
        )
        .bind(&digest)
        .fetch_one(&mut **tx)
        .await?;
        if !used {
            unreferenced.push(digest);
        }
    }
    Ok(unreferenced)
}
