//! The YUM tree of one repository: `repomd.xml` and its signature from the current
//! generation, content-addressed metadata files from any retained generation, and packages.

use axum::response::Response;
use packyard_formats::rpm::YumPath;

use super::listed_in;
use crate::app::App;
use crate::db::generations::{self, Target};
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
    version: &str,
    arch: &str,
    path: YumPath,
    request: &Request<'_>,
) -> Result<Response, ApiError> {
    let distro = distros::by_os_dist(os, version)
        .filter(|d| d.format == PackageFormat::Rpm)
        .ok_or_else(|| ApiError::not_found(format!("{os}/{version}")))?;
    let missing = || ApiError::not_found(format!("{os}/{version}/{arch}"));
    let target = Target {
        repository_id: repo.id,
        distro_version_id: distro.id,
        arch: arch.to_owned(),
    };

    let file = match path {
        YumPath::Repomd | YumPath::RepomdAsc => {
            let (name, content_type) = match path {
                YumPath::Repomd => ("repomd.xml", "text/xml"),
                _ => ("repomd.xml.asc", "application/pgp-signature"),
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
        YumPath::Data { name } => {
            let path = format!("repodata/{name}");
            let load = generations::retained_file(&app.db, &target, &path);
            let index = app
                .cache
                .file(&target, FileKey::Retained(path.clone()), load)
                .await?
                .ok_or_else(missing)?;
            let content_type = if name.ends_with(".zst") {
                "application/zstd"
            } else {
                "application/gzip"
            };
            File::index(&index, content_type)?.immutable()
        }
        YumPath::Package { filename } => {
            let load = db::packages::for_pool_file(&app.db, repo.id, distro.id, &filename);
            let package = app
                .cache
                .pool_file(repo.id, distro.id, &filename, load)
                .await?
                .filter(|p| {
                    p.format == "rpm"
                        && (p.architecture == arch || listed_in(arch, &p.architecture))
                })
                .ok_or_else(missing)?;
            File::blob(
                BlobKey::from_sha256(&package.sha256)?,
                package.size as u64,
                "application/x-rpm",
            )
            .immutable()
            .modified_at(package.created_at)
            .counting(package.id, "rpm")
        }
    };
    send::send(app, request, file).await
}
