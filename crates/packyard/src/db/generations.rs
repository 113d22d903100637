//! Index generations of publish targets: their documents and files, the current-generation
//! pointer, and the cache of compressed chunks.

use anyhow::Result;

use super::{run, run_tx};

use super::jobs::Claim;
use super::{Db, Tx, now, now_ms};

/// The unit of publishing: `(repository, distribution version, arch)`. APT targets use an
/// empty arch (one target holds every architecture); YUM targets one per architecture.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    pub repository_id: i64,
    pub distro_version_id: i64,
    pub arch: String,
}

impl Target {
    pub fn apt(repository_id: i64, distro_version_id: i64) -> Target {
        Target {
            repository_id,
            distro_version_id,
            arch: String::new(),
        }
    }
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

/// A cached compressed chunk of one index file of a target.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Chunk {
    pub part: String,
    pub chunk_no: i64,
    pub fingerprint: String,
    pub gz: Vec<u8>,
    pub zst: Option<Vec<u8>>,
}

pub struct NewGeneration<'a> {
    pub target: &'a Target,
    /// Signed documents served by name, such as `InRelease` or `repomd.xml`.
    pub documents: &'a [(&'a str, String)],
    pub files: &'a [IndexFile],
    /// Chunks to store (new or changed), and the keys `(part, chunk_no)` of all still in use.
    pub changed_chunks: &'a [Chunk],
    pub live_chunks: &'a [(String, i64)],
    /// Packages that become visible with this generation.
    pub newly_indexed: &'a [i64],
    pub build: &'a Build,
}

/// One build of a target: the job claim it runs under, if any, and who built it when.
#[derive(Debug, Clone)]
pub struct Build {
    pub claim: Option<Claim>,
    /// The process that builds, `HOST:PID`.
    pub builder: String,
    pub started_ms: i64,
}

impl Build {
    pub fn new(builder: &str, claim: Option<Claim>) -> Build {
        Build {
            claim,
            builder: builder.to_owned(),
            started_ms: now_ms(),
        }
    }
}

/// A document of the target's current generation, with the generation's time.
pub async fn current_document(
    db: &Db,
    target: &Target,
    name: &str,
) -> Result<Option<(String, i64)>> {
    Ok(run!(
        db,
        sqlx::query_as(
            "SELECT d.body, g.created_at FROM publish_targets t
         JOIN generations g ON g.id = t.current_generation_id
         JOIN generation_documents d ON d.generation_id = g.id
         WHERE t.repository_id = $1 AND t.distro_version_id = $2 AND t.arch = $3 AND d.name = $4",
        )
        .bind(target.repository_id)
        .bind(target.distro_version_id)
        .bind(&target.arch)
        .bind(name),
        fetch_optional
    )?)
}

const FILE_COLUMNS: &str =
    "f.path, f.size, f.md5, f.sha1, f.sha256, f.sha512, f.blob_sha256, f.gunzip";

/// A file of the current generation by its path.
pub async fn current_file(db: &Db, target: &Target, path: &str) -> Result<Option<IndexFile>> {
    let sql = format!(
        "SELECT {FILE_COLUMNS} FROM publish_targets t
         JOIN generation_files f ON f.generation_id = t.current_generation_id
         WHERE t.repository_id = $1 AND t.distro_version_id = $2 AND t.arch = $3 AND f.path = $4"
    );
    Ok(run!(
        db,
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(target.repository_id)
            .bind(target.distro_version_id)
            .bind(&target.arch)
            .bind(path),
        fetch_optional
    )?)
}

/// A file of any retained generation of the target by its path, for content-addressed names
/// such as `repodata/<sha256>-primary.xml.gz`.
pub async fn retained_file(db: &Db, target: &Target, path: &str) -> Result<Option<IndexFile>> {
    let sql = format!(
        "SELECT {FILE_COLUMNS} FROM generation_files f JOIN generations g ON g.id = f.generation_id
         WHERE g.repository_id = $1 AND g.distro_version_id = $2 AND g.arch = $3 AND f.path = $4
         LIMIT 1"
    );
    Ok(run!(
        db,
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(target.repository_id)
            .bind(target.distro_version_id)
            .bind(&target.arch)
            .bind(path),
        fetch_optional
    )?)
}

