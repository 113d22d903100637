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

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Mutex;

use anyhow::{Context, Result};
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
    /// Bytes of text hashed (rather than resumed past).
    hashed: u64,
    text: Option<String>,
    gz: Vec<Compressed>,
    gz_hash: MultiHasher,
    zst: Option<Vec<Compressed>>,
    zst_hash: MultiHasher,
}

impl Output {
    fn push_text(&mut self, text: &str) {
        self.plain.update(text.as_bytes());
        self.append_text(text);
    }

    /// Appends text whose hashing `plain` already holds.
    fn append_text(&mut self, text: &str) {
        self.hashed += text.len() as u64;
        if let Some(whole) = self.text.as_mut() {
            whole.push_str(text);
        }
    }

    /// Text outside the cached chunks (a head or tail), compressed as members of its own.
    fn push_compressing(&mut self, text: &str) -> Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        self.push_text(text);
        let gz = Compressed::new(chunked::gzip_member(text.as_bytes()));
        let zst = self
            .zst
            .is_some()
            .then(|| Compressed::new(chunked::zstd_frame(text.as_bytes())));
        self.push_compressed(&gz, zst.as_ref(), true, true)
    }

    /// Appends compressed bytes, hashing them unless a resumed hash state already covers them;
    /// without `keep_bytes` only a reference goes into the file (its blob is stored already).
    fn push_compressed(
        &mut self,
        gz: &Compressed,
        zst: Option<&Compressed>,
        hash: bool,
        keep_bytes: bool,
    ) -> Result<()> {
        let kept = |c: &Compressed| if keep_bytes { c.clone() } else { c.reference() };
        if hash {
            self.gz_hash.update(gz.bytes()?);
        }
        self.gz.push(kept(gz));
        if let (Some(out), Some(frame)) = (self.zst.as_mut(), zst) {
            if hash {
                self.zst_hash.update(frame.bytes()?);
            }
            out.push(kept(frame));
        }
        Ok(())
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
    /// The blobs of the chunk the state was taken after: resumed only past the same bytes.
    pub blobs: String,
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
    /// The hash states of the target's last publish here, taken out: the publish that resumes
    /// from them moves them into the states it keeps, rather than holding two copies.
    pub fn take(&self, target: &Target) -> PartStates {
        let mut states = self
            .states
            .lock()
            .expect("the hash state lock is never poisoned");
        states.remove(target).unwrap_or_default()
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

    /// Every target's hash states, taken out.
    pub fn take_all(&self) -> HashMap<Target, PartStates> {
        std::mem::take(
            &mut self
                .states
                .lock()
                .expect("the hash state lock is never poisoned"),
        )
    }

    /// Keeps the chunks a publish just committed.
    pub fn keep_chunks(&self, target: &Target, chunks: Vec<Chunk>) {
        self.chunks
            .lock()
            .expect("the chunk lock is never poisoned")
            .insert(target.clone(), chunks);
    }
}

/// Reads one cached chunk with its bytes, by part and number.
pub type ChunkReader = Box<dyn FnMut(&str, i64) -> Result<Option<Chunk>> + Send>;

/// Starts reading the entries for one index part of the live packages with ids in a range;
/// what it returns waits for them, in id order.
pub type EntryReader = Box<dyn FnMut(&str, Range<i64>) -> PendingEntries + Send>;

/// Entries being read: waits for them.
pub type PendingEntries = Box<dyn FnOnce() -> Result<Vec<(i64, String)>> + Send>;

/// Stores chunks a publish compressed before its commit: their blobs and their rows.
pub type ChunkWriter = Box<dyn FnMut(&[Chunk]) -> Result<()> + Send>;

pub struct ChunkCache {
    /// Whether the index files need only SHA-256 (YUM) rather than all four digests (APT).
    sha256_only: bool,
    /// Where the bytes of chunks kept as references are read from.
    reader: Option<ChunkReader>,
    /// Where the entries of a chunk to compress are read from, a chunk at a time, when the
    /// listing does not carry them: a publish never holds more than a chunk's entries.
    entries: Option<EntryReader>,
    /// Entries read so far.
    entries_read: u64,
    /// Entries being read for the chunks compressed next: their part and ids.
    prefetched: Option<(String, Range<i64>, PendingEntries)>,
    /// The blobs of the target's current generation: a reused chunk among them goes into the
    /// files as a reference, so a publish never holds every chunk's bytes at once.
    current: HashSet<String>,
    cached: HashMap<(String, i64), Chunk>,
    /// Chunks compressed by this publish and not stored yet, with their bytes.
    changed: Vec<Chunk>,
    /// The bytes held in `changed`.
    changed_bytes: usize,
    /// Where chunks compressed by this publish are stored while it builds, once they hold
    /// that many bytes.
    writer: Option<(ChunkWriter, usize)>,
    /// Chunks compressed by this publish and stored already, as references.
    written: Vec<Chunk>,
    /// Every chunk the built files consist of, reused or new.
    used: Vec<Chunk>,
    live: Vec<(String, i64)>,
    /// Bytes of text hashed by the files built so far.
    hashed: u64,
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
            reader: None,
            entries: None,
            entries_read: 0,
            prefetched: None,
            current: HashSet::new(),
            cached,
            changed: Vec::new(),
            changed_bytes: 0,
            writer: None,
            written: Vec::new(),
            used: Vec::new(),
            live: Vec::new(),
            hashed: 0,
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

    /// Reads the bytes of chunks kept as references with `reader`; `current` are the blobs of
    /// the target's current generation.
    pub fn reading(mut self, reader: ChunkReader, current: HashSet<String>) -> ChunkCache {
        self.reader = Some(reader);
        self.current = current;
        self
    }

    /// Reads the entries of chunks to compress with `reader`.
    pub fn reading_entries(mut self, reader: EntryReader) -> ChunkCache {
        self.entries = Some(reader);
        self
    }

    /// Stores the chunks this publish compresses with `writer` whenever they hold `bytes`,
    /// rather than holding them all until the commit (a rebuild of a million rpms compresses
    /// 164 MB of them).
    pub fn writing_ahead(mut self, writer: ChunkWriter, bytes: usize) -> ChunkCache {
        self.writer = Some((writer, bytes));
        self
    }

    /// Keeps a chunk this publish compressed, to be stored; stores what it holds once that
    /// reaches the bytes given with its writer.
    fn compressed(&mut self, chunk: Chunk) -> Result<()> {
        self.changed_bytes += chunk.gz.size + chunk.zst.as_ref().map_or(0, |z| z.size);
        self.changed.push(chunk);
        if let Some((writer, bytes)) = self.writer.as_mut()
            && self.changed_bytes >= *bytes
        {
            writer(&self.changed)?;
            let written = self.changed.drain(..).map(|c| c.reference());
            self.written.extend(written);
            self.changed_bytes = 0;
        }
        Ok(())
    }

    /// The text of `group` of `part`: its entries, read when the listing does not carry them.
    fn text<E: Entry>(&mut self, part: &str, group: &[E]) -> Result<String> {
        Ok(self.texts(part, &[group])?.remove(0))
    }

    /// The texts of consecutive `groups` of `part`, their entries read in one statement when
    /// the listing does not carry them (or taken from the reading started for them).
    fn texts<E: Entry>(&mut self, part: &str, groups: &[&[E]]) -> Result<Vec<String>> {
        let read = match (carried(groups), groups.first(), groups.last()) {
            (false, Some(first), Some(last)) => {
                let ids = id_range(first, last);
                let pending = match self.prefetched.take_if(|(p, r, _)| p == part && *r == ids) {
                    Some((_, _, pending)) => Some(pending),
                    None => self.start_reading(part, ids),
                };
                match pending {
                    Some(pending) => pending()?,
                    None => Vec::new(),
                }
            }
            _ => Vec::new(),
        };
        self.entries_read += read.len() as u64;
        let mut rest = read;
        groups
            .iter()
            .map(|group| {
                let end = group[group.len() - 1].borrow().id + 1;
                let after = rest.split_off(rest.partition_point(|(id, _)| *id < end));
                chunk_text(group, std::mem::replace(&mut rest, after))
            })
            .collect()
    }

    fn start_reading(&mut self, part: &str, ids: Range<i64>) -> Option<PendingEntries> {
        self.entries.as_mut().map(|reader| reader(part, ids))
    }

    /// Groups `from..` that have nothing cached (`from` itself need not, when `first_too` is
    /// false), at most `COMPRESSED_AHEAD` of them.
    fn uncached_run<E: Entry>(
        &self,
        part: &str,
        groups: &[&[E]],
        from: usize,
        first_too: bool,
    ) -> Range<usize> {
        let uncached = |i: &usize| {
            let chunk_no = groups[*i][0].borrow().id / self.span;
            (*i == from && !first_too) || !self.cached.contains_key(&(part.to_owned(), chunk_no))
        };
        let len = (from..groups.len())
            .take_while(uncached)
            .take(COMPRESSED_AHEAD)
            .count();
        from..from + len
    }

    /// The chunks to compress from group `from` on, as many as follow it with nothing cached
    /// (at most `COMPRESSED_AHEAD`): their texts, then compressed on every core while the
    /// texts are hashed on from `plain`, the state before group `from`. The entries of the
    /// chunks after them are read meanwhile.
    fn compress_ahead<E: Entry>(
        &mut self,
        part: &str,
        groups: &[&[E]],
        from: usize,
        zstd: bool,
        plain: &MultiHasher,
    ) -> Result<HashMap<usize, Fresh>> {
        let batch = self.uncached_run(part, groups, from, false);
        let texts = self.texts(part, &groups[batch.clone()])?;
        let next = &groups[self.uncached_run(part, groups, batch.end, true)];
        if let (Some(first), Some(last)) = (next.first(), next.last())
            && !carried(next)
        {
            let ids = id_range(first, last);
            self.prefetched = self
                .start_reading(part, ids.clone())
                .map(|pending| (part.to_owned(), ids, pending));
        }
        Ok(batch
            .zip(compress_all(texts, zstd, plain.clone()))
            .collect())
    }

    /// `chunk` with its bytes: as it is, or read again. A chunk stored since with other
    /// contents fails the publish (to be retried from what is stored).
    fn read(&mut self, chunk: Chunk) -> Result<Chunk> {
        if chunk.is_read() {
            return Ok(chunk);
        }
        let reader = self
            .reader
            .as_mut()
            .context("a cached chunk's bytes are not kept and there is nowhere to read them")?;
        let stored = reader(&chunk.part, chunk.chunk_no)?;
        stored
            .filter(|s| {
                s.fingerprint == chunk.fingerprint
                    && (chunk.gz.sha256.is_empty() || s.gz.sha256 == chunk.gz.sha256)
                    && s.zst.is_some() == chunk.zst.is_some()
            })
            .with_context(|| {
                format!(
                    "chunk {} of {} changed since it was kept",
                    chunk.chunk_no, chunk.part
                )
            })
    }

    /// Whether every blob of `chunk` belongs to the target's current generation.
    fn in_current(&self, chunk: &Chunk) -> bool {
        [Some(&chunk.gz), chunk.zst.as_ref()]
            .into_iter()
            .flatten()
            .all(|c| self.current.contains(&c.sha256))
    }

    fn hasher(&self) -> MultiHasher {
        if self.sha256_only {
            MultiHasher::sha256_only()
        } else {
            MultiHasher::default()
        }
    }

    /// Builds the index file `part` from `members`, which are in id order.
    pub fn build<E: Entry>(
        &mut self,
        part: &str,
        head: &str,
        members: &[E],
        tail: &str,
        zstd: bool,
        keep_text: bool,
    ) -> Result<BuiltIndex> {
        let mut out = Output {
            plain: self.hasher(),
            hashed: 0,
            text: keep_text.then(String::new),
            gz: Vec::new(),
            gz_hash: self.hasher(),
            zst: zstd.then(Vec::new),
            zst_hash: self.hasher(),
        };
        out.push_compressing(head)?;
        let head_digest = sha256_hex(head.as_bytes());
        let mut resume: Vec<Option<ChunkState>> = (self.resume.remove(part))
            .unwrap_or_default()
            .into_iter()
            .map(Some)
            .collect();
        let mut resumable = true;
        let groups = groups(members, self.span);
        let mut states = Vec::with_capacity(groups.len());
        // Chunks to compress, compressed ahead of the loop by group index.
        let mut ahead = HashMap::new();
        for (index, &group) in groups.iter().enumerate() {
            let chunk_no = group[0].borrow().id / self.span;
            let last = index + 1 == groups.len();
            let fingerprint = fingerprint(group, self.span);
            let (cached, grown) = match self
                .cached
                .remove(&(part.to_owned(), chunk_no))
                .filter(|c| !zstd || c.zst.is_some())
            {
                Some(c) if reusable(&c, &fingerprint, last) => (Some(c), None),
                Some(c) if last => (None, appended_at(&c, group, self.span).map(|at| (c, at))),
                _ => (None, None),
            };
            // A chunk listed from the database rather than kept (the first publish after a
            // start) is read to learn its blobs when a state saved at the last stop could
            // resume past it: reading it costs a fraction of decompressing and hashing it,
            // which it would be read for otherwise.
            let resuming = resumable && !keep_text;
            let cached = match cached {
                Some(c)
                    if c.gz.sha256.is_empty()
                        && resuming
                        && resume.get(index).is_some_and(Option::is_some) =>
                {
                    Some(self.read(c)?)
                }
                other => other,
            };
            // A hash state is resumed only past bytes reused as they were, after the same head
            // and with everything before them resumed too.
            let resumable_past = |chunk: &Chunk, held: &str| {
                resume.get(index).and_then(Option::as_ref).filter(|s| {
                    !chunk.gz.sha256.is_empty()
                        && blob_names(chunk) == s.blobs
                        && s.head == head_digest
                        && s.chunk_no == chunk_no
                        && s.fingerprint == held
                })
            };
            let resumed = cached
                .as_ref()
                .filter(|_| resuming)
                .and_then(|c| resumable_past(c, &fingerprint));
            let mut hash_compressed = resumed.is_none();
            let resumed_past = resumed.is_some();
            // Whether this publish compressed the chunk (wholly or in part).
            let (chunk, compressed) = match (cached, resumed) {
                // The last chunk grew by entries after the ones it held: its compressed forms
                // are the ones it had followed by the new entries' own member and frame.
                (None, _) if grown.is_some() => {
                    let (old, at) = grown.expect("matched as present");
                    let old = self.read(old)?;
                    // With everything before it reused as it was and the hash state after its
                    // old bytes kept, only the appended entries and their member are hashed.
                    let held = old
                        .fingerprint
                        .strip_prefix(OPEN)
                        .unwrap_or(&old.fingerprint);
                    let state = resumable_past(&old, held).filter(|_| resuming);
                    resumable = false;
                    let text = self.text(part, &group[at..])?;
                    let member = chunked::gzip_member(text.as_bytes());
                    let frame = match (zstd, &old.zst) {
                        (true, Some(_)) => Some(chunked::zstd_frame(text.as_bytes())),
                        _ => None,
                    };
                    match state {
                        Some(state) => {
                            out.plain = state.state.clone();
                            out.gz_hash = state.gz.clone();
                            out.zst_hash = state.zst.clone();
                            out.gz_hash.update(&member);
                            if let Some(frame) = &frame {
                                out.zst_hash.update(frame);
                            }
                            hash_compressed = false;
                        }
                        None => out.push_text(&chunked::gunzip_text(old.gz.bytes()?)?),
                    }
                    out.push_text(&text);
                    let appended = |before: &Compressed, after: &[u8]| -> Result<Compressed> {
                        Ok(Compressed::new([&before.bytes()?[..], after].concat()))
                    };
                    let chunk = Chunk {
                        part: part.to_owned(),
                        chunk_no,
                        fingerprint: format!("{OPEN}{fingerprint}"),
                        gz: appended(&old.gz, &member)?,
                        zst: match (&old.zst, &frame) {
                            (Some(before), Some(frame)) => Some(appended(before, frame)?),
                            _ => None,
                        },
                    };
                    (chunk, true)
                }
                // Unchanged, and everything before it too: reuse the bytes and the hash state.
                (Some(chunk), Some(state)) => {
                    out.plain = state.state.clone();
                    out.gz_hash = state.gz.clone();
                    out.zst_hash = state.zst.clone();
                    (chunk, false)
                }
                // Unchanged, but what comes before it changed (or no hash state was kept): its
                // text is what its gzip member holds, without reading its entries again.
                (Some(chunk), None) => {
                    let chunk = self.read(chunk)?;
                    resumable = false;
                    let text = match carried(&[group]) {
                        false => chunked::gunzip_text(chunk.gz.bytes()?)?,
                        true => chunk_text(group, Vec::new())?,
                    };
                    out.push_text(&text);
                    (chunk, false)
                }
                (None, _) => {
                    resumable = false;
                    if !ahead.contains_key(&index) {
                        ahead = self.compress_ahead(part, &groups, index, zstd, &out.plain)?;
                    }
                    let fresh = ahead.remove(&index).expect("compressed ahead just now");
                    out.plain = fresh.plain;
                    out.append_text(&fresh.text);
                    let chunk = Chunk {
                        part: part.to_owned(),
                        chunk_no,
                        fingerprint: fingerprint.clone(),
                        gz: Compressed::new(fresh.gz),
                        zst: fresh.zst.map(Compressed::new),
                    };
                    (chunk, true)
                }
            };
            // A chunk whose blobs the current generation holds goes in as a reference, and so
            // does one compressed now, whose bytes are stored with it; only other new blobs
            // keep their bytes in the file, to be written.
            let keep_bytes = !compressed && !self.in_current(&chunk);
            let chunk = match keep_bytes {
                true => self.read(chunk)?,
                false => chunk,
            };
            out.push_compressed(&chunk.gz, chunk.zst.as_ref(), hash_compressed, keep_bytes)?;
            let state = match resumed_past {
                // The state after a chunk resumed past is the one kept for it, moved.
                true => resume[index].take().expect("the state resumed past"),
                false => ChunkState {
                    head: head_digest.clone(),
                    chunk_no,
                    fingerprint,
                    blobs: blob_names(&chunk),
                    state: out.plain.clone(),
                    gz: out.gz_hash.clone(),
                    zst: out.zst_hash.clone(),
                },
            };
            states.push(state);
            self.live.push((part.to_owned(), chunk_no));
            self.used.push(chunk.reference());
            if compressed {
                self.compressed(chunk)?;
            }
        }
        self.states.insert(part.to_owned(), states);
        out.push_compressing(tail)?;
        if out.gz.is_empty() {
            // An empty index is still a valid compressed file.
            let zst = zstd.then(|| Compressed::new(chunked::zstd_frame(b"")));
            let gz = Compressed::new(chunked::gzip_member(b""));
            out.push_compressed(&gz, zst.as_ref(), true, true)?;
        }
        self.hashed += out.hashed;
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
            written: self.written,
            live: self.live,
            states: self.states,
            used: self.used,
            hashed_bytes: self.hashed,
            entries_read: self.entries_read,
            current: self.current,
        }
    }
}

