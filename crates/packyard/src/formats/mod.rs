//! The package formats, each in a folder of its own: its parsing glue (upload to package row
//! and index entries), its publisher (stored entries to a signed index generation) and its
//! routes (the index and package files its clients fetch). Their pure parsers and renderers
//! live in `packyard-formats`.
//!
//! This file is where a format is registered: a variant of `PackageFormat` and one arm per
//! method below, each handing over to the format's folder. Everything else (ingest, the job
//! runner, serving, the API, reindex and fsck) goes through these methods.
//! ARCHITECTURE.md walks through adding one.

pub mod anyfile;
pub mod deb;
pub mod dsc;
pub mod npm;
pub mod oci;
pub mod python;
pub mod rpm;

use anyhow::Result;

use crate::app::App;
use crate::db::Tx;
use crate::db::generations::{self, Build, NewGeneration, Target};
use crate::db::packages::Package;
use crate::distros::Distro;
use crate::ingest::{Parsed, PushError, Staged};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PackageFormat {
    Deb,
    Rpm,
    AnyFile,
    /// Debian source packages, in deb distributions and their APT targets.
    Dsc,
    /// Wheels and sdists, served by the simple repository API.
    Python,
    /// npm packages, served by an npm registry.
    Node,
    /// Container images and OCI artifacts: one package row per manifest, served by the
    /// registry at `/v2/`.
    Oci,
}

/// What a format's current generation lists, as read back by `fsck`.
pub struct SignedListing {
    /// The files the signed document lists: SHA-256, size and path in the generation.
    pub files: Vec<(String, u64, String)>,
    /// Signatures that verify with none of the repository's keys.
    pub problems: Vec<String>,
}

impl PackageFormat {
    pub const ALL: &[PackageFormat] = &[
        PackageFormat::Deb,
        PackageFormat::Rpm,
        PackageFormat::AnyFile,
        PackageFormat::Dsc,
        PackageFormat::Python,
        PackageFormat::Node,
        PackageFormat::Oci,
    ];

