//! Python distributions and the simple repository API.
//!
//! Specs followed: the core metadata specification (METADATA / PKG-INFO), the binary
//! distribution format (wheel file names, `*.dist-info/METADATA`), the source distribution
//! format (`NAME-VERSION/PKG-INFO`), PEP 440 versions (through `pep440_rs`), PEP 503 names,
//! and the simple repository API (PEP 503 HTML, PEP 691 JSON, PEP 658/714 metadata files,
//! PEP 592 yanking, PEP 700 sizes and versions).

use std::io::{Read, Seek};
use std::str::FromStr;

use pep440_rs::Version;
use thiserror::Error;

use crate::markup::escape;

/// The largest METADATA or PKG-INFO read: real ones are well under this, README included.
pub const MAX_METADATA_BYTES: u64 = 4 << 20;
/// The longest header field kept (the description is the body, not a header).
const MAX_FIELD_BYTES: usize = 64 * 1024;
/// The most archive entries looked at, and bytes decompressed, while finding the metadata.
const MAX_ENTRIES: usize = 100_000;
const MAX_SDIST_SCAN_BYTES: u64 = 512 << 20;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PypiError {
    #[error(
        "{0:?} is not a wheel (NAME-VERSION[-BUILD]-PY-ABI-PLATFORM.whl) or sdist (NAME-VERSION.tar.gz or .zip) file name"
    )]
    FileName(String),
    #[error(
        "{0:?} is not a valid project name (letters, digits, '.', '_' and '-', starting and ending with a letter or digit)"
    )]
    Name(String),
    #[error("{0:?} is not a PEP 440 version")]
    Version(String),
    #[error("the file is not a readable {kind}: {detail}")]
    Archive { kind: &'static str, detail: String },
    #[error("the file holds no {0}")]
    NoMetadata(&'static str),
    #[error("{0} is larger than {MAX_METADATA_BYTES} bytes")]
    MetadataTooLarge(&'static str),
    #[error("the metadata is not valid: {0}")]
    Metadata(String),
    #[error("the file name says {file_name} {file_version}, its metadata {name} {version}")]
    Mismatch {
        file_name: String,
        file_version: String,
        name: String,
        version: String,
    },
}

/// PEP 503's normalized name: lower case, runs of `-`, `_` and `.` as one `-`.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut separator = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            separator = true;
            continue;
        }
        if separator && !out.is_empty() {
            out.push('-');
        }
        separator = false;
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// Whether `name` is a valid project name (core metadata's `Name`).
pub fn is_valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 200
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A PEP 440 version in its normalized form (`1.0alpha1` is `1.0a1`, `v1.0` is `1.0`).
pub fn normalize_version(version: &str) -> Result<Version, PypiError> {
    Version::from_str(version.trim()).map_err(|_| PypiError::Version(version.to_owned()))
}

/// What kind of distribution a file is, from its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A wheel with its tags (`py3-none-any`, with a build tag first when it has one).
    Wheel { tags: String },
    /// A source distribution.
    Sdist,
}

impl Kind {
    /// twine's `filetype`.
    pub fn filetype(&self) -> &'static str {
        match self {
            Kind::Wheel { .. } => "bdist_wheel",
            Kind::Sdist => "sdist",
        }
    }
}

/// A distribution's file name, split: the name and version as written, and the kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName {
    pub name: String,
    pub version: String,
    pub kind: Kind,
}

