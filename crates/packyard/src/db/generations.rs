//! Index generations of publish targets: their documents and files, the current-generation
//! pointer, and the cache of compressed chunks.

use std::collections::HashSet;

use anyhow::{Context, Result};
use bytes::Bytes;
use packyard_formats::digest::sha256_hex;

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
    /// `debian/bookworm`, `el/9/x86_64`: how operators name the target.
    pub fn label(&self) -> String {
        match crate::distros::by_id(self.distro_version_id) {
            Some(d) if self.arch.is_empty() => format!("{}/{}", d.os, d.dist),
            Some(d) => format!("{}/{}/{}", d.os, d.dist, self.arch),
            None => format!("{}/{}", self.distro_version_id, self.arch),
        }
    }

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
    /// The stored blob: the file itself, or for an uncompressed index its `.gz` sibling. A
    /// file stored in segments has no blob of its own; this is then its whole SHA-256.
    pub blob_sha256: String,
    pub gunzip: bool,
    /// When non-empty, the file (or, for `gunzip`, its `.gz` sibling) is the concatenation
    /// of these blobs.
    #[sqlx(skip)]
    pub segments: Vec<Segment>,
}

/// One stored blob of an index file kept in segments.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Segment {
    pub blob_sha256: String,
    pub size: i64,
}

/// Compressed bytes (a gzip member or a zstd frame) and their SHA-256, the name of their blob.
/// A publish keeps the chunks it used as references, without their bytes (at a million
/// packages they would be hundreds of MiB), and reads a chunk's bytes again from the database
/// when it must hash, decompress or append to it.
#[derive(Debug, Clone)]
pub struct Compressed {
    /// Empty while not known: a chunk listed from the database and not read yet.
    pub sha256: String,
    pub size: usize,
    pub bytes: Option<Bytes>,
}

impl Compressed {
    pub fn new(bytes: Vec<u8>) -> Compressed {
        Compressed {
            sha256: sha256_hex(&bytes),
            size: bytes.len(),
            bytes: Some(Bytes::from(bytes)),
        }
    }

    /// Stored, but neither read nor known yet.
    fn unread() -> Compressed {
        Compressed {
            sha256: String::new(),
            size: 0,
            bytes: None,
        }
    }

    /// The same blob without its bytes.
    pub fn reference(&self) -> Compressed {
        Compressed {
            sha256: self.sha256.clone(),
            size: self.size,
            bytes: None,
        }
    }

    pub fn bytes(&self) -> Result<&Bytes> {
        self.bytes
            .as_ref()
            .with_context(|| format!("the bytes of chunk blob {} were not read", self.sha256))
    }
}

/// A cached compressed chunk of one index file of a target.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub part: String,
    pub chunk_no: i64,
    pub fingerprint: String,
    pub gz: Compressed,
    pub zst: Option<Compressed>,
}

impl Chunk {
    /// Whether the bytes of every form are at hand.
    pub fn is_read(&self) -> bool {
        self.gz.bytes.is_some() && self.zst.as_ref().is_none_or(|z| z.bytes.is_some())
    }

    /// The same chunk without its bytes.
    pub fn reference(&self) -> Chunk {
        Chunk {
            part: self.part.clone(),
            chunk_no: self.chunk_no,
            fingerprint: self.fingerprint.clone(),
            gz: self.gz.reference(),
            zst: self.zst.as_ref().map(Compressed::reference),
        }
    }
}

pub struct NewGeneration<'a> {
    pub target: &'a Target,
    /// Signed documents served by name, such as `InRelease` or `repomd.xml`.
    pub documents: &'a [(&'a str, String)],
    pub files: &'a [IndexFile],
    /// Chunks to store (new or changed), and the keys `(part, chunk_no)` of all still in use.
    pub changed_chunks: &'a [Chunk],
    pub live_chunks: &'a [(String, i64)],
    /// Chunks the publish stored while it built (`store_chunks_ahead`), as references.
    pub written_chunks: &'a [Chunk],
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
    /// Rebuild from the database alone: no cached chunk, every blob written again.
    pub rebuild: bool,
}

