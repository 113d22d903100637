//! Python distributions (wheels and sdists) and the simple repository API under
//! `/OWNER/REPO/pypi/`: uploads by `twine upload` and by API v1 (`package_cloud push
//! OWNER/REPO/python`), project pages in HTML and JSON, files and their METADATA.
//!
//! Each project is a target of its own (its normalized name is the target's `arch`), so a
//! release costs one project page; the root page (the target with an empty name) is published
//! again only when a project appears or goes. Pages are unsigned: pip checks each file against
//! the SHA-256 the page lists.

pub mod serve;

use anyhow::{Context, Result};
use packyard_formats::pypi::{self, Kind, ListedFile};

use crate::app::App;
use crate::db::generations::{Build, Target};
use crate::db::{self, Tx, repos::Repo};
use crate::distros::Distro;
use crate::ingest::{Parsed, PushError, Staged};

/// The documents of a project's (or the root's) generation.
pub const HTML: &str = "index.html";
pub const JSON: &str = "index.json";

/// Where a file is served, relative to `/OWNER/REPO/`: under its SHA-256 so a name never
/// serves other bytes, ending in the file name, which pip takes from the URL.
pub fn file_path(sha256: &str, filename: &str) -> String {
    format!("pypi/files/{sha256}/{filename}")
}

/// Reads a wheel's or sdist's metadata and checks it against the file name; `file_time` is
/// when the file arrived (the pages list it as `upload-time`).
pub async fn parse(staged: &Staged, file_time: i64) -> Result<Parsed, PushError> {
    let bad = |e: pypi::PypiError| PushError::BadPackage(e.to_string());
    let file = pypi::parse_file_name(&staged.filename)
        .map_err(|e| PushError::BadFilename(e.to_string()))?;
    let path = staged.path.clone();
    let kind = file.kind.clone();
    let zip_sdist = staged.filename.ends_with(".zip");
    let text = tokio::task::spawn_blocking(move || {
        let reader = std::io::BufReader::new(std::fs::File::open(&path)?);
        Ok::<_, anyhow::Error>(match kind {
            Kind::Wheel { .. } => pypi::read_wheel_metadata(reader),
            Kind::Sdist => pypi::read_sdist_metadata(reader, zip_sdist),
        })
    })
    .await
    .context("reading the distribution")??
    .map_err(bad)?;
    let metadata = pypi::parse_metadata(&text).map_err(bad)?;
    pypi::check_agreement(&file, &metadata).map_err(bad)?;
    let name = pypi::normalize_name(&metadata.name);
    let version = pypi::normalize_version(&metadata.version)
        .map_err(bad)?
        .to_string();

    let sha256 = &staged.digests.sha256;
    // Relative to the project page, /OWNER/REPO/pypi/simple/NAME/.
    let url = format!(
        "../../{}",
        file_path(sha256, &staged.filename).trim_start_matches("pypi/")
    );
    let metadata_sha256 = match file.kind {
        Kind::Wheel { .. } => Some(packyard_formats::digest::sha256_hex(&text)),
        Kind::Sdist => None,
    };
    let listed = ListedFile {
        filename: &staged.filename,
        url: &url,
        sha256,
        size: staged.digests.size,
        upload_time: &crate::http::present::timestamp(file_time),
        requires_python: metadata.requires_python.as_deref(),
        metadata_sha256: metadata_sha256.as_deref(),
        yanked: None,
    };
    let mut entries = vec![
        ("html", pypi::html_anchor(&listed)),
        ("json", pypi::json_file(&listed).to_string()),
    ];
    if metadata_sha256.is_some() {
        // PEP 658: served byte for byte, so its hash is the one the page lists.
        let text = String::from_utf8(text)
            .map_err(|_| PushError::BadPackage("METADATA is not UTF-8".into()))?;
        entries.push(("metadata", text));
    }
    let mut dependencies = std::collections::BTreeMap::new();
    if !metadata.requires_dist.is_empty() {
        dependencies.insert("requires_dist".to_owned(), metadata.requires_dist.clone());
    }
    if let Some(requires) = &metadata.requires_python {
        dependencies.insert("requires_python".to_owned(), vec![requires.clone()]);
    }
    Ok(Parsed {
        format: super::PackageFormat::Python,
        name,
        version,
        architecture: match &file.kind {
            Kind::Wheel { tags } => tags.clone(),
            Kind::Sdist => "source".to_owned(),
        },
        filename: staged.filename.clone(),
        dependencies,
        entries,
        files: Vec::new(),
    })
}

fn project(repository_id: i64, distro: &Distro, name: &str) -> Target {
    Target {
        repository_id,
        distro_version_id: distro.id,
        arch: name.to_owned(),
    }
}

/// The project's page, and the root page when the project just appeared or went.
pub async fn targets_of(
    tx: &mut Tx,
    repository_id: i64,
    distro: &Distro,
    name: &str,
) -> Result<Vec<Target>> {
    let mut targets = vec![project(repository_id, distro, name)];
    if db::packages::live_count_named(tx, repository_id, distro.id, name).await? <= 1 {
        targets.push(project(repository_id, distro, ""));
    }
    Ok(targets)
}