pub fn parse_file_name(filename: &str) -> Result<FileName, PypiError> {
    let bad = || PypiError::FileName(filename.to_owned());
    let plain = !filename.is_empty()
        && filename.len() <= 255
        && !filename.starts_with('.')
        && filename
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+' | b'!'));
    if !plain {
        return Err(bad());
    }
    if let Some(stem) = filename.strip_suffix(".whl") {
        let parts: Vec<&str> = stem.split('-').collect();
        let (name, version, tags) = match parts.as_slice() {
            [name, version, py, abi, platform] => (name, version, format!("{py}-{abi}-{platform}")),
            [name, version, build, py, abi, platform] => {
                (name, version, format!("{build}-{py}-{abi}-{platform}"))
            }
            _ => return Err(bad()),
        };
        return Ok(FileName {
            name: name.to_string(),
            version: version.to_string(),
            kind: Kind::Wheel { tags },
        });
    }
    let stem = filename
        .strip_suffix(".tar.gz")
        .or_else(|| filename.strip_suffix(".zip"))
        .ok_or_else(bad)?;
    let (name, version) = stem.rsplit_once('-').ok_or_else(bad)?;
    if name.is_empty() || version.is_empty() {
        return Err(bad());
    }
    Ok(FileName {
        name: name.to_owned(),
        version: version.to_owned(),
        kind: Kind::Sdist,
    })
}

/// The fields of core metadata the repository uses, and the text itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreMetadata {
    pub metadata_version: String,
    pub name: String,
    pub version: String,
    pub summary: Option<String>,
    pub requires_python: Option<String>,
    pub requires_dist: Vec<String>,
}

/// Parses METADATA or PKG-INFO: RFC 822 style headers up to the first blank line.
pub fn parse_metadata(text: &[u8]) -> Result<CoreMetadata, PypiError> {
    if text.len() as u64 > MAX_METADATA_BYTES {
        return Err(PypiError::MetadataTooLarge("the metadata"));
    }
    let text =
        std::str::from_utf8(text).map_err(|_| PypiError::Metadata("it is not UTF-8".into()))?;
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            let (_, value) = fields
                .last_mut()
                .ok_or_else(|| PypiError::Metadata("it starts with a continuation line".into()))?;
            value.push('\n');
            value.push_str(line.trim());
        } else {
            let (name, value) = line.split_once(':').ok_or_else(|| {
                PypiError::Metadata(format!("line {line:?} is not `Field: value`"))
            })?;
            fields.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        if fields
            .last()
            .is_some_and(|(_, v)| v.len() > MAX_FIELD_BYTES)
        {
            return Err(PypiError::Metadata(format!(
                "the field {} is longer than {MAX_FIELD_BYTES} bytes",
                fields.last().map(|(n, _)| n.as_str()).unwrap_or_default()
            )));
        }
    }
    let one = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let name = one("Name").ok_or_else(|| PypiError::Metadata("it has no Name".into()))?;
    if !is_valid_name(&name) {
        return Err(PypiError::Name(name));
    }
    let version = one("Version").ok_or_else(|| PypiError::Metadata("it has no Version".into()))?;
    normalize_version(&version)?;
    let summary = one("Summary");
    if summary.as_ref().is_some_and(|s| s.len() > 512) {
        return Err(PypiError::Metadata(
            "Summary is longer than 512 characters".into(),
        ));
    }
    Ok(CoreMetadata {
        metadata_version: one("Metadata-Version").unwrap_or_else(|| "1.0".into()),
        name,
        version,
        summary,
        requires_python: one("Requires-Python").filter(|v| !v.is_empty()),
        requires_dist: fields
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("Requires-Dist"))
            .map(|(_, v)| v.clone())
            .collect(),
    })
}

/// Reads a bounded entry in full, refusing one larger than `MAX_METADATA_BYTES` whatever
/// its header claims.
fn read_bounded(entry: impl Read, what: &'static str) -> Result<Vec<u8>, PypiError> {
    let mut out = Vec::new();
    entry
        .take(MAX_METADATA_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| PypiError::Archive {
            kind: "archive",
            detail: e.to_string(),
        })?;
    if out.len() as u64 > MAX_METADATA_BYTES {
        return Err(PypiError::MetadataTooLarge(what));
    }
    Ok(out)
}