pub struct Finished {
    /// Chunks compressed by this publish and not stored yet, with their bytes.
    pub changed: Vec<Chunk>,
    /// Chunks compressed by this publish and stored while it built, as references.
    pub written: Vec<Chunk>,
    pub live: Vec<(String, i64)>,
    pub states: PartStates,
    pub used: Vec<Chunk>,
    /// Bytes of uncompressed text hashed: what the kept hash states did not cover.
    pub hashed_bytes: u64,
    /// Entries read to compress chunks.
    pub entries_read: u64,
    /// The blobs of the target's current generation the publish started from.
    pub current: HashSet<String>,
}

/// Chunks a publish compresses together, on every core: enough to keep two cores busy
/// whatever the chunks' sizes, few enough that their texts stay small (a chunk of debs holds
/// about 900 KB of text).
const COMPRESSED_AHEAD: usize = 4;

/// A chunk's text with its compressed forms, and the state of the file's plain digests after
/// its text.
struct Fresh {
    text: String,
    plain: MultiHasher,
    gz: Vec<u8>,
    zst: Option<Vec<u8>>,
}

/// Compresses `texts` and hashes them in order from `plain`, on as many threads as there are
/// cores (and texts). On two or more, two threads each hash with half of the digests, then
/// join the others in compressing; each thread compresses the next text not yet taken, so
/// uneven texts balance out.
fn compress_all(texts: Vec<String>, zstd: bool, plain: MultiHasher) -> Vec<Fresh> {
    let hash = |mut plain: MultiHasher| -> Vec<MultiHasher> {
        texts
            .iter()
            .map(|text| {
                plain.update(text.as_bytes());
                plain.clone()
            })
            .collect()
    };
    let next = std::sync::atomic::AtomicUsize::new(0);
    let compress = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(text) = texts.get(i).map(String::as_bytes) else {
                return done;
            };
            let gz = chunked::gzip_member(text);
            done.push((i, gz, zstd.then(|| chunked::zstd_frame(text))));
        }
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(texts.len());
    let (states, mut compressed) = match threads {
        0 | 1 => (hash(plain), compress()),
        _ => std::thread::scope(|scope| {
            let (first, second) = plain.split();
            let second = scope.spawn(|| {
                let states = hash(second);
                (states, compress())
            });
            let helpers: Vec<_> = (2..threads).map(|_| scope.spawn(compress)).collect();
            let states = hash(first);
            let mut done = compress();
            let (seconds, theirs) = second.join().expect("hashing in memory does not panic");
            done.extend(theirs);
            for helper in helpers {
                done.extend(helper.join().expect("compressing in memory does not panic"));
            }
            let states = states.into_iter().zip(seconds).map(|(a, b)| a.join(b));
            (states.collect(), done)
        }),
    };
    compressed.sort_unstable_by_key(|(i, ..)| *i);
    texts
        .into_iter()
        .zip(states)
        .zip(compressed)
        .map(|((text, plain), (_, gz, zst))| Fresh {
            text,
            plain,
            gz,
            zst,
        })
        .collect()
}

