//! Pushing a package: a staged upload becomes a package row, its blob, and index jobs.
//!
//! The upload has been written to a temporary file and hashed in one pass already (see
//! `http::api::packages::push`). Here its metadata is read (bounded decompression for .deb,
//! header only for .rpm), its index entries are rendered once, the blob is stored under its
//! SHA-256, and the row and the jobs are committed in one transaction, so a failure at any
//! step leaves nothing visible.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use packyard_formats::digest::FileDigests;
use thiserror::Error;

use crate::app::App;
use crate::db::packages::{Inserted, NewPackage, Package, PackageFile};
use crate::db::{self, Tx, repos::Repo};
use crate::distros::Distro;
use crate::formats::PackageFormat;
use crate::storage::BlobKey;

pub mod group;

/// An uploaded file, staged on local disk and hashed.
pub struct Staged {
    pub path: PathBuf,
    pub filename: String,
    pub digests: FileDigests,
    /// Files uploaded with it that it names: a Debian source package's tarballs
    /// (`package[source_files][]`).
    pub source_files: Vec<Staged>,
}

impl Staged {
    pub fn new(path: PathBuf, filename: String, digests: FileDigests) -> Staged {
        Staged {
            path,
            filename,
            digests,
            source_files: Vec::new(),
        }
    }
}

/// The blobs of an upload, its own and those of its source files, with where each is staged.
fn blobs_of(staged: &Staged) -> anyhow::Result<Vec<(BlobKey, PathBuf)>> {
    std::iter::once(staged)
        .chain(&staged.source_files)
        .map(|file| {
            Ok((
                BlobKey::from_sha256(&file.digests.sha256)?,
                file.path.clone(),
            ))
        })
        .collect()
}

/// Stores the blobs of an upload: its own and those of its source files.
async fn put_blobs(app: &App, blobs: &[(BlobKey, PathBuf)]) -> anyhow::Result<()> {
    for (key, path) in blobs {
        app.blobs.put_file(key, path).await?;
    }
    Ok(())
}

/// `put_blobs` again inside the write transaction: only blobs the collector took since.
async fn put_blobs_again(app: &App, blobs: &[(BlobKey, PathBuf)]) -> anyhow::Result<()> {
    for (key, path) in blobs {
        app.blobs.put_file_again(key, path).await?;
    }
    Ok(())
}