/// The `NAME-VERSION.dist-info/METADATA` of a wheel, verbatim (PEP 658 serves these bytes).
pub fn read_wheel_metadata<R: Read + Seek>(file: R) -> Result<Vec<u8>, PypiError> {
    let bad = |e: zip::result::ZipError| PypiError::Archive {
        kind: "wheel (zip)",
        detail: e.to_string(),
    };
    let mut archive = zip::ZipArchive::new(file).map_err(bad)?;
    if archive.len() > MAX_ENTRIES {
        return Err(PypiError::Archive {
            kind: "wheel (zip)",
            detail: format!("more than {MAX_ENTRIES} entries"),
        });
    }
    let found: Vec<String> = archive
        .file_names()
        .filter(|n| {
            n.split_once('/')
                .is_some_and(|(dir, file)| dir.ends_with(".dist-info") && file == "METADATA")
        })
        .map(str::to_owned)
        .collect();
    let [path] = found.as_slice() else {
        return Err(PypiError::NoMetadata("single .dist-info/METADATA"));
    };
    let entry = archive.by_name(path).map_err(bad)?;
    if entry.size() > MAX_METADATA_BYTES {
        return Err(PypiError::MetadataTooLarge("METADATA"));
    }
    read_bounded(entry, "METADATA")
}

/// The `NAME-VERSION/PKG-INFO` of a source distribution (`.tar.gz` or `.zip`).
pub fn read_sdist_metadata<R: Read + Seek>(file: R, zip: bool) -> Result<Vec<u8>, PypiError> {
    let is_pkg_info = |path: &str| {
        path.split_once('/')
            .is_some_and(|(dir, file)| !dir.is_empty() && file == "PKG-INFO")
    };
    if zip {
        let bad = |e: zip::result::ZipError| PypiError::Archive {
            kind: "sdist (zip)",
            detail: e.to_string(),
        };
        let mut archive = zip::ZipArchive::new(file).map_err(bad)?;
        let path = archive
            .file_names()
            .find(|n| is_pkg_info(n))
            .map(str::to_owned)
            .ok_or(PypiError::NoMetadata("PKG-INFO"))?;
        let entry = archive.by_name(&path).map_err(bad)?;
        return read_bounded(entry, "PKG-INFO");
    }
    let bad = |e: std::io::Error| PypiError::Archive {
        kind: "sdist (.tar.gz)",
        detail: e.to_string(),
    };
    // Bounded: a gzip bomb stops at the scan limit instead of filling memory or time.
    let gz = flate2::read::GzDecoder::new(file).take(MAX_SDIST_SCAN_BYTES);
    let mut archive = tar::Archive::new(gz);
    for (index, entry) in archive.entries().map_err(bad)?.enumerate() {
        if index >= MAX_ENTRIES {
            break;
        }
        let entry = entry.map_err(bad)?;
        let path = entry.path().map_err(bad)?.to_string_lossy().into_owned();
        if is_pkg_info(&path) {
            return read_bounded(entry, "PKG-INFO");
        }
    }
    Err(PypiError::NoMetadata("NAME-VERSION/PKG-INFO"))
}

/// Checks that a file's name and its metadata agree, as PyPI does. Returns the metadata's
/// name and its normalized version.
pub fn check_agreement(file: &FileName, metadata: &CoreMetadata) -> Result<(), PypiError> {
    let mismatch = || PypiError::Mismatch {
        file_name: file.name.clone(),
        file_version: file.version.clone(),
        name: metadata.name.clone(),
        version: metadata.version.clone(),
    };
    if normalize_name(&file.name) != normalize_name(&metadata.name) {
        return Err(mismatch());
    }
    let (from_file, from_metadata) = (
        normalize_version(&file.version)?,
        normalize_version(&metadata.version)?,
    );
    if from_file != from_metadata {
        return Err(mismatch());
    }
    Ok(())
}

/// A file as the project page lists it.
pub struct ListedFile<'a> {
    pub filename: &'a str,
    /// Relative to the project page (`../../files/SHA256/FILENAME`).
    pub url: &'a str,
    pub sha256: &'a str,
    pub size: u64,
    pub upload_time: &'a str,
    pub requires_python: Option<&'a str>,
    /// The SHA-256 of the file's METADATA when it is served beside it (wheels).
    pub metadata_sha256: Option<&'a str>,
    /// `Some("")` when yanked without a reason.
    pub yanked: Option<&'a str>,
}

