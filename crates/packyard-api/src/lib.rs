//! Request and response bodies of the packagecloud-compatible HTTP API v1, shared by the
//! server and clients. Field names and shapes follow what the `package_cloud` CLI reads.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `GET /api/v1/distributions.json`: package type (`deb`, `rpm`, ...) to OS families.
pub type Distributions = BTreeMap<String, Vec<DistributionFamily>>;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DistributionFamily {
    pub display_name: String,
    pub index_name: String,
    pub versions: Vec<DistributionVersion>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DistributionVersion {
    pub id: i64,
    pub display_name: String,
    pub index_name: String,
    pub version_number: String,
}

/// `POST /api/v1/repos.json`, as JSON (`{"repository": {...}}`) or as form fields
/// `repository[name]`, `repository[private]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateRepository {
    pub repository: NewRepository,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NewRepository {
    pub name: String,
    /// packagecloud's clients send `"1"`/`"0"`, JSON clients a boolean.
    #[serde(default)]
    pub private: Option<Flag>,
    /// Also publish `Packages.zst`, compressed incrementally like `Packages.gz`.
    #[serde(default)]
    pub index_zstd: Option<Flag>,
    /// Also publish `Packages.xz`, recompressed whole on every publish (apt cannot read a
    /// multi-stream xz, so it cannot be updated incrementally).
    #[serde(default)]
    pub index_xz: Option<Flag>,
}

/// A boolean that may arrive as `true`, `"1"`, `"true"` or `1`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Flag {
    Bool(bool),
    Text(String),
    Number(i64),
}

impl Flag {
    pub fn is_set(&self) -> bool {
        match self {
            Flag::Bool(b) => *b,
            Flag::Text(s) => matches!(s.as_str(), "1" | "true" | "on" | "yes"),
            Flag::Number(n) => *n != 0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Repository {
    pub name: String,
    pub created_at: String,
    pub url: String,
    pub last_push_human: String,
    pub package_count_human: String,
    pub private: bool,
    pub fqname: String,
    pub paths: RepositoryPaths,
    pub urls: RepositoryUrls,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RepositoryPaths {
    pub create_package: String,
    pub package_contents: String,
    pub master_tokens: String,
    pub create_master_token: String,
    pub gpg_keys: String,
    #[serde(rename = "self")]
    pub self_: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RepositoryUrls {
    pub install_script: String,
}

/// One package, as push, show and versions answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Package {
    pub name: String,
    pub distro_version: String,
    pub created_at: String,
    pub version: String,
    pub release: Option<String>,
    pub epoch: Option<i64>,
    pub architecture: String,
    pub package_type: String,
    pub filename: String,
    /// A string, as packagecloud sends it.
    pub size: String,
    pub md5sum: String,
    pub sha1sum: String,
    pub sha256sum: String,
    pub sha512sum: String,
    pub indexed: bool,
    pub dependencies: BTreeMap<String, Vec<String>>,
    pub repository_html_url: String,
    pub package_url: String,
    pub package_html_url: String,
    pub download_url: String,
    pub self_url: String,
    pub versions_url: String,
    pub promote_url: String,
    pub downloads_count_url: String,
    pub downloads_detail_url: String,
    pub downloads_series_url: String,
    pub destroy_url: String,
    /// For a container image's manifest (`package_type` `oci`): its image, digest, media type,
    /// platforms, the manifest's own size and the total, and its tags with their pulls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<serde_json::Value>,
}
