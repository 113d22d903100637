//! npm packages and a registry under `/OWNER/REPO/npm/`: `npm publish` (and API v1 pushes
//! of a tarball to `node/1`), packuments full and abbreviated, tarballs, dist-tags,
//! deprecations, unpublish, and the login, whoami and ping endpoints npm calls.
//!
//! Each package name is a target; its packument is rendered by the index workers from the
//! manifests stored with each version (read from the tarball's own `package.json`, never from
//! what the client says), the dist-tags and the deprecations. Tarball URLs are written as
//! `packyard-npm:NAME/-/FILE` and made absolute when served, for the host the client used.

pub mod serve;

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use base64::Engine as _;
use packyard_formats::npm;
use serde_json::{Map, Value, json};

use crate::app::App;
use crate::db::generations::{Build, Target};
use crate::db::{self, Tx};
use crate::distros::Distro;
use crate::ingest::{Parsed, PushError, Staged};

pub const FULL: &str = "packument.json";
pub const ABBREVIATED: &str = "abbreviated.json";
/// What stands for `BASE/OWNER/REPO/npm/` in stored documents.
pub const TARBALL_PREFIX: &str = "packyard-npm:";

/// The stored file name: `BARE-VERSION.tgz`, under its scope for scoped packages, so two
/// scopes' packages of one bare name never collide.
pub fn stored_filename(name: &str, version: &str) -> String {
    let file = format!("{}-{version}.tgz", npm::bare_name(name));
    match name.split_once('/') {
        Some((scope, _)) => format!("{scope}/{file}"),
        None => file,
    }
}

/// `npm/NAME/-/BARE-VERSION.tgz`, relative to `/OWNER/REPO/`.
pub fn file_path(name: &str, version: &str) -> String {
    format!("npm/{name}/-/{}-{version}.tgz", npm::bare_name(name))
}

/// The fields of a version manifest the abbreviated packument keeps.
const ABBREVIATED_FIELDS: &[&str] = &[
    "name",
    "version",
    "dependencies",
    "optionalDependencies",
    "devDependencies",
    "peerDependencies",
    "peerDependenciesMeta",
    "bundleDependencies",
    "bundledDependencies",
    "bin",
    "directories",
    "engines",
    "os",
    "cpu",
    "deprecated",
    "_hasShrinkwrap",
    "hasInstallScript",
    "dist",
];

fn hex_to_base64(hex: &str) -> Result<String> {
    Ok(base64::engine::general_purpose::STANDARD.encode(hex::decode(hex)?))
}

pub async fn parse(staged: &Staged) -> Result<Parsed, PushError> {
    let bad = |m: String| PushError::BadPackage(m);
    let path = staged.path.clone();
    let manifest = tokio::task::spawn_blocking(move || {
        let file = std::io::BufReader::new(std::fs::File::open(&path)?);
        Ok::<_, anyhow::Error>(npm::read_tarball_manifest(file))
    })
    .await
    .context("reading the tarball")??
    .map_err(|e| bad(e.to_string()))?;
    let Value::Object(mut manifest) = manifest else {
        return Err(bad("package.json is not an object".into()));
    };
    let name = manifest
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("package.json has no name".into()))?
        .to_owned();
    npm::validate_name(&name).map_err(|e| bad(e.to_string()))?;
    let written = manifest
        .get("version")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("package.json has no version".into()))?;
    let version = npm::normalize_version(written)
        .map_err(|e| bad(e.to_string()))?
        .to_string();
    let d = &staged.digests;
    let integrity = format!("sha512-{}", hex_to_base64(&d.sha512)?);
    manifest.insert("version".into(), version.clone().into());
    manifest.insert("_id".into(), format!("{name}@{version}").into());
    manifest.insert(
        "dist".into(),
        json!({
            "shasum": d.sha1,
            "integrity": integrity,
            "tarball": format!("{TARBALL_PREFIX}{name}/-/{}-{version}.tgz", npm::bare_name(&name)),
        }),
    );
    let has_install_script = manifest
        .get("scripts")
        .and_then(Value::as_object)
        .is_some_and(|s| {
            ["preinstall", "install", "postinstall"]
                .iter()
                .any(|k| s.contains_key(*k))
        });
    if has_install_script {
        manifest.insert("hasInstallScript".into(), true.into());
    }
    let mut dependencies = BTreeMap::new();
    for kind in [
        "dependencies",
        "devDependencies",
        "peerDependencies",
        "optionalDependencies",
    ] {
        if let Some(deps) = manifest.get(kind).and_then(Value::as_object) {
            let list = deps
                .iter()
                .map(|(dep, range)| format!("{dep}@{}", range.as_str().unwrap_or("*")))
                .collect();
            dependencies.insert(kind.to_owned(), list);
        }
    }
    let filename = stored_filename(&name, &version);
    Ok(Parsed {
        format: super::PackageFormat::Node,
        entries: vec![("manifest", Value::Object(manifest).to_string())],
        name,
        version,
        architecture: String::new(),
        filename,
        dependencies,
        files: Vec::new(),
    })
}