impl Build {
    pub fn new(builder: &str, claim: Option<Claim>) -> Build {
        Build {
            claim,
            builder: builder.to_owned(),
            started_ms: now_ms(),
            rebuild: false,
        }
    }

    pub fn rebuilding(self, rebuild: bool) -> Build {
        Build { rebuild, ..self }
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

const FILE_COLUMNS: &str = "f.generation_id, f.segment_count, f.segments_of, f.segments_base,
    f.segments_base_path, f.segments_reused, f.path, f.size, f.md5, f.sha1, f.sha256, f.sha512, f.blob_sha256, f.gunzip";

/// An index file row as selected with `FILE_COLUMNS`.
#[derive(sqlx::FromRow)]
struct FileRow {
    generation_id: i64,
    segment_count: i64,
    /// The file of the same generation whose segment rows this one shares.
    segments_of: Option<String>,
    /// The generation and file holding the first `segments_reused` segments.
    segments_base: Option<i64>,
    segments_base_path: Option<String>,
    segments_reused: i64,
    #[sqlx(flatten)]
    file: IndexFile,
}

/// The file of `row`, with its segments when it is stored in segments.
async fn with_segments(db: &Db, row: Option<FileRow>) -> Result<Option<IndexFile>> {
    let Some(FileRow {
        generation_id,
        segment_count,
        segments_of,
        segments_base,
        segments_base_path,
        segments_reused,
        mut file,
    }) = row
    else {
        return Ok(None);
    };
    if segment_count > 0 {
        file.segments = run!(
            db,
            sqlx::query_as(
                "SELECT blob_sha256, size, seq FROM generation_file_segments
                 WHERE generation_id = $1 AND path = $2 AND seq < $3
                 UNION ALL
                 SELECT blob_sha256, size, seq FROM generation_file_segments
                 WHERE generation_id = $4 AND path = $5 ORDER BY seq",
            )
            .bind(segments_base.unwrap_or(generation_id))
            .bind(segments_base_path.as_ref().unwrap_or(&file.path))
            .bind(match segments_base {
                Some(_) => segments_reused,
                None => 0,
            })
            .bind(generation_id)
            .bind(segments_of.as_ref().unwrap_or(&file.path)),
            fetch_all
        )?;
        anyhow::ensure!(
            file.segments.len() as i64 == segment_count,
            "{} of generation {generation_id} has {} of its {segment_count} segments",
            file.path,
            file.segments.len()
        );
    }
    Ok(Some(file))
}

/// A file of the current generation by its path.
pub async fn current_file(db: &Db, target: &Target, path: &str) -> Result<Option<IndexFile>> {
    let sql = format!(
        "SELECT {FILE_COLUMNS} FROM publish_targets t
         JOIN generation_files f ON f.generation_id = t.current_generation_id
         WHERE t.repository_id = $1 AND t.distro_version_id = $2 AND t.arch = $3 AND f.path = $4"
    );
    let row: Option<FileRow> = run!(
        db,
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(target.repository_id)
            .bind(target.distro_version_id)
            .bind(&target.arch)
            .bind(path),
        fetch_optional
    )?;
    with_segments(db, row).await
}

/// A file of any retained generation of the target by its path, for content-addressed names
/// such as `repodata/<sha256>-primary.xml.gz`.
pub async fn retained_file(db: &Db, target: &Target, path: &str) -> Result<Option<IndexFile>> {
    let sql = format!(
        "SELECT {FILE_COLUMNS} FROM generation_files f JOIN generations g ON g.id = f.generation_id
         WHERE g.repository_id = $1 AND g.distro_version_id = $2 AND g.arch = $3 AND f.path = $4
         LIMIT 1"
    );
    let row: Option<FileRow> = run!(
        db,
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(target.repository_id)
            .bind(target.distro_version_id)
            .bind(&target.arch)
            .bind(path),
        fetch_optional
    )?;
    with_segments(db, row).await
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
    let row: Option<FileRow> = run!(
        db,
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(target.repository_id)
            .bind(target.distro_version_id)
            .bind(&target.arch)
            .bind(hex)
            .bind(format!("{dir}/%")),
        fetch_optional
    )?;
    with_segments(db, row).await
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

/// A row of `index_chunks`.
#[derive(sqlx::FromRow)]
struct ChunkRow {
    part: String,
    chunk_no: i64,
    fingerprint: String,
    gz: Vec<u8>,
    zst: Option<Vec<u8>>,
}

/// The cached chunks of a target, unread: which there are, what each holds and whether it has
/// a zstd form. `chunk` reads one.
pub async fn chunks(db: &Db, target: &Target) -> Result<Vec<Chunk>> {
    let rows: Vec<(String, i64, String, bool)> = run!(
        db,
        sqlx::query_as(
            "SELECT part, chunk_no, fingerprint, zst IS NOT NULL FROM index_chunks
         WHERE repository_id = $1 AND distro_version_id = $2 AND arch = $3",
        )
        .bind(target.repository_id)
        .bind(target.distro_version_id)
        .bind(&target.arch),
        fetch_all
    )?;
    Ok(rows
        .into_iter()
        .map(|(part, chunk_no, fingerprint, zst)| Chunk {
            part,
            chunk_no,
            fingerprint,
            gz: Compressed::unread(),
            zst: zst.then(Compressed::unread),
        })
        .collect())
}

/// One cached chunk of a target with its bytes.
pub async fn chunk(db: &Db, target: &Target, part: &str, chunk_no: i64) -> Result<Option<Chunk>> {
    let row: Option<ChunkRow> = run!(
        db,
        sqlx::query_as(
            "SELECT part, chunk_no, fingerprint, gz, zst FROM index_chunks
         WHERE repository_id = $1 AND distro_version_id = $2 AND arch = $3
           AND part = $4 AND chunk_no = $5",
        )
        .bind(target.repository_id)
        .bind(target.distro_version_id)
        .bind(&target.arch)
        .bind(part)
        .bind(chunk_no),
        fetch_optional
    )?;
    Ok(row.map(|row| Chunk {
        part: row.part,
        chunk_no: row.chunk_no,
        fingerprint: row.fingerprint,
        gz: Compressed::new(row.gz),
        zst: row.zst.map(Compressed::new),
    }))
}

/// Stores a generation and makes it current within the caller's transaction: either every
/// document and file row, the pointer, the chunk cache and the `indexed` flags change, or none.
/// Returns the new generation's id and when the oldest package it newly lists was pushed.
pub async fn publish(tx: &mut Tx, new: &NewGeneration<'_>) -> Result<(i64, Option<i64>)> {
    let t = new.target;
    if let Some(claim) = &new.build.claim {
        ensure_held(tx, claim).await?;
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
    let first_visible = match super::webhooks::any(tx, t.repository_id).await? {
        true => super::webhooks::first_visible(tx, new.newly_indexed).await?,
        false => Vec::new(),
    };
    let pushed_ms = super::packages::mark_indexed(tx, new.newly_indexed).await?;
    if !first_visible.is_empty() {
        crate::webhooks::visible_tx(tx, t.repository_id, &first_visible).await?;
    }
    let (generation_id,): (i64,) = run_tx!(
        tx,
        sqlx::query_as(
            "INSERT INTO generations (repository_id, distro_version_id, arch, created_at,
             built_by, build_started_ms, committed_ms, pushed_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(t.repository_id)
        .bind(t.distro_version_id)
        .bind(&t.arch)
        .bind(created_at)
        .bind(&new.build.builder)
        .bind(new.build.started_ms)
        .bind(now_ms())
        .bind(pushed_ms),
        fetch_one
    )?;
    store_documents(tx, generation_id, new.documents).await?;
    store_files(tx, t, generation_id, new.files, new.build.rebuild).await?;
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
    super::announce_change(tx).await?;
    Ok((generation_id, pushed_ms))
}

/// Rows per statement: well under either backend's limit on bound parameters. A publish
/// writes its rows in a few statements, each a round trip to the database's thread or server.
const FILE_ROWS_PER_INSERT: usize = 100;
const SEGMENT_ROWS_PER_INSERT: usize = 500;

/// `(first, ...), (next, ...)`: the VALUES of `rows` rows of `columns` parameters each,
/// numbered from `$first`.
fn value_rows(rows: usize, columns: usize, first: usize) -> String {
    (0..rows)
        .map(|row| {
            let parameters: Vec<String> = (0..columns)
                .map(|column| format!("${}", first + row * columns + column))
                .collect();
            format!("({})", parameters.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn store_documents(
    tx: &mut Tx,
    generation_id: i64,
    documents: &[(&str, String)],
) -> Result<()> {
    if documents.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO generation_documents (generation_id, name, body) VALUES {}",
        value_rows(documents.len(), 3, 1)
    );
    run_tx!(
        tx,
        {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
            for (name, body) in documents {
                query = query.bind(generation_id).bind(*name).bind(body);
            }
            query
        },
        execute
    )?;
    Ok(())
}

/// The file whose segment rows `file` can share: for an uncompressed APT index, its `.gz`
/// sibling in the same generation when both consist of the same segments.
fn shared_segments<'a>(file: &IndexFile, files: &'a [IndexFile]) -> Option<&'a str> {
    if !file.gunzip || file.segments.is_empty() {
        return None;
    }
    let sibling = format!("{}.gz", file.path);
    files
        .iter()
        .find(|f| f.path == sibling && f.segments == file.segments)
        .map(|f| f.path.as_str())
}

/// Files of fewer segments are stored whole.
const MIN_SEGMENTS_FOR_BASE: usize = 16;
/// The most segments a file stores against a base: a file that changed further back (or a
/// base that would serve for long) is stored whole, and is the base of the files after it.
const MAX_SEGMENTS_PAST_BASE: usize = 64;

/// Where a file's first segments are stored: in `path` of generation `generation`.
#[derive(Clone)]
struct Base {
    generation: i64,
    path: String,
    reused: i64,
}

/// A file's folder and name without the digest a YUM data file's name starts with
/// (`repodata/<sha256>-primary.xml.gz`): what stays the same from one publish to the next.
fn unaddressed(path: &str) -> (&str, &str) {
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    match name.split_once('-') {
        Some((digest, rest))
            if digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            (dir, rest)
        }
        _ => (dir, name),
    }
}

/// Where `file` can take its first segments from: the same file of the generation the
/// target's current one is based on (or of the current one, stored whole), and how many of its
/// segments it shares with that one.
async fn segment_base(tx: &mut Tx, t: &Target, file: &IndexFile) -> Result<Option<Base>> {
    if file.segments.len() < MIN_SEGMENTS_FOR_BASE {
        return Ok(None);
    }
    let current: Vec<(i64, String, Option<i64>, Option<String>)> = run_tx!(
        tx,
        sqlx::query_as(
            "SELECT f.generation_id, f.path, f.segments_base, f.segments_base_path
             FROM publish_targets t
             JOIN generation_files f ON f.generation_id = t.current_generation_id
             WHERE t.repository_id = $1 AND t.distro_version_id = $2 AND t.arch = $3
             AND f.segment_count > 0 AND f.segments_of IS NULL",
        )
        .bind(t.repository_id)
        .bind(t.distro_version_id)
        .bind(&t.arch),
        fetch_all
    )?;
    let same = unaddressed(&file.path);
    let Some((current, path, base, base_path)) = current
        .into_iter()
        .find(|(_, path, ..)| unaddressed(path) == same)
    else {
        return Ok(None);
    };
    let (generation, path) = match (base, base_path) {
        (Some(base), Some(base_path)) => (base, base_path),
        _ => (current, path),
    };
    let stored: Vec<Segment> = run_tx!(
        tx,
        sqlx::query_as(
            "SELECT blob_sha256, size FROM generation_file_segments
             WHERE generation_id = $1 AND path = $2 ORDER BY seq",
        )
        .bind(generation)
        .bind(&path),
        fetch_all
    )?;
    let reused = stored
        .iter()
        .zip(&file.segments)
        .take_while(|(a, b)| a == b)
        .count();
    let past = file.segments.len() - reused;
    Ok(
        (reused > 0 && past <= MAX_SEGMENTS_PAST_BASE).then_some(Base {
            generation,
            path,
            reused: reused as i64,
        }),
    )
}

async fn store_files(
    tx: &mut Tx,
    t: &Target,
    generation_id: i64,
    files: &[IndexFile],
    rebuild: bool,
) -> Result<()> {
    // Per file: the file whose segment rows it shares, and the base its first ones are in. A
    // rebuild stores every file whole, taking nothing from what was stored before.
    type Stored<'a> = (Option<&'a str>, Option<Base>);
    let mut stored: Vec<Stored<'_>> = Vec::with_capacity(files.len());
    for file in files {
        let shared = shared_segments(file, files);
        let base = match shared {
            None if !rebuild => segment_base(tx, t, file).await?,
            _ => None, // A sibling's is taken below.
        };
        stored.push((shared, base));
    }
    for i in 0..files.len() {
        if let Some(sibling) = stored[i].0 {
            let at = files.iter().position(|f| f.path == sibling);
            stored[i].1 = at.and_then(|at| stored[at].1.clone());
        }
    }
    for (batch, stored) in files
        .chunks(FILE_ROWS_PER_INSERT)
        .zip(stored.chunks(FILE_ROWS_PER_INSERT))
    {
        let sql = format!(
            "INSERT INTO generation_files (generation_id, path, size, md5, sha1, sha256, sha512,
             blob_sha256, gunzip, segment_count, segments_of, segments_base, segments_base_path,
             segments_reused) VALUES {}",
            value_rows(batch.len(), 14, 1)
        );
        run_tx!(
            tx,
            {
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
                for (file, (shared, base)) in batch.iter().zip(stored) {
                    query = query
                        .bind(generation_id)
                        .bind(&file.path)
                        .bind(file.size)
                        .bind(&file.md5)
                        .bind(&file.sha1)
                        .bind(&file.sha256)
                        .bind(&file.sha512)
                        .bind(&file.blob_sha256)
                        .bind(file.gunzip)
                        .bind(file.segments.len() as i64)
                        .bind(shared)
                        .bind(base.as_ref().map(|b| b.generation))
                        .bind(base.as_ref().map(|b| &b.path))
                        .bind(base.as_ref().map_or(0, |b| b.reused));
                }
                query
            },
            execute
        )?;
    }
    // A file's own rows: none when it shares its sibling's, those past its base's otherwise.
    let segments: Vec<(&str, i64, &Segment)> = files
        .iter()
        .zip(&stored)
        .filter(|(_, (shared, _))| shared.is_none())
        .flat_map(|(file, (_, base))| {
            let path = file.path.as_str();
            let reused = base.as_ref().map_or(0, |b| b.reused);
            (0..)
                .zip(&file.segments)
                .skip(reused as usize)
                .map(move |(seq, s)| (path, seq, s))
        })
        .collect();
    for batch in segments.chunks(SEGMENT_ROWS_PER_INSERT) {
        let sql = format!(
            "INSERT INTO generation_file_segments (generation_id, path, seq, blob_sha256, size)
             VALUES {}",
            value_rows(batch.len(), 5, 1)
        );
        run_tx!(
            tx,
            {
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
                for (path, seq, segment) in batch {
                    query = query
                        .bind(generation_id)
                        .bind(*path)
                        .bind(*seq)
                        .bind(&segment.blob_sha256)
                        .bind(segment.size);
                }
                query
            },
            execute
        )?;
    }
    Ok(())
}

const CURRENT_BLOBS: &str = "SELECT f.blob_sha256 FROM generation_files f JOIN publish_targets t
       ON f.generation_id = t.current_generation_id
     WHERE t.repository_id = $1 AND t.distro_version_id = $2 AND t.arch = $3
     UNION
     SELECT s.blob_sha256 FROM generation_file_segments s JOIN publish_targets t
       ON s.generation_id = t.current_generation_id
     WHERE t.repository_id = $1 AND t.distro_version_id = $2 AND t.arch = $3
     UNION
     SELECT s.blob_sha256 FROM generation_files f JOIN publish_targets t
       ON f.generation_id = t.current_generation_id
     JOIN generation_file_segments s ON s.generation_id = f.segments_base
       AND s.path = f.segments_base_path AND s.seq < f.segments_reused
     WHERE t.repository_id = $1 AND t.distro_version_id = $2 AND t.arch = $3";

/// The blobs the target's current generation refers to: they stay while it is current.
pub async fn current_blobs(db: &Db, target: &Target) -> Result<HashSet<String>> {
    let digests: Vec<String> = run!(
        db,
        sqlx::query_scalar(CURRENT_BLOBS)
            .bind(target.repository_id)
            .bind(target.distro_version_id)
            .bind(&target.arch),
        fetch_all
    )?;
    Ok(digests.into_iter().collect())
}

/// Stores chunks of a publish before its commit, in a transaction of their own, as long as the
/// publish's worker still holds its job.
pub async fn store_chunks_ahead(
    db: &Db,
    t: &Target,
    claim: Option<Claim>,
    chunks: &[Chunk],
) -> Result<()> {
    let mut tx = db.begin_write().await?;
    if let Some(claim) = &claim {
        ensure_held(&mut tx, claim).await?;
    }
    insert_chunks(&mut tx, t, chunks).await?;
    tx.commit().await?;
    Ok(())
}

/// Fencing: a worker whose lease ran out and whose job another worker took over must not put
/// its older build over the newer one.
async fn ensure_held(tx: &mut Tx, claim: &Claim) -> Result<()> {
    anyhow::ensure!(
        super::jobs::holds(tx, claim).await?,
        "job {} was taken over by another worker after its lease ran out; this build is dropped",
        claim.job_id
    );
    Ok(())
}

async fn insert_chunks(tx: &mut Tx, t: &Target, chunks: &[Chunk]) -> Result<()> {
    for chunk in chunks {
        let gz = &chunk.gz.bytes()?[..];
        let zst = chunk.zst.as_ref().map(Compressed::bytes).transpose()?;
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
        .bind(gz)
        .bind(zst.map(|z| &z[..])), execute)?;
    }
    Ok(())
}

async fn store_chunks(
    tx: &mut Tx,
    t: &Target,
    changed: &[Chunk],
    live: &[(String, i64)],
) -> Result<()> {
    insert_chunks(tx, t, changed).await?;
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
    let live: std::collections::HashSet<(&str, i64)> =
        live.iter().map(|(part, n)| (part.as_str(), *n)).collect();
    for (part, chunk_no) in stored {
        if !live.contains(&(part.as_str(), chunk_no)) {
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
/// What a collection removed: generations, package rows, and the blobs nothing refers to.
#[derive(Debug, Default)]
pub struct Collected {
    pub generations: u64,
    pub packages: u64,
    pub unreferenced: Vec<String>,
}

pub async fn collect(tx: &mut Tx, grace_secs: i64) -> Result<Collected> {
    let cutoff = now() - grace_secs;
    let candidates: Vec<String> = run_tx!(
        tx,
        sqlx::query_scalar(
            "SELECT DISTINCT f.blob_sha256 FROM generation_files f
         JOIN generations g ON g.id = f.generation_id
         WHERE g.superseded_at < $1 AND NOT EXISTS (SELECT 1 FROM generation_files b
             WHERE b.segments_base = g.id)
         UNION
         SELECT DISTINCT s.blob_sha256 FROM generation_file_segments s
         JOIN generations g ON g.id = s.generation_id
         WHERE g.superseded_at < $1 AND NOT EXISTS (SELECT 1 FROM generation_files b
             WHERE b.segments_base = g.id)
         UNION
         SELECT DISTINCT sha256 FROM packages WHERE deleted_at IS NOT NULL AND deleted_at < $1
         UNION
         SELECT DISTINCT f.sha256 FROM package_files f JOIN packages p ON p.id = f.package_id
         WHERE p.deleted_at IS NOT NULL AND p.deleted_at < $1",
        )
        .bind(cutoff),
        fetch_all
    )?;
    let generations = run_tx!(
        tx,
        // A generation whose segments later ones take theirs from stays while they do.
        sqlx::query(
            "DELETE FROM generations WHERE superseded_at < $1 AND NOT EXISTS (
             SELECT 1 FROM generation_files b WHERE b.segments_base = generations.id)"
        )
        .bind(cutoff),
        execute
    )?;
    super::announce_change(tx).await?;
    let packages = run_tx!(
        tx,
        // A package a snapshot names stays (with its blob) until no snapshot does.
        sqlx::query(
            "DELETE FROM packages WHERE deleted_at IS NOT NULL AND deleted_at < $1
             AND NOT EXISTS (SELECT 1 FROM snapshot_packages s WHERE s.package_id = packages.id)"
        )
        .bind(cutoff),
        execute
    )?;
    // Blobs an image holds that no live manifest of it names, past the grace period.
    let mut candidates = candidates;
    candidates.extend(super::oci::unlink_unreferenced(tx, cutoff).await?);
    candidates.sort();
    candidates.dedup();
    let mut unreferenced = Vec::new();
    for digest in candidates {
        let used: bool = run_tx!(
            tx,
            sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM generation_files WHERE blob_sha256 = $1)
                 OR EXISTS (SELECT 1 FROM generation_file_segments WHERE blob_sha256 = $1)
                 OR EXISTS (SELECT 1 FROM packages WHERE sha256 = $1)
                 OR EXISTS (SELECT 1 FROM package_files WHERE sha256 = $1)
                 OR EXISTS (SELECT 1 FROM oci_blobs WHERE sha256 = $1)",
            )
            .bind(&digest),
            fetch_one
        )?;
        if !used {
            unreferenced.push(digest);
        }
    }
    Ok(Collected {
        generations,
        packages,
        unreferenced,
    })
}

/// Every target of the repository that has been published.
pub async fn targets_of(tx: &mut Tx, repository_id: i64) -> Result<Vec<Target>> {
    let rows: Vec<(i64, i64, String)> = run_tx!(
        tx,
        sqlx::query_as(
            "SELECT repository_id, distro_version_id, arch FROM publish_targets
             WHERE repository_id = $1 ORDER BY distro_version_id, arch",
        )
        .bind(repository_id),
        fetch_all
    )?;
    Ok(rows
        .into_iter()
        .map(|(repository_id, distro_version_id, arch)| Target {
            repository_id,
            distro_version_id,
            arch,
        })
        .collect())
}

/// The current generation of every target, for `status`, `fsck` and `/metrics`.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Published {
    pub repository_id: i64,
    pub repository: String,
    pub distro_version_id: i64,
    pub arch: String,
    pub published_at: i64,
    pub build_started_ms: Option<i64>,
    pub committed_ms: Option<i64>,
    /// When the oldest package it newly listed was pushed, in milliseconds.
    pub pushed_ms: Option<i64>,
}

const PUBLISHED: &str = "SELECT t.repository_id, u.name || '/' || r.name AS repository,
    t.distro_version_id, t.arch, t.published_at, g.build_started_ms, g.committed_ms, g.pushed_ms
    FROM publish_targets t JOIN generations g ON g.id = t.current_generation_id
    JOIN repositories r ON r.id = t.repository_id JOIN users u ON u.id = r.owner_id";

pub async fn published(db: &Db) -> Result<Vec<Published>> {
    let sql = format!("{PUBLISHED} ORDER BY repository, t.distro_version_id, t.arch");
    Ok(run!(
        db,
        sqlx::query_as(sqlx::AssertSqlSafe(sql)),
        fetch_all
    )?)
}

/// As `published`, for one repository.
pub async fn published_in(db: &Db, repository_id: i64) -> Result<Vec<Published>> {
    let sql =
        format!("{PUBLISHED} WHERE t.repository_id = $1 ORDER BY t.distro_version_id, t.arch");
    Ok(run!(
        db,
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(repository_id),
        fetch_all
    )?)
}