#[derive(Debug, Error)]
pub enum PushError {
    #[error("{0}")]
    BadPackage(String),
    #[error("{0}")]
    BadFilename(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// What a package contributes to the database, whatever its format.
pub struct Parsed {
    pub format: PackageFormat,
    pub name: String,
    pub version: String,
    pub architecture: String,
    /// The name the file is stored and served under.
    pub filename: String,
    /// Relations by kind (`depends`, `requires` ...), as API v1 lists them.
    pub dependencies: BTreeMap<String, Vec<String>>,
    /// Index entries by part (`packages`, `primary` ...), rendered once.
    pub entries: Vec<(&'static str, String)>,
    /// Files beside the package's own, from `Staged::source_files`.
    pub files: Vec<PackageFile>,
}

/// Why `filename` cannot name a package file in a pool: one path segment, no traversal,
/// ending in `extension`.
pub fn check_package_filename(filename: &str, extension: &str) -> Result<(), String> {
    if filename.is_empty() || filename.len() > 200 {
        return Err("must be 1 to 200 characters".into());
    }
    if filename.contains('/') || filename.contains('\\') || filename.contains("..") {
        return Err("must not contain '/', '\\' or '..'".into());
    }
    if filename.starts_with('.')
        || filename
            .chars()
            .any(|c| c.is_control() || c.is_whitespace())
    {
        return Err("must not start with '.' or contain spaces or control characters".into());
    }
    if !filename.ends_with(extension) {
        return Err(format!("must end in {extension}"));
    }
    Ok(())
}

/// The live package stored under `filename` in a target, or under the name its format gives
/// a file uploaded as `filename`: what clients name when they destroy or promote a file.
pub async fn by_filename(
    app: &App,
    repository_id: i64,
    distro: &Distro,
    filename: &str,
) -> anyhow::Result<Option<Package>> {
    if let Some(package) =
        db::packages::by_filename(&app.db, repository_id, distro.id, filename).await?
    {
        return Ok(Some(package));
    }
    match distro.format.stored_filename(filename) {
        Some(stored) => db::packages::by_filename(&app.db, repository_id, distro.id, &stored).await,
        None => Ok(None),
    }
}

/// Stores a staged package in `repo` for `distro`. Returns the package and whether it is new
/// (false for an identical re-push).
pub async fn push(
    app: &App,
    repo: &Repo,
    distro: &Distro,
    staged: &Staged,
) -> Result<(Package, bool), PushError> {
    push_recorded(app, repo, distro, staged, None).await
}

/// As `push`; a new package's `event` (with its `package_details`) commits in the package's
/// own transaction. The caller records every other outcome.
pub async fn push_recorded(
    app: &App,
    repo: &Repo,
    distro: &Distro,
    staged: &Staged,
    event: Option<&crate::audit::Event>,
) -> Result<(Package, bool), PushError> {
    let started = std::time::Instant::now();
    let parsed = parse(staged, distro).await?;
    if crate::keyring::is_keyring(repo, &parsed.name) {
        return Err(reserved(&parsed.name));
    }
    let keyring = crate::keyring::missing_in(app, repo, distro).await?;
    let parse_ms = started.elapsed().as_secs_f64() * 1000.0;
    let push = group::Push {
        repo: repo.clone(),
        distro: *distro,
        blobs: blobs_of(staged)?,
        digests: staged.digests.clone(),
        parsed,
        keyring,
        event: event.cloned(),
    };
    store(app, push, parse_ms).await
}

/// What the audit log says of a pushed package.
pub fn package_details(package: &Package, is_new: bool) -> serde_json::Value {
    serde_json::json!({
        "name": package.name, "version": package.version, "architecture": package.architecture,
        "sha256": package.sha256, "size": package.size, "new": is_new,
    })
}

fn reserved(name: &str) -> PushError {
    PushError::BadPackage(format!(
        "{name} is the repository's keyring package, which Packyard builds itself from the \
         repository's signing keys; it cannot be pushed, promoted or destroyed"
    ))
}

/// A package parsed, its blob stored, not yet in the database.
pub struct Prepared(Parsed);

/// Parses a staged package and stores its blob, for a caller that inserts it later in a
/// transaction of its own (`insert_prepared`).
pub async fn prepare(app: &App, distro: &Distro, staged: &Staged) -> Result<Prepared, PushError> {
    let parsed = parse(staged, distro).await?;
    put_blobs(app, &blobs_of(staged)?).await?;
    Ok(Prepared(parsed))
}

/// Inserts a prepared package in `tx` and queues its publishes; a live package of the same
/// name and version already there is kept instead.
pub async fn insert_prepared(
    app: &App,
    tx: &mut Tx,
    repo: &Repo,
    distro: &Distro,
    staged: &Staged,
    prepared: &Prepared,
) -> Result<Package, PushError> {
    // The collector deletes blobs under the write lock; check again now that we hold it.
    put_blobs_again(app, &blobs_of(staged)?).await?;
    let parsed = &prepared.0;
    let dependencies =
        serde_json::to_string(&parsed.dependencies).context("encoding dependencies")?;
    let new = new_package(repo, distro, &staged.digests, parsed, &dependencies);
    match db::packages::insert(tx, &new).await? {
        Inserted::New(package) => {
            enqueue_publishes(tx, repo, distro, &package.name, &package.architecture).await?;
            Ok(package)
        }
        Inserted::Conflict(existing)
            if existing.name == parsed.name && existing.version == parsed.version =>
        {
            Ok(existing)
        }
        Inserted::Conflict(existing) => Err(PushError::Conflict(format!(
            "has already been taken: {}/{} already has a file named {}",
            distro.os, distro.dist, existing.filename
        ))),
    }
}

async fn parse(staged: &Staged, distro: &Distro) -> Result<Parsed, PushError> {
    parse_as_of(staged, distro, db::now()).await
}

/// As `parse`, for a file that arrived at `file_time` (YUM lists that time).
async fn parse_as_of(
    staged: &Staged,
    distro: &Distro,
    file_time: i64,
) -> Result<Parsed, PushError> {
    let format = distro.format.for_upload(&staged.filename);
    check_kind(staged, distro, format)?;
    format
        .check_filename(&staged.filename)
        .map_err(|why| PushError::BadFilename(format!("file name {:?} {why}", staged.filename)))?;
    if !staged.source_files.is_empty() && !format.takes_source_files() {
        return Err(PushError::BadPackage(format!(
            "only a Debian source package (.dsc) comes with source files; {} is {}",
            staged.filename,
            format.describe()
        )));
    }
    format.parse(staged, distro, file_time).await
}

/// A stored blob copied to a temporary file, staged as `filename`; the file goes with the
/// returned guard.
async fn fetch(
    app: &App,
    sha256: &str,
    filename: &str,
) -> anyhow::Result<(Staged, tempfile::NamedTempFile)> {
    let file = tempfile::NamedTempFile::new_in(app.blobs.tmp_dir())?;
    let digests = app
        .blobs
        .download_to(&BlobKey::from_sha256(sha256)?, file.path())
        .await?
        .with_context(|| format!("the blob of {filename} is missing from storage"))?;
    Ok((
        Staged::new(file.path().to_owned(), filename.to_owned(), digests),
        file,
    ))
}

/// Reads a stored package's blob again and renders its index entries anew (after a parser
/// fix), replacing the stored ones. The blob must still be the package the row describes.
pub async fn rerender(app: &App, distro: &Distro, package: &Package) -> anyhow::Result<()> {
    let (mut staged, _file) = fetch(app, &package.sha256, &package.filename).await?;
    let digests = &staged.digests;
    anyhow::ensure!(
        digests.sha256 == package.sha256,
        "the blob of {} does not match its SHA-256 ({} stored, {} read)",
        package.filename,
        package.sha256,
        digests.sha256
    );
    // Source files come back from storage too; the temporary files live until the end.
    let mut temporaries = Vec::new();
    for stored in db::packages::files(&app.db, package.id).await? {
        let (file, temp) = fetch(app, &stored.sha256, &stored.filename).await?;
        staged.source_files.push(file);
        temporaries.push(temp);
    }
    let parsed = parse_as_of(&staged, distro, package.created_at)
        .await
        .map_err(|e| anyhow::anyhow!("{} no longer parses: {e}", package.filename))?;
    anyhow::ensure!(
        parsed.name == package.name
            && parsed.version == package.version
            && parsed.architecture == package.architecture,
        "{} now reads as {} {} ({}), not as its row's {} {} ({})",
        package.filename,
        parsed.name,
        parsed.version,
        parsed.architecture,
        package.name,
        package.version,
        package.architecture
    );
    // A file stored before the format named it (a .deb under its uploaded name) takes the
    // format's name now, which the new entries list.
    db::packages::replace_entries(&app.db, package.id, &parsed.filename, &parsed.entries).await
}

/// Imports many packages of one distribution in one transaction with one publish per target,
/// for bulk loads; packages already present are skipped. Returns how many were added.
pub async fn import(
    app: &App,
    repo: &Repo,
    distro: &Distro,
    files: &[Staged],
) -> Result<usize, PushError> {
    let mut parsed = Vec::with_capacity(files.len());
    for staged in files {
        let package = parse(staged, distro).await?;
        if crate::keyring::is_keyring(repo, &package.name) {
            return Err(reserved(&package.name));
        }
        parsed.push(package);
        put_blobs(app, &blobs_of(staged)?).await?;
    }
    let keyring = crate::keyring::missing_in(app, repo, distro).await?;
    let mut tx = app.db.begin_write().await?;
    if let Some(keyring) = &keyring {
        crate::keyring::insert(app, &mut tx, repo, distro, keyring).await?;
    }
    let mut changed = Changed::default();
    for (staged, parsed) in files.iter().zip(&parsed) {
        // The collector deletes blobs under the write lock; check again now that we hold it.
        put_blobs_again(app, &blobs_of(staged)?).await?;
        let dependencies =
            serde_json::to_string(&parsed.dependencies).context("encoding dependencies")?;
        let new = new_package(repo, distro, &staged.digests, parsed, &dependencies);
        if let Inserted::New(package) = db::packages::insert(&mut tx, &new).await? {
            changed.add(repo, distro, &package);
        }
    }
    changed.enqueue(&mut tx).await?;
    tx.commit().await?;
    if changed.added > 0 {
        app.queued();
    }
    Ok(changed.added)
}

/// What the new packages of one transaction change: a publish of each target they appear in
/// and the last push of each repository, each once however many packages.
#[derive(Default)]
pub struct Changed {
    /// Packages added.
    pub added: usize,
    /// Repository, distribution, name (for per-name indexes, otherwise empty), architecture.
    members: BTreeMap<(i64, i64, String, String), (Repo, Distro)>,
}

impl Changed {
    /// Notes `package`, new in `repo` for `distro`.
    pub fn add(&mut self, repo: &Repo, distro: &Distro, package: &Package) {
        self.added += 1;
        // Targets follow the architecture, and for per-name indexes the name too.
        let name = match distro.format.indexes_by_name() {
            true => package.name.clone(),
            false => String::new(),
        };
        let member = (repo.id, distro.id, name, package.architecture.clone());
        self.members
            .entry(member)
            .or_insert_with(|| (repo.clone(), *distro));
    }

    /// Queues the publishes and marks the repositories pushed to, in `tx`.
    pub async fn enqueue(&self, tx: &mut Tx) -> anyhow::Result<()> {
        let mut queued = Vec::new();
        for ((_, _, name, architecture), (repo, distro)) in &self.members {
            let format = distro.format;
            for target in format
                .targets_of(tx, repo.id, distro, name, architecture)
                .await?
            {
                if !queued.contains(&target) {
                    db::jobs::enqueue(tx, format.publish_job(), &target).await?;
                    queued.push(target);
                }
            }
        }
        let repositories: BTreeSet<i64> = self.members.keys().map(|member| member.0).collect();
        for repository_id in repositories {
            db::repos::touch_last_push(tx, repository_id).await?;
        }
        Ok(())
    }
}

fn new_package<'a>(
    repo: &Repo,
    distro: &Distro,
    digests: &'a FileDigests,
    parsed: &'a Parsed,
    dependencies: &'a str,
) -> NewPackage<'a> {
    let d = digests;
    NewPackage {
        repository_id: repo.id,
        distro_version_id: distro.id,
        format: parsed.format.name(),
        name: &parsed.name,
        version: &parsed.version,
        architecture: &parsed.architecture,
        filename: &parsed.filename,
        size: d.size as i64,
        md5: &d.md5,
        sha1: &d.sha1,
        sha256: &d.sha256,
        sha512: &d.sha512,
        dependencies,
        entries: &parsed.entries,
        files: &parsed.files,
    }
}

/// A .deb pushed to an rpm distribution (or the reverse) gets a message that says so.
fn check_kind(staged: &Staged, distro: &Distro, format: PackageFormat) -> Result<(), PushError> {
    // Only formats known by their first bytes turn the others away: a raw file may be
    // anything, a .deb included, and the other formats' parsers say what they expected.
    if !format.has_magic() {
        return Ok(());
    }
    let mut magic = [0u8; 8];
    let read = std::fs::File::open(&staged.path)
        .and_then(|mut f| f.read(&mut magic))
        .context("reading the upload")?;
    match PackageFormat::sniff(&magic[..read]) {
        Some(kind) if kind != format => Err(PushError::BadPackage(format!(
            "{} is {}, but {}/{} takes {} packages",
            staged.filename,
            kind.describe(),
            distro.os,
            distro.dist,
            format.extension(),
        ))),
        _ => Ok(()),
    }
}

/// Stores the blobs of a parsed push, then commits it with whatever pushes wait beside it.
async fn store(app: &App, push: group::Push, parse_ms: f64) -> Result<(Package, bool), PushError> {
    let started = std::time::Instant::now();
    put_blobs(app, &push.blobs).await?;
    let blobs_ms = started.elapsed().as_secs_f64() * 1000.0;
    let (repository, distro) = (
        format!("{}/{}", push.repo.owner, push.repo.name),
        format!("{}/{}", push.distro.os, push.distro.dist),
    );
    let committed = app.push_groups.commit(app, push).await?;
    let package = committed.package;
    if committed.new {
        // From joining the queue to the commit that held it.
        let commit_ms = started.elapsed().as_secs_f64() * 1000.0 - blobs_ms;
        tracing::info!(%repository, %distro, package = %package.name, version = %package.version,
            arch = %package.architecture, size_bytes = package.size, parse_ms, blobs_ms, commit_ms,
            group = committed.group, "pushed package");
    }
    Ok((package, committed.new))
}

/// Queues a publish of every target a package `name` of `architecture` appears in.
pub async fn enqueue_publishes(
    tx: &mut Tx,
    repo: &Repo,
    distro: &Distro,
    name: &str,
    architecture: &str,
) -> anyhow::Result<()> {
    let format = distro.format;
    for target in format
        .targets_of(tx, repo.id, distro, name, architecture)
        .await?
    {
        db::jobs::enqueue(tx, format.publish_job(), &target).await?;
    }
    Ok(())
}

/// A copy of `package` for the repository `repository_id`, sharing its entries and blobs.
pub fn copy_of<'a>(
    repository_id: i64,
    distro: &Distro,
    package: &'a Package,
    entries: &'a [(&'a str, String)],
    files: &'a [PackageFile],
) -> NewPackage<'a> {
    NewPackage {
        repository_id,
        distro_version_id: distro.id,
        format: &package.format,
        name: &package.name,
        version: &package.version,
        architecture: &package.architecture,
        filename: &package.filename,
        size: package.size,
        md5: &package.md5,
        sha1: &package.sha1,
        sha256: &package.sha256,
        sha512: &package.sha512,
        dependencies: &package.dependencies,
        entries,
        files,
    }
}

