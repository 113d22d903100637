//! Debian binary packages: `.deb` files in APT trees under `/OWNER/REPO/OS/`.
//!
//! `parse` reads the control file of an upload (bounded decompression) and renders its
//! `Packages` stanza once; `publish` builds a target's signed `Release` from stored stanzas;
//! `serve` answers apt's requests. A distribution version is one target.

pub mod publish;
pub mod serve;

use anyhow::{Context, Result};
use packyard_formats::deb::{self, AptPath, DataFile};

use super::SignedListing;
use crate::app::App;
use crate::db::generations::{self, Target};
use crate::db::packages::Package;
use crate::distros::Distro;
use crate::ingest::{Parsed, PushError, Staged};

pub fn is_deb(magic: &[u8]) -> bool {
    magic.starts_with(b"!<arch>\n")
}

/// A distribution version's one APT target.
pub fn target(repository_id: i64, distro: &Distro) -> Target {
    Target::apt(repository_id, distro.id)
}

/// `pool/DIST/main/L/NAME/FILE`, relative to `/OWNER/REPO/OS/`.
pub fn file_path(distro: &Distro, package: &Package) -> String {
    AptPath::pool_filename(distro.dist, &package.name, &package.filename)
}

/// `NAME_VERSION_ARCH.deb` as Debian names it, from a file name that has those fields with
/// the epoch in (as `1:2.0` or as apt escapes it, `1%3a2.0`).
pub fn stored_filename(uploaded: &str) -> Option<String> {
    let stem = uploaded.strip_suffix(".deb")?;
    let mut fields = stem.split('_');
    let (name, version, arch) = (fields.next()?, fields.next()?, fields.next()?);
    if fields.next().is_some() {
        return None;
    }
    let version = version.replace("%3a", ":").replace("%3A", ":");
    let named = deb::pool_name(name, &version, arch);
    (named != uploaded).then_some(named)
}

/// The relation fields API v1 lists under a package's dependencies.
const RELATIONS: [&str; 9] = [
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

pub async fn parse(staged: &Staged, distro: &Distro) -> Result<Parsed, PushError> {
    let path = staged.path.clone();
    let size = staged.digests.size;
    let control = tokio::task::spawn_blocking(move || {
        let file = std::io::BufReader::new(std::fs::File::open(&path)?);
        Ok::<_, anyhow::Error>(deb::read_control(file, size, &deb::Limits::default()))
    })
    .await
    .context("reading the package")??
    .map_err(|e| PushError::BadPackage(e.to_string()))?;

    let field = |name| control.get(name).unwrap_or_default().to_owned();
    let (name, version, architecture) = (field("Package"), field("Version"), field("Architecture"));
    // Debian's own name for the file, whatever the upload was called: what dak, reprepro
    // and aptly name pool files, and a name every client fetches as listed.
    let filename = deb::pool_name(&name, &version, &architecture);
    let pool_path = AptPath::pool_filename(distro.dist, &name, &filename);
    let stanza = deb::render_stanza(&control, &pool_path, &staged.digests);
    let dependencies = RELATIONS
        .iter()
        .filter_map(|field| {
            let value = control.get(field)?;
            let relations = value
                .split(',')
                .map(|r| r.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect();
            Some((field.to_lowercase(), relations))
        })
        .collect();
    Ok(Parsed {
        format: super::PackageFormat::Deb,
        version,
        architecture,
        name,
        filename,
        dependencies,
        entries: vec![("packages", stanza)],
        files: Vec::new(),
    })
}

/// The keyring .deb: the binary keyring apt's `signed-by` reads, at `keyring::deb_keyring_path`.
pub fn keyring_package(
    owner: &str,
    repo: &str,
    version: i64,
    public_keys: &[String],
) -> Result<(Vec<u8>, String)> {
    let name = crate::keyring::package_name(owner, repo);
    let keyring = crate::sign::binary_keyring(public_keys)?;
    let path = crate::keyring::deb_keyring_path(owner, repo);
    let control = format!(
        "Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: {owner}/{repo} <{owner}-{repo}@packyard.invalid>\n\
         Installed-Size: {size}\nSection: misc\nPriority: optional\nMulti-Arch: foreign\n\
         Description: signing keys of the {owner}/{repo} repository\n \
         The OpenPGP keys that sign the repository's indexes, in {path},\n \
         for the signed-by option of its APT source. Upgrading this package\n \
         brings every new or extended key before the repository signs with it.\n",
        size = keyring.len().div_ceil(1024),
    );
    let file = DataFile {
        path: path.trim_start_matches('/'),
        contents: &keyring,
        mode: 0o644,
    };
    let bytes = deb::build_deb(&control, &[file], deb::Compression::Gzip);
    Ok((bytes, format!("{name}_{version}_all.deb")))
}

/// `Release`, `InRelease` and `Release.gpg` of the current generation: what they list and
/// whether both signatures verify.
pub async fn signed_listing(
    app: &App,
    target: &Target,
    public_keys: &[String],
) -> Result<Option<SignedListing>> {
    let document = |name: &'static str| generations::current_document(&app.db, target, name);
    let (Some((release, _)), Some((in_release, _)), Some((release_gpg, _))) = (
        document("Release").await?,
        document("InRelease").await?,
        document("Release.gpg").await?,
    ) else {
        return Ok(None);
    };
    let mut problems = Vec::new();
    if crate::sign::cleartext_signers(&in_release, public_keys)?.is_empty() {
        problems.push("signature: InRelease verifies with none of the repository's keys".into());
    }
    if crate::sign::detached_signers(&release_gpg, release.as_bytes(), public_keys)?.is_empty() {
        problems.push("signature: Release.gpg verifies with none of the repository's keys".into());
    }
    Ok(Some(SignedListing {
        files: deb::release_sha256(&release),
        problems,
    }))
}
