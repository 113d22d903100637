//! Publishing one APT target `(repository, distribution version)`: a new index generation
//! built from stored stanzas, written content-addressed, then made current in one transaction.
//!
//! Cost grows with what changed: each architecture's `Packages` is a sequence of chunks of at
//! most `CHUNK_SPAN` consecutive package ids, and a chunk is compressed again only when the set
//! of packages in it changed. Unchanged chunks are reused from the cache byte for byte, so the
//! `.gz` (and `.zst`) files are concatenations of independently compressed members.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use anyhow::{Context, Result};
use bytes::Bytes;
use packyard_formats::chunked;
use packyard_formats::deb::{
    AptPath, Compression, ReleaseFile, ReleaseInfo, SOURCE, render_release,
};
use packyard_formats::digest::FileDigests;

use crate::app::App;
use crate::db::generations::{Build, Chunk, IndexFile, NewGeneration, Target};
use crate::db::packages::IndexEntry;
use crate::db::{self, repos::Repo};
use crate::distros::{self, Distro};
use crate::sign::Signer;
use crate::storage::BlobKey;

use crate::jobs::chunks::{
    self, ChunkCache, IndexFiles, PartStates, commit_generation, file_digests,
};

/// Architectures every distribution lists, so `apt-get update` succeeds on these hosts even
/// before a package for their architecture is pushed.
const DEFAULT_ARCHITECTURES: &[&str] = &["amd64", "arm64", "i386"];

pub async fn publish(app: &App, target: &Target, run: &Build) -> Result<()> {
    let (repository_id, distro_version_id) = (target.repository_id, target.distro_version_id);
    let Some(repo) = db::repos::by_id(&app.db, repository_id).await? else {
        return Ok(()); // The repository was deleted after the job was queued.
    };
    let distro = distros::by_id(distro_version_id)
        .with_context(|| format!("unknown distribution version id {distro_version_id}"))?;
    let started = std::time::Instant::now();
    // The package list without entries: the chunk cache reads the entries of the chunks it
    // must compress, a chunk at a time.
    let grace = std::time::Duration::from_secs(app.config.index_grace_secs);
    let watermark = run.claim.map(|c| c.watermark);
    if run.rebuild {
        // Read the list, and which packages are indexed, from the database.
        app.listings.forget(target);
    }
    let listed = app
        .listings
        .list(&app.db, target, grace, watermark, &|_| true)
        .await?;
    let entries = listed.entries;
    let list_ms = started.elapsed().as_millis() as u64;
    // Every architecture's Packages and Sources consist of entries of the part "packages".
    let chunks = chunks::cache_for(app, target, run, |_| "packages").await?;
    let chunks_ms = started.elapsed().as_millis() as u64 - list_ms;
    let secret_keys = crate::keys::signing_secret_keys(app, &repo).await?;
    let date = release_date();
    let read_ms = started.elapsed().as_millis() as u64;

    let (built, entries) = tokio::task::spawn_blocking(move || {
        let signer = Signer::from_armored(&secret_keys)?;
        let built = build(&repo, distro, &entries, chunks, &signer, &date)?;
        anyhow::Ok((built, entries))
    })
    .await??;
    let build_ms = started.elapsed().as_millis() as u64 - read_ms;
    metrics::histogram!("packyard_index_build_duration_seconds", "format" => "deb")
        .record(build_ms as f64 / 1000.0);

    let documents = [
        ("Release", built.release.clone()),
        ("InRelease", built.in_release.clone()),
        ("Release.gpg", built.release_gpg.clone()),
    ];
    let generation = NewGeneration {
        target,
        documents: &documents,
        files: &built.files,
        changed_chunks: &built.changed_chunks,
        live_chunks: &built.live_chunks,
        written_chunks: &built.written_chunks,
        newly_indexed: &listed.unindexed,
        build: run,
    };
    let committing = std::time::Instant::now();
    let generation_id =
        commit_generation(app, "deb", &built.blobs, &built.current_blobs, &generation).await?;
    let commit_ms = committing.elapsed().as_millis() as u64;
    app.hash_states.set(target, built.hash_states);
    app.hash_states.keep_chunks(target, built.used_chunks);
    app.listings.keep(target, listed.at, entries);
    tracing::info!(
        repository_id,
        distro_version_id,
        generation_id,
        packages = built.package_count,
        listed_incrementally = listed.incremental,
        entries_read = built.entries_read,
        chunks_compressed = built.changed_chunks.len() + built.written_chunks.len(),
        read_ms,
        list_ms,
        chunks_ms,
        build_ms,
        hashed_bytes = built.hashed_bytes,
        sign_ms = built.sign_ms,
        commit_ms,
        write_ms = started.elapsed().as_millis() as u64 - read_ms - build_ms,
        "published apt index"
    );
    Ok(())
}