/// Copies a package into `destination` (same distribution), and unless `keep` removes it from
/// `source`, as `package_cloud promote` does. Entries and blob are shared: nothing is re-read.
pub async fn promote(
    app: &App,
    source: &Repo,
    destination: &Repo,
    distro: &Distro,
    package: &Package,
    keep: bool,
) -> Result<Package, PushError> {
    if crate::keyring::is_keyring(source, &package.name) {
        return Err(reserved(&package.name));
    }
    if !PackageFormat::name_in_package_lifecycle(&package.format) {
        return Err(PushError::BadPackage(format!(
            "{} is a container image's manifest; images are promoted by moving a tag \
             (packyard image tag OWNER/REPO/IMAGE@DIGEST TAG)",
            package.filename
        )));
    }
    let keyring = crate::keyring::missing_in(app, destination, distro).await?;
    let entries = db::packages::entries(&app.db, package.id).await?;
    let files = db::packages::files(&app.db, package.id).await?;
    let entries: Vec<(&str, String)> = entries
        .iter()
        .map(|(part, body)| (part.as_str(), body.clone()))
        .collect();
    let new = copy_of(destination.id, distro, package, &entries, &files);
    let mut tx = app.db.begin_write().await?;
    let promoted = match db::packages::insert(&mut tx, &new).await? {
        Inserted::New(promoted) => {
            enqueue_publishes(
                &mut tx,
                destination,
                distro,
                &promoted.name,
                &promoted.architecture,
            )
            .await?;
            if let Some(keyring) = &keyring {
                crate::keyring::insert(app, &mut tx, destination, distro, keyring).await?;
            }
            db::repos::touch_last_push(&mut tx, destination.id).await?;
            promoted
        }
        Inserted::Conflict(existing) if existing.sha256 == package.sha256 => existing,
        Inserted::Conflict(existing) => {
            return Err(PushError::Conflict(format!(
                "has already been taken: {}/{} already has {} with different contents",
                destination.owner, destination.name, existing.filename
            )));
        }
    };
    let mut data = crate::webhooks::package_data(
        &format!("{}/{}", destination.owner, destination.name),
        &promoted,
    );
    data["from"] = format!("{}/{}", source.owner, source.name).into();
    data["copy"] = keep.into();
    crate::webhooks::emit_tx(&mut tx, destination.id, "package.promoted", data).await?;
    if !keep {
        db::packages::mark_deleted(&mut tx, package.id).await?;
        enqueue_publishes(
            &mut tx,
            source,
            distro,
            &package.name,
            &package.architecture,
        )
        .await?;
    }
    tx.commit().await?;
    app.queued();
    tracing::info!(package = %package.filename, from = %format!("{}/{}", source.owner, source.name),
        to = %format!("{}/{}", destination.owner, destination.name), copy = keep, "promoted package");
    Ok(promoted)
}
