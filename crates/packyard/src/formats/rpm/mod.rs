//! RPM packages: `.rpm` files in YUM/DNF trees under `/OWNER/REPO/OS/VERSION/ARCH/`.
//!
//! `parse` reads the header of an upload and renders its `primary`, `filelists` and `other`
//! fragments once; `publish` builds a target's signed `repomd.xml`; `serve` answers dnf's
//! requests. A target is a distribution version and an architecture (`SRPMS` for sources);
//! `noarch` packages are listed in every architecture of their distribution.

pub mod publish;
pub mod serve;

use anyhow::{Context, Result};
use packyard_formats::rpm::{self, YumPath};

use super::SignedListing;
use crate::app::App;
use crate::db::generations::{self, Target};
use crate::db::packages::Package;
use crate::db::{self, Tx};
use crate::distros::Distro;
use crate::ingest::{Parsed, PushError, Staged};

/// Architectures every rpm distribution publishes, so `dnf makecache` succeeds on these hosts
/// even before a package for their architecture is pushed.
pub const DEFAULT_ARCHES: &[&str] = &["x86_64", "aarch64"];

pub fn is_rpm(magic: &[u8]) -> bool {
    magic.starts_with(&[0xed, 0xab, 0xee, 0xdb])
}

/// Whether a package of `package_arch` is listed in the repository of `target_arch`.
pub fn listed_in(target_arch: &str, package_arch: &str) -> bool {
    match target_arch {
        "SRPMS" => package_arch == "src",
        arch => package_arch == arch || package_arch == "noarch",
    }
}

/// The YUM targets a package of `architecture` is listed in: its own architecture, `SRPMS`
/// for source packages, and every architecture of the distribution for `noarch`.
pub async fn targets_of(
    tx: &mut Tx,
    repository_id: i64,
    distro: &Distro,
    architecture: &str,
) -> Result<Vec<Target>> {
    let arches = match architecture {
        "src" => vec!["SRPMS".to_owned()],
        "noarch" => db::packages::rpm_arches(tx, repository_id, distro.id).await?,
        arch => vec![arch.to_owned()],
    };
    Ok(arches
        .into_iter()
        .map(|arch| Target {
            repository_id,
            distro_version_id: distro.id,
            arch,
        })
        .collect())
}

/// Every architecture's target, and `SRPMS` when the distribution has source packages.
pub async fn all_targets(tx: &mut Tx, repository_id: i64, distro: &Distro) -> Result<Vec<Target>> {
    let mut targets = targets_of(tx, repository_id, distro, "noarch").await?;
    if db::packages::has_architecture(tx, repository_id, distro.id, "src").await? {
        targets.extend(targets_of(tx, repository_id, distro, "src").await?);
    }
    Ok(targets)
}

/// `VERSION/ARCH/Packages/L/FILE`, relative to `/OWNER/REPO/OS/`.
pub fn file_path(distro: &Distro, package: &Package) -> String {
    let dir = if package.architecture == "src" {
        "SRPMS"
    } else {
        &package.architecture
    };
    format!(
        "{}/{dir}/{}",
        distro.dist,
        YumPath::package_href(&package.filename)
    )
}