/// Everything one publish writes.
struct Built {
    /// Time spent signing `InRelease` and `Release.gpg`.
    sign_ms: f64,
    release: String,
    in_release: String,
    release_gpg: String,
    files: Vec<IndexFile>,
    blobs: Vec<(BlobKey, Bytes)>,
    changed_chunks: Vec<Chunk>,
    /// Chunks stored while the publish built, as references.
    written_chunks: Vec<Chunk>,
    live_chunks: Vec<(String, i64)>,
    package_count: usize,
    hash_states: PartStates,
    used_chunks: Vec<Chunk>,
    /// Bytes of text hashed rather than resumed past.
    hashed_bytes: u64,
    /// Entries read to compress chunks.
    entries_read: u64,
    /// The blobs of the current generation this publish started from.
    current_blobs: HashSet<String>,
}

/// The index files of a distribution and their packages, in id order: the `Packages` of each
/// binary architecture it lists (the defaults and every one pushed; `all` packages go into
/// each), then `Sources` under `SOURCE`. A file of every entry (the one architecture of most
/// repositories) has `None` rather than a reference to each.
fn parts(entries: &[IndexEntry]) -> Vec<(String, Option<Vec<&IndexEntry>>)> {
    // A listing shares one string per architecture, so a run of entries of the same one is
    // recognised by its pointer rather than looked up entry by entry.
    let same = |a: &Option<&Arc<String>>, b: &Arc<String>| a.is_some_and(|a| Arc::ptr_eq(a, b));
    let mut architectures: BTreeSet<&str> = DEFAULT_ARCHITECTURES.iter().copied().collect();
    let mut previous = None;
    for entry in entries {
        if !same(&previous, &entry.architecture) {
            previous = Some(&entry.architecture);
            if !matches!(entry.architecture.as_str(), "all" | SOURCE) {
                architectures.insert(&entry.architecture);
            }
        }
    }
    let names: Vec<&str> = architectures.into_iter().chain([SOURCE]).collect();
    let binary = names.len() - 1;
    // Each entry with its file: `None` for `all`, which is in every one but `Sources`. Counted
    // first, so each list is allocated once at its size.
    let lookup = &names;
    let with_files = || {
        let (mut previous, mut file) = (None, None);
        entries.iter().map(move |entry| {
            if !same(&previous, &entry.architecture) {
                previous = Some(&entry.architecture);
                file = lookup.iter().position(|n| **n == *entry.architecture);
            }
            (entry, file)
        })
    };
    let mut sizes = vec![0; names.len()];
    for (_, file) in with_files() {
        match file {
            Some(file) => sizes[file] += 1,
            None => sizes[..binary].iter_mut().for_each(|s| *s += 1),
        }
    }
    let every = |size: usize| size == entries.len() && size > 0;
    let mut members: Vec<Option<Vec<&IndexEntry>>> = sizes
        .into_iter()
        .map(|size| (!every(size)).then(|| Vec::with_capacity(size)))
        .collect();
    if members.iter().any(Option::is_some) {
        let mut push = |file: usize, entry| {
            if let Some(members) = members[file].as_mut() {
                members.push(entry);
            }
        };
        for (entry, file) in with_files() {
            match file {
                Some(file) => push(file, entry),
                None => (0..binary).for_each(|file| push(file, entry)),
            }
        }
    }
    names.into_iter().map(str::to_owned).zip(members).collect()
}

