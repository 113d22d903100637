//! The APT tree of one repository: signed release files of the current generation, Packages
//! indexes by name or by hash, and pool files.

use axum::response::Response;
use packyard_formats::deb::{AptPath, HashKind};

use crate::app::App;
use crate::db::generations::{self, DigestColumn, IndexFile, Target};
use crate::db::{self, repos::Repo};
use crate::distros::{self, PackageFormat};
use crate::http::error::ApiError;
use crate::http::repo::send::{self, File, Request};
use crate::read_cache::FileKey;
use crate::storage::BlobKey;

pub async fn serve(
    app: &App,
    repo: &Repo,
    os: &str,
    path: AptPath,
    request: &Request<'_>,
) -> Result<Response, ApiError> {
    let distro = distros::by_os_dist(os, path.dist())
        .filter(|d| d.format == PackageFormat::Deb)
        .ok_or_else(|| ApiError::not_found(format!("{os}/{}", path.dist())))?;
    let missing = || ApiError::not_found(format!("{}/{}", distro.os, distro.dist));
    let target = Target::apt(repo.id, distro.id);

    let file = match path {
        AptPath::InRelease { .. } | AptPath::Release { .. } | AptPath::ReleaseGpg { .. } => {
            let (name, content_type) = match path {
                AptPath::InRelease { .. } => ("InRelease", "text/plain; charset=utf-8"),
                AptPath::Release { .. } => ("Release", "text/plain; charset=utf-8"),
                _ => ("Release.gpg", "application/pgp-signature"),
            };
            request.record_index_fetch(app, repo.id);
            let load = generations::current_document(&app.db, &target, name);
            let document = app
                .cache
                .document(&target, name, load)
                .await?
                .ok_or_else(missing)?;
            File::document(content_type, &document)
        }
        AptPath::Packages {
            arch, compression, ..
        } => {
            let name = AptPath::index_file(&arch, compression);
            let load = generations::current_file(&app.db, &target, &name);
            let index = app
                .cache
                .file(&target, FileKey::Current(name.clone()), load)
                .await?
                .ok_or_else(missing)?;
            index_file(&index, false)?
        }
        AptPath::ByHash {
            arch, kind, hex, ..
        } => {
            let column = match kind {
                HashKind::Md5 => DigestColumn::Md5,
                HashKind::Sha1 => DigestColumn::Sha1,
                HashKind::Sha256 => DigestColumn::Sha256,
                HashKind::Sha512 => DigestColumn::Sha512,
            };
            let dir = AptPath::index_dir(&arch);
            let load = generations::file_by_hash(&app.db, &target, &dir, column, &hex);
            let key = FileKey::ByHash {
                dir: dir.clone(),
                column: column.name(),
                hex: hex.clone(),
            };
            let index = app
                .cache
                .file(&target, key, load)
                .await?
                .ok_or_else(missing)?;
            index_file(&index, true)?
        }
        AptPath::Pool { name, filename, .. } => {
            let load = db::packages::for_pool_file(&app.db, repo.id, distro.id, &filename);
            let package = app
                .cache
                .pool_file(repo.id, distro.id, &filename, load)
                .await?
                .filter(|p| p.name == name);
            match package {
                Some(package) => {
                    let (content_type, format) = match package.format.as_str() {
                        "dsc" => ("text/prs.lines.tag", "dsc"),
                        _ => ("application/vnd.debian.binary-package", "deb"),
                    };
                    File::blob(
                        BlobKey::from_sha256(&package.sha256)?,
                        package.size as u64,
                        content_type,
                    )
                    .immutable()
                    .modified_at(package.created_at)
                    .counting(package.id, format)
                }
                // A file a source package names: its tarballs and diffs.
                None => {
                    let (package, file) =
                        db::packages::pool_companion(&app.db, repo.id, distro.id, &filename)
                            .await?
                            .filter(|(p, _)| p.name == name)
                            .ok_or_else(missing)?;
                    File::blob(
                        BlobKey::from_sha256(&file.sha256)?,
                        file.size as u64,
                        "application/octet-stream",
                    )
                    .immutable()
                    .modified_at(package.created_at)
                }
            }
        }
    };
    send::send(app, request, file).await
}

/// An index file of a generation, by path or by hash.
fn index_file(index: &IndexFile, by_hash: bool) -> Result<File, ApiError> {
    let content_type = if index.path.ends_with(".gz") {
        "application/gzip"
    } else if index.path.ends_with(".zst") {
        "application/zstd"
    } else if index.path.ends_with(".xz") {
        "application/x-xz"
    } else {
        "text/plain; charset=utf-8"
    };
    let file = File::index(index, content_type)?;
    // Files named by hash never change; files named by path change on every publish.
    Ok(if by_hash { file.immutable() } else { file })
}
