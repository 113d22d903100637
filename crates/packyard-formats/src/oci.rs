//! OCI distribution (the registry API at `/v2/`): repository names and tags as the
//! distribution specification 1.1 spells them, digests, the descriptors an image manifest or
//! index refers to, the platform an image configuration names, and the inclusive byte ranges of
//! chunked uploads.
//!
//! Manifests are stored byte for byte as they were pushed; only what the registry must check
//! (the blobs and child manifests they refer to, their subject) and what the product shows
//! (platforms, sizes, artifact types) is read from them.

use serde::Deserialize;
use thiserror::Error;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_IMAGE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_IMAGE_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// Manifests larger than this are refused, as other registries refuse them (4 MiB).
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;
/// The most descriptors one manifest may list.
pub const MAX_DESCRIPTORS: usize = 10_000;

/// Whether `name` is a repository name of the distribution specification: lowercase
/// components of `[a-z0-9]` joined by `.`, `_`, `__` or runs of `-`, separated by `/`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 255 && name.split('/').all(is_name_component)
}

fn is_name_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !alnum(first) || !alnum(last) {
        return false;
    }
    // Separators between alphanumeric runs: one '.', one or two '_', or any number of '-'.
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let ok = separator == "."
            || separator == "_"
            || separator == "__"
            || separator.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// Whether `tag` is a tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn is_valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    match bytes.split_first() {
        Some((first, rest)) => {
            word(first) && rest.len() <= 127 && rest.iter().all(|b| word(b) || b"._-".contains(b))
        }
        None => false,
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DigestError {
    #[error("digest {0:?} is not ALGORITHM:HEX")]
    Malformed(String),
    #[error("digest algorithm {0:?} is not supported; use sha256")]
    Unsupported(String),
}

/// The hex of a `sha256:` digest (64 lowercase hex digits), the only algorithm stored.
pub fn sha256_of_digest(digest: &str) -> Result<&str, DigestError> {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(DigestError::Malformed(digest.to_owned()));
    };
    let algorithm_ok = !algorithm.is_empty()
        && algorithm
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b));
    if !algorithm_ok || hex.is_empty() {
        return Err(DigestError::Malformed(digest.to_owned()));
    }
    if algorithm != "sha256" {
        return Err(DigestError::Unsupported(algorithm.to_owned()));
    }
    let is_hex = hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if is_hex {
        Ok(hex)
    } else {
        Err(DigestError::Malformed(digest.to_owned()))
    }
}

/// Whether a manifest reference (the last segment of `/v2/NAME/manifests/REF`) is a digest
/// rather than a tag.
pub fn is_digest_reference(reference: &str) -> bool {
    reference.contains(':')
}

/// What a descriptor points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    /// `os/architecture[/variant]`, for the entries of an index.
    pub platform: Option<String>,
    pub artifact_type: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An image manifest (or an artifact in one): a config and layers, all blobs.
    Image,
    /// An image index or manifest list: other manifests.
    Index,
}

/// What a manifest refers to, read from its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub media_type: String,
    pub kind: Kind,
    pub config: Option<Descriptor>,
    pub layers: Vec<Descriptor>,
    pub manifests: Vec<Descriptor>,
    pub subject: Option<Descriptor>,
    /// The manifest's `artifactType`, or for an image manifest whose config is not an image
    /// configuration, the config's media type (as the referrers API reports it).
    pub artifact_type: Option<String>,
}