impl<'a> ListedFile<'a> {
    /// Reads back what `json_file` wrote, to render a file again (when it is yanked).
    pub fn from_json(value: &'a serde_json::Value) -> Option<ListedFile<'a>> {
        Some(ListedFile {
            filename: value["filename"].as_str()?,
            url: value["url"].as_str()?,
            sha256: value["hashes"]["sha256"].as_str()?,
            size: value["size"].as_u64()?,
            upload_time: value["upload-time"].as_str()?,
            requires_python: value["requires-python"].as_str(),
            metadata_sha256: value["core-metadata"]["sha256"].as_str(),
            yanked: match &value["yanked"] {
                serde_json::Value::String(reason) => Some(reason),
                serde_json::Value::Bool(true) => Some(""),
                _ => None,
            },
        })
    }
}

/// The file's anchor on the HTML project page (PEP 503, 592, 658, 714).
pub fn html_anchor(file: &ListedFile<'_>) -> String {
    let mut out = format!(
        "    <a href=\"{}#sha256={}\"",
        escape(file.url),
        file.sha256
    );
    if let Some(requires) = file.requires_python {
        out.push_str(&format!(" data-requires-python=\"{}\"", escape(requires)));
    }
    if let Some(sha256) = file.metadata_sha256 {
        out.push_str(&format!(
            " data-core-metadata=\"sha256={sha256}\" data-dist-info-metadata=\"sha256={sha256}\""
        ));
    }
    match file.yanked {
        Some("") => out.push_str(" data-yanked"),
        Some(reason) => out.push_str(&format!(" data-yanked=\"{}\"", escape(reason))),
        None => {}
    }
    out.push_str(&format!(">{}</a><br/>\n", escape(file.filename)));
    out
}

/// The file's object in the JSON project page (PEP 691, 700, 714).
pub fn json_file(file: &ListedFile<'_>) -> serde_json::Value {
    let mut object = serde_json::json!({
        "filename": file.filename,
        "url": file.url,
        "hashes": { "sha256": file.sha256 },
        "size": file.size,
        "upload-time": file.upload_time,
        "yanked": match file.yanked {
            None => serde_json::Value::Bool(false),
            Some("") => serde_json::Value::Bool(true),
            Some(reason) => serde_json::Value::String(reason.to_owned()),
        },
    });
    if let Some(requires) = file.requires_python {
        object["requires-python"] = requires.into();
    }
    if let Some(sha256) = file.metadata_sha256 {
        object["core-metadata"] = serde_json::json!({ "sha256": sha256 });
    }
    object
}

pub const API_VERSION: &str = "1.1";

/// The HTML project page from anchors rendered by `html_anchor`.
pub fn html_project_page(name: &str, anchors: &[&str]) -> String {
    let name = escape(name);
    let mut out = format!(
        "<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"{API_VERSION}\">\n    <title>Links for {name}</title>\n  </head>\n  <body>\n    <h1>Links for {name}</h1>\n"
    );
    for anchor in anchors {
        out.push_str(anchor);
    }
    out.push_str("  </body>\n</html>\n");
    out
}

/// The JSON project page from file objects rendered by `json_file` and the versions (in
/// PEP 440 order).
pub fn json_project_page(name: &str, versions: &[String], files: &[&str]) -> String {
    let versions = serde_json::to_string(versions).expect("strings serialize");
    format!(
        "{{\"meta\":{{\"api-version\":\"{API_VERSION}\"}},\"name\":{},\"versions\":{versions},\"files\":[{}]}}",
        serde_json::Value::String(name.to_owned()),
        files.join(",")
    )
}

/// The HTML root page listing every project (normalized names, sorted).
pub fn html_root_page(names: &[String]) -> String {
    let mut out = format!(
        "<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"{API_VERSION}\">\n    <title>Simple index</title>\n  </head>\n  <body>\n"
    );
    for name in names {
        let name = escape(name);
        out.push_str(&format!("    <a href=\"{name}/\">{name}</a><br/>\n"));
    }
    out.push_str("  </body>\n</html>\n");
    out
}

pub fn json_root_page(names: &[String]) -> String {
    let projects: Vec<serde_json::Value> = names
        .iter()
        .map(|name| serde_json::json!({ "name": name }))
        .collect();
    serde_json::json!({ "meta": { "api-version": API_VERSION }, "projects": projects }).to_string()
}

/// A path under `/OWNER/REPO/pypi/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PypiPath {
    /// `simple/` (`slash` false for `simple`, which redirects).
    Root { slash: bool },
    /// `simple/NAME/` as requested (`slash` false without the trailing slash).
    Project { name: String, slash: bool },
    /// `files/SHA256/FILENAME`
    File { sha256: String, filename: String },
    /// `files/SHA256/FILENAME.metadata` (PEP 658)
    Metadata { sha256: String, filename: String },
    /// `` or `legacy/`: where twine uploads.
    Upload,
}

