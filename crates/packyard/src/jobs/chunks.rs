//! Builds compressed index files out of cached, independently compressed chunks.
//!
//! An index file is `head`, then the entries of its packages in id order, then `tail`. The
//! entries are grouped into chunks of at most `span` consecutive package ids; each chunk is one
//! gzip member (and one zstd frame when asked for). A chunk is compressed again only when the
//! set of packages in it changed since the last publish, so a push into a large repository
//! costs one chunk's compression plus concatenation, not a recompression of everything.
//!
//! The digests of the uncompressed file are incremental too: the hash state after each chunk
//! is kept in memory (`HashStates`), and a publish whose first chunks are unchanged resumes
//! hashing after them, so it reads and hashes only the entries from its first changed chunk on.
//!
//! New packages have the highest ids, so a push usually adds entries to the end of the last
//! chunk. Such a chunk is not compressed again: the new entries get a gzip member (and zstd
//! frame) of their own after the chunk's, and only they are read. A chunk so appended to is
//! compressed whole once a later chunk exists.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use anyhow::Result;
use bytes::Bytes;
use packyard_formats::chunked;
use packyard_formats::digest::{FileDigests, MultiHasher, sha256_hex};

use crate::db::generations::{Chunk, Compressed, IndexFile, Segment, Target};
use crate::db::packages::IndexEntry;
use crate::storage::BlobKey;

/// Package ids per chunk.
pub const CHUNK_SPAN: i64 = 1024;

/// One built index file. Its compressed forms are sequences of gzip members or zstd frames,
/// stored a blob each, so what did not change since the last publish is not written again.
pub struct BuiltIndex {
    /// Digests of the uncompressed file.
    pub plain: FileDigests,
    pub gz: Vec<Compressed>,
    pub gz_digests: FileDigests,
    /// Present when zstd was asked for.
    pub zst: Option<Vec<Compressed>>,
    pub zst_digests: Option<FileDigests>,
    /// The uncompressed text, when asked for (to compress it whole, as xz must be).
    pub text: Option<String>,
}

/// An index file being assembled, with the running digests of each of its forms.
struct Output {
    plain: MultiHasher,
    text: Option<String>,
    gz: Vec<Compressed>,
    gz_hash: MultiHasher,
    zst: Option<Vec<Compressed>>,
    zst_hash: MultiHasher,
}

impl Output {
    fn push_text(&mut self, text: &str) {
        self.plain.update(text.as_bytes());
        if let Some(whole) = self.text.as_mut() {
            whole.push_str(text);
        }
    }

    /// Text outside the cached chunks (a head or tail), compressed as members of its own.
    fn push_compressing(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        self.push_text(text);
        let gz = Compressed::new(chunked::gzip_member(text.as_bytes()));
        let zst = self
            .zst
            .is_some()
            .then(|| Compressed::new(chunked::zstd_frame(text.as_bytes())));
        self.push_compressed(&gz, zst.as_ref(), true);
    }

    /// Appends compressed bytes, hashing them unless a resumed hash state already covers them.
    fn push_compressed(&mut self, gz: &Compressed, zst: Option<&Compressed>, hash: bool) {
        self.gz.push(gz.clone());
        if hash {
            self.gz_hash.update(&gz.bytes);
        }
        if let (Some(out), Some(frame)) = (self.zst.as_mut(), zst) {
            out.push(frame.clone());
            if hash {
                self.zst_hash.update(&frame.bytes);
            }
        }
    }
}

/// The hash states of an index file's digests after one of its chunks: of the uncompressed
/// text, of the gzip stream and of the zstd stream.
#[derive(Clone)]
pub struct ChunkState {
    /// The SHA-256 of the text before the chunks: a state is resumable only after the same head.
    pub head: String,
    pub chunk_no: i64,
    pub fingerprint: String,
    pub state: MultiHasher,
    pub gz: MultiHasher,
    pub zst: MultiHasher,
}

/// Hash states by index part, in chunk order.
pub type PartStates = HashMap<String, Vec<ChunkState>>;

/// What this process kept of the indexes it published last, by target: the hash states after
/// each chunk, and the compressed chunks themselves (so the next publish need not load them
/// from the database). Both are checked against fingerprints before use, so what another
/// worker published meanwhile is never mistaken for them.
#[derive(Default)]
pub struct HashStates {
    states: Mutex<HashMap<Target, PartStates>>,
    chunks: Mutex<HashMap<Target, Vec<Chunk>>>,
}

