//! Publishing one YUM target `(repository, distribution version, arch)`: `primary`,
//! `filelists` and `other` built from stored XML fragments, written under names that carry
//! their own SHA-256, then `repomd.xml` and its detached signature made current in one
//! transaction. Because the data files are content-addressed, the flip of `repomd.xml` is the
//! whole publish: a client holding the previous `repomd.xml` still finds every file it names.

use std::collections::HashSet;

use anyhow::{Context, Result};
use packyard_formats::rpm::{RepomdRecord, render_repomd, xml_frame};

use super::listed_in;
use crate::app::App;
use crate::db::generations::{Build, Chunk, IndexFile, NewGeneration, Target};
use crate::db::{self, repos::Repo};
use crate::distros;
use crate::sign::Signer;

use crate::jobs::chunks::{self, ChunkCache, Entry, IndexFiles, PartStates, commit_generation};

const PARTS: [&str; 3] = ["primary", "filelists", "other"];

pub async fn publish(app: &App, target: &Target, run: &Build) -> Result<()> {
    let Some(repo) = db::repos::by_id(&app.db, target.repository_id).await? else {
        return Ok(()); // The repository was deleted after the job was queued.
    };
    distros::by_id(target.distro_version_id).with_context(|| {
        format!(
            "unknown distribution version id {}",
            target.distro_version_id
        )
    })?;
    let started = std::time::Instant::now();
    let grace = std::time::Duration::from_secs(app.config.index_grace_secs);
    let watermark = run.claim.map(|c| c.watermark);
    if run.rebuild {
        // Read the list, and which packages are indexed, from the database.
        app.listings.forget(target);
    }
    let listed = |architecture: &str| listed_in(&target.arch, architecture);
    let listing = app
        .listings
        .list(&app.db, target, grace, watermark, &listed)
        .await?;
    let list_ms = started.elapsed().as_millis() as u64;
    // repomd.xml names SHA-256 digests only. Each part's chunks consist of its own entries,
    // which the cache reads a chunk at a time when it must compress one.
    let chunks = chunks::cache_for(app, target, run, |part| part)
        .await?
        .sha256_only();
    let secret_keys = crate::keys::signing_secret_keys(app, &repo).await?;
    let revision = db::now();

    let read_ms = started.elapsed().as_millis() as u64;
    let entries = listing.entries;
    let (built, entries) = tokio::task::spawn_blocking(move || {
        let signer = Signer::from_armored(&secret_keys)?;
        // The three parts list the entries of this target's architecture (and noarch): every
        // entry of the list, which the listing read for those architectures alone.
        let built = build(&repo, &[&entries[..]; 3], chunks, &signer, revision)?;
        anyhow::Ok((built, entries))
    })
    .await??;
    let build_ms = started.elapsed().as_millis() as u64 - read_ms;
    metrics::histogram!("packyard_index_build_duration_seconds", "format" => "rpm")
        .record(build_ms as f64 / 1000.0);

    let generation = NewGeneration {
        target,
        documents: &built.documents,
        files: &built.files.files,
        changed_chunks: &built.changed_chunks,
        live_chunks: &built.live_chunks,
        written_chunks: &built.written_chunks,
        newly_indexed: &listing.unindexed,
        build: run,
    };
    let generation_id = commit_generation(
        app,
        "rpm",
        &built.files.blobs,
        &built.current_blobs,
        &generation,
    )
    .await?;
    app.hash_states.set(target, built.hash_states);
    app.hash_states.keep_chunks(target, built.used_chunks);
    app.listings.keep(target, listing.at, entries);
    tracing::info!(
        repository_id = target.repository_id,
        distro_version_id = target.distro_version_id,
        arch = %target.arch,
        generation_id,
        packages = listing.unindexed.len(),
        entries_read = built.entries_read,
        chunks_compressed = built.changed_chunks.len() + built.written_chunks.len(),
        list_ms,
        read_ms,
        build_ms,
        hashed_bytes = built.hashed_bytes,
        sign_ms = built.sign_ms,
        write_ms = started.elapsed().as_millis() as u64 - read_ms - build_ms,
        "published yum repodata"
    );
    Ok(())
}