/// A file under `dir/` of any retained generation of the target by one of its digests, for
/// APT's `by-hash`.
pub async fn file_by_hash(
    db: &Db,
    target: &Target,
    dir: &str,
    column: DigestColumn,
    hex: &str,
) -> Result<Option<IndexFile>> {
    let sql = format!(
        "SELECT {FILE_COLUMNS} FROM generation_files f JOIN generations g ON g.id = f.generation_id
         WHERE g.repository_id = $1 AND g.distro_version_id = $2 AND g.arch = $3 AND f.{} = $4
         AND f.path LIKE $5 LIMIT 1",
        column.name()
    );
    Ok(run!(
        db,
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(target.repository_id)
            .bind(target.distro_version_id)
            .bind(&target.arch)
            .bind(hex)
            .bind(format!("{dir}/%")),
        fetch_optional
    )?)
}

#[derive(Debug, Clone, Copy)]
pub enum DigestColumn {
    Md5,
    Sha1,
    Sha256,
    Sha512,
}

impl DigestColumn {
    pub fn name(self) -> &'static str {
        match self {
            DigestColumn::Md5 => "md5",
            DigestColumn::Sha1 => "sha1",
            DigestColumn::Sha256 => "sha256",
            DigestColumn::Sha512 => "sha512",
        }
    }
}

pub async fn chunks(db: &Db, target: &Target) -> Result<Vec<Chunk>> {
    Ok(run!(
        db,
        sqlx::query_as(
            "SELECT part, chunk_no, fingerprint, gz, zst FROM index_chunks
         WHERE repository_id = $1 AND distro_version_id = $2 AND arch = $3",
        )
        .bind(target.repository_id)
        .bind(target.distro_version_id)
        .bind(&target.arch),
        fetch_all
    )?)
}

/// Stores a generation and makes it current within the caller's transaction: either every
/// document and file row, the pointer, the chunk cache and the `indexed` flags change, or none.
pub async fn publish(tx: &mut Tx, new: &NewGeneration<'_>) -> Result<i64> {
    let t = new.target;
    if let Some(claim) = &new.build.claim {
        // Fencing: a worker whose lease ran out and whose job another worker took over must
        // not put its older build over the newer one.
        anyhow::ensure!(
            super::jobs::holds(tx, claim).await?,
            "job {} was taken over by another worker after its lease ran out; this build is dropped",
            claim.job_id
        );
    }
    // Strictly increasing per target: the `Last-Modified` of InRelease and repomd.xml is this
    // time, and a client revalidating with If-Modified-Since must see two publishes in one
    // second as a change.
    let previous: Option<i64> = run_tx!(
        tx,
        sqlx::query_scalar(
            "SELECT MAX(created_at) FROM generations
         WHERE repository_id = $1 AND distro_version_id = $2 AND arch = $3",
        )
        .bind(t.repository_id)
        .bind(t.distro_version_id)
        .bind(&t.arch),
        fetch_one
    )?;
    let created_at = previous.map_or(now(), |p| now().max(p + 1));
    let (generation_id,): (i64,) = run_tx!(
        tx,
        sqlx::query_as(
            "INSERT INTO generations (repository_id, distro_version_id, arch, created_at,
             built_by, build_started_ms, committed_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(t.repository_id)
        .bind(t.distro_version_id)
        .bind(&t.arch)
        .bind(created_at)
        .bind(&new.build.builder)
        .bind(new.build.started_ms)
        .bind(now_ms()),
        fetch_one
    )?;
    for (name, body) in new.documents {
        run_tx!(
            tx,
            sqlx::query(
                "INSERT INTO generation_documents (generation_id, name, body) VALUES ($1, $2, $3)",
            )
            .bind(generation_id)
            .bind(name)
            .bind(body),
            execute
        )?;
    }
    for file in new.files {
        run_tx!(tx, sqlx::query(
            "INSERT INTO generation_files (generation_id, path, size, md5, sha1, sha256, sha512,
             blob_sha256, gunzip) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(generation_id)
        .bind(&file.path)
        .bind(file.size)
        .bind(&file.md5)
        .bind(&file.sha1)
        .bind(&file.sha256)
        .bind(&file.sha512)
        .bind(&file.blob_sha256)
        .bind(file.gunzip), execute)?;
    }
    run_tx!(
        tx,
        sqlx::query(
            "UPDATE generations SET superseded_at = $4 WHERE id = (
            SELECT current_generation_id FROM publish_targets
            WHERE repository_id = $1 AND distro_version_id = $2 AND arch = $3)",
        )
        .bind(t.repository_id)
        .bind(t.distro_version_id)
        .bind(&t.arch)
        .bind(created_at),
        execute
    )?;
    run_tx!(tx, sqlx::query(
        "INSERT INTO publish_targets (repository_id, distro_version_id, arch, current_generation_id, published_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (repository_id, distro_version_id, arch)
         DO UPDATE SET current_generation_id = excluded.current_generation_id,
                       published_at = excluded.published_at",
    )
    .bind(t.repository_id)
    .bind(t.distro_version_id)
    .bind(&t.arch)
    .bind(generation_id)
    .bind(created_at), execute)?;
    store_chunks(tx, t, new.changed_chunks, new.live_chunks).await?;
    super::packages::mark_indexed(tx, new.newly_indexed).await?;
    super::announce_change(tx).await?;
    Ok(generation_id)
}