impl HashStates {
    pub fn get(&self, target: &Target) -> PartStates {
        let states = self
            .states
            .lock()
            .expect("the hash state lock is never poisoned");
        states.get(target).cloned().unwrap_or_default()
    }

    pub fn set(&self, target: &Target, parts: PartStates) {
        let mut states = self
            .states
            .lock()
            .expect("the hash state lock is never poisoned");
        states.insert(target.clone(), parts);
    }

    /// The chunks of the target's last publish here, taken out: a publish that fails leaves
    /// none behind, and the next one loads them from the database.
    pub fn take_chunks(&self, target: &Target) -> Option<Vec<Chunk>> {
        self.chunks
            .lock()
            .expect("the chunk lock is never poisoned")
            .remove(target)
    }

    /// Forgets everything kept of the target.
    pub fn forget(&self, target: &Target) {
        self.take_chunks(target);
        self.states
            .lock()
            .expect("the hash state lock is never poisoned")
            .remove(target);
    }

    /// Keeps the chunks a publish just committed.
    pub fn keep_chunks(&self, target: &Target, chunks: Vec<Chunk>) {
        self.chunks
            .lock()
            .expect("the chunk lock is never poisoned")
            .insert(target.clone(), chunks);
    }
}

pub struct ChunkCache {
    /// Whether the index files need only SHA-256 (YUM) rather than all four digests (APT).
    sha256_only: bool,
    cached: HashMap<(String, i64), Chunk>,
    changed: Vec<Chunk>,
    /// Every chunk the built files consist of, reused or new.
    used: Vec<Chunk>,
    live: Vec<(String, i64)>,
    span: i64,
    resume: PartStates,
    states: PartStates,
}

impl ChunkCache {
    /// `resume` holds the hash states of the previous publish of the same target.
    pub fn new(cached: Vec<Chunk>, span: i64, resume: PartStates) -> ChunkCache {
        let cached = cached
            .into_iter()
            .map(|c| ((c.part.clone(), c.chunk_no), c))
            .collect();
        ChunkCache {
            sha256_only: false,
            cached,
            changed: Vec::new(),
            used: Vec::new(),
            live: Vec::new(),
            span,
            resume,
            states: HashMap::new(),
        }
    }

    /// Hashes with SHA-256 only, for formats whose metadata names no other digest.
    pub fn sha256_only(mut self) -> ChunkCache {
        self.sha256_only = true;
        self
    }

    fn hasher(&self) -> MultiHasher {
        if self.sha256_only {
            MultiHasher::sha256_only()
        } else {
            MultiHasher::default()
        }
    }

    /// The first package id of `part` whose entry must be read: every chunk before it is
    /// cached, so its hash state is resumed or its text recovered from its gzip member; and
    /// when the last chunk only grew, only its new entries are read. `i64::MAX` when nothing
    /// must be read.
    pub fn first_unreusable_id(&self, part: &str, members: &[&IndexEntry]) -> i64 {
        let groups: Vec<&[&IndexEntry]> = members
            .chunk_by(|a, b| a.id / self.span == b.id / self.span)
            .collect();
        for (index, group) in groups.iter().enumerate() {
            let chunk_no = group[0].id / self.span;
            let last = index + 1 == groups.len();
            let cached = self.cached.get(&(part.to_owned(), chunk_no));
            if cached.is_some_and(|c| reusable(c, group, last)) {
                continue;
            }
            return match cached.filter(|_| last).and_then(|c| appended_at(c, group)) {
                Some(at) => group[at].id,
                None => chunk_no * self.span,
            };
        }
        i64::MAX
    }