struct Built {
    /// Time spent signing `repomd.xml`.
    sign_ms: f64,
    documents: Vec<(&'static str, String)>,
    files: IndexFiles,
    changed_chunks: Vec<Chunk>,
    /// Chunks stored while the publish built, as references.
    written_chunks: Vec<Chunk>,
    live_chunks: Vec<(String, i64)>,
    /// Every chunk the files consist of, kept for the next publish.
    used_chunks: Vec<Chunk>,
    /// The hash states after each chunk, from which the next publish resumes.
    hash_states: PartStates,
    /// Bytes of text hashed rather than resumed past.
    hashed_bytes: u64,
    /// Entries read to compress chunks.
    entries_read: u64,
    /// The blobs of the current generation this publish started from.
    current_blobs: HashSet<String>,
}

fn build<E: Entry>(
    repo: &Repo,
    parts: &[&[E]],
    mut chunks: ChunkCache,
    signer: &Signer,
    revision: i64,
) -> Result<Built> {
    let mut files = IndexFiles::default();
    let mut records: Vec<(&str, IndexFile, u64, String)> = Vec::new();
    for (part, members) in PARTS.iter().zip(parts) {
        let (head, tail) = xml_frame(part);
        let built = chunks.build(part, &head, members, &tail, repo.index_zstd, false)?;
        // EL7's yum reads only gzip, so zstd is a per-repository choice.
        let (segments, digests, name) = match (built.zst, built.zst_digests) {
            (Some(zst), Some(digests)) => (zst, digests, format!("{part}.xml.zst")),
            _ => (built.gz, built.gz_digests, format!("{part}.xml.gz")),
        };
        let path = format!("repodata/{}-{name}", digests.sha256);
        let file = files.add_segmented(path, segments, digests)?;
        records.push((part, file, built.plain.size, built.plain.sha256));
    }
    let records: Vec<RepomdRecord<'_>> = records
        .iter()
        .map(|(kind, file, open_size, open_sha256)| RepomdRecord {
            kind,
            checksum: &file.sha256,
            open_checksum: open_sha256,
            href: &file.path,
            timestamp: revision,
            size: file.size as u64,
            open_size: *open_size,
        })
        .collect();
    let repomd = render_repomd(revision, &records);
    let signing = std::time::Instant::now();
    let signature = signer.detached(repomd.as_bytes())?;
    let sign_ms = signing.elapsed().as_secs_f64() * 1000.0;
    let finished = chunks.finish();
    files.add_chunks(&finished.changed)?;
    Ok(Built {
        sign_ms,
        documents: vec![("repomd.xml", repomd), ("repomd.xml.asc", signature)],
        files,
        changed_chunks: finished.changed,
        written_chunks: finished.written,
        live_chunks: finished.live,
        used_chunks: finished.used,
        hash_states: finished.states,
        hashed_bytes: finished.hashed_bytes,
        entries_read: finished.entries_read,
        current_blobs: finished.current,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use packyard_formats::digest::sha256_hex;

    use super::*;
    use crate::db::packages::IndexEntry;
    use crate::jobs::chunks::HashStates;
    use crate::jobs::chunks::testing::{repo, stored_bytes};
    use crate::jobs::saved_states;
    use crate::sign::{self, KeyAlgorithm};

    fn entries(ids: &[i64], with_bodies_from: i64) -> Vec<Vec<IndexEntry>> {
        PARTS
            .iter()
            .map(|part| {
                ids.iter()
                    .map(|&id| IndexEntry {
                        id,
                        architecture: std::sync::Arc::new("x86_64".to_owned()),
                        body: (id >= with_bodies_from).then(|| {
                            format!("<package><name>p{id}</name><{part}/></package>\n").into()
                        }),
                    })
                    .collect()
            })
            .collect()
    }

    /// The chunks a publish kept, with the bytes the database would give them.
    fn kept(built: &Built) -> Vec<Chunk> {
        crate::jobs::chunks::testing::with_bytes(&built.used_chunks, &built.files.blobs)
    }

    /// The next publish after `previous`, from what it kept.
    fn publish_after(previous: &Built, entries: &[Vec<IndexEntry>], signer: &Signer) -> Built {
        publish(
            entries,
            kept(previous),
            previous.hash_states.clone(),
            signer,
        )
    }

    fn refs(parts: &[Vec<IndexEntry>]) -> Vec<&[IndexEntry]> {
        parts.iter().map(|part| &part[..]).collect()
    }

    fn publish(
        entries: &[Vec<IndexEntry>],
        cached: Vec<Chunk>,
        states: PartStates,
        signer: &Signer,
    ) -> Built {
        let mut repo = repo();
        repo.index_zstd = false;
        build(
            &repo,
            &refs(entries),
            ChunkCache::new(cached, 2, states).sha256_only(),
            signer,
            7,
        )
        .unwrap()
    }

    /// The `<data>` records of repomd.xml: (type, checksum, open-checksum, size, open-size).
    fn records(built: &Built) -> Vec<(String, String, String, u64, u64)> {
        let repomd = &built.documents[0].1;
        repomd
            .split("<data type=\"")
            .skip(1)
            .map(|data| {
                let field = |open: &str, close: &str| {
                    let from = data.find(open).unwrap() + open.len();
                    data[from..from + data[from..].find(close).unwrap()].to_owned()
                };
                (
                    data[..data.find('"').unwrap()].to_owned(),
                    field("<checksum type=\"sha256\">", "<"),
                    field("<open-checksum type=\"sha256\">", "<"),
                    field("<size>", "<").parse().unwrap(),
                    field("<open-size>", "<").parse().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn an_incremental_publish_resumes_hashing_and_matches_a_rebuild() {
        let key = sign::generate("t <t@example.invalid>", KeyAlgorithm::Ed25519, 86_400).unwrap();
        let signer = Signer::from_armored(&[key.secret_armored]).unwrap();
        // Span 2: chunks 0 (id 1), 1 (2, 3), 2 (4, 5).
        let first = publish(
            &entries(&[1, 2, 3, 4, 5], 0),
            vec![],
            HashMap::new(),
            &signer,
        );
        assert_eq!(first.changed_chunks.len(), 3 * 3);

        // One more package (id 6, into chunk 3): the entries before it are not read at all,
        // nothing but its chunk is compressed, and the hash states carry the digests.
        let ids = [1, 2, 3, 4, 5, 6];
        let second = publish_after(&first, &entries(&ids, 6), &signer);
        let changed: Vec<i64> = second.changed_chunks.iter().map(|c| c.chunk_no).collect();
        assert_eq!(changed, [3, 3, 3]);
        // Resumed, the unchanged chunks are not even read: kept as references to blobs of the
        // current generation, with nowhere to read their bytes from, the publish still builds;
        // without the hash states it cannot.
        let current: HashSet<String> = first
            .files
            .blobs
            .iter()
            .map(|(key, _)| key.sha256().to_owned())
            .collect();
        let mut repo = repo();
        repo.index_zstd = false;
        let states = first.hash_states.clone();
        let cache = |states| {
            ChunkCache::new(first.used_chunks.clone(), 2, states)
                .sha256_only()
                .reading(
                    Box::new(|_, _| anyhow::bail!("unreadable")),
                    current.clone(),
                )
        };
        assert!(build(&repo, &refs(&entries(&ids, 6)), cache(states), &signer, 7).is_ok());
        // So does a server restarted after saving its states, taking them back from the file.
        let data_dir = tempfile::tempdir().unwrap();
        let target = Target {
            repository_id: 1,
            distro_version_id: 21,
            arch: "x86_64".into(),
        };
        let stopping = HashStates::default();
        stopping.set(&target, first.hash_states.clone());
        assert_eq!(saved_states::save(&stopping, data_dir.path()).unwrap(), 1);
        let started = HashStates::default();
        let taken = saved_states::restore(&started, data_dir.path()).unwrap();
        assert_eq!(taken, 3 * 3, "three chunks of three parts");
        let restored = build(
            &repo,
            &refs(&entries(&ids, 6)),
            cache(started.take(&target)),
            &signer,
            7,
        )
        .unwrap();
        assert_eq!(records(&restored), records(&second));
        assert!(
            build(
                &repo,
                &refs(&entries(&ids, 6)),
                cache(HashMap::new()),
                &signer,
                7
            )
            .is_err()
        );

        // The same digests as a build from every entry, and as a worker without the hash
        // states (restarted), which decompresses the unchanged chunks instead.
        let from_scratch = publish(&entries(&ids, 0), vec![], HashMap::new(), &signer);
        let restarted = publish(&entries(&ids, 6), kept(&first), HashMap::new(), &signer);
        assert_eq!(records(&second), records(&from_scratch));
        assert_eq!(records(&restarted), records(&from_scratch));
        assert_ne!(records(&first), records(&second));

        // And every digest describes the bytes served: the compressed file and its text.
        assert_served(&second);
        for (kind, ..) in records(&second) {
            let text = served_text(&second, &kind);
            assert_eq!(text.matches("<package>").count(), 6, "{kind}");
            assert!(text.ends_with(&format!("<{kind}/></package>\n\n</{}>\n", root(&kind))));
        }

        // A package destroyed in the first chunk: everything after it is hashed again, still
        // matching a rebuild.
        let ids = [2, 3, 4, 5, 6];
        let third = publish_after(&second, &entries(&ids, 0), &signer);
        let rebuilt = publish(&entries(&ids, 0), vec![], HashMap::new(), &signer);
        assert_eq!(records(&third), records(&rebuilt));
    }

    #[test]
    fn a_growing_last_chunk_is_appended_to_then_compressed_whole() {
        let key = sign::generate("t <t@example.invalid>", KeyAlgorithm::Ed25519, 86_400).unwrap();
        let signer = Signer::from_armored(&[key.secret_armored]).unwrap();
        let scratch = |ids: &[i64]| publish(&entries(ids, 0), vec![], HashMap::new(), &signer);
        let changed = |built: &Built| -> Vec<(i64, bool)> {
            built
                .changed_chunks
                .iter()
                .filter(|c| c.part == "primary")
                .map(|c| (c.chunk_no, c.fingerprint.starts_with("open:")))
                .collect()
        };
        // Span 2: chunks 0 (1), 1 (2, 3), 2 (4, 5), 3 (6).
        let first = scratch(&[1, 2, 3, 4, 5, 6]);

        // 7 joins the last chunk: only its entry is read, and it is appended to the chunk.
        let ids = [1, 2, 3, 4, 5, 6, 7];
        let second = publish_after(&first, &entries(&ids, 7), &signer);
        assert_eq!(changed(&second), [(3, true)]);
        assert_eq!(texts(&second), texts(&scratch(&ids)));
        // Past the hash state kept after chunk 3 as it was, only 7's entries (and each part's
        // head and tail) are hashed; without the states, chunk 3 is decompressed and hashed.
        let framed = |ids: &[i64]| -> u64 {
            let parts = entries(ids, 0);
            let text = |e: &IndexEntry| e.body.as_ref().unwrap().len() as u64 + 1;
            PARTS
                .iter()
                .zip(&parts)
                .map(|(part, entries)| {
                    let (head, tail) = xml_frame(part);
                    (head.len() + tail.len()) as u64 + entries.iter().map(text).sum::<u64>()
                })
                .sum()
        };
        assert_eq!(second.hashed_bytes, framed(&[7]));
        let restarted = publish(&entries(&ids, 7), kept(&first), HashMap::new(), &signer);
        assert_eq!(restarted.hashed_bytes, framed(&ids));
        assert_eq!(texts(&restarted), texts(&second));
        assert_served(&second);
        let text = served_text(&second, "primary");
        assert!(text.contains("<name>p6</name>") && text.contains("<name>p7</name>"));

        // Unchanged, it is reused as it is while it stays the last chunk.
        let again = publish_after(&second, &entries(&ids, i64::MAX), &signer);
        assert_eq!(changed(&again), []);
        assert_eq!(records(&again), records(&second));

        // 8 starts chunk 4: chunk 3 is no longer the last, and is compressed whole again from
        // its entries.
        let ids = [1, 2, 3, 4, 5, 6, 7, 8];
        let third = publish_after(&second, &entries(&ids, 6), &signer);
        assert_eq!(changed(&third), [(3, false), (4, false)]);
        assert_eq!(texts(&third), texts(&scratch(&ids)));
        assert_served(&third);
    }

    #[test]
    fn chunks_written_ahead_are_not_held_until_the_commit() {
        let key = sign::generate("t <t@example.invalid>", KeyAlgorithm::Ed25519, 86_400).unwrap();
        let signer = Signer::from_armored(&[key.secret_armored]).unwrap();
        let parts = entries(&(1..=9).collect::<Vec<_>>(), 0);
        let held = publish(&parts, vec![], HashMap::new(), &signer);
        assert_eq!(held.changed_chunks.len(), 5 * 3);
        let but_last: usize = held.changed_chunks[..14].iter().map(|c| c.gz.size).sum();
        // Every chunk stored as soon as it is compressed, all but the last together, none.
        for (at_bytes, written) in [(0, 15), (but_last, 14), (usize::MAX, 0)] {
            let stored = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            let writer: chunks::ChunkWriter = {
                let stored = stored.clone();
                Box::new(move |chunks| {
                    stored.lock().unwrap().push(chunks.to_vec());
                    Ok(())
                })
            };
            let mut repo = repo();
            repo.index_zstd = false;
            let cache = ChunkCache::new(vec![], 2, HashMap::new())
                .sha256_only()
                .writing_ahead(writer, at_bytes);
            let ahead = build(&repo, &refs(&parts), cache, &signer, 7).unwrap();
            let stored = stored.lock().unwrap().concat();
            assert_eq!(stored.len(), written, "{at_bytes}");
            assert_eq!(ahead.written_chunks.len(), written, "{at_bytes}");
            assert_eq!(ahead.changed_chunks.len(), 15 - written, "{at_bytes}");
            // What was written is held neither as a chunk nor as a blob to write at the commit.
            assert!(ahead.written_chunks.iter().all(|c| c.gz.bytes.is_none()));
            let at_commit: HashSet<&str> =
                ahead.files.blobs.iter().map(|(k, _)| k.sha256()).collect();
            assert!(
                stored
                    .iter()
                    .all(|c| c.is_read() && !at_commit.contains(c.gz.sha256.as_str()))
            );
            // The same files, served from the blobs written at the commit and those ahead of it.
            assert_eq!(records(&ahead), records(&held));
            let mut blobs = ahead.files.blobs.clone();
            for chunk in &stored {
                let key = crate::storage::BlobKey::from_sha256(&chunk.gz.sha256).unwrap();
                blobs.push((key, chunk.gz.bytes().unwrap().clone()));
            }
            for file in &ahead.files.files {
                let same = held
                    .files
                    .files
                    .iter()
                    .find(|f| f.path == file.path)
                    .unwrap();
                assert_eq!(
                    stored_bytes(&blobs, file),
                    stored_bytes(&held.files.blobs, same)
                );
            }
        }
    }

    /// What the uncompressed files hold: (type, open-checksum, open-size).
    fn texts(built: &Built) -> Vec<(String, String, u64)> {
        records(built)
            .into_iter()
            .map(|(kind, _, open, _, open_size)| (kind, open, open_size))
            .collect()
    }

    /// The bytes the `kind` file is served as.
    fn served(built: &Built, kind: &str) -> Vec<u8> {
        let file = built
            .files
            .files
            .iter()
            .find(|f| f.path.contains(&format!("-{kind}.xml")))
            .unwrap();
        stored_bytes(&built.files.blobs, file)
    }

    fn served_text(built: &Built, kind: &str) -> String {
        packyard_formats::chunked::gunzip_text(&served(built, kind)).unwrap()
    }

    /// Every digest of repomd.xml describes the bytes served, compressed and not.
    fn assert_served(built: &Built) {
        for (kind, checksum, open_checksum, size, open_size) in records(built) {
            let bytes = served(built, &kind);
            assert_eq!(sha256_hex(&bytes), checksum, "{kind}");
            assert_eq!(bytes.len() as u64, size, "{kind}");
            let text = served_text(built, &kind);
            assert_eq!(sha256_hex(text.as_bytes()), open_checksum, "{kind}");
            assert_eq!(text.len() as u64, open_size, "{kind}");
        }
    }

    fn root(kind: &str) -> &'static str {
        match kind {
            "primary" => "metadata",
            "filelists" => "filelists",
            _ => "otherdata",
        }
    }
}
