//! Debian source packages: the `.dsc` control file (dsc(5)) and its stanza in `Sources`.
//!
//! A `.dsc` names the files that make the source package (an upstream tarball, a Debian
//! tarball or diff) with their sizes and digests in `Files` (MD5) and `Checksums-Sha1`/
//! `Checksums-Sha256`. The stanza in `Sources` is the `.dsc`'s fields with `Source` renamed
//! `Package`, the pool `Directory`, and file lists that start with the `.dsc` itself, as
//! `apt-ftparchive sources` writes it. The caller strips an OpenPGP clear-signature first.

use thiserror::Error;

use super::control::{Control, ControlError};
use super::packages::push_field;
use super::version::{validate_package_name, validate_version};
use crate::digest::FileDigests;

/// The largest `.dsc` read: real ones are a few KiB.
pub const MAX_DSC_BYTES: usize = 256 * 1024;
/// The most files one `.dsc` may name.
const MAX_FILES: usize = 64;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DscError {
    #[error("the .dsc is larger than {MAX_DSC_BYTES} bytes")]
    TooLarge,
    #[error("the .dsc is not a control file: {0}")]
    Control(#[from] ControlError),
    #[error("the .dsc lacks the {0} field")]
    MissingField(&'static str),
    #[error("the .dsc's {0}")]
    Invalid(String),
}

/// A file a `.dsc` names, with the digests it gives for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedFile {
    pub name: String,
    pub size: u64,
    pub md5: String,
    pub sha1: Option<String>,
    pub sha256: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Dsc {
    pub control: Control,
    pub files: Vec<NamedFile>,
}

impl Dsc {
    pub fn source(&self) -> &str {
        self.control.get("Source").unwrap_or_default()
    }

    pub fn version(&self) -> &str {
        self.control.get("Version").unwrap_or_default()
    }
}

/// Whether `bytes` is an OpenPGP clear-signed message, which a `.dsc` often is.
pub fn is_clearsigned(bytes: &[u8]) -> bool {
    bytes.starts_with(b"-----BEGIN PGP SIGNED MESSAGE-----")
}

/// Parses the text of a `.dsc` (without its clear-signature) and checks what the repository
/// relies on: a valid source name and version, and safe, consistent file lists.
pub fn parse_dsc(bytes: &[u8]) -> Result<Dsc, DscError> {
    if bytes.len() > MAX_DSC_BYTES {
        return Err(DscError::TooLarge);
    }
    let control = Control::parse(bytes)?;
    let source = control
        .get("Source")
        .ok_or(DscError::MissingField("Source"))?;
    validate_package_name(source).map_err(DscError::Invalid)?;
    let version = control
        .get("Version")
        .ok_or(DscError::MissingField("Version"))?;
    validate_version(version).map_err(DscError::Invalid)?;
    let listed = control
        .get("Files")
        .ok_or(DscError::MissingField("Files"))?;
    let mut files = Vec::new();
    for (md5, size, name) in file_list("Files", listed, 32)? {
        files.push(NamedFile {
            name,
            size,
            md5,
            sha1: None,
            sha256: None,
        });
    }
    if files.is_empty() || files.len() > MAX_FILES {
        return Err(DscError::Invalid(format!(
            "Files must name 1 to {MAX_FILES} files"
        )));
    }
    for (field, hex_len) in [("Checksums-Sha1", 40), ("Checksums-Sha256", 64)] {
        let Some(value) = control.get(field) else {
            continue;
        };
        let entries = file_list(field, value, hex_len)?;
        if entries.len() != files.len() {
            return Err(DscError::Invalid(format!(
                "{field} does not list the files Files lists"
            )));
        }
        for (digest, size, name) in entries {
            let file = files
                .iter_mut()
                .find(|f| f.name == name && f.size == size)
                .ok_or_else(|| {
                    DscError::Invalid(format!(
                        "{field} lists {name} ({size} bytes), which Files does not"
                    ))
                })?;
            match field {
                "Checksums-Sha1" => file.sha1 = Some(digest),
                _ => file.sha256 = Some(digest),
            }
        }
    }
    Ok(Dsc { control, files })
}

/// ` DIGEST SIZE NAME` lines, each name one safe file name.
fn file_list(
    field: &str,
    value: &str,
    hex_len: usize,
) -> Result<Vec<(String, u64, String)>, DscError> {
    let mut entries = Vec::new();
    for line in value.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let bad = || DscError::Invalid(format!("{field} line {line:?} is not `DIGEST SIZE NAME`"));
        let mut parts = line.split_whitespace();
        let (Some(digest), Some(size), Some(name), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let hex = digest.len() == hex_len && digest.bytes().all(|b| b.is_ascii_hexdigit());
        let size: u64 = size.parse().map_err(|_| bad())?;
        if !hex {
            return Err(bad());
        }
        if !is_file_name(name) {
            return Err(DscError::Invalid(format!(
                "{field} names {name:?}, which is not a plain file name"
            )));
        }
        if entries.iter().any(|(_, _, n)| n == name) {
            return Err(DscError::Invalid(format!("{field} names {name} twice")));
        }
        entries.push((digest.to_ascii_lowercase(), size, name.to_owned()));
    }
    Ok(entries)
}

/// A source package file name: letters, digits and `.+~_-`, not `.`-led, no `..`.
fn is_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && !name.contains("..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+.~_-".contains(&b))
}

/// Fields of the `.dsc` the stanza does not copy: renamed or regenerated.
const REGENERATED: &[&str] = &[
    "Source",
    "Files",
    "Checksums-Sha1",
    "Checksums-Sha256",
    "Checksums-Sha512",
    "Directory",
];

/// The `Sources` stanza of a source package in `directory` (relative to the repository
/// root): `files` are the `.dsc` itself first, then the files it names, with their digests.
pub fn render_sources_stanza(
    control: &Control,
    directory: &str,
    files: &[(&str, &FileDigests)],
) -> String {
    let mut out = String::with_capacity(2048);
    push_field(
        &mut out,
        "Package",
        control.get("Source").unwrap_or_default(),
    );
    for (name, value) in control.fields() {
        if !REGENERATED.iter().any(|r| r.eq_ignore_ascii_case(name)) {
            push_field(&mut out, name, value);
        }
    }
    push_field(&mut out, "Directory", directory);
    let list = |digest: fn(&FileDigests) -> &str| {
        files
            .iter()
            .map(|(name, d)| format!("\n {} {} {name}", digest(d), d.size))
            .collect::<String>()
    };
    push_field(&mut out, "Files", &list(|d| &d.md5));
    push_field(&mut out, "Checksums-Sha1", &list(|d| &d.sha1));
    push_field(&mut out, "Checksums-Sha256", &list(|d| &d.sha256));
    push_field(&mut out, "Checksums-Sha512", &list(|d| &d.sha512));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DSC: &str = "Format: 3.0 (quilt)\nSource: hello\nBinary: hello\nArchitecture: all\nVersion: 1:1.0-1\n\
Maintainer: Tests <tests@example.invalid>\nBuild-Depends: debhelper-compat (= 13)\n\
Checksums-Sha256:\n 3f5333eb4dc8893072fd6f2ac4964d6e1f94ab8103c6a8957e4fa405294b6a00 159 hello_1.0.orig.tar.gz\n \
ba6556ec82e9121011a2451c5b30242d43e640eba41f18ba0c7bd6ede3da415c 540 hello_1.0-1.debian.tar.xz\n\
Files:\n e3117a2afad0a4f96e6f4c851ae2f947 159 hello_1.0.orig.tar.gz\n 779a338a24d3213c455db5a51f2d252c 540 hello_1.0-1.debian.tar.xz\n";

    #[test]
    fn reads_the_named_files_with_their_digests() {
        let dsc = parse_dsc(DSC.as_bytes()).unwrap();
        assert_eq!((dsc.source(), dsc.version()), ("hello", "1:1.0-1"));
        assert_eq!(dsc.files.len(), 2);
        assert_eq!(dsc.files[0].name, "hello_1.0.orig.tar.gz");
        assert_eq!(dsc.files[0].size, 159);
        assert_eq!(
            dsc.files[1].sha256.as_deref(),
            Some("ba6556ec82e9121011a2451c5b30242d43e640eba41f18ba0c7bd6ede3da415c")
        );
    }

    #[test]
    fn refuses_unsafe_or_inconsistent_lists() {
        let traversal = DSC.replace("540 hello_1.0-1.debian.tar.xz\n", "540 ../../etc/passwd\n");
        assert!(matches!(
            parse_dsc(traversal.as_bytes()),
            Err(DscError::Invalid(_))
        ));
        let size = DSC.replacen(" 159 hello_1.0.orig", " 158 hello_1.0.orig", 1);
        assert!(matches!(
            parse_dsc(size.as_bytes()),
            Err(DscError::Invalid(_))
        ));
        let no_files = DSC.split("Files:").next().unwrap();
        assert_eq!(
            parse_dsc(no_files.as_bytes()).unwrap_err(),
            DscError::MissingField("Files")
        );
        let big = format!("{DSC}X-Padding: {}\n", "x".repeat(MAX_DSC_BYTES));
        assert_eq!(parse_dsc(big.as_bytes()).unwrap_err(), DscError::TooLarge);
        let bad_version = DSC.replace("Version: 1:1.0-1", "Version: 1.0 bad");
        assert!(parse_dsc(bad_version.as_bytes()).is_err());
    }

    #[test]
    fn the_stanza_lists_the_dsc_first() {
        let dsc = parse_dsc(DSC.as_bytes()).unwrap();
        let digests = |size, c: char| FileDigests {
            size,
            md5: c.to_string().repeat(32),
            sha1: c.to_string().repeat(40),
            sha256: c.to_string().repeat(64),
            sha512: c.to_string().repeat(128),
        };
        let (a, b) = (digests(730, 'a'), digests(159, 'b'));
        let stanza = render_sources_stanza(
            &dsc.control,
            "pool/bookworm/main/h/hello",
            &[("hello_1.0-1.dsc", &a), ("hello_1.0.orig.tar.gz", &b)],
        );
        let parsed = Control::parse(stanza.as_bytes()).unwrap();
        assert_eq!(parsed.get("Package"), Some("hello"));
        assert_eq!(parsed.get("Source"), None);
        assert_eq!(parsed.get("Directory"), Some("pool/bookworm/main/h/hello"));
        let files = parsed.get("Checksums-Sha256").unwrap();
        assert!(
            files.starts_with(&format!("\n {} 730 hello_1.0-1.dsc\n", "a".repeat(64))),
            "{files}"
        );
    }
}
