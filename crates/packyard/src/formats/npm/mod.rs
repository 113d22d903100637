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
    let abbreviated: Map<String, Value> = manifest
        .iter()
        .filter(|(k, _)| ABBREVIATED_FIELDS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(Parsed {
        format: super::PackageFormat::Node,
        entries: vec![
            ("manifest", Value::Object(manifest).to_string()),
            ("abbreviated", Value::Object(abbreviated).to_string()),
        ],
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

/// `{"V1":MANIFEST1,...}` from stored manifest texts in version order, each deprecated one
/// with its message added: only those are parsed.
fn versions_object(
    ordered: &[(&str, &str)],
    deprecated: &BTreeMap<String, String>,
) -> Result<String> {
    let mut out = String::with_capacity(ordered.iter().map(|(_, m)| m.len() + 32).sum());
    out.push('{');
    for (i, (version, manifest)) in ordered.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(version)?);
        out.push(':');
        match deprecated.get(*version) {
            Some(message) => {
                let mut value: Value = serde_json::from_str(manifest)?;
                value["deprecated"] = message.clone().into();
                out.push_str(&value.to_string());
            }
            None => out.push_str(manifest),
        }
    }
    out.push('}');
    Ok(out)
}

pub async fn publish(app: &App, target: &Target, build: &Build) -> Result<()> {
    let started = std::time::Instant::now();
    let (repository_id, distro_id, name) =
        (target.repository_id, target.distro_version_id, &target.arch);
    let entries =
        db::packages::named_entries(&app.db, repository_id, distro_id, name, "manifest").await?;
    let short_entries =
        db::packages::named_entries(&app.db, repository_id, distro_id, name, "abbreviated").await?;
    let packages =
        db::packages::by_name_and_arch(&app.db, repository_id, distro_id, name, None).await?;
    let created_at: std::collections::HashMap<i64, i64> =
        packages.iter().map(|p| (p.id, p.created_at)).collect();
    let short: std::collections::HashMap<i64, &str> = short_entries
        .iter()
        .map(|e| (e.id, e.body.as_str()))
        .collect();
    let mut ordered: Vec<(npm::Version, &db::packages::NamedEntry)> = entries
        .iter()
        .filter_map(|e| Some((npm::normalize_version(&e.version).ok()?, e)))
        .collect();
    ordered.sort_by(|a, b| a.0.cmp(&b.0));
    let versions: Vec<(npm::Version, String)> = ordered
        .iter()
        .map(|(v, e)| (v.clone(), e.version.clone()))
        .collect();
    let tags = effective_tags(
        db::metadata::read(&app.db, target, db::metadata::TAG).await?,
        &versions,
    );
    let deprecated = db::metadata::read(&app.db, target, db::metadata::DEPRECATED).await?;
    let time = |id: i64| {
        created_at
            .get(&id)
            .map(|at| crate::http::present::timestamp(*at))
            .unwrap_or_default()
    };

    let full_versions = versions_object(
        &ordered
            .iter()
            .map(|(_, e)| (e.version.as_str(), e.body.as_str()))
            .collect::<Vec<_>>(),
        &deprecated,
    )?;
    let short_versions = versions_object(
        &ordered
            .iter()
            .map(|(_, e)| {
                (
                    e.version.as_str(),
                    short.get(&e.id).copied().unwrap_or("{}"),
                )
            })
            .collect::<Vec<_>>(),
        &deprecated,
    )?;
    let mut times = Map::new();
    for (_, entry) in &ordered {
        times.insert(entry.version.clone(), time(entry.id).into());
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
    // The fields npm shows for the package come from the version `latest` names.
    let latest: Option<Value> = tags
        .get("latest")
        .and_then(|v| ordered.iter().find(|(_, e)| &e.version == v))
        .and_then(|(_, e)| serde_json::from_str(&e.body).ok());
    let rev = format!(
        "{}-{}",
        versions.len().max(1),
        &packyard_formats::digest::sha256_hex(
            format!("{tags:?}{deprecated:?}{versions:?}").as_bytes()
        )[..32]
    );
    let mut head =
        json!({ "_id": name, "_rev": rev, "name": name, "dist-tags": tags, "time": times });
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
        if let Some(value) = latest.as_ref().and_then(|m| m.get(field)) {
            head[field] = value.clone();
        }
    }
    // The versions object goes in as text: it is most of the document, and already JSON.
    let head = head.to_string();
    let full = format!("{},\"versions\":{full_versions}}}", &head[..head.len() - 1]);
    let short_head = json!({ "name": name, "modified": modified, "dist-tags": tags }).to_string();
    let abbreviated = format!(
        "{},\"versions\":{short_versions}}}",
        &short_head[..short_head.len() - 1]
    );
    let documents = [(FULL, full), (ABBREVIATED, abbreviated)];
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
    tracing::info!(repository_id, package = %name, generation_id, versions = versions.len(),
        duration_ms = started.elapsed().as_millis() as u64, "published npm packument");
    Ok(())
}
