//! Publishing one YUM target `(repository, distribution version, arch)`: `primary`,
//! `filelists` and `other` built from stored XML fragments, written under names that carry
//! their own SHA-256, then `repomd.xml` and its detached signature made current in one
//! transaction. Because the data files are content-addressed, the flip of `repomd.xml` is the
//! whole publish: a client holding the previous `repomd.xml` still finds every file it names.

use std::collections::HashMap;

use anyhow::{Context, Result};
use packyard_formats::rpm::{RepomdRecord, render_repomd, xml_frame};

use super::listed_in;
use crate::app::App;
use crate::db::generations::{Build, Chunk, IndexFile, NewGeneration, Target};
use crate::db::packages::IndexEntry;
use crate::db::{self, repos::Repo};
use crate::distros;
use crate::sign::Signer;

use crate::jobs::chunks::{CHUNK_SPAN, ChunkCache, IndexFiles, commit_generation};

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
    let listing = app.listings.list(&app.db, target, grace, watermark).await?;
    let listed: Vec<&IndexEntry> = listing
        .entries
        .iter()
        .filter(|e| listed_in(&target.arch, &e.architecture))
        .collect();
    let kept = app.hash_states.take_chunks(target);
    let cached = match (run.rebuild, kept) {
        // A rebuild renders every chunk again from the stored entries.
        (true, _) => Vec::new(),
        (false, Some(kept)) => kept,
        (false, None) => db::generations::chunks(&app.db, target).await?,
    };
    // repomd.xml names SHA-256 digests only.
    let chunks = ChunkCache::new(cached, CHUNK_SPAN, HashMap::new()).sha256_only();
    let mut entries = Vec::with_capacity(PARTS.len());
    for part in PARTS {
        let mut part_entries: Vec<IndexEntry> = listed
            .iter()
            .map(|e| IndexEntry {
                id: e.id,
                architecture: e.architecture.clone(),
                body: None,
                indexed: e.indexed,
            })
            .collect();
        // Only the entries of chunks that changed; the others are decompressed.
        let from = chunks.first_unreusable_id(part, &part_entries.iter().collect::<Vec<_>>());
        let bodies = db::packages::index_bodies(
            &app.db,
            target.repository_id,
            target.distro_version_id,
            part,
            from,
        )
        .await?;
        db::packages::attach_bodies(&mut part_entries, bodies);
        entries.push(part_entries);
    }
    let secret_keys = crate::keys::signing_secret_keys(app, &repo).await?;
    let revision = db::now();

    let read_ms = started.elapsed().as_millis() as u64;
    let built = tokio::task::spawn_blocking(move || {
        let signer = Signer::from_armored(&secret_keys)?;
        build(&repo, &entries, chunks, &signer, revision)
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
        newly_indexed: &built.newly_indexed,
        build: run,
    };
    let generation_id = commit_generation(app, "rpm", &built.files.blobs, &generation).await?;
    app.hash_states.keep_chunks(target, built.used_chunks);
    app.listings
        .keep(target, listing.watermark, listing.entries);
    tracing::info!(
        repository_id = target.repository_id,
        distro_version_id = target.distro_version_id,
        arch = %target.arch,
        generation_id,
        packages = built.newly_indexed.len(),
        chunks_compressed = built.changed_chunks.len(),
        read_ms,
        build_ms,
        write_ms = started.elapsed().as_millis() as u64 - read_ms - build_ms,
        "published yum repodata"
    );
    Ok(())
}

struct Built {
    documents: Vec<(&'static str, String)>,
    files: IndexFiles,
    changed_chunks: Vec<Chunk>,
    live_chunks: Vec<(String, i64)>,
    newly_indexed: Vec<i64>,
    /// Every chunk the files consist of, kept for the next publish.
    used_chunks: Vec<Chunk>,
}

fn build(
    repo: &Repo,
    entries: &[Vec<IndexEntry>],
    mut chunks: ChunkCache,
    signer: &Signer,
    revision: i64,
) -> Result<Built> {
    // The head of each file counts its packages, so hashing restarts from the top every time.
    let mut files = IndexFiles::default();
    let mut records: Vec<(&str, IndexFile, u64, String)> = Vec::new();
    for (part, part_entries) in PARTS.iter().zip(entries) {
        let members: Vec<&IndexEntry> = part_entries.iter().collect();
        let (head, tail) = xml_frame(part, members.len());
        let built = chunks.build(part, &head, &members, &tail, repo.index_zstd, false)?;
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
    let signature = signer.detached(repomd.as_bytes())?;
    let finished = chunks.finish();
    Ok(Built {
        documents: vec![("repomd.xml", repomd), ("repomd.xml.asc", signature)],
        files,
        changed_chunks: finished.changed,
        live_chunks: finished.live,
        used_chunks: finished.used,
        newly_indexed: entries[0]
            .iter()
            .filter(|e| !e.indexed)
            .map(|e| e.id)
            .collect(),
    })
}