    /// Builds the index file `part` from `members`, which are in id order.
    pub fn build(
        &mut self,
        part: &str,
        head: &str,
        members: &[&IndexEntry],
        tail: &str,
        zstd: bool,
        keep_text: bool,
    ) -> Result<BuiltIndex> {
        let mut out = Output {
            plain: self.hasher(),
            text: keep_text.then(String::new),
            gz: Vec::new(),
            gz_hash: self.hasher(),
            zst: zstd.then(Vec::new),
            zst_hash: self.hasher(),
        };
        out.push_compressing(head);
        let head_digest = sha256_hex(head.as_bytes());
        let resume = self.resume.remove(part).unwrap_or_default();
        let mut resumable = true;
        let mut states = Vec::new();
        let groups: Vec<&[&IndexEntry]> = members
            .chunk_by(|a, b| a.id / self.span == b.id / self.span)
            .collect();
        for (index, &group) in groups.iter().enumerate() {
            let chunk_no = group[0].id / self.span;
            let last = index + 1 == groups.len();
            let fingerprint = fingerprint(group);
            let (cached, grown) = match self
                .cached
                .remove(&(part.to_owned(), chunk_no))
                .filter(|c| !zstd || c.zst.is_some())
            {
                Some(c) if reusable(&c, group, last) => (Some(c), None),
                Some(c) if last => (None, appended_at(&c, group).map(|at| (c, at))),
                _ => (None, None),
            };
            // A hash state is resumed only past bytes reused as they were.
            let resumed = resume.get(index).filter(|s| {
                resumable
                    && cached.is_some()
                    && s.head == head_digest
                    && s.chunk_no == chunk_no
                    && s.fingerprint == fingerprint
                    && !keep_text
            });
            let hash_compressed = resumed.is_none();
            let chunk = match (cached, resumed) {
                // The last chunk grew by entries after the ones it held: its compressed forms
                // are the ones it had followed by the new entries' own member and frame.
                (None, _) if grown.is_some() => {
                    let (old, at) = grown.expect("matched as present");
                    resumable = false;
                    out.push_text(&chunked::gunzip_text(&old.gz.bytes)?);
                    let text = chunk_text(&group[at..])?;
                    out.push_text(&text);
                    let appended = |before: &Compressed, after: Vec<u8>| {
                        Compressed::new([&before.bytes[..], &after].concat())
                    };
                    let chunk = Chunk {
                        part: part.to_owned(),
                        chunk_no,
                        fingerprint: format!("{OPEN}{fingerprint}"),
                        gz: appended(&old.gz, chunked::gzip_member(text.as_bytes())),
                        zst: match (zstd, &old.zst) {
                            (true, Some(before)) => {
                                Some(appended(before, chunked::zstd_frame(text.as_bytes())))
                            }
                            _ => None,
                        },
                    };
                    self.changed.push(chunk.clone());
                    chunk
                }
                // Unchanged, and everything before it too: reuse the bytes and the hash state.
                (Some(chunk), Some(state)) => {
                    out.plain = state.state.clone();
                    out.gz_hash = state.gz.clone();
                    out.zst_hash = state.zst.clone();
                    chunk
                }
                // Unchanged, but what comes before it changed (or no hash state was kept): its
                // text is what its gzip member holds, without reading its entries again.
                (Some(chunk), None) if group.iter().any(|e| e.body.is_none()) => {
                    resumable = false;
                    out.push_text(&chunked::gunzip_text(&chunk.gz.bytes)?);
                    chunk
                }
                (cached, _) => {
                    resumable = false;
                    let text = chunk_text(group)?;
                    out.push_text(&text);
                    cached.unwrap_or_else(|| {
                        let chunk = Chunk {
                            part: part.to_owned(),
                            chunk_no,
                            fingerprint: fingerprint.clone(),
                            gz: Compressed::new(chunked::gzip_member(text.as_bytes())),
                            zst: zstd
                                .then(|| Compressed::new(chunked::zstd_frame(text.as_bytes()))),
                        };
                        self.changed.push(chunk.clone());
                        chunk
                    })
                }
            };
            out.push_compressed(&chunk.gz, chunk.zst.as_ref(), hash_compressed);
            states.push(ChunkState {
                head: head_digest.clone(),
                chunk_no,
                fingerprint,
                state: out.plain.clone(),
                gz: out.gz_hash.clone(),
                zst: out.zst_hash.clone(),
            });
            self.live.push((part.to_owned(), chunk_no));
            self.used.push(chunk);
        }
        self.states.insert(part.to_owned(), states);
        out.push_compressing(tail);
        if out.gz.is_empty() {
            // An empty index is still a valid compressed file.
            let zst = zstd.then(|| Compressed::new(chunked::zstd_frame(b"")));
            let gz = Compressed::new(chunked::gzip_member(b""));
            out.push_compressed(&gz, zst.as_ref(), true);
        }
        Ok(BuiltIndex {
            plain: out.plain.finish(),
            gz: out.gz,
            gz_digests: out.gz_hash.finish(),
            zst_digests: out.zst.is_some().then(|| out.zst_hash.finish()),
            zst: out.zst,
            text: out.text,
        })
    }

