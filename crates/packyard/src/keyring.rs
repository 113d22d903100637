//! The keyring package of a repository: `OWNER-REPO-archive-keyring`, built by Packyard in
//! every deb and rpm target the repository has, holding every key that is not retired.
//!
//! Hosts install it once (the install scripts do) and from then on receive every key change
//! from `apt-get upgrade` or `dnf upgrade`, the way Debian ships `debian-archive-keyring`.
//! Its version is the repository's `keyring_version`, raised by every change of the key set.
//! The .deb installs `/usr/share/keyrings/OWNER-REPO-archive-keyring.gpg`, the binary keyring
//! apt's `signed-by` reads; the .rpm installs `/etc/pki/rpm-gpg/RPM-GPG-KEY-OWNER-REPO`,
//! armored, as `gpgkey=file://` and `rpmkeys --import` read it.
//! Nobody pushes, promotes or destroys it; it is otherwise a package like any other.

use std::io::Write;

use anyhow::{Context, Result};
use packyard_formats::digest::FileDigests;

use crate::app::App;
use crate::db::{self, Tx, repos::Repo};
use crate::distros::{self, Distro, PackageFormat};
use crate::ingest::{self, PushError, Staged};

/// `OWNER-REPO`, lower-cased with `_` turned into `-`: valid in deb and rpm package names.
fn slug(owner: &str, repo: &str) -> String {
    format!("{owner}-{repo}").to_lowercase().replace('_', "-")
}

/// The keyring package's name: `OWNER-REPO-archive-keyring`.
pub fn package_name(owner: &str, repo: &str) -> String {
    format!("{}-archive-keyring", slug(owner, repo))
}

/// Where the .deb installs the binary keyring that `signed-by` names.
pub fn deb_keyring_path(owner: &str, repo: &str) -> String {
    format!("/usr/share/keyrings/{}.gpg", package_name(owner, repo))
}

/// Where the .rpm installs the armored keys that `gpgkey=file://` names.
pub fn rpm_key_path(owner: &str, repo: &str) -> String {
    format!("/etc/pki/rpm-gpg/RPM-GPG-KEY-{}", slug(owner, repo))
}

/// Whether `name` is the keyring package of `repo`, which nobody else may push.
pub fn is_keyring(repo: &Repo, name: &str) -> bool {
    name == package_name(&repo.owner, &repo.name)
}

/// A keyring package written to a staged file, ready to go through ingest.
pub struct Built {
    staged: Staged,
    _file: tempfile::NamedTempFile,
}

/// Builds the keyring package of `format` at `version` holding `public_keys` (armored),
/// for formats whose hosts install one.
pub fn build(
    app: &App,
    repo: &Repo,
    format: PackageFormat,
    version: i64,
    public_keys: &[String],
) -> Result<Option<Built>> {
    let Some((bytes, filename)) =
        format.keyring_package(&repo.owner, &repo.name, version, public_keys)?
    else {
        return Ok(None);
    };
    let mut file = tempfile::NamedTempFile::new_in(app.blobs.tmp_dir())
        .context("staging the keyring package")?;
    file.write_all(&bytes)?;
    file.flush()?;
    Ok(Some(Built {
        staged: Staged::new(file.path().to_owned(), filename, FileDigests::of(&bytes)),
        _file: file,
    }))
}

/// The keyring package of a target, parsed like a push and its blob stored.
pub struct Prepared {
    built: Built,
    package: ingest::Prepared,
}

/// Builds the repository's current keyring package for `distro` when the target lacks it, so
/// the push that creates a target brings the keyring with it.
pub async fn missing_in(
    app: &App,
    repo: &Repo,
    distro: &Distro,
) -> Result<Option<Prepared>, PushError> {
    let name = package_name(&repo.owner, &repo.name);
    // Read now rather than from `repo`, which may come from the read cache.
    let (version, present) = db::repos::keyring_state(&app.db, repo.id, distro.id, &name).await?;
    if present {
        return Ok(None);
    }
    let keys = published_keys(app, repo.id).await?;
    prepare(app, repo, distro, version, &keys).await
}

/// Builds, parses and stores the keyring package of `version` for `distro`, if its format
/// has one.
pub async fn prepare(
    app: &App,
    repo: &Repo,
    distro: &Distro,
    version: i64,
    public_keys: &[String],
) -> Result<Option<Prepared>, PushError> {
    let Some(built) = build(app, repo, distro.format, version, public_keys)? else {
        return Ok(None);
    };
    let package = ingest::prepare(app, distro, &built.staged).await?;
    Ok(Some(Prepared { built, package }))
}

/// Inserts a prepared keyring package, destroys the older versions in its target, and queues
/// the target's publish.
pub async fn insert(
    app: &App,
    tx: &mut Tx,
    repo: &Repo,
    distro: &Distro,
    prepared: &Prepared,
) -> Result<(), PushError> {
    let package = ingest::insert_prepared(
        app,
        tx,
        repo,
        distro,
        &prepared.built.staged,
        &prepared.package,
    )
    .await?;
    db::packages::mark_deleted_named_except(tx, repo.id, distro.id, &package.name, package.id)
        .await?;
    Ok(())
}

/// The keyring package of every target of the repository at `version`, holding `public_keys`.
pub async fn prepare_all(
    app: &App,
    repo: &Repo,
    version: i64,
    public_keys: &[String],
) -> Result<Vec<(&'static Distro, Prepared)>, PushError> {
    let mut prepared = Vec::new();
    for distro_id in db::packages::distro_versions(&app.db, repo.id).await? {
        let Some(distro) = distros::by_id(distro_id) else {
            continue;
        };
        if let Some(keyring) = prepare(app, repo, distro, version, public_keys).await? {
            prepared.push((distro, keyring));
        }
    }
    Ok(prepared)
}

/// The armored public keys a keyring package holds now.
pub async fn published_keys(app: &App, repository_id: i64) -> Result<Vec<String>> {
    Ok(db::signing_keys::published(&app.db, repository_id)
        .await?
        .into_iter()
        .map(|(_, armored)| armored)
        .collect())
}

/// The keyring version of a stored package version: `7` for the .deb, `7-1` for the .rpm.
pub fn version_number(version: &str) -> Option<i64> {
    version.split('-').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_package_names() {
        assert_eq!(
            package_name("Acme_Corp", "Stable"),
            "acme-corp-stable-archive-keyring"
        );
        assert_eq!(
            deb_keyring_path("acme", "stable"),
            "/usr/share/keyrings/acme-stable-archive-keyring.gpg"
        );
        assert_eq!(
            rpm_key_path("acme", "my_repo"),
            "/etc/pki/rpm-gpg/RPM-GPG-KEY-acme-my-repo"
        );
        assert_eq!(version_number("12"), Some(12));
        assert_eq!(version_number("12-1"), Some(12));
        assert_eq!(version_number("x"), None);
    }
}