impl Manifest {
    /// Every blob an image manifest refers to: its config, then its layers.
    pub fn blobs(&self) -> impl Iterator<Item = &Descriptor> {
        self.config.iter().chain(&self.layers)
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ManifestError {
    #[error("the manifest is larger than {MAX_MANIFEST_BYTES} bytes")]
    TooLarge,
    #[error("the manifest is not valid JSON: {0}")]
    Json(String),
    #[error("{0}")]
    Invalid(String),
    #[error("manifest media type {0:?} is not supported (Docker schema 1 manifests are not)")]
    Unsupported(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: Option<i64>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<RawDescriptor>,
    layers: Option<Vec<RawDescriptor>>,
    manifests: Option<Vec<RawDescriptor>>,
    subject: Option<RawDescriptor>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    media_type: Option<String>,
    digest: Option<String>,
    size: Option<i64>,
    platform: Option<RawPlatform>,
    artifact_type: Option<String>,
}

#[derive(Deserialize)]
struct RawPlatform {
    os: Option<String>,
    architecture: Option<String>,
    variant: Option<String>,
}

impl RawPlatform {
    fn render(&self) -> Option<String> {
        let os = self.os.as_deref().filter(|s| !s.is_empty())?;
        let arch = self.architecture.as_deref().filter(|s| !s.is_empty())?;
        let platform = match self.variant.as_deref().filter(|s| !s.is_empty()) {
            Some(variant) => format!("{os}/{arch}/{variant}"),
            None => format!("{os}/{arch}"),
        };
        // Platforms are shown and used as architectures: keep them short and plain.
        let plain = platform.len() <= 64
            && platform
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b));
        plain.then_some(platform)
    }
}

fn descriptor(raw: RawDescriptor, what: &str) -> Result<Descriptor, ManifestError> {
    let invalid = |why: &str| ManifestError::Invalid(format!("{what}: {why}"));
    let media_type = raw.media_type.ok_or_else(|| invalid("no mediaType"))?;
    let digest = raw.digest.ok_or_else(|| invalid("no digest"))?;
    sha256_of_digest(&digest).map_err(|e| invalid(&e.to_string()))?;
    let size = raw
        .size
        .and_then(|s| u64::try_from(s).ok())
        .ok_or_else(|| invalid("no size, or a negative one"))?;
    Ok(Descriptor {
        media_type,
        digest,
        size,
        platform: raw.platform.as_ref().and_then(RawPlatform::render),
        artifact_type: raw.artifact_type,
    })
}

fn is_index_type(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

fn is_manifest_type(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

/// Reads a pushed manifest. `content_type` is the request's `Content-Type`, which names the
/// manifest's media type; a `mediaType` field inside must agree with it.
pub fn parse_manifest(bytes: &[u8], content_type: Option<&str>) -> Result<Manifest, ManifestError> {
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(ManifestError::TooLarge);
    }
    let raw: RawManifest =
        serde_json::from_slice(bytes).map_err(|e| ManifestError::Json(e.to_string()))?;
    let header = content_type
        .map(|t| t.split(';').next().unwrap_or_default().trim())
        .filter(|t| !t.is_empty() && *t != "application/json" && *t != "application/octet-stream");
    let media_type = match (header, raw.media_type.as_deref()) {
        (Some(h), Some(field)) if h != field => {
            return Err(ManifestError::Invalid(format!(
                "the manifest's mediaType {field:?} differs from its Content-Type {h:?}"
            )));
        }
        (Some(h), _) => h.to_owned(),
        (None, Some(field)) => field.to_owned(),
        (None, None) if raw.manifests.is_some() => OCI_INDEX.to_owned(),
        (None, None) => OCI_MANIFEST.to_owned(),
    };
    if media_type.starts_with("application/vnd.docker.distribution.manifest.v1") {
        return Err(ManifestError::Unsupported(media_type));
    }
    if raw.schema_version != Some(2) {
        return Err(ManifestError::Invalid("schemaVersion must be 2".into()));
    }
    let kind = if is_index_type(&media_type) {
        Kind::Index
    } else if is_manifest_type(&media_type) {
        Kind::Image
    } else {
        return Err(ManifestError::Unsupported(media_type));
    };
    let count =
        raw.layers.as_ref().map_or(0, Vec::len) + raw.manifests.as_ref().map_or(0, Vec::len);
    if count > MAX_DESCRIPTORS {
        return Err(ManifestError::Invalid(format!(
            "the manifest lists {count} descriptors, more than {MAX_DESCRIPTORS}"
        )));
    }
    let subject = raw.subject.map(|s| descriptor(s, "subject")).transpose()?;
    let manifest = match kind {
        Kind::Image => {
            let config = raw
                .config
                .ok_or_else(|| ManifestError::Invalid("an image manifest needs a config".into()))?;
            let config = descriptor(config, "config")?;
            let layers = raw
                .layers
                .unwrap_or_default()
                .into_iter()
                .enumerate()
                .map(|(i, l)| descriptor(l, &format!("layer {i}")))
                .collect::<Result<Vec<_>, _>>()?;
            let is_image_config =
                config.media_type == OCI_IMAGE_CONFIG || config.media_type == DOCKER_IMAGE_CONFIG;
            let artifact_type = raw
                .artifact_type
                .or_else(|| (!is_image_config).then(|| config.media_type.clone()));
            Manifest {
                media_type,
                kind,
                config: Some(config),
                layers,
                manifests: Vec::new(),
                subject,
                artifact_type,
            }
        }
        Kind::Index => {
            let manifests = raw
                .manifests
                .ok_or_else(|| ManifestError::Invalid("an index needs manifests".into()))?
                .into_iter()
                .enumerate()
                .map(|(i, m)| descriptor(m, &format!("manifest {i}")))
                .collect::<Result<Vec<_>, _>>()?;
            Manifest {
                media_type,
                kind,
                config: None,
                layers: Vec::new(),
                manifests,
                subject,
                artifact_type: raw.artifact_type,
            }
        }
    };
    Ok(manifest)
}

/// The platform an image configuration names, `os/architecture[/variant]`.
pub fn config_platform(bytes: &[u8]) -> Option<String> {
    serde_json::from_slice::<RawPlatform>(bytes)
        .ok()
        .and_then(|p| p.render())
}

/// The inclusive byte range of a chunk, `START-END` as `Content-Range` and `Range` carry it in
/// the registry API (with or without a `bytes=` or `bytes ` prefix). Returns the start and the
/// end (inclusive).
pub fn parse_chunk_range(value: &str) -> Option<(u64, u64)> {
    let value = value.trim();
    let value = value
        .strip_prefix("bytes=")
        .or_else(|| value.strip_prefix("bytes "))
        .unwrap_or(value);
    let value = value.split('/').next()?;
    let (start, end) = value.split_once('-')?;
    let (start, end) = (start.trim().parse().ok()?, end.trim().parse().ok()?);
    (start <= end).then_some((start, end))
}

/// The `Range` header of an upload session holding `size` bytes: `0-(size-1)`, and `0-0` for
/// an empty one (clients read the end as the last byte they sent).
pub fn session_range(size: u64) -> String {
    format!("0-{}", size.saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn names_follow_the_grammar() {
        for ok in [
            "a",
            "acme/stable/demo",
            "a.b/c_d/e__f/g--h",
            "x0/1y",
            "a-----b",
        ] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in [
            "", "A", "a/", "/a", "a//b", "-a", "a-", "a..b", "a___b", "a._b", "a b", "é",
        ] {
            assert!(!is_valid_name(bad), "{bad}");
        }
        assert!(!is_valid_name(&"a".repeat(256)));
    }

    #[test]
    fn tags_follow_the_grammar() {
        assert!(is_valid_tag("1.0"));
        assert!(is_valid_tag("_x-Y.z"));
        assert!(is_valid_tag(&"a".repeat(128)));
        assert!(!is_valid_tag(&"a".repeat(129)));
        assert!(!is_valid_tag(".a"));
        assert!(!is_valid_tag("-a"));
        assert!(!is_valid_tag("a/b"));
        assert!(!is_valid_tag(""));
    }

    #[test]
    fn digests_are_sha256_hex() {
        assert_eq!(sha256_of_digest(D).unwrap(), &D[7..]);
        assert_eq!(
            sha256_of_digest("sha512:abcd"),
            Err(DigestError::Unsupported("sha512".into()))
        );
        assert!(matches!(
            sha256_of_digest("sha256:ABC"),
            Err(DigestError::Malformed(_))
        ));
        assert!(matches!(
            sha256_of_digest(&D.to_uppercase()),
            Err(DigestError::Malformed(_))
        ));
        assert!(matches!(
            sha256_of_digest("nocolon"),
            Err(DigestError::Malformed(_))
        ));
        assert!(matches!(
            sha256_of_digest("sha256:../../x"),
            Err(DigestError::Malformed(_))
        ));
    }

    fn image(config_type: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}",
            "config":{{"mediaType":"{config_type}","digest":"{D}","size":2}},
            "layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{D}","size":10}}]}}"#
        )
    }

    #[test]
    fn an_image_manifest_lists_its_blobs() {
        let m = parse_manifest(image(OCI_IMAGE_CONFIG).as_bytes(), Some(OCI_MANIFEST)).unwrap();
        assert_eq!(m.kind, Kind::Image);
        assert_eq!(m.blobs().count(), 2);
        assert_eq!(m.layers[0].size, 10);
        assert_eq!(m.artifact_type, None);
        // An artifact: its config's media type is its type.
        let helm = "application/vnd.cncf.helm.config.v1+json";
        let m = parse_manifest(image(helm).as_bytes(), None).unwrap();
        assert_eq!(m.artifact_type.as_deref(), Some(helm));
    }

    #[test]
    fn media_types_must_agree() {
        let err = parse_manifest(image(OCI_IMAGE_CONFIG).as_bytes(), Some(DOCKER_MANIFEST));
        assert!(matches!(err, Err(ManifestError::Invalid(_))));
        let v1 = r#"{"schemaVersion":1,"name":"x"}"#;
        let err = parse_manifest(
            v1.as_bytes(),
            Some("application/vnd.docker.distribution.manifest.v1+prettyjws"),
        );
        assert!(matches!(err, Err(ManifestError::Unsupported(_))));
    }

    #[test]
    fn an_index_lists_platforms() {
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[
            {{"mediaType":"{OCI_MANIFEST}","digest":"{D}","size":5,"platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}},
            {{"mediaType":"{OCI_MANIFEST}","digest":"{D}","size":5,"platform":{{"os":"linux","architecture":"amd 64"}}}}]}}"#
        );
        let m = parse_manifest(index.as_bytes(), None).unwrap();
        assert_eq!(m.kind, Kind::Index);
        assert_eq!(m.manifests[0].platform.as_deref(), Some("linux/arm64/v8"));
        // Not plain enough to show: dropped rather than trusted.
        assert_eq!(m.manifests[1].platform, None);
    }

    #[test]
    fn bad_manifests_are_refused() {
        for bad in [
            "not json",
            r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#,
            r#"{"schemaVersion":3,"config":{"mediaType":"x","digest":"sha256:00","size":1}}"#,
            r#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:00","size":-1}}"#,
        ] {
            assert!(parse_manifest(bad.as_bytes(), None).is_err(), "{bad}");
        }
        let huge = vec![b' '; MAX_MANIFEST_BYTES + 1];
        assert_eq!(parse_manifest(&huge, None), Err(ManifestError::TooLarge));
    }

    #[test]
    fn config_names_its_platform() {
        let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}}"#;
        assert_eq!(config_platform(config).as_deref(), Some("linux/amd64"));
        assert_eq!(config_platform(b"{}"), None);
    }

    #[test]
    fn chunk_ranges_are_inclusive() {
        assert_eq!(parse_chunk_range("0-99"), Some((0, 99)));
        assert_eq!(parse_chunk_range("bytes=100-199"), Some((100, 199)));
        assert_eq!(parse_chunk_range("bytes 5-9/10"), Some((5, 9)));
        assert_eq!(parse_chunk_range("9-5"), None);
        assert_eq!(parse_chunk_range("x"), None);
        assert_eq!(session_range(0), "0-0");
        assert_eq!(session_range(10), "0-9");
    }
}
