//! Database rows as API v1 bodies, with the URLs clients follow next.

use packyard_api as api;

use crate::db::{packages::Package, repos::Repo};
use crate::distros::Distro;
use crate::formats::PackageFormat;

pub fn timestamp(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

pub fn repository(base: &str, repo: &Repo, package_count: i64) -> api::Repository {
    let fq = format!("{}/{}", repo.owner, repo.name);
    let api_root = format!("/api/v1/repos/{fq}");
    api::Repository {
        name: repo.name.clone(),
        created_at: timestamp(repo.created_at),
        url: format!("{base}/{fq}"),
        last_push_human: repo
            .last_push_at
            .map(timestamp)
            .unwrap_or_else(|| "never".into()),
        package_count_human: format!("{package_count} packages"),
        private: repo.private,
        fqname: fq.clone(),
        paths: api::RepositoryPaths {
            create_package: format!("{api_root}/packages.json"),
            package_contents: format!("{api_root}/packages/contents.json"),
            master_tokens: format!("{api_root}/master_tokens"),
            create_master_token: format!("{api_root}/master_tokens"),
            gpg_keys: format!("{api_root}/gpg_keys.json"),
            self_: api_root,
        },
        urls: api::RepositoryUrls {
            install_script: format!("{base}/install/repositories/{fq}/script.deb.sh"),
        },
    }
}

pub fn package(base: &str, repo: &Repo, distro: &Distro, p: &Package) -> api::Package {
    let fq = format!("{}/{}", repo.owner, repo.name);
    let format = PackageFormat::from_name(&p.format).unwrap_or(distro.format);
    let (epoch, version) = match p.version.split_once(':') {
        Some((epoch, rest)) if format.has_epochs() => (epoch.parse().ok(), rest.to_owned()),
        Some(_) => (None, p.version.clone()),
        None => (Some(0), p.version.clone()),
    };
    // rpm shows version and release apart; the show URL ends in VERSION/RELEASE for rpm.
    let (version, release) = format.version_and_release(&version);
    let target = format!("{}/{}", distro.os, distro.dist);
    let package_root = format!(
        "/api/v1/repos/{fq}/package/{}",
        format.api_package_path(distro, p)
    );
    let (file, query) = format.api_file_reference(p);
    // A file under `raw/` is destroyed where it was uploaded.
    let destroy_url = match format.raw_path(p) {
        Some(path) => format!("/{fq}/{path}"),
        None => format!("/api/v1/repos/{fq}/{target}/{file}{query}"),
    };
    let self_url = match &release {
        Some(release) => format!("{package_root}/{version}/{release}.json"),
        None => format!("{package_root}/{}.json", p.version),
    };
    api::Package {
        name: p.name.clone(),
        distro_version: target.clone(),
        created_at: timestamp(p.created_at),
        version,
        release: release.clone(),
        epoch,
        architecture: p.architecture.clone(),
        package_type: p.format.clone(),
        filename: p.filename.clone(),
        size: p.size.to_string(),
        md5sum: p.md5.clone(),
        sha1sum: p.sha1.clone(),
        sha256sum: p.sha256.clone(),
        sha512sum: p.sha512.clone(),
        indexed: p.indexed,
        dependencies: serde_json::from_str(&p.dependencies).unwrap_or_default(),
        repository_html_url: format!("/{fq}"),
        package_url: self_url.clone(),
        package_html_url: format!("/{fq}/packages/{target}/{}", p.filename),
        download_url: format!(
            "{base}{}",
            format.url_path(&repo.owner, &repo.name, distro, p)
        ),
        versions_url: format!("{package_root}/versions.json"),
        downloads_count_url: format!(
            "{}/stats/downloads/count.json",
            self_url.trim_end_matches(".json")
        ),
        downloads_detail_url: format!(
            "{}/stats/downloads/detail.json",
            self_url.trim_end_matches(".json")
        ),
        downloads_series_url: format!(
            "{}/stats/downloads/series/daily.json",
            self_url.trim_end_matches(".json")
        ),
        promote_url: format!("/api/v1/repos/{fq}/{target}/{file}/promote.json{query}"),
        destroy_url,
        self_url,
        image: None,
    }
}

/// Adds what a container image's manifest has beyond a package (`images::details`) to those of
/// `packages` that are manifests; `presented` is `packages` presented, in the same order.
pub async fn add_image_details(
    app: &crate::app::App,
    packages: &[Package],
    presented: &mut [api::Package],
) -> anyhow::Result<()> {
    for (package, shown) in packages.iter().zip(presented.iter_mut()) {
        if package.format == crate::formats::PackageFormat::Oci.name() {
            shown.image = Some(crate::images::details(app, package).await?);
        }
    }
    Ok(())
}
