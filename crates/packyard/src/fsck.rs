//! `packyard fsck`: checks what the database says against what storage holds. Every live
//! package's blob is there with its size and SHA-256; every current generation's files are
//! there and match the digests its signed document lists; those documents verify with the
//! repository's keys; no job is stuck past its lease. `--repair` queues a rebuild of each
//! target whose index is broken and lists packages whose blobs are gone (it never deletes a
//! row).

use std::io::Read;

use anyhow::Result;
use serde::Serialize;

use crate::app::App;
use crate::db::generations::{self, IndexFile, Target};
use crate::db::{self, repos::Repo};
use crate::distros;
use crate::storage::BlobKey;

#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// `package_blob`, `index_file`, `signature` or `stuck_job`.
    pub kind: &'static str,
    pub repository: Option<String>,
    pub target: Option<String>,
    pub detail: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub packages_checked: usize,
    pub targets_checked: usize,
    pub problems: Vec<Problem>,
    /// Targets queued for a rebuild (`--repair`).
    pub repaired: Vec<String>,
}

impl Report {
    pub fn healthy(&self) -> bool {
        self.problems.is_empty()
    }
}

pub async fn check(app: &App, repair: bool) -> Result<Report> {
    let mut report = Report::default();
    let mut broken: Vec<(Repo, Target)> = Vec::new();
    let published = generations::published(&app.db).await?;
    for repo in db::repos::all(&app.db).await? {
        let name = format!("{}/{}", repo.owner, repo.name);
        for package in db::packages::live(&app.db, repo.id, None).await? {
            report.packages_checked += 1;
            let mut blobs = vec![(
                package.filename.clone(),
                package.sha256.clone(),
                package.size,
            )];
            for file in db::packages::files(&app.db, package.id).await? {
                blobs.push((file.filename, file.sha256, file.size));
            }
            for (filename, sha256, size) in blobs {
                if let Some(detail) = check_blob(app, &sha256, size).await? {
                    report.problems.push(Problem {
                        kind: "package_blob",
                        repository: Some(name.clone()),
                        target: Some(filename),
                        detail,
                    });
                }
            }
        }
        let targets = published
            .iter()
            .filter(|p| p.repository_id == repo.id)
            .map(|p| Target {
                repository_id: p.repository_id,
                distro_version_id: p.distro_version_id,
                arch: p.arch.clone(),
            });
        let public_keys: Vec<String> = db::signing_keys::list(&app.db, repo.id)
            .await?
            .into_iter()
            .map(|k| k.public_armored)
            .collect();
        for target in targets {
            report.targets_checked += 1;
            let problems = check_target(app, &target, &public_keys).await?;
            if !problems.is_empty() {
                let label = target.label();
                for detail in problems {
                    let kind = if detail.starts_with("signature") {
                        "signature"
                    } else {
                        "index_file"
                    };
                    report.problems.push(Problem {
                        kind,
                        repository: Some(name.clone()),
                        target: Some(label.clone()),
                        detail,
                    });
                }
                broken.push((repo.clone(), target));
            }
        }
    }
    for (id, kind, lease_until) in db::jobs::stuck(&app.db).await? {
        report.problems.push(Problem {
            kind: "stuck_job",
            repository: None,
            target: None,
            detail: format!("{kind} job {id} is running with a lease that ran out at {lease_until}; a worker takes it over when one runs"),
        });
    }
    if repair {
        for (repo, target) in &broken {
            let Some(distro) = distros::by_id(target.distro_version_id) else {
                continue;
            };
            let kind = distro.format.publish_job();
            let mut tx = app.db.begin_write().await?;
            db::jobs::enqueue_rebuild(&mut tx, kind, target).await?;
            tx.commit().await?;
            report
                .repaired
                .push(format!("{}/{} {}", repo.owner, repo.name, target.label()));
        }
        app.queued();
    }
    Ok(report)
}

/// What is wrong with a stored blob, if anything.
async fn check_blob(app: &App, sha256: &str, size: i64) -> Result<Option<String>> {
    let key = BlobKey::from_sha256(sha256)?;
    let file = tempfile::NamedTempFile::new_in(app.blobs.tmp_dir())?;
    let Some(digests) = app.blobs.download_to(&key, file.path()).await? else {
        return Ok(Some(format!("blob {sha256} is missing from storage")));
    };
    if digests.sha256 != sha256 || digests.size as i64 != size {
        return Ok(Some(format!(
            "blob {sha256} holds {} bytes with SHA-256 {}, not {size} bytes",
            digests.size, digests.sha256
        )));
    }
    Ok(None)
}

/// What is wrong with a target's current generation.
async fn check_target(app: &App, target: &Target, public_keys: &[String]) -> Result<Vec<String>> {
    let Some(distro) = distros::by_id(target.distro_version_id) else {
        return Ok(vec![format!(
            "unknown distribution version {}",
            target.distro_version_id
        )]);
    };
    let Some(listed) = distro
        .format
        .signed_listing(app, target, public_keys)
        .await?
    else {
        return Ok(vec![
            "the current generation lacks its signed documents".into(),
        ]);
    };
    let mut problems = listed.problems;
    for (sha256, size, path) in listed.files {
        let Some(file) = generations::current_file(&app.db, target, &path).await? else {
            problems.push(format!("{path} is listed but not in the generation"));
            continue;
        };
        match read_index_file(app, &file).await? {
            Err(missing) => problems.push(format!("{path}: {missing}")),
            Ok(bytes) => {
                let actual = packyard_formats::digest::sha256_hex(&bytes);
                if actual != sha256 || bytes.len() as u64 != size {
                    problems.push(format!(
                        "{path} is {} bytes with SHA-256 {actual}; the signed document lists {size} bytes with {sha256}",
                        bytes.len()
                    ));
                }
            }
        }
    }
    Ok(problems)
}

/// An index file's bytes as served, or what is missing.
async fn read_index_file(app: &App, file: &IndexFile) -> Result<Result<Vec<u8>, String>> {
    let blobs: Vec<String> = if file.segments.is_empty() {
        vec![file.blob_sha256.clone()]
    } else {
        file.segments
            .iter()
            .map(|s| s.blob_sha256.clone())
            .collect()
    };
    let mut stored = Vec::new();
    for sha256 in blobs {
        let key = BlobKey::from_sha256(&sha256)?;
        if !app.blobs.exists(&key).await? {
            return Ok(Err(format!("blob {sha256} is missing from storage")));
        }
        stored.extend_from_slice(&app.blobs.get_bytes(&key).await?);
    }
    if !file.gunzip {
        return Ok(Ok(stored));
    }
    let mut text = Vec::new();
    match flate2::read::MultiGzDecoder::new(&stored[..]).read_to_end(&mut text) {
        Ok(_) => Ok(Ok(text)),
        Err(e) => Ok(Err(format!(
            "its compressed sibling does not decompress: {e}"
        ))),
    }
}