    /// The chunks compressed by this publish, the keys of every chunk still in use, and what
    /// the next publish can start from: hash states and every chunk in use.
    pub fn finish(self) -> Finished {
        Finished {
            changed: self.changed,
            live: self.live,
            states: self.states,
            used: self.used,
        }
    }
}

pub struct Finished {
    pub changed: Vec<Chunk>,
    pub live: Vec<(String, i64)>,
    pub states: PartStates,
    pub used: Vec<Chunk>,
}

/// The entries of a chunk, each followed by a newline (the blank line between APT stanzas;
/// XML fragments end in a newline of their own, so theirs is one blank line too).
fn chunk_text(group: &[&IndexEntry]) -> Result<String> {
    let mut text = String::with_capacity(
        group
            .iter()
            .map(|e| e.body.as_ref().map_or(0, String::len) + 1)
            .sum(),
    );
    for entry in group {
        let body = entry.body.as_deref().ok_or_else(|| {
            anyhow::anyhow!(
                "the entry of package {} was not read but its chunk must be rebuilt",
                entry.id
            )
        })?;
        text.push_str(body);
        text.push('\n');
    }
    Ok(text)
}

/// Marks the fingerprint of a last chunk whose compressed forms were appended to rather than
/// made whole: it is reused only while it stays the last one, and compressed whole once a
/// later chunk exists (a member per append compresses worse than one for the chunk).
const OPEN: &str = "open:";

/// The most entries a publish may add to the last chunk and still append them to it.
const MAX_APPENDED: usize = 64;

/// Whether `cached` holds exactly `group`.
fn reusable(cached: &Chunk, group: &[&IndexEntry], last: bool) -> bool {
    let whole = fingerprint(group);
    cached.fingerprint == whole
        || (last && cached.fingerprint.strip_prefix(OPEN) == Some(whole.as_str()))
}

/// Where the entries `cached` lacks begin, when `group` is what it holds followed by a few
/// more (the usual publish of a push: new packages have the highest ids).
fn appended_at(cached: &Chunk, group: &[&IndexEntry]) -> Option<usize> {
    let held = cached
        .fingerprint
        .strip_prefix(OPEN)
        .unwrap_or(&cached.fingerprint);
    (group.len().saturating_sub(MAX_APPENDED).max(1)..group.len())
        .rev()
        .find(|&at| fingerprint(&group[..at]) == held)
}

/// Identifies the package set of a chunk; entries never change once stored, so ids suffice.
fn fingerprint(group: &[&IndexEntry]) -> String {
    let ids: Vec<u8> = group.iter().flat_map(|e| e.id.to_le_bytes()).collect();
    sha256_hex(&ids)
}

/// Writes a generation's blobs, then stores the generation and makes it current. The blobs
/// are checked again under the write lock, which the collector holds while it deletes blobs,
/// so a generation never commits pointing at a blob that is gone.
///
/// Blobs the target's current generation refers to are neither written nor checked: the
/// collector keeps them while that generation is current, and only this publish (holding the
/// target's job) can replace it.
pub async fn commit_generation(
    app: &crate::app::App,
    format: &'static str,
    blobs: &[(BlobKey, Bytes)],
    generation: &crate::db::generations::NewGeneration<'_>,
) -> Result<i64> {
    // A rebuild trusts nothing the current generation stored: it may be what went missing.
    let current = match generation.build.rebuild {
        true => Default::default(),
        false => crate::db::generations::current_blobs(&app.db, generation.target).await?,
    };
    let new: Vec<&(BlobKey, Bytes)> = blobs
        .iter()
        .filter(|(key, _)| !current.contains(key.sha256()))
        .collect();
    // Written and synced together: the syncs of a publish's few blobs overlap.
    let put_all = || {
        futures::future::try_join_all(
            new.iter()
                .map(|(key, bytes)| app.blobs.put_bytes(key, bytes.clone())),
        )
    };
    put_all().await?;
    super::failpoint_before_commit().await;
    let mut tx = app.db.begin_write().await?;
    put_all().await?;
    let (generation_id, pushed_ms) = crate::db::generations::publish(&mut tx, generation).await?;
    tx.commit().await?;
    app.cache.invalidate();
    // From the oldest push this generation makes visible to its commit; a rebuild lists old
    // packages again, which says nothing about how fast pushes become visible.
    if let (Some(pushed_ms), false) = (pushed_ms, generation.build.rebuild) {
        let lag = (crate::db::now_ms() - pushed_ms).max(0) as f64 / 1000.0;
        metrics::histogram!("packyard_publish_lag_seconds", "format" => format).record(lag);
    }
    Ok(generation_id)
}