async fn store_chunks(
    tx: &mut Tx,
    t: &Target,
    changed: &[Chunk],
    live: &[(String, i64)],
) -> Result<()> {
    for chunk in changed {
        run_tx!(tx, sqlx::query(
            "INSERT INTO index_chunks (repository_id, distro_version_id, arch, part, chunk_no,
             fingerprint, gz, zst) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (repository_id, distro_version_id, arch, part, chunk_no)
             DO UPDATE SET fingerprint = excluded.fingerprint, gz = excluded.gz, zst = excluded.zst",
        )
        .bind(t.repository_id)
        .bind(t.distro_version_id)
        .bind(&t.arch)
        .bind(&chunk.part)
        .bind(chunk.chunk_no)
        .bind(&chunk.fingerprint)
        .bind(&chunk.gz)
        .bind(&chunk.zst), execute)?;
    }
    let stored: Vec<(String, i64)> = run_tx!(
        tx,
        sqlx::query_as(
            "SELECT part, chunk_no FROM index_chunks
         WHERE repository_id = $1 AND distro_version_id = $2 AND arch = $3",
        )
        .bind(t.repository_id)
        .bind(t.distro_version_id)
        .bind(&t.arch),
        fetch_all
    )?;
    for (part, chunk_no) in stored {
        if !live.iter().any(|(p, n)| *p == part && *n == chunk_no) {
            run_tx!(
                tx,
                sqlx::query(
                    "DELETE FROM index_chunks WHERE repository_id = $1 AND distro_version_id = $2
                 AND arch = $3 AND part = $4 AND chunk_no = $5",
                )
                .bind(t.repository_id)
                .bind(t.distro_version_id)
                .bind(&t.arch)
                .bind(&part)
                .bind(chunk_no),
                execute
            )?;
        }
    }
    Ok(())
}

/// Number of generations kept for a target (current and retained ones).
pub async fn count(db: &Db, target: &Target) -> Result<i64> {
    Ok(run!(db, sqlx::query_scalar(
        "SELECT COUNT(*) FROM generations WHERE repository_id = $1 AND distro_version_id = $2 AND arch = $3",
    )
    .bind(target.repository_id)
    .bind(target.distro_version_id)
    .bind(&target.arch), fetch_one)?)
}

/// Deletes generations superseded more than `grace_secs` ago and destroyed packages whose grace
/// has passed; returns the blob digests nothing refers to any more. The caller deletes those
/// blobs before committing, so a writer that reuses a digest (and checks for its blob inside
/// its own write transaction) never commits a row whose blob is gone.
pub async fn collect(tx: &mut Tx, grace_secs: i64) -> Result<Vec<String>> {
    let cutoff = now() - grace_secs;
    let candidates: Vec<String> = run_tx!(
        tx,
        sqlx::query_scalar(
            "SELECT DISTINCT f.blob_sha256 FROM generation_files f
         JOIN generations g ON g.id = f.generation_id
         WHERE g.superseded_at < $1
         UNION
         SELECT DISTINCT sha256 FROM packages WHERE deleted_at IS NOT NULL AND deleted_at < $1",
        )
        .bind(cutoff),
        fetch_all
    )?;
    run_tx!(
        tx,
        sqlx::query("DELETE FROM generations WHERE superseded_at < $1").bind(cutoff),
        execute
    )?;
    super::announce_change(tx).await?;
    run_tx!(
        tx,
        sqlx::query("DELETE FROM packages WHERE deleted_at IS NOT NULL AND deleted_at < $1")
            .bind(cutoff),
        execute
    )?;
    let mut unreferenced = Vec::new();
    for digest in candidates {
        let used: bool = run_tx!(
            tx,
            sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM generation_files WHERE blob_sha256 = $1)
                 OR EXISTS (SELECT 1 FROM packages WHERE sha256 = $1)",
            )
            .bind(&digest),
            fetch_one
        )?;
        if !used {
            unreferenced.push(digest);
        }
    }
    Ok(unreferenced)
}
