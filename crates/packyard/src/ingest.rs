//! Pushing a package: a staged upload becomes a package row, its blob, and an index job.
//!
//! The upload has been written to a temporary file and hashed in one pass already (see
//! `http::api::packages::push`). Here the control data is read with bounded decompression,
//! the stanza is rendered once, the blob is stored under its SHA-256, and the row and the job
//! are committed in one transaction, so a failure at any step leaves nothing visible.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use packyard_formats::deb::{self, AptPath};
use packyard_formats::digest::FileDigests;
use thiserror::Error;

use crate::app::App;
use crate::db::generations::Target;
use crate::db::{
    self,
    packages::{Inserted, NewPackage, Package},
    repos::Repo,
};
use crate::distros::{Distro, PackageFormat};
use crate::storage::BlobKey;

/// An uploaded file, staged on local disk and hashed.
pub struct Staged {
    pub path: PathBuf,
    pub filename: String,
    pub digests: FileDigests,
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

/// Checks that `filename` can name a file in the pool: one path segment, no traversal.
pub fn check_filename(filename: &str, format: PackageFormat) -> Result<(), PushError> {
    let bad = |why: &str| {
        Err(PushError::BadFilename(format!(
            "file name {filename:?} {why}"
        )))
    };
    if filename.is_empty() || filename.len() > 200 {
        return bad("must be 1 to 200 characters");
    }
    if filename.contains('/') || filename.contains('\\') || filename.contains("..") {
        return bad("must not contain '/', '\\' or '..'");
    }
    if filename.starts_with('.')
        || filename
            .chars()
            .any(|c| c.is_control() || c.is_whitespace())
    {
        return bad("must not start with '.' or contain spaces or control characters");
    }
    let suffix = match format {
        PackageFormat::Deb => ".deb",
    };
    if !filename.ends_with(suffix) {
        return bad(&format!("must end in {suffix}"));
    }
    Ok(())
}

/// Stores a staged `.deb` in `repo` for `distro`. Returns the package and whether it is new
/// (false for an identical re-push).
pub async fn push_deb(
    app: &App,
    repo: &Repo,
    distro: &Distro,
    staged: &Staged,
) -> Result<(Package, bool), PushError> {
    check_filename(&staged.filename, PackageFormat::Deb)?;
    let path = staged.path.clone();
    let size = staged.digests.size;
    let control = tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&path)?;
        Ok::<_, anyhow::Error>(deb::read_control(
            std::io::BufReader::new(file),
            size,
            &deb::Limits::default(),
        ))
    })
    .await
    .context("reading the package")??
    .map_err(|e| PushError::BadPackage(e.to_string()))?;

    let name = control.get("Package").unwrap_or_default();
    let version = control.get("Version").unwrap_or_default();
    let architecture = control.get("Architecture").unwrap_or_default();
    let pool_path = AptPath::pool_filename(distro.dist, name, &staged.filename);
    let stanza = deb::render_stanza(&control, &pool_path, &staged.digests);
    let dependencies =
        serde_json::to_string(&deb_dependencies(&control)).context("encoding dependencies")?;
    let entries = [("packages", stanza)];

    let key = BlobKey::from_sha256(&staged.digests.sha256)?;
    app.blobs.put_file(&key, &staged.path).await?;
    let mut tx = app.db.begin_write().await?;
    // The collector deletes blobs under the write lock; check again now that we hold it.
    app.blobs.put_file(&key, &staged.path).await?;
    let d = &staged.digests;
    let new = NewPackage {
        repository_id: repo.id,
        distro_version_id: distro.id,
        format: "deb",
        name,
        version,
        architecture,
        filename: &staged.filename,
        size: d.size as i64,
        md5: &d.md5,
        sha1: &d.sha1,
        sha256: &d.sha256,
        sha512: &d.sha512,
        dependencies: &dependencies,
        entries: &entries,
    };
    match db::packages::insert(&mut tx, &new).await? {
        Inserted::New(package) => {
            db::jobs::enqueue(
                &mut tx,
                db::jobs::APT_PUBLISH,
                &Target::apt(repo.id, distro.id),
            )
            .await?;
            db::repos::touch_last_push(&mut tx, repo.id).await?;
            tx.commit().await.context("committing the package")?;
            app.wake.notify_one();
            tracing::info!(repository = %format!("{}/{}", repo.owner, repo.name), distro = %format!("{}/{}", distro.os, distro.dist),
                package = %package.name, version = %package.version, size_bytes = package.size, "pushed package");
            Ok((package, true))
        }
        Inserted::Conflict(existing) if existing.sha256 == d.sha256 => Ok((existing, false)),
        Inserted::Conflict(existing) => {
            let target = format!("{}/{}", distro.os, distro.dist);
            let message = if existing.name == name
                && existing.version == version
                && existing.architecture == architecture
            {
                format!(
                    "has already been taken: {name} {version} ({architecture}) is already in {target} \
                     with different contents ({}); destroy it first or push a new version",
                    existing.filename
                )
            } else {
                format!(
                    "has already been taken: {target} already has a file named {}",
                    existing.filename
                )
            };
            Err(PushError::Conflict(message))
        }
    }
}

/// Relation fields of a control file as the API lists them: lower-case field name to one
/// entry per comma-separated relation.
fn deb_dependencies(control: &deb::Control) -> BTreeMap<String, Vec<String>> {
    const FIELDS: [&str; 9] = [
        "Pre-Depends",
        "Depends",
        "Recommends",
        "Suggests",
        "Conflicts",
        "Breaks",
        "Replaces",
        "Provides",
        "Enhances",
    ];
    FIELDS
        .iter()
        .filter_map(|field| {
            let value = control.get(field)?;
            let relations = value
                .split(',')
                .map(|r| r.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect();
            Some((field.to_lowercase(), relations))
        })
        .collect()
}