    /// The package type as API v1 names it (`package/deb/...`, `distributions.json`), also
    /// stored in each package row.
    pub fn name(self) -> &'static str {
        match self {
            PackageFormat::Deb => "deb",
            PackageFormat::Rpm => "rpm",
            PackageFormat::AnyFile => "anyfile",
            PackageFormat::Dsc => "dsc",
            PackageFormat::Python => "python",
            PackageFormat::Node => "node",
            PackageFormat::Oci => "oci",
        }
    }

    /// The key of this format's list in `distributions.json` (`py` for Python, which
    /// package_cloud looks up there).
    pub fn distributions_key(self) -> &'static str {
        match self {
            PackageFormat::Python => "py",
            format => format.name(),
        }
    }

    pub fn from_name(name: &str) -> Option<PackageFormat> {
        Self::ALL.iter().copied().find(|f| f.name() == name)
    }

    /// The `filter` of API v1's search that selects this format (`debs`, `rpms`).
    pub fn search_filter(self) -> &'static str {
        match self {
            PackageFormat::Deb => "debs",
            PackageFormat::Rpm => "rpms",
            PackageFormat::AnyFile => "anyfile",
            PackageFormat::Dsc => "dscs",
            PackageFormat::Python => "python",
            PackageFormat::Node => "node",
            PackageFormat::Oci => "oci",
        }
    }

    /// The format whose distributions this one's packages go to (`distributions.json` lists
    /// them under both names), whose targets list them and whose publisher builds those.
    pub fn distro_format(self) -> PackageFormat {
        match self {
            PackageFormat::Dsc => PackageFormat::Deb,
            format => format,
        }
    }

    /// The format of a file uploaded as `filename` to a distribution of this format: a `.dsc`
    /// to a deb distribution is a source package.
    pub fn for_upload(self, filename: &str) -> PackageFormat {
        match self {
            PackageFormat::Deb if filename.ends_with(".dsc") => PackageFormat::Dsc,
            format => format,
        }
    }

    /// How error messages name a file of this format.
    /// The format's short name on web pages.
    pub fn label(self) -> &'static str {
        match self {
            PackageFormat::Deb => "deb",
            PackageFormat::Rpm => "rpm",
            PackageFormat::AnyFile => "raw",
            PackageFormat::Dsc => "Debian source",
            PackageFormat::Python => "Python",
            PackageFormat::Node => "npm",
            PackageFormat::Oci => "image",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            PackageFormat::Deb => "a Debian (.deb) package",
            PackageFormat::Rpm => "an RPM (.rpm) package",
            PackageFormat::AnyFile => "a raw file",
            PackageFormat::Dsc => "a Debian source package (.dsc)",
            PackageFormat::Python => "a Python distribution (wheel or sdist)",
            PackageFormat::Node => "an npm package (.tgz)",
            PackageFormat::Oci => "a container image (pushed to /v2/)",
        }
    }

    /// The suffix every uploaded file name of this format ends in.
    pub fn extension(self) -> &'static str {
        match self {
            PackageFormat::Deb => ".deb",
            PackageFormat::Rpm => ".rpm",
            PackageFormat::AnyFile => "",
            PackageFormat::Dsc => ".dsc",
            PackageFormat::Python => "",
            PackageFormat::Node => ".tgz",
            PackageFormat::Oci => "",
        }
    }

    /// Why `filename` cannot name a stored file of this format, if it cannot.
    pub fn check_filename(self, filename: &str) -> Result<(), String> {
        match self {
            PackageFormat::Deb | PackageFormat::Rpm | PackageFormat::Dsc | PackageFormat::Node => {
                crate::ingest::check_package_filename(filename, self.extension())
            }
            PackageFormat::AnyFile => anyfile::check_filename(filename),
            PackageFormat::Python => packyard_formats::pypi::parse_file_name(filename)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            PackageFormat::Oci => Err(oci::NOT_THROUGH_API.into()),
        }
    }

    /// Whether files of this format are known by their first bytes (`sniff`).
    pub fn has_magic(self) -> bool {
        matches!(self, PackageFormat::Deb | PackageFormat::Rpm)
    }

    /// The format whose files start with `magic`, if any does.
    pub fn sniff(magic: &[u8]) -> Option<PackageFormat> {
        if deb::is_deb(magic) {
            Some(PackageFormat::Deb)
        } else if rpm::is_rpm(magic) {
            Some(PackageFormat::Rpm)
        } else {
            None
        }
    }

    /// The job kind that publishes a target of this format (stored in the job queue).
    pub fn publish_job(self) -> &'static str {
        match self {
            PackageFormat::Deb => "apt_publish",
            PackageFormat::Rpm => "rpm_publish",
            // Raw files have no index; nothing queues this.
            PackageFormat::AnyFile => "anyfile_publish",
            // Source packages are published with the binary ones of their APT target.
            PackageFormat::Dsc => "apt_publish",
            PackageFormat::Python => "pypi_publish",
            PackageFormat::Node => "npm_publish",
            // Images have no index; nothing queues this.
            PackageFormat::Oci => "oci_publish",
        }
    }

    pub fn from_publish_job(kind: &str) -> Option<PackageFormat> {
        Self::ALL.iter().copied().find(|f| f.publish_job() == kind)
    }

    /// The name a file uploaded as `uploaded` is stored under, for formats that name files
    /// themselves and can tell from the uploaded name alone (a .deb uploaded as apt caches
    /// it, `bsdutils_1%3a2.38_amd64.deb`, is stored as `bsdutils_2.38_amd64.deb`).
    pub fn stored_filename(self, uploaded: &str) -> Option<String> {
        match self {
            PackageFormat::Deb => deb::stored_filename(uploaded),
            PackageFormat::Rpm
            | PackageFormat::AnyFile
            | PackageFormat::Dsc
            | PackageFormat::Python
            | PackageFormat::Node
            | PackageFormat::Oci => None,
        }
    }

    /// Reads an uploaded file's metadata and renders its index entries. `file_time` is when
    /// the file arrived (YUM lists it).
    pub async fn parse(
        self,
        staged: &Staged,
        distro: &Distro,
        file_time: i64,
    ) -> Result<Parsed, PushError> {
        match self {
            PackageFormat::Deb => deb::parse(staged, distro).await,
            PackageFormat::Rpm => rpm::parse(staged, file_time).await,
            PackageFormat::AnyFile => anyfile::parse(staged),
            PackageFormat::Dsc => dsc::parse(staged, distro).await,
            PackageFormat::Python => python::parse(staged, file_time).await,
            PackageFormat::Node => npm::parse(staged).await,
            PackageFormat::Oci => Err(PushError::BadPackage(oci::NOT_THROUGH_API.into())),
        }
    }

    /// Builds and commits a new generation of `target`'s index.
    pub async fn publish(self, app: &App, target: &Target, build: &Build) -> Result<()> {
        match self {
            PackageFormat::Deb | PackageFormat::Dsc => {
                deb::publish::publish(app, target, build).await
            }
            PackageFormat::Rpm => rpm::publish::publish(app, target, build).await,
            PackageFormat::AnyFile | PackageFormat::Oci => Ok(()),
            PackageFormat::Python => python::publish(app, target, build).await,
            PackageFormat::Node => npm::publish(app, target, build).await,
        }
    }

    /// Whether each package name has an index of its own (a PyPI project page), so the
    /// targets of a package depend on its name as well as its architecture.
    pub fn indexes_by_name(self) -> bool {
        matches!(self, PackageFormat::Python | PackageFormat::Node)
    }

    /// The targets whose index lists a package `name` of `architecture` in `distro`.
    pub async fn targets_of(
        self,
        tx: &mut Tx,
        repository_id: i64,
        distro: &Distro,
        name: &str,
        architecture: &str,
    ) -> Result<Vec<Target>> {
        match self {
            PackageFormat::Deb | PackageFormat::Dsc => Ok(vec![deb::target(repository_id, distro)]),
            PackageFormat::Rpm => rpm::targets_of(tx, repository_id, distro, architecture).await,
            PackageFormat::AnyFile | PackageFormat::Oci => Ok(Vec::new()),
            PackageFormat::Python => python::targets_of(tx, repository_id, distro, name).await,
            PackageFormat::Node => Ok(npm::targets_of(repository_id, distro, name)),
        }
    }

    /// Every target `distro` has in a repository, with packages or not.
    pub async fn all_targets(
        self,
        tx: &mut Tx,
        repository_id: i64,
        distro: &Distro,
    ) -> Result<Vec<Target>> {
        match self {
            PackageFormat::Deb | PackageFormat::Dsc => Ok(vec![deb::target(repository_id, distro)]),
            PackageFormat::Rpm => rpm::all_targets(tx, repository_id, distro).await,
            PackageFormat::AnyFile | PackageFormat::Oci => Ok(Vec::new()),
            PackageFormat::Python => python::all_targets(tx, repository_id, distro).await,
            PackageFormat::Node => npm::all_targets(tx, repository_id, distro).await,
        }
    }

    /// Where a package's file is served, relative to `/OWNER/REPO/`.
    pub fn file_path(self, distro: &Distro, package: &Package) -> String {
        match self {
            PackageFormat::Deb => format!("{}/{}", distro.os, deb::file_path(distro, package)),
            PackageFormat::Rpm => format!("{}/{}", distro.os, rpm::file_path(distro, package)),
            PackageFormat::AnyFile => anyfile::file_path(package),
            PackageFormat::Dsc => format!("{}/{}", distro.os, dsc::file_path(distro, package)),
            PackageFormat::Python => python::file_path(&package.sha256, &package.filename),
            PackageFormat::Node => npm::file_path(&package.name, &package.version),
            PackageFormat::Oci => oci::file_path(package),
        }
    }

    /// Where a package's file is served on this server: `/OWNER/REPO/` and `file_path`, or
    /// for an image's manifest, its place in the registry.
    pub fn url_path(self, owner: &str, repo: &str, distro: &Distro, package: &Package) -> String {
        match self {
            PackageFormat::Oci => oci::url_path(owner, repo, package),
            _ => format!("/{owner}/{repo}/{}", self.file_path(distro, package)),
        }
    }

    /// A package's path under API v1's `package/`, without the version: `FORMAT/OS/DIST/
    /// NAME/ARCH`, or `FORMAT/NAME` for formats whose distribution is their own
    /// (packagecloud's `package/python/NAME/VERSION.json`).
    pub fn api_package_path(self, distro: &Distro, package: &Package) -> String {
        let format = self.name();
        match self {
            PackageFormat::AnyFile
            | PackageFormat::Python
            | PackageFormat::Node
            | PackageFormat::Oci => {
                format!("{format}/{}", package.name)
            }
            PackageFormat::Deb | PackageFormat::Rpm | PackageFormat::Dsc => format!(
                "{format}/{}/{}/{}/{}",
                distro.os, distro.dist, package.name, package.architecture
            ),
        }
    }

    /// A package's file as API v1's destroy and promote paths name it, and the query they
    /// add: a scoped npm package's file is `demo-1.0.0.tgz` with `?scope=%40acme`.
    pub fn api_file_reference(self, package: &Package) -> (String, String) {
        match (self, package.filename.split_once('/')) {
            (PackageFormat::Node, Some((scope, file))) => (
                file.to_owned(),
                format!("?scope=%40{}", scope.trim_start_matches('@')),
            ),
            _ => (package.filename.clone(), String::new()),
        }
    }

    /// The path under `/OWNER/REPO/` that a file uploaded there is changed at, for files
    /// API v1's paths cannot name (`raw/NAME/VERSION/FILE`).
    pub fn raw_path(self, package: &Package) -> Option<String> {
        (self == PackageFormat::AnyFile && package.filename.contains('/'))
            .then(|| anyfile::file_path(package))
    }

    /// Whether an upload of this format comes with the files it names (a `.dsc`'s tarballs).
    pub fn takes_source_files(self) -> bool {
        self == PackageFormat::Dsc
    }

    /// A stored version as API v1 shows it: the version and, for formats that keep one
    /// apart, the release (`1.0-1` is version `1.0`, release `1` for rpm).
    pub fn version_and_release(self, version: &str) -> (String, Option<String>) {
        match self {
            PackageFormat::Rpm => match version.rsplit_once('-') {
                Some((v, r)) => (v.to_owned(), Some(r.to_owned())),
                None => (version.to_owned(), None),
            },
            PackageFormat::Deb
            | PackageFormat::AnyFile
            | PackageFormat::Dsc
            | PackageFormat::Python
            | PackageFormat::Node
            | PackageFormat::Oci => (version.to_owned(), None),
        }
    }

    /// Whether retention rules, snapshots and API v1's promote handle this format's packages.
    /// Images do not: their manifests are kept by tags, promoted by moving a tag, and pruned by
    /// image retention (`images.rs`).
    pub fn in_package_lifecycle(self) -> bool {
        self != PackageFormat::Oci
    }

    /// Whether the stored format name `name` is one whose packages retention, snapshots and
    /// promote handle (unknown names are).
    pub fn name_in_package_lifecycle(name: &str) -> bool {
        PackageFormat::from_name(name).is_none_or(PackageFormat::in_package_lifecycle)
    }

    /// Whether a version's `N:` prefix is an epoch (an image's version is its `sha256:` digest).
    pub fn has_epochs(self) -> bool {
        self != PackageFormat::Oci
    }

    /// A version as bytes that sort in the format's own version order.
    pub fn version_key(self, version: &str) -> Vec<u8> {
        use packyard_formats::sort_key;
        match self {
            PackageFormat::Deb | PackageFormat::Dsc => sort_key::deb(version),
            PackageFormat::Rpm => sort_key::rpm(version),
            PackageFormat::Python => packyard_formats::pypi::normalize_version(version)
                .map_or_else(|_| sort_key::text(version), |v| sort_key::pep440(&v)),
            PackageFormat::Node => packyard_formats::npm::normalize_version(version)
                .map_or_else(|_| sort_key::text(version), |v| sort_key::semver(&v)),
            PackageFormat::AnyFile | PackageFormat::Oci => sort_key::text(version),
        }
    }

    /// The keyring package holding `public_keys`, as bytes and file name, for formats whose
    /// hosts install one.
    pub fn keyring_package(
        self,
        owner: &str,
        repo: &str,
        version: i64,
        public_keys: &[String],
    ) -> Result<Option<(Vec<u8>, String)>> {
        Ok(Some(match self {
            PackageFormat::Deb | PackageFormat::Dsc => {
                deb::keyring_package(owner, repo, version, public_keys)?
            }
            PackageFormat::Rpm => rpm::keyring_package(owner, repo, version, public_keys)?,
            PackageFormat::AnyFile
            | PackageFormat::Python
            | PackageFormat::Node
            | PackageFormat::Oci => {
                return Ok(None);
            }
        }))
    }

    /// Reads `target`'s current signed document back: what it lists, and whether its
    /// signatures verify with `public_keys`. `None` when the generation lacks it.
    pub async fn signed_listing(
        self,
        app: &App,
        target: &Target,
        public_keys: &[String],
    ) -> Result<Option<SignedListing>> {
        match self {
            PackageFormat::Deb | PackageFormat::Dsc => {
                deb::signed_listing(app, target, public_keys).await
            }
            PackageFormat::Rpm => rpm::signed_listing(app, target, public_keys).await,
            PackageFormat::AnyFile | PackageFormat::Oci => Ok(None),
            PackageFormat::Python => {
                documents_present(app, target, &[python::HTML, python::JSON]).await
            }
            PackageFormat::Node => {
                documents_present(app, target, &[npm::FULL, npm::ABBREVIATED]).await
            }
        }
    }
}

/// Commits a generation of unsigned documents only (a PyPI page, an npm packument), making
/// `newly_indexed` visible; returns its id.
pub(crate) async fn commit_documents(
    app: &App,
    format: PackageFormat,
    target: &Target,
    build: &Build,
    documents: &[(&str, String)],
    newly_indexed: &[i64],
) -> Result<i64> {
    let generation = NewGeneration {
        target,
        documents,
        files: &[],
        changed_chunks: &[],
        live_chunks: &[],
        written_chunks: &[],
        newly_indexed,
        build,
    };
    // Nothing is written, so nothing needs telling apart from the current generation's blobs.
    let current = std::collections::HashSet::new();
    crate::jobs::chunks::commit_generation(app, format.name(), &[], &current, &generation).await
}

/// For formats whose documents are unsigned: the current generation is whole when it has
/// every one of `names`.
pub(crate) async fn documents_present(
    app: &App,
    target: &Target,
    names: &[&str],
) -> Result<Option<SignedListing>> {
    for name in names {
        if generations::current_document(&app.db, target, name)
            .await?
            .is_none()
        {
            return Ok(None);
        }
    }
    Ok(Some(SignedListing {
        files: Vec::new(),
        problems: Vec::new(),
    }))
}
