//! Container images and OCI artifacts, served by the registry at `/v2/` (`http/registry/`).
//!
//! Each manifest is a package row in the distribution `oci/1`: named after its image (the
//! part of the registry name after `OWNER/REPO/`), its digest as version, its platform (or
//! `index`, or `artifact`) as architecture, stored as `IMAGE@DIGEST`, sized as the manifest
//! and everything it refers to. So API v1's lists, search, show, destroy and download counts,
//! the web UI's lists and the collector treat images as they treat any package. What the
//! registry needs besides (the blobs each image holds, references, tags and their history,
//! upload sessions) is in `db/oci.rs`; the domain actions (push, tag, rollback, delete) are in
//! `images.rs`.

use crate::db::packages::Package;

/// Why an image cannot come through API v1's push.
pub const NOT_THROUGH_API: &str = "container images are pushed with an OCI client (skopeo, \
     podman, docker, oras, helm) to the registry at /v2/OWNER/REPO/IMAGE, not through API v1";

/// The architecture of a manifest that is an index of others.
pub const INDEX: &str = "index";
/// The architecture of a manifest whose config is not an image configuration.
pub const ARTIFACT: &str = "artifact";

/// The stored file name of a manifest of `image`.
pub fn filename(image: &str, sha256: &str) -> String {
    format!("{image}@sha256:{sha256}")
}

/// A manifest's place in the registry, relative to `/OWNER/REPO/` as `file_path` is for
/// other formats (where the web UI's `/download` link goes, through `url_path`).
pub fn file_path(package: &Package) -> String {
    format!("{}/manifests/sha256:{}", package.name, package.sha256)
}

/// `/v2/OWNER/REPO/IMAGE/manifests/DIGEST`.
pub fn url_path(owner: &str, repo: &str, package: &Package) -> String {
    format!("/v2/{owner}/{repo}/{}", file_path(package))
}