impl PypiPath {
    pub fn parse(path: &str) -> Option<PypiPath> {
        match path {
            "" | "legacy" | "legacy/" => return Some(PypiPath::Upload),
            "simple" => return Some(PypiPath::Root { slash: false }),
            "simple/" => return Some(PypiPath::Root { slash: true }),
            _ => {}
        }
        if let Some(rest) = path.strip_prefix("simple/") {
            let (name, slash) = match rest.strip_suffix('/') {
                Some(name) => (name, true),
                None => (rest, false),
            };
            return is_valid_name(name).then(|| PypiPath::Project {
                name: name.to_owned(),
                slash,
            });
        }
        let (sha256, filename) = path.strip_prefix("files/")?.split_once('/')?;
        let hex = sha256.len() == 64
            && sha256
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !hex
            || filename.contains('/')
            || parse_file_name(filename.trim_end_matches(".metadata")).is_err()
        {
            return None;
        }
        let (sha256, filename) = (sha256.to_owned(), filename.to_owned());
        Some(match filename.strip_suffix(".metadata") {
            Some(file) => PypiPath::Metadata {
                sha256,
                filename: file.to_owned(),
            },
            None => PypiPath::File { sha256, filename },
        })
    }
}

/// The representation of a simple-API page a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageType {
    Json,
    /// `application/vnd.pypi.simple.v1+html`
    Html,
    /// `text/html`, the legacy PEP 503 type
    LegacyHtml,
}

impl PageType {
    pub fn content_type(self) -> &'static str {
        match self {
            PageType::Json => "application/vnd.pypi.simple.v1+json",
            PageType::Html => "application/vnd.pypi.simple.v1+html",
            PageType::LegacyHtml => "text/html",
        }
    }
}

/// PEP 691 content negotiation over `Accept`: the acceptable type with the highest quality,
/// ties to the server's preference (JSON, then HTML); none acceptable is `None` (406). No
/// `Accept` at all is `text/html`.
pub fn negotiate(accept: Option<&str>) -> Option<PageType> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Some(PageType::LegacyHtml);
    };
    let mut best: Option<(f32, u8, PageType)> = None;
    for item in accept.split(',') {
        let mut params = item.split(';');
        let media = params
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let quality = params
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let choice =
            match media.as_str() {
                "application/vnd.pypi.simple.v1+json"
                | "application/vnd.pypi.simple.latest+json" => (2, PageType::Json),
                "application/vnd.pypi.simple.v1+html"
                | "application/vnd.pypi.simple.latest+html" => (1, PageType::Html),
                "text/html" | "text/*" | "*/*" => (0, PageType::LegacyHtml),
                _ => continue,
            };
        if quality <= 0.0 {
            continue;
        }
        if best.is_none_or(|(q, preference, _)| (quality, choice.0) > (q, preference)) {
            best = Some((quality, choice.0, choice.1));
        }
    }
    best.map(|(_, _, page)| page)
}