/// A package's packument is its own target.
pub fn targets_of(repository_id: i64, distro: &Distro, name: &str) -> Vec<Target> {
    vec![Target {
        repository_id,
        distro_version_id: distro.id,
        arch: name.to_owned(),
    }]
}

pub async fn all_targets(tx: &mut Tx, repository_id: i64, distro: &Distro) -> Result<Vec<Target>> {
    let names = db::packages::live_names_tx(tx, repository_id, distro.id).await?;
    Ok(names
        .iter()
        .flat_map(|name| targets_of(repository_id, distro, name))
        .collect())
}

/// The dist-tags a packument shows: the stored ones that name a live version, and `latest`
/// at the highest version when it names none (after a yank or a promote).
fn effective_tags(
    stored: BTreeMap<String, String>,
    versions: &[(npm::Version, String)],
) -> BTreeMap<String, String> {
    let mut tags: BTreeMap<String, String> = stored
        .into_iter()
        .filter(|(_, v)| versions.iter().any(|(_, live)| live == v))
        .collect();
    // `versions` is in order: the highest release, or the highest pre-release when there
    // are only those.
    let highest = versions
        .iter()
        .rev()
        .find(|(v, _)| !v.is_prerelease())
        .or(versions.last());
    if !tags.contains_key("latest")
        && let Some((_, highest)) = highest
    {
        tags.insert("latest".into(), highest.clone());
    }
    tags
}

pub async fn publish(app: &App, target: &Target, build: &Build) -> Result<()> {
    let (repository_id, distro_id, name) =
        (target.repository_id, target.distro_version_id, &target.arch);
    let entries =
        db::packages::named_entries(&app.db, repository_id, distro_id, name, "manifest").await?;
    let packages =
        db::packages::by_name_and_arch(&app.db, repository_id, distro_id, name, None).await?;
    let mut versions: Vec<(npm::Version, String)> = entries
        .iter()
        .filter_map(|e| Some((npm::normalize_version(&e.version).ok()?, e.version.clone())))
        .collect();
    versions.sort_by(|a, b| a.0.cmp(&b.0));
    let tags = effective_tags(
        db::npm::read(&app.db, repository_id, name, db::npm::TAG).await?,
        &versions,
    );
    let deprecated = db::npm::read(&app.db, repository_id, name, db::npm::DEPRECATED).await?;
    let time = |id: i64| {
        packages
            .iter()
            .find(|p| p.id == id)
            .map(|p| crate::http::present::timestamp(p.created_at))
            .unwrap_or_default()
    };

    let mut full_versions = Map::new();
    let mut short_versions = Map::new();
    let mut times = Map::new();
    for (_, version) in &versions {
        let Some(entry) = entries.iter().find(|e| &e.version == version) else {
            continue;
        };
        let Ok(Value::Object(mut manifest)) = serde_json::from_str::<Value>(&entry.body) else {
            continue;
        };
        if let Some(message) = deprecated.get(version) {
            manifest.insert("deprecated".into(), message.clone().into());
        }
        let short: Map<String, Value> = manifest
            .iter()
            .filter(|(k, _)| ABBREVIATED_FIELDS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        times.insert(version.clone(), time(entry.id).into());
        full_versions.insert(version.clone(), Value::Object(manifest));
        short_versions.insert(version.clone(), Value::Object(short));
    }
    let created = entries
        .iter()
        .map(|e| e.id)
        .min()
        .map(time)
        .unwrap_or_default();
    let modified = packages
        .iter()
        .map(|p| p.created_at)
        .max()
        .map(crate::http::present::timestamp)
        .unwrap_or_default();
    times.insert("created".into(), created.into());
    times.insert("modified".into(), modified.clone().into());
    let latest = tags
        .get("latest")
        .and_then(|v| full_versions.get(v))
        .cloned();
    let hoisted = |field: &str| latest.as_ref().and_then(|m| m.get(field)).cloned();
    let rev = format!(
        "{}-{}",
        versions.len().max(1),
        &packyard_formats::digest::sha256_hex(
            format!("{tags:?}{deprecated:?}{versions:?}").as_bytes()
        )[..32]
    );
    let mut full = json!({
        "_id": name,
        "_rev": rev,
        "name": name,
        "dist-tags": tags,
        "versions": full_versions,
        "time": times,
    });
    for field in [
        "description",
        "readme",
        "repository",
        "license",
        "author",
        "homepage",
        "keywords",
        "bugs",
        "maintainers",
    ] {
        if let Some(value) = hoisted(field) {
            full[field] = value;
        }
    }
    let abbreviated = json!({
        "name": name,
        "modified": modified,
        "dist-tags": full["dist-tags"],
        "versions": short_versions,
    });
    let documents = [
        (FULL, full.to_string()),
        (ABBREVIATED, abbreviated.to_string()),
    ];
    let newly_indexed: Vec<i64> = entries
        .iter()
        .filter(|e| !e.indexed)
        .map(|e| e.id)
        .collect();
    let generation_id = super::commit_documents(
        app,
        super::PackageFormat::Node,
        target,
        build,
        &documents,
        &newly_indexed,
    )
    .await?;
    tracing::info!(repository_id, package = %name, generation_id, versions = versions.len(), "published npm packument");
    Ok(())
}