/// An index entry, or a reference to one: a file whose members are every listed entry is
/// built from the list itself, without a million references to it.
pub trait Entry: Borrow<IndexEntry> + Sync {}

impl<E: Borrow<IndexEntry> + Sync> Entry for E {}

/// Whether the listing carries the text of every entry of `groups`.
fn carried<E: Entry>(groups: &[&[E]]) -> bool {
    groups
        .iter()
        .all(|g| g.iter().all(|e| e.borrow().body.is_some()))
}

/// The ids from the first entry of `first` to the last of `last`.
fn id_range<E: Entry>(first: &[E], last: &[E]) -> Range<i64> {
    first[0].borrow().id..last[last.len() - 1].borrow().id + 1
}

/// The entries of a chunk, each followed by a newline (the blank line between APT stanzas;
/// XML fragments end in a newline of their own, so theirs is one blank line too): the entry
/// an `IndexEntry` carries, or else its entry among `read` (in id order).
fn chunk_text<E: Entry>(group: &[E], read: Vec<(i64, String)>) -> Result<String> {
    let carried: usize = group
        .iter()
        .map(|e| e.borrow().body.as_ref().map_or(0, |b| b.len()) + 1)
        .sum();
    let fetched: usize = read.iter().map(|(_, body)| body.len()).sum();
    let mut text = String::with_capacity(carried + fetched);
    let mut read = read.into_iter().peekable();
    for entry in group.iter().map(Borrow::borrow) {
        while read.next_if(|(id, _)| *id < entry.id).is_some() {}
        let fetched = read
            .next_if(|(id, _)| *id == entry.id)
            .map(|(_, body)| body);
        let body = entry
            .body
            .as_deref()
            .map(String::as_str)
            .or(fetched.as_deref())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "the entry of package {} could not be read but its chunk must be rebuilt",
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

/// Whether `cached` holds exactly the group of entries whose fingerprint is `whole`.
fn reusable(cached: &Chunk, whole: &str, last: bool) -> bool {
    cached.fingerprint == whole || (last && cached.fingerprint.strip_prefix(OPEN) == Some(whole))
}

/// Where the entries `cached` lacks begin, when `group` is what it holds followed by a few
/// more (the usual publish of a push: new packages have the highest ids).
fn appended_at<E: Entry>(cached: &Chunk, group: &[E], span: i64) -> Option<usize> {
    let held = cached
        .fingerprint
        .strip_prefix(OPEN)
        .unwrap_or(&cached.fingerprint);
    (group.len().saturating_sub(MAX_APPENDED).max(1)..group.len())
        .rev()
        .find(|&at| fingerprint(&group[..at], span) == held)
}

/// The names of a chunk's blobs, which identify its bytes.
fn blob_names(chunk: &Chunk) -> String {
    match &chunk.zst {
        Some(zst) => format!("{} {}", chunk.gz.sha256, zst.sha256),
        None => chunk.gz.sha256.clone(),
    }
}

/// `members` (in id order) split into chunks of `span` consecutive ids. A million members
/// cost a comparison each and a division per chunk.
fn groups<E: Entry>(members: &[E], span: i64) -> Vec<&[E]> {
    let mut groups = Vec::new();
    let mut rest = members;
    while let Some(first) = rest.first() {
        let end = first.borrow().id.div_euclid(span) * span + span;
        let len = rest.partition_point(|e| e.borrow().id < end);
        let (group, after) = rest.split_at(len);
        groups.push(group);
        rest = after;
    }
    groups
}

/// Identifies the package set of a chunk (entries never change once stored, so ids suffice):
/// the SHA-256 of the bitmap of its ids' places in the chunk's span, which costs a bit per
/// id rather than hashing eight bytes of each.
fn fingerprint<E: Entry>(group: &[E], span: i64) -> String {
    let mut bitmap = vec![0u8; (span as usize).div_ceil(8)];
    let start = group
        .first()
        .map_or(0, |e| e.borrow().id.div_euclid(span) * span);
    for entry in group {
        let place = (entry.borrow().id - start) as usize;
        bitmap[place / 8] |= 1 << (place % 8);
    }
    sha256_hex(&bitmap)
}

/// The chunk cache a publish of `target` starts from: the chunks its last publish here kept
/// (as references) with their hash states, or else the chunks the database lists, read one by
/// one when needed. A rebuild starts from nothing. The entries of a chunk to compress are
/// read from the database's part `entry_part(file part)`.
pub async fn cache_for(
    app: &crate::app::App,
    target: &Target,
    run: &crate::db::generations::Build,
    entry_part: fn(&str) -> &str,
) -> Result<ChunkCache> {
    let runtime = tokio::runtime::Handle::current();
    // Both readers are called from the blocking thread that builds the index.
    let entries: EntryReader = {
        let (db, target, runtime) = (app.db.clone(), target.clone(), runtime.clone());
        Box::new(move |part, ids| {
            let (db, part) = (db.clone(), entry_part(part).to_owned());
            let (repository, distro_version) = (target.repository_id, target.distro_version_id);
            let reading = runtime.spawn(async move {
                crate::db::packages::index_bodies(&db, repository, distro_version, &part, ids).await
            });
            let runtime = runtime.clone();
            Box::new(move || runtime.block_on(reading)?)
        })
    };
    let writer: ChunkWriter = {
        let (app, target, claim, runtime) =
            (app.clone(), target.clone(), run.claim, runtime.clone());
        Box::new(move |chunks| runtime.block_on(write_ahead(&app, &target, claim, chunks)))
    };
    let ahead = usize::try_from(app.config.index_write_ahead_mib << 20).unwrap_or(usize::MAX);
    if run.rebuild {
        // Nothing kept is used, and holding it would add to the rebuild's memory.
        app.hash_states.forget(target);
        return Ok(ChunkCache::new(Vec::new(), CHUNK_SPAN, PartStates::new())
            .reading_entries(entries)
            .writing_ahead(writer, ahead));
    }
    let cached = match app.hash_states.take_chunks(target) {
        Some(kept) => kept,
        None => crate::db::generations::chunks(&app.db, target).await?,
    };
    let current = crate::db::generations::current_blobs(&app.db, target).await?;
    let chunks: ChunkReader = {
        let (db, target) = (app.db.clone(), target.clone());
        Box::new(move |part, chunk_no| {
            runtime.block_on(crate::db::generations::chunk(&db, &target, part, chunk_no))
        })
    };
    Ok(
        ChunkCache::new(cached, CHUNK_SPAN, app.hash_states.take(target))
            .reading(chunks, current)
            .reading_entries(entries)
            .writing_ahead(writer, ahead),
    )
}

/// Writes a generation's blobs, then stores the generation and makes it current. The blobs
/// are checked again under the write lock, which the collector holds while it deletes blobs,
/// so a generation never commits pointing at a blob that is gone.
///
/// Blobs the target's current generation refers to (`current`, as the publish's chunk cache
/// read them) are neither written nor checked: the collector keeps them while that generation
/// is current, and only this publish (holding the target's job) can replace it. A rebuild
/// passes none: it trusts nothing the current generation stored, which may be what went
/// missing.
pub async fn commit_generation(
    app: &crate::app::App,
    format: &'static str,
    blobs: &[(BlobKey, Bytes)],
    current: &HashSet<String>,
    generation: &crate::db::generations::NewGeneration<'_>,
) -> Result<i64> {
    let new: Vec<(BlobKey, Bytes)> = blobs
        .iter()
        .filter(|(key, _)| !current.contains(key.sha256()))
        .cloned()
        .collect();
    // A segment written by neither this publish nor the current generation (which another
    // worker replaced since this one kept its chunks) would name a blob that may be gone.
    let written: HashSet<&str> = (blobs.iter().map(|(key, _)| key.sha256()))
        .chain(written_ahead(generation.written_chunks).map(|(c, _)| c.sha256.as_str()))
        .collect();
    for file in generation.files {
        if let Some(missing) = file.segments.iter().find(|s| {
            !written.contains(s.blob_sha256.as_str()) && !current.contains(&s.blob_sha256)
        }) {
            anyhow::bail!(
                "{} would refer to blob {}, which is neither written nor in the current generation",
                file.path,
                missing.blob_sha256
            );
        }
    }
    // The blobs are written and synced while the rows go in; the commit waits for both, so a
    // generation never becomes durable before its blobs.
    let rows = async {
        super::failpoint_before_commit().await;
        let mut tx = app.db.begin_write().await?;
        let published = crate::db::generations::publish(&mut tx, generation).await?;
        anyhow::Ok((tx, published))
    };
    let (written, rows) = futures::future::join(app.blobs.put_many(&new), rows).await;
    written?;
    let (tx, (generation_id, pushed_ms)) = rows?;
    // The collector deletes blobs under the write lock: a blob written before this publish
    // took it may have gone since, and is written again (one still there was synced above).
    let keys: Vec<BlobKey> = new.iter().map(|(key, _)| key.clone()).collect();
    for gone in app.blobs.missing(&keys).await? {
        let (key, bytes) = &new[gone];
        app.blobs.put_bytes(key, bytes.clone()).await?;
    }
    // So may a chunk's blob written while the publish built.
    restore_written(app, generation.target, generation.written_chunks).await?;
    tx.commit().await?;
    app.cache.packages_changed();
    // From the oldest push this generation makes visible to its commit; a rebuild lists old
    // packages again, which says nothing about how fast pushes become visible.
    if let (Some(pushed_ms), false) = (pushed_ms, generation.build.rebuild) {
        let lag = (crate::db::now_ms() - pushed_ms).max(0) as f64 / 1000.0;
        metrics::histogram!("packyard_publish_lag_seconds", "format" => format).record(lag);
    }
    Ok(generation_id)
}

/// The blobs of chunks, each with its chunk.
fn written_ahead(chunks: &[Chunk]) -> impl Iterator<Item = (&Compressed, &Chunk)> {
    chunks.iter().flat_map(|chunk| {
        std::iter::once(&chunk.gz)
            .chain(&chunk.zst)
            .map(move |c| (c, chunk))
    })
}

/// Writes again, from their rows, the blobs of `chunks` of `target` that are gone: chunks a
/// publish stored while it built, whose blobs the collector may have deleted since (one that
/// only a collected generation named). The commit calls it under the write lock, which the
/// collector holds while it deletes.
pub async fn restore_written(
    app: &crate::app::App,
    target: &Target,
    chunks: &[Chunk],
) -> Result<()> {
    let blobs: Vec<(&Compressed, &Chunk)> = written_ahead(chunks).collect();
    let keys = (blobs.iter())
        .map(|(c, _)| BlobKey::from_sha256(&c.sha256))
        .collect::<Result<Vec<_>>>()?;
    for gone in app.blobs.missing(&keys).await? {
        let (key, (compressed, chunk)) = (&keys[gone], blobs[gone]);
        let stored = crate::db::generations::chunk(&app.db, target, &chunk.part, chunk.chunk_no)
            .await?
            .into_iter()
            .flat_map(|c| [Some(c.gz), c.zst])
            .flatten()
            .find(|c| c.sha256 == compressed.sha256)
            .with_context(|| {
                format!(
                    "blob {} of chunk {} of {} went missing, and its row holds other bytes",
                    compressed.sha256, chunk.chunk_no, chunk.part
                )
            })?;
        app.blobs.put_bytes(key, stored.bytes()?.clone()).await?;
    }
    Ok(())
}

/// Stores chunks a publish compressed, before its commit: their blobs, synced, and their rows
/// (which carry the bytes too, for a later publish to read). Nothing serves them until the
/// generation that names them commits; the rows are a cache a publish checks against its
/// fingerprints, and rows no generation uses are dropped at the next commit.
async fn write_ahead(
    app: &crate::app::App,
    target: &Target,
    claim: Option<crate::db::jobs::Claim>,
    chunks: &[Chunk],
) -> Result<()> {
    let blobs = written_ahead(chunks)
        .map(|(c, _)| anyhow::Ok((BlobKey::from_sha256(&c.sha256)?, c.bytes()?.clone())))
        .collect::<Result<Vec<_>>>()?;
    let rows = crate::db::generations::store_chunks_ahead(&app.db, target, claim, chunks);
    let (written, stored) = futures::future::join(app.blobs.put_many(&blobs), rows).await;
    written?;
    stored
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
                size: s.size as i64,
            })
            .collect();
        // A segment without bytes is a blob of the current generation or a chunk's, which
        // comes with the chunk.
        for segment in &segments {
            self.add_blob(segment)?;
        }
        let file = index_file(path, &digests, &key, false, stored);
        self.files.push(file.clone());
        Ok(file)
    }

    /// Adds the blobs of chunks the publish compressed and has not stored yet.
    pub fn add_chunks(&mut self, chunks: &[Chunk]) -> Result<()> {
        for chunk in chunks {
            for compressed in std::iter::once(&chunk.gz).chain(&chunk.zst) {
                self.add_blob(compressed)?;
            }
        }
        Ok(())
    }

    /// Adds `compressed` to the blobs to write, if it carries its bytes.
    fn add_blob(&mut self, compressed: &Compressed) -> Result<()> {
        if let Some(bytes) = &compressed.bytes
            && self.digests.insert(compressed.sha256.clone())
        {
            let key = BlobKey::from_sha256(&compressed.sha256)?;
            self.blobs.push((key, bytes.clone()));
        }
        Ok(())
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

    /// `chunks` with their bytes, from the blobs of the publish that kept them.
    pub fn with_bytes(chunks: &[Chunk], blobs: &[(BlobKey, Bytes)]) -> Vec<Chunk> {
        let read = |c: &Compressed| {
            let (_, bytes) = blobs.iter().find(|(k, _)| k.sha256() == c.sha256).unwrap();
            Compressed {
                bytes: Some(bytes.clone()),
                ..c.clone()
            }
        };
        chunks
            .iter()
            .map(|c| Chunk {
                gz: read(&c.gz),
                zst: c.zst.as_ref().map(read),
                ..c.clone()
            })
            .collect()
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