/// The root page and every project's.
pub async fn all_targets(tx: &mut Tx, repository_id: i64, distro: &Distro) -> Result<Vec<Target>> {
    let names = db::packages::live_names_tx(tx, repository_id, distro.id).await?;
    Ok(std::iter::once(String::new())
        .chain(names)
        .map(|name| project(repository_id, distro, &name))
        .collect())
}

pub async fn publish(app: &App, target: &Target, build: &Build) -> Result<()> {
    let started = std::time::Instant::now();
    let (repository_id, distro_id) = (target.repository_id, target.distro_version_id);
    let (html, json, newly_indexed, files) = if target.arch.is_empty() {
        let names = db::packages::live_names(&app.db, repository_id, distro_id).await?;
        (
            pypi::html_root_page(&names),
            pypi::json_root_page(&names),
            Vec::new(),
            names.len(),
        )
    } else {
        let name = &target.arch;
        let mut anchors =
            db::packages::named_entries(&app.db, repository_id, distro_id, name, "html").await?;
        let mut objects =
            db::packages::named_entries(&app.db, repository_id, distro_id, name, "json").await?;
        // Yanked releases (PEP 592) are rendered again from their JSON entry with the mark;
        // the stored entries never carry it, so a rerender cannot lose it.
        let yanked = db::metadata::read(&app.db, target, db::metadata::YANKED).await?;
        if !yanked.is_empty() {
            let marked: std::collections::HashMap<i64, (String, String)> = objects
                .iter()
                .filter_map(|e| {
                    let reason = yanked.get(&e.version)?;
                    let value: serde_json::Value = serde_json::from_str(&e.body).ok()?;
                    let listed = ListedFile {
                        yanked: Some(reason.as_str()),
                        ..ListedFile::from_json(&value)?
                    };
                    Some((
                        e.id,
                        (
                            pypi::html_anchor(&listed),
                            pypi::json_file(&listed).to_string(),
                        ),
                    ))
                })
                .collect();
            for entry in &mut anchors {
                if let Some((html, _)) = marked.get(&entry.id) {
                    entry.body = html.clone();
                }
            }
            for entry in &mut objects {
                if let Some((_, json)) = marked.get(&entry.id) {
                    entry.body = json.clone();
                }
            }
        }
        // Files in PEP 440 order of their versions, then by name, on both pages; each
        // version parsed once.
        let order: std::collections::HashMap<i64, _> = anchors
            .iter()
            .map(|e| {
                (
                    e.id,
                    (pypi::normalize_version(&e.version).ok(), e.filename.clone()),
                )
            })
            .collect();
        anchors.sort_by(|a, b| order[&a.id].cmp(&order[&b.id]));
        objects.retain(|e| order.contains_key(&e.id));
        objects.sort_by(|a, b| order[&a.id].cmp(&order[&b.id]));
        // 1.0 and 1.0.0 are one release.
        let mut versions: Vec<_> = anchors
            .iter()
            .filter_map(|e| order[&e.id].0.as_ref())
            .collect();
        versions.dedup_by(|a, b| a == b);
        let versions: Vec<String> = versions.iter().map(ToString::to_string).collect();
        let html = pypi::html_project_page(
            name,
            &anchors.iter().map(|e| e.body.as_str()).collect::<Vec<_>>(),
        );
        let json = pypi::json_project_page(
            name,
            &versions,
            &objects.iter().map(|e| e.body.as_str()).collect::<Vec<_>>(),
        );
        let newly: Vec<i64> = anchors
            .iter()
            .filter(|e| !e.indexed)
            .map(|e| e.id)
            .collect();
        (html, json, newly, anchors.len())
    };
    let documents = [(HTML, html), (JSON, json)];
    let build_ms = started.elapsed().as_millis() as u64;
    let generation_id = super::commit_documents(
        app,
        super::PackageFormat::Python,
        target,
        build,
        &documents,
        &newly_indexed,
    )
    .await?;
    tracing::info!(repository_id, project = %target.arch, generation_id, files, build_ms,
        duration_ms = started.elapsed().as_millis() as u64, "published pypi page");
    Ok(())
}

/// PEP 592: marks every file of `name` at `version` yanked with `reason` (possibly empty), or
/// with `None` not yanked, and queues the project's page; returns how many files it has.
/// pip installs a yanked file only when its version is pinned.
pub async fn set_yanked(
    app: &App,
    repo: &Repo,
    name: &str,
    version: &str,
    reason: Option<&str>,
) -> Result<usize> {
    let distro = serve::distro();
    let name = pypi::normalize_name(name);
    let version = pypi::normalize_version(version)
        .map(|v| v.to_string())
        .unwrap_or_else(|_| version.to_owned());
    let files = db::packages::by_name_and_arch(&app.db, repo.id, distro.id, &name, None)
        .await?
        .iter()
        .filter(|p| p.version == version)
        .count();
    if files == 0 {
        return Ok(0);
    }
    let page = project(repo.id, distro, &name);
    let mut tx = app.db.begin_write().await?;
    match reason {
        Some(reason) => {
            db::metadata::set(&mut tx, &page, db::metadata::YANKED, &version, reason).await?
        }
        None => {
            db::metadata::remove(&mut tx, &page, db::metadata::YANKED, &version).await?;
        }
    }
    db::jobs::enqueue(&mut tx, super::PackageFormat::Python.publish_job(), &page).await?;
    tx.commit().await?;
    app.queued();
    Ok(files)
}