fn build(
    repo: &Repo,
    distro: &Distro,
    entries: &[IndexEntry],
    mut chunks: ChunkCache,
    signer: &Signer,
    date: &str,
) -> Result<Built> {
    let parts = parts(entries);
    let mut out = IndexFiles::default();
    // Sources is listed in every distribution, even empty: the deb-src line packagecloud's
    // configuration writes makes `apt-get update` fail on a Release without it.
    for (arch, members) in &parts {
        let path = AptPath::index_file(arch, Compression::None);
        let (zstd, xz) = (repo.index_zstd, repo.index_xz);
        let built = match members {
            Some(members) => chunks.build(arch, "", members, "", zstd, xz)?,
            None => chunks.build(arch, "", entries, "", zstd, xz)?,
        };
        // apt finds the compressed files only when Release lists the uncompressed one too.
        let gz = out.add_segmented(format!("{path}.gz"), built.gz, built.gz_digests)?;
        out.add_gunzipped(path.clone(), &built.plain, &gz)?;
        if let (Some(zst), Some(digests)) = (built.zst, built.zst_digests) {
            out.add_segmented(format!("{path}.zst"), zst, digests)?;
        }
        if let Some(text) = built.text {
            out.add(format!("{path}.xz"), chunked::xz_stream(text.as_bytes()))?;
        }
    }
    let finished = chunks.finish();
    out.add_chunks(&finished.changed)?;
    let IndexFiles {
        mut files, blobs, ..
    } = out;
    // Release lists each index uncompressed first, as apt-ftparchive does.
    files.sort_by(|a, b| a.path.cmp(&b.path));

    let digests: Vec<FileDigests> = files.iter().map(file_digests).collect();
    let listed: Vec<ReleaseFile<'_>> = files
        .iter()
        .zip(&digests)
        .map(|(file, digests)| ReleaseFile {
            path: &file.path,
            digests,
        })
        .collect();
    let label = format!("{}/{}", repo.owner, repo.name);
    let architectures: Vec<String> = parts
        .into_iter()
        .map(|(arch, _)| arch)
        .filter(|arch| arch != SOURCE)
        .collect();
    let description = format!("{label} for {}/{}", distro.os, distro.dist);
    let release = render_release(
        &ReleaseInfo {
            origin: &label,
            label: &label,
            suite: distro.dist,
            codename: distro.dist,
            date,
            architectures: &architectures,
            components: &["main"],
            description: &description,
        },
        &listed,
    );
    let signing = std::time::Instant::now();
    let (in_release, release_gpg) = signer.release_signatures(&release)?;
    let sign_ms = signing.elapsed().as_secs_f64() * 1000.0;
    Ok(Built {
        sign_ms,
        release,
        in_release,
        release_gpg,
        files,
        blobs,
        changed_chunks: finished.changed,
        written_chunks: finished.written,
        live_chunks: finished.live,
        used_chunks: finished.used,
        package_count: entries.len(),
        hash_states: finished.states,
        hashed_bytes: finished.hashed_bytes,
        entries_read: finished.entries_read,
        current_blobs: finished.current,
    })
}

