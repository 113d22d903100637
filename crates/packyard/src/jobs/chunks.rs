//! Builds compressed index files out of cached, independently compressed chunks.
//!
//! An index file is `head`, then the entries of its packages in id order, then `tail`. The
//! entries are grouped into chunks of at most `span` consecutive package ids; each chunk is one
//! gzip member (and one zstd frame when asked for). A chunk is compressed again only when the
//! set of packages in it changed since the last publish, so a push into a large repository
//! costs one chunk's compression plus concatenation, not a recompression of everything.

use std::collections::HashMap;

use anyhow::Result;
use bytes::Bytes;
use packyard_formats::chunked;
use packyard_formats::digest::{FileDigests, MultiHasher, sha256_hex};

use crate::db::generations::{Chunk, IndexFile};
use crate::db::packages::IndexEntry;
use crate::storage::BlobKey;

/// Package ids per chunk.
pub const CHUNK_SPAN: i64 = 1024;

/// One built index file.
pub struct BuiltIndex {
    /// Digests of the uncompressed file.
    pub plain: FileDigests,
    pub gz: Vec<u8>,
    /// Present when zstd was asked for.
    pub zst: Option<Vec<u8>>,
    /// The uncompressed text, when asked for (to compress it whole, as xz must be).
    pub text: Option<String>,
}

/// An index file being assembled.
struct Output {
    plain: MultiHasher,
    text: Option<String>,
    gz: Vec<u8>,
    zst: Option<Vec<u8>>,
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
        self.gz.extend(chunked::gzip_member(text.as_bytes()));
        if let Some(zst) = self.zst.as_mut() {
            zst.extend(chunked::zstd_frame(text.as_bytes()));
        }
    }
}

pub struct ChunkCache {
    cached: HashMap<(String, i64), Chunk>,
    changed: Vec<Chunk>,
    live: Vec<(String, i64)>,
    span: i64,
}

impl ChunkCache {
    pub fn new(cached: Vec<Chunk>, span: i64) -> ChunkCache {
        let cached = cached
            .into_iter()
            .map(|c| ((c.part.clone(), c.chunk_no), c))
            .collect();
        ChunkCache {
            cached,
            changed: Vec::new(),
            live: Vec::new(),
            span,
        }
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
    ) -> BuiltIndex {
        let mut out = Output {
            plain: MultiHasher::default(),
            text: keep_text.then(String::new),
            gz: Vec::new(),
            zst: zstd.then(Vec::new),
        };
        out.push_compressing(head);
        for group in members.chunk_by(|a, b| a.id / self.span == b.id / self.span) {
            let chunk_no = group[0].id / self.span;
            let body = chunk_text(group);
            out.push_text(&body);
            let fingerprint = fingerprint(group);
            let reusable = self
                .cached
                .remove(&(part.to_owned(), chunk_no))
                .filter(|c| c.fingerprint == fingerprint && (!zstd || c.zst.is_some()));
            let chunk = reusable.unwrap_or_else(|| {
                let chunk = Chunk {
                    part: part.to_owned(),
                    chunk_no,
                    fingerprint,
                    gz: chunked::gzip_member(body.as_bytes()),
                    zst: zstd.then(|| chunked::zstd_frame(body.as_bytes())),
                };
                self.changed.push(chunk.clone());
                chunk
            });
            out.gz.extend_from_slice(&chunk.gz);
            if let (Some(zst), Some(frame)) = (out.zst.as_mut(), &chunk.zst) {
                zst.extend_from_slice(frame);
            }
            self.live.push((part.to_owned(), chunk_no));
        }
        out.push_compressing(tail);
        if out.gz.is_empty() {
            // An empty index is still a valid compressed file.
            out.gz = chunked::gzip_member(b"");
            out.zst = zstd.then(|| chunked::zstd_frame(b""));
        }
        BuiltIndex {
            plain: out.plain.finish(),
            gz: out.gz,
            zst: out.zst,
            text: out.text,
        }
    }

    /// The chunks compressed by this publish, and the keys of every chunk still in use.
    pub fn finish(self) -> (Vec<Chunk>, Vec<(String, i64)>) {
        (self.changed, self.live)
    }
}

/// The entries of a chunk, each followed by a newline (the blank line between APT stanzas;
/// XML fragments end in a newline of their own, so theirs is one blank line too).
fn chunk_text(group: &[&IndexEntry]) -> String {
    let mut text = String::with_capacity(group.iter().map(|e| e.body.len() + 1).sum());
    for entry in group {
        text.push_str(&entry.body);
        text.push('\n');
    }
    text
}

/// Identifies the package set of a chunk; entries never change once stored, so ids suffice.
fn fingerprint(group: &[&IndexEntry]) -> String {
    let ids: Vec<u8> = group.iter().flat_map(|e| e.id.to_le_bytes()).collect();
    sha256_hex(&ids)
}

/// The files a publish writes: rows for the generation and the blobs behind them.
#[derive(Default)]
pub struct IndexFiles {
    pub files: Vec<IndexFile>,
    pub blobs: Vec<(BlobKey, Bytes)>,
}

impl IndexFiles {
    /// Adds a file stored as its own blob; returns its digests.
    pub fn add(&mut self, path: String, bytes: Vec<u8>) -> Result<FileDigests> {
        let digests = FileDigests::of(&bytes);
        let key = BlobKey::from_sha256(&digests.sha256)?;
        self.files.push(index_file(path, &digests, &key, false));
        self.blobs.push((key, Bytes::from(bytes)));
        Ok(digests)
    }

    /// Adds a file named after its own SHA-256: `{dir}/{sha256}-{name}`.
    pub fn add_content_addressed(
        &mut self,
        dir: &str,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<FileDigests> {
        let sha256 = sha256_hex(&bytes);
        self.add(format!("{dir}/{sha256}-{name}"), bytes)
    }

    /// Adds an uncompressed file that is served by decompressing the gzip blob `gz`.
    pub fn add_gunzipped(
        &mut self,
        path: String,
        plain: &FileDigests,
        gz: &FileDigests,
    ) -> Result<()> {
        let key = BlobKey::from_sha256(&gz.sha256)?;
        self.files.push(index_file(path, plain, &key, true));
        Ok(())
    }
}

fn index_file(path: String, digests: &FileDigests, blob: &BlobKey, gunzip: bool) -> IndexFile {
    IndexFile {
        path,
        size: digests.size as i64,
        md5: digests.md5.clone(),
        sha1: digests.sha1.clone(),
        sha256: digests.sha256.clone(),
        sha512: digests.sha512.clone(),
        blob_sha256: blob.sha256().to_owned(),
        gunzip,
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