pub async fn parse(staged: &Staged, file_time: i64) -> Result<Parsed, PushError> {
    let path = staged.path.clone();
    let size = staged.digests.size;
    let package = tokio::task::spawn_blocking(move || {
        let file = std::io::BufReader::new(std::fs::File::open(&path)?);
        Ok::<_, anyhow::Error>(rpm::read_package(file, size, &rpm::Limits::default()))
    })
    .await
    .context("reading the package")??
    .map_err(|e| PushError::BadPackage(e.to_string()))?;

    let sha256 = &staged.digests.sha256;
    let href = YumPath::package_href(&staged.filename);
    let entries = vec![
        (
            "primary",
            rpm::primary_entry(&package, sha256, &href, size, file_time),
        ),
        ("filelists", rpm::filelists_entry(&package, sha256)),
        ("other", rpm::other_entry(&package, sha256)),
    ];
    let relations = [
        ("provides", &package.provides),
        ("requires", &package.requires),
        ("conflicts", &package.conflicts),
        ("obsoletes", &package.obsoletes),
        ("recommends", &package.recommends),
        ("suggests", &package.suggests),
        ("supplements", &package.supplements),
        ("enhances", &package.enhances),
    ];
    let dependencies = relations
        .into_iter()
        .filter(|(_, deps)| !deps.is_empty())
        .map(|(kind, deps)| (kind.to_owned(), deps.iter().map(relation).collect()))
        .collect();
    let version = match package.epoch {
        0 => format!("{}-{}", package.version, package.release),
        epoch => format!("{epoch}:{}-{}", package.version, package.release),
    };
    Ok(Parsed {
        format: super::PackageFormat::Rpm,
        name: package.name,
        version,
        architecture: package.arch,
        filename: staged.filename.clone(),
        dependencies,
        entries,
        files: Vec::new(),
    })
}

/// `name OP [epoch:]version[-release]`, as rpm prints a dependency.
fn relation(dep: &rpm::Dependency) -> String {
    let op = match dep.flags {
        Some("EQ") => "=",
        Some("LT") => "<",
        Some("LE") => "<=",
        Some("GT") => ">",
        Some("GE") => ">=",
        _ => return dep.name.clone(),
    };
    let mut evr = String::new();
    if let Some(epoch) = dep.epoch.as_deref().filter(|e| *e != "0") {
        evr.push_str(&format!("{epoch}:"));
    }
    evr.push_str(dep.version.as_deref().unwrap_or_default());
    if let Some(release) = &dep.release {
        evr.push_str(&format!("-{release}"));
    }
    format!("{} {op} {evr}", dep.name)
}

/// The keyring .rpm: the armored keys at `keyring::rpm_key_path`, which `gpgkey=file://` and
/// `rpmkeys --import` read.
pub fn keyring_package(
    owner: &str,
    repo: &str,
    version: i64,
    public_keys: &[String],
) -> Result<(Vec<u8>, String)> {
    let name = crate::keyring::package_name(owner, repo);
    let armored = crate::sign::keyring(public_keys)?;
    let path = crate::keyring::rpm_key_path(owner, repo);
    let summary = format!("Signing keys of the {owner}/{repo} repository");
    let package = ::rpm::PackageBuilder::new(
        &name,
        &version.to_string(),
        "Public Domain",
        "noarch",
        &summary,
    )
    .release("1")
    .description(format!(
        "The OpenPGP keys that sign the repository's metadata, in {path}.\n\
             Upgrading this package brings every new or extended key."
    ))
    .with_file_contents(
        armored,
        ::rpm::FileOptions::new(path.as_str()).mode(0o100644),
    )?
    .build()?;
    let mut bytes = Vec::new();
    package.write(&mut bytes)?;
    Ok((bytes, format!("{name}-{version}-1.noarch.rpm")))
}

/// `repomd.xml` and `repomd.xml.asc` of the current generation: what it lists and whether
/// the signature verifies.
pub async fn signed_listing(
    app: &App,
    target: &Target,
    public_keys: &[String],
) -> Result<Option<SignedListing>> {
    let document = |name: &'static str| generations::current_document(&app.db, target, name);
    let (Some((repomd, _)), Some((asc, _))) = (
        document("repomd.xml").await?,
        document("repomd.xml.asc").await?,
    ) else {
        return Ok(None);
    };
    let mut problems = Vec::new();
    if crate::sign::detached_signers(&asc, repomd.as_bytes(), public_keys)?.is_empty() {
        problems
            .push("signature: repomd.xml.asc verifies with none of the repository's keys".into());
    }
    Ok(Some(SignedListing {
        files: rpm::repomd_sha256(&repomd),
        problems,
    }))
}