/// The files a publish writes: rows for the generation and the blobs behind them.
#[derive(Default)]
pub struct IndexFiles {
    pub files: Vec<IndexFile>,
    pub blobs: Vec<(BlobKey, Bytes)>,
    /// The digests in `blobs`, so a blob shared by files is written once.
    digests: HashSet<String>,
}

impl IndexFiles {
    /// Adds a file stored as its own blob; returns its digests.
    pub fn add(&mut self, path: String, bytes: Vec<u8>) -> Result<FileDigests> {
        let digests = FileDigests::of(&bytes);
        let key = BlobKey::from_sha256(&digests.sha256)?;
        self.files
            .push(index_file(path, &digests, &key, false, Vec::new()));
        if self.digests.insert(digests.sha256.clone()) {
            self.blobs.push((key, Bytes::from(bytes)));
        }
        Ok(digests)
    }

    /// Adds a file stored as the concatenation of `segments`, whose digests were computed as
    /// it was assembled; returns its row.
    pub fn add_segmented(
        &mut self,
        path: String,
        segments: Vec<Compressed>,
        digests: FileDigests,
    ) -> Result<IndexFile> {
        let key = BlobKey::from_sha256(&digests.sha256)?;
        let stored = segments
            .iter()
            .map(|s| Segment {
                blob_sha256: s.sha256.clone(),
                size: s.bytes.len() as i64,
            })
            .collect();
        for segment in segments {
            if self.digests.insert(segment.sha256.clone()) {
                let key = BlobKey::from_sha256(&segment.sha256)?;
                self.blobs.push((key, segment.bytes));
            }
        }
        let file = index_file(path, &digests, &key, false, stored);
        self.files.push(file.clone());
        Ok(file)
    }

    /// Adds an uncompressed file that is served by decompressing its gzip sibling `gz`.
    pub fn add_gunzipped(
        &mut self,
        path: String,
        plain: &FileDigests,
        gz: &IndexFile,
    ) -> Result<()> {
        let key = BlobKey::from_sha256(&gz.blob_sha256)?;
        self.files
            .push(index_file(path, plain, &key, true, gz.segments.clone()));
        Ok(())
    }
}

fn index_file(
    path: String,
    digests: &FileDigests,
    blob: &BlobKey,
    gunzip: bool,
    segments: Vec<Segment>,
) -> IndexFile {
    IndexFile {
        path,
        size: digests.size as i64,
        md5: digests.md5.clone(),
        sha1: digests.sha1.clone(),
        sha256: digests.sha256.clone(),
        sha512: digests.sha512.clone(),
        blob_sha256: blob.sha256().to_owned(),
        gunzip,
        segments,
    }
}

/// The digests recorded for a file.
pub fn file_digests(file: &IndexFile) -> FileDigests {
    FileDigests {
        size: file.size as u64,
        md5: file.md5.clone(),
        sha1: file.sha1.clone(),
        sha256: file.sha256.clone(),
        sha512: file.sha512.clone(),
    }
}

/// What the publishers' unit tests share.
#[cfg(test)]
pub mod testing {
    use super::*;
    use crate::db::repos::Repo;

    pub fn repo() -> Repo {
        Repo {
            id: 1,
            owner_id: 1,
            owner: "acme".into(),
            name: "stable".into(),
            private: false,
            index_zstd: true,
            index_xz: false,
            created_at: 0,
            last_push_at: None,
            keyring_version: 1,
        }
    }

    /// The bytes a file is served as: its blob, or its segments' blobs concatenated.
    pub fn stored_bytes(blobs: &[(BlobKey, Bytes)], file: &IndexFile) -> Vec<u8> {
        let blob = |sha256: &str| {
            let (_, bytes) = blobs.iter().find(|(k, _)| k.sha256() == sha256).unwrap();
            bytes.to_vec()
        };
        if file.segments.is_empty() {
            return blob(&file.blob_sha256);
        }
        file.segments
            .iter()
            .flat_map(|s| blob(&s.blob_sha256))
            .collect()
    }
}