/// A minimal wheel of `name` at `version` (a module and its dist-info), for benchmarks and
/// tests: the file name is `NAME-VERSION-py3-none-any.whl` with `name`'s `-` as `_`.
pub fn build_wheel(name: &str, version: &str) -> (String, Vec<u8>) {
    use std::io::Write;
    let stem = format!("{}-{version}", name.replace('-', "_"));
    let metadata = format!(
        "Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: {name}\nRequires-Python: >=3.8\n\n"
    );
    let module = format!("VERSION = {version:?}\n");
    let wheel =
        "Wheel-Version: 1.0\nGenerator: packyard\nRoot-Is-Purelib: true\nTag: py3-none-any\n";
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    let options = zip::write::SimpleFileOptions::default();
    let files = [
        (format!("{}/__init__.py", name.replace('-', "_")), module),
        (format!("{stem}.dist-info/METADATA"), metadata),
        (format!("{stem}.dist-info/WHEEL"), wheel.to_owned()),
        (format!("{stem}.dist-info/RECORD"), String::new()),
    ];
    for (path, text) in &files {
        zip.start_file(path.as_str(), options)
            .expect("writing to memory");
        zip.write_all(text.as_bytes()).expect("writing to memory");
    }
    zip.finish().expect("writing to memory");
    (format!("{stem}-py3-none-any.whl"), out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalize_as_pep_503_says() {
        assert_eq!(normalize_name("Friendly-Bard"), "friendly-bard");
        assert_eq!(normalize_name("FRIENDLY__bard"), "friendly-bard");
        assert_eq!(normalize_name("friendly.-_bard"), "friendly-bard");
        assert!(is_valid_name("demo_pkg.2"));
        assert!(!is_valid_name("-demo") && !is_valid_name("de mo") && !is_valid_name(""));
    }

    #[test]
    fn versions_order_as_pep_440_says() {
        let order = [
            "1.0.dev1",
            "1.0a1.dev1",
            "1.0a1",
            "1.0b1",
            "1.0rc1",
            "1.0",
            "1.0+local",
            "1.0.post1",
            "1!0.1",
        ];
        let parsed: Vec<Version> = order
            .iter()
            .map(|v| normalize_version(v).unwrap())
            .collect();
        assert!(parsed.windows(2).all(|w| w[0] < w[1]), "{parsed:?}");
        assert_eq!(normalize_version("1.0alpha1").unwrap().to_string(), "1.0a1");
        assert_eq!(normalize_version("v1.0").unwrap().to_string(), "1.0");
        assert_eq!(normalize_version("1.0-1").unwrap().to_string(), "1.0.post1");
        assert_eq!(
            normalize_version("1.0").unwrap(),
            normalize_version("1.0.0").unwrap()
        );
        assert!(normalize_version("not a version").is_err());
    }

    #[test]
    fn file_names_split_into_name_version_and_kind() {
        assert_eq!(
            parse_file_name("demo_pkg-1.0-py3-none-any.whl").unwrap(),
            FileName {
                name: "demo_pkg".into(),
                version: "1.0".into(),
                kind: Kind::Wheel {
                    tags: "py3-none-any".into()
                }
            }
        );
        assert_eq!(
            parse_file_name("demo-pkg-2.0rc1.tar.gz").unwrap().version,
            "2.0rc1"
        );
        for bad in [
            "demo.whl",
            "demo-1.0.exe",
            "../demo-1.0.tar.gz",
            "demo 1.0.tar.gz",
            "-1.0.zip",
        ] {
            assert!(parse_file_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn metadata_reads_headers_and_refuses_nonsense() {
        let text = b"Metadata-Version: 2.1\nName: Demo_Pkg\nVersion: 1.0\nSummary: A demo\nRequires-Python: >=3.8\nRequires-Dist: requests>=2\nRequires-Dist: idna\n\nLong description\nName: not a header\n";
        let metadata = parse_metadata(text).unwrap();
        assert_eq!(metadata.name, "Demo_Pkg");
        assert_eq!(metadata.requires_python.as_deref(), Some(">=3.8"));
        assert_eq!(metadata.requires_dist, ["requests>=2", "idna"]);
        assert!(matches!(
            parse_metadata(b"Name: demo\nVersion: one\n"),
            Err(PypiError::Version(_))
        ));
        let long = format!("Name: demo\nVersion: 1\nSummary: {}\n", "x".repeat(600));
        assert!(parse_metadata(long.as_bytes()).is_err());
    }

    #[test]
    fn pages_are_negotiated_as_pip_asks() {
        let pip = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01";
        assert_eq!(negotiate(Some(pip)), Some(PageType::Json));
        assert_eq!(negotiate(None), Some(PageType::LegacyHtml));
        assert_eq!(negotiate(Some("text/html")), Some(PageType::LegacyHtml));
        assert_eq!(
            negotiate(Some("application/vnd.pypi.simple.v1+json;q=0.2, text/html")),
            Some(PageType::LegacyHtml)
        );
        assert_eq!(negotiate(Some("application/xml")), None);
    }

    #[test]
    fn paths_parse_into_pages_and_files() {
        assert_eq!(
            PypiPath::parse("simple/"),
            Some(PypiPath::Root { slash: true })
        );
        assert_eq!(
            PypiPath::parse("simple/Demo_Pkg"),
            Some(PypiPath::Project {
                name: "Demo_Pkg".into(),
                slash: false
            })
        );
        let sha = "a".repeat(64);
        assert_eq!(
            PypiPath::parse(&format!("files/{sha}/demo-1.0-py3-none-any.whl.metadata")),
            Some(PypiPath::Metadata {
                sha256: sha.clone(),
                filename: "demo-1.0-py3-none-any.whl".into()
            })
        );
        assert_eq!(PypiPath::parse(&format!("files/{sha}/../x")), None);
        assert_eq!(PypiPath::parse("simple/../../x/"), None);
        assert_eq!(PypiPath::parse("legacy/"), Some(PypiPath::Upload));
    }

    #[test]
    fn built_wheels_read_back() {
        let (filename, bytes) = build_wheel("bench-pkg", "1.0.7");
        assert_eq!(filename, "bench_pkg-1.0.7-py3-none-any.whl");
        let metadata = read_wheel_metadata(std::io::Cursor::new(bytes)).unwrap();
        let metadata = parse_metadata(&metadata).unwrap();
        check_agreement(&parse_file_name(&filename).unwrap(), &metadata).unwrap();
    }

    #[test]
    fn a_listed_file_reads_back_from_its_json() {
        let file = ListedFile {
            filename: "demo-1.0.tar.gz",
            url: "../../files/ab/demo-1.0.tar.gz",
            sha256: "ab",
            size: 7,
            upload_time: "2024-01-01T00:00:00Z",
            requires_python: Some(">=3.8"),
            metadata_sha256: Some("cd"),
            yanked: None,
        };
        let json = json_file(&file);
        let read = ListedFile::from_json(&json).unwrap();
        assert_eq!(html_anchor(&read), html_anchor(&file));
        let yanked = ListedFile {
            yanked: Some("broken"),
            ..read
        };
        let json = json_file(&yanked);
        assert_eq!(json["yanked"], "broken");
        assert_eq!(ListedFile::from_json(&json).unwrap().yanked, Some("broken"));
    }

    #[test]
    fn anchors_escape_what_uploads_say() {
        let anchor = html_anchor(&ListedFile {
            filename: "demo-1.0.tar.gz",
            url: "../../files/ab/demo-1.0.tar.gz",
            sha256: "ab",
            size: 1,
            upload_time: "2024-01-01T00:00:00Z",
            requires_python: Some(">=3.8\"><script>"),
            metadata_sha256: None,
            yanked: Some("bad <build>"),
        });
        assert!(
            anchor.contains("data-requires-python=\"&gt;=3.8&quot;&gt;&lt;script&gt;\""),
            "{anchor}"
        );
        assert!(
            anchor.contains("data-yanked=\"bad &lt;build&gt;\""),
            "{anchor}"
        );
    }
}