/// `Date:` of a Release file: RFC 2822 in UTC.
fn release_date() -> String {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] UTC"
    );
    time::OffsetDateTime::now_utc()
        .format(&format)
        .expect("a fixed format always formats")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::io::Read;

    use super::*;
    use crate::jobs::chunks::EntryReader;
    use crate::jobs::chunks::testing::{repo, stored_bytes};
    use crate::sign::{self, KeyAlgorithm};

    fn entry(id: i64, architecture: &str) -> IndexEntry {
        let stanza = format!("Package: p{id}\nVersion: 1.0\nArchitecture: {architecture}\n");
        IndexEntry {
            id,
            architecture: Arc::new(architecture.to_owned()),
            body: Some(stanza.into()),
        }
    }

    fn file<'a>(built: &'a Built, path: &str) -> &'a IndexFile {
        built.files.iter().find(|f| f.path == path).unwrap()
    }

    fn stored(built: &Built, file: &IndexFile) -> Vec<u8> {
        stored_bytes(&built.blobs, file)
    }

    fn packages_gz(built: &Built, arch: &str) -> String {
        let gz = stored(
            built,
            file(built, &format!("main/binary-{arch}/Packages.gz")),
        );
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(&gz[..])
            .read_to_string(&mut text)
            .unwrap();
        text
    }

    fn cache(cached: Vec<Chunk>, resume: PartStates) -> ChunkCache {
        ChunkCache::new(cached, 2, resume)
    }

    fn changed(built: &Built) -> Vec<(&str, i64)> {
        built
            .changed_chunks
            .iter()
            .map(|c| (c.part.as_str(), c.chunk_no))
            .collect()
    }

    fn digest(built: &Built, path: &str) -> String {
        built
            .files
            .iter()
            .find(|f| f.path == path)
            .unwrap()
            .sha512
            .clone()
    }

    /// A reader of the bodies of `entries` that records what it is asked for, and `entries`
    /// without their bodies.
    fn recording_reader(entries: &[IndexEntry]) -> (EntryReader, Asked, Vec<IndexEntry>) {
        let asked = Asked::default();
        let reader: EntryReader = {
            let asked = asked.clone();
            let stored: Vec<(i64, String)> = entries
                .iter()
                .map(|e| (e.id, *e.body.clone().unwrap()))
                .collect();
            Box::new(move |part: &str, ids: std::ops::Range<i64>| {
                asked.lock().unwrap().push((part.to_owned(), ids.clone()));
                let read: Vec<(i64, String)> = stored
                    .iter()
                    .filter(|(id, _)| ids.contains(id))
                    .cloned()
                    .collect();
                Box::new(move || Ok(read))
            })
        };
        let bare = entries
            .iter()
            .map(|e| IndexEntry {
                body: None,
                ..e.clone()
            })
            .collect();
        (reader, asked, bare)
    }

    /// A build with nothing cached.
    fn from_nothing(distro: &Distro, entries: &[IndexEntry], signer: &Signer) -> Built {
        build(
            &repo(),
            distro,
            entries,
            cache(vec![], HashMap::new()),
            signer,
            "d",
        )
        .unwrap()
    }

    type Asked = Arc<std::sync::Mutex<Vec<(String, std::ops::Range<i64>)>>>;

    fn ids_of(members: &[&IndexEntry]) -> Vec<i64> {
        members.iter().map(|e| e.id).collect()
    }

    fn members<'a>(entries: &'a [IndexEntry], arch: &str) -> Vec<&'a IndexEntry> {
        let parts = parts(entries);
        let (_, members) = parts.into_iter().find(|(a, _)| a == arch).unwrap();
        members.unwrap_or_else(|| entries.iter().collect())
    }

    #[test]
    fn every_file_lists_its_architecture_and_all_in_id_order() {
        // Entries sharing one string per architecture, as a listing's do, and one that does not.
        let amd64 = Arc::new("amd64".to_owned());
        let mut entries: Vec<IndexEntry> = [(1, "all"), (2, "amd64"), (3, "riscv64")]
            .into_iter()
            .chain([(4, SOURCE), (5, "all"), (6, "amd64"), (7, "riscv64")])
            .map(|(id, arch)| entry(id, arch))
            .collect();
        entries[1].architecture = amd64.clone();
        entries[5].architecture = amd64;
        let ids = |arch| -> Vec<i64> { members(&entries, arch).iter().map(|e| e.id).collect() };
        let names: Vec<String> = parts(&entries).into_iter().map(|(a, _)| a).collect();
        assert_eq!(names, ["amd64", "arm64", "i386", "riscv64", SOURCE]);
        assert_eq!(ids("amd64"), [1, 2, 5, 6]);
        // A file of every entry refers to the list itself.
        let amd64_only: Vec<IndexEntry> = (1..=3).map(|id| entry(id, "amd64")).collect();
        let parts_of = parts(&amd64_only);
        let only = |arch: &str| parts_of.iter().find(|(a, _)| a == arch).unwrap().1.clone();
        assert!(only("amd64").is_none());
        assert_eq!(only("arm64").map(|m| m.len()), Some(0));
        assert_eq!(ids_of(&members(&amd64_only, "amd64")), [1, 2, 3]);
        assert_eq!(ids("arm64"), [1, 5]);
        assert_eq!(ids("riscv64"), [1, 3, 5, 7]);
        assert_eq!(ids(SOURCE), [4]);
    }

    #[test]
    fn a_rebuild_reads_entries_a_batch_ahead_of_compressing_and_matches_carried_ones() {
        let key = sign::generate("t <t@example.invalid>", KeyAlgorithm::Ed25519, 86_400).unwrap();
        let signer = Signer::from_armored(&[key.secret_armored]).unwrap();
        let distro = distros::by_id(12).unwrap();
        let entries: Vec<IndexEntry> = (1..=40).map(|id| entry(id, "amd64")).collect();
        let (reader, asked, bare) = recording_reader(&entries);
        let reading = cache(vec![], HashMap::new()).reading_entries(reader);
        let read = build(&repo(), distro, &bare, reading, &signer, "d").unwrap();
        // Span 2: 21 chunks, read four at a time in one statement each, the next four while
        // the last are compressed.
        let amd64 = |ids| ("amd64".to_owned(), ids);
        assert_eq!(
            *asked.lock().unwrap(),
            [
                amd64(1..8),
                amd64(8..16),
                amd64(16..24),
                amd64(24..32),
                amd64(32..40),
                amd64(40..41)
            ]
        );
        assert_eq!(read.entries_read, 40);
        assert_eq!(read.changed_chunks.len(), 21);
        // The same files, bytes and digests as a build from entries the listing carries.
        let carried = from_nothing(distro, &entries, &signer);
        assert_eq!(read.release, carried.release);
        for file in read.files.iter().filter(|f| !f.gunzip) {
            assert_eq!(
                FileDigests::of(&stored(&read, file)).sha512,
                file.sha512,
                "{}",
                file.path
            );
        }
        assert_eq!(packages_gz(&read, "amd64"), packages_gz(&carried, "amd64"));
    }

    #[test]
    fn only_changed_chunks_are_compressed_and_read_again() {
        let key = sign::generate("t <t@example.invalid>", KeyAlgorithm::Ed25519, 86_400).unwrap();
        let signer = Signer::from_armored(&[key.secret_armored]).unwrap();
        let distro = distros::by_id(12).unwrap();
        let mut entries: Vec<IndexEntry> = (1..=5).map(|id| entry(id, "amd64")).collect();
        entries.push(entry(7, "all"));

        // Span 2: chunks 0 (id 1), 1 (2, 3), 2 (4, 5) and 3 (7) for amd64; chunk 3 for the rest.
        let first = from_nothing(distro, &entries, &signer);
        assert_eq!(first.changed_chunks.len(), 4 + 2);

        // One more package: one new chunk, nothing else recompressed; and with the hash states
        // of the first publish, the entries of the unchanged chunks are not needed at all.
        entries.insert(5, entry(6, "amd64"));
        let mut partial: Vec<IndexEntry> = entries
            .iter()
            .map(|e| entry(e.id, &e.architecture))
            .collect();
        for e in partial.iter_mut().filter(|e| e.id < 6) {
            e.body = None;
        }
        let cached = first.changed_chunks.clone();
        let resumed = cache(cached.clone(), first.hash_states.clone());
        let second = build(&repo(), distro, &partial, resumed, &signer, "d").unwrap();
        assert_eq!(changed(&second), [("amd64", 3)]);
        // With no entries in the listing, the cache reads those of the one chunk it compresses.
        let (reader, asked, bare) = recording_reader(&entries);
        let reading = cache(cached.clone(), first.hash_states.clone()).reading_entries(reader);
        let read = build(&repo(), distro, &bare, reading, &signer, "d").unwrap();
        assert_eq!(*asked.lock().unwrap(), [("amd64".to_owned(), 6..8)]);
        assert_eq!(read.entries_read, 2);
        assert_eq!(read.release, second.release);
        // Stored in segments, the unchanged chunks are the same blobs as before.
        let segments = |built: &Built| {
            file(built, "main/binary-amd64/Packages.gz")
                .segments
                .clone()
        };
        let (before, after) = (segments(&first), segments(&second));
        assert_eq!(before.len(), 4);
        assert_eq!(before[..3], after[..3]);
        assert_ne!(before[3], after[3]);
        // The same bytes and digests as a publish that reads and hashes everything; and as a
        // worker without the hash states (restarted, say), which decompresses the unchanged
        // chunks instead of reading their entries.
        let with_cache = |entries: &[IndexEntry]| {
            let fresh = cache(cached.clone(), HashMap::new());
            build(&repo(), distro, entries, fresh, &signer, "d").unwrap()
        };
        let from_scratch = with_cache(&entries);
        let restarted = with_cache(&partial);
        for path in [
            "main/binary-amd64/Packages",
            "main/binary-amd64/Packages.gz",
            "main/binary-amd64/Packages.zst",
            "main/binary-arm64/Packages",
        ] {
            assert_eq!(digest(&second, path), digest(&from_scratch, path), "{path}");
            assert_eq!(
                digest(&restarted, path),
                digest(&from_scratch, path),
                "{path}"
            );
        }
        // Digests carried over from hash states still describe the bytes served.
        for file in second.files.iter().filter(|f| !f.gunzip) {
            let bytes = stored(&second, file);
            assert_eq!(FileDigests::of(&bytes).sha512, file.sha512, "{}", file.path);
        }
        // Without the entry of a chunk that must be rebuilt, the publish fails rather than lies.
        let mut missing: Vec<IndexEntry> = entries
            .iter()
            .map(|e| entry(e.id, &e.architecture))
            .collect();
        missing[0].body = None;
        assert!(
            build(
                &repo(),
                distro,
                &missing,
                cache(vec![], HashMap::new()),
                &signer,
                "d"
            )
            .is_err()
        );

        // A package destroyed: only its chunk changes.
        let mut cached = first.changed_chunks.clone();
        cached.retain(|c| !(c.part == "amd64" && c.chunk_no == 3));
        cached.extend(second.changed_chunks.clone());
        entries.retain(|e| e.id != 3);
        let third = build(
            &repo(),
            distro,
            &entries,
            cache(cached, HashMap::new()),
            &signer,
            "d",
        )
        .unwrap();
        assert_eq!(changed(&third), [("amd64", 1)]);

        // The concatenated members read back as the whole index, in id order.
        let expected: String = [1, 2, 4, 5, 6]
            .iter()
            .map(|id| format!("Package: p{id}\nVersion: 1.0\nArchitecture: amd64\n\n"))
            .collect::<String>()
            + "Package: p7\nVersion: 1.0\nArchitecture: all\n\n";
        assert_eq!(packages_gz(&third, "amd64"), expected);
        assert_eq!(
            packages_gz(&third, "arm64"),
            "Package: p7\nVersion: 1.0\nArchitecture: all\n\n"
        );
        let plain = third
            .files
            .iter()
            .find(|f| f.path == "main/binary-amd64/Packages")
            .unwrap();
        assert_eq!(plain.size as usize, expected.len());
        assert!(plain.gunzip);
        assert!(third.release.contains("main/binary-amd64/Packages.zst"));
        assert!(
            third
                .in_release
                .starts_with("-----BEGIN PGP SIGNED MESSAGE-----")
        );
    }
}
