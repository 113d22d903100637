//! Reads what a repository needs from an `.rpm` header without touching its payload:
//!
//! ```text
//! lead (96 bytes, magic ED AB EE DB)
//! signature header (magic 8E AD E8 01, index count, data size), padded to 8 bytes
//! header (same layout): NEVRA, dependencies, files, changelog ...
//! payload (compressed cpio), never read
//! ```
//!
//! The declared sizes of both headers are checked against the file and fixed limits before
//! anything is allocated, so a crafted header cannot make the reader allocate gigabytes.

use std::io::{self, BufRead, Read, Seek, SeekFrom};

use rpm::{DependencyFlags, FileFlags, FileType, IndexSignatureTag, PackageMetadata};
use thiserror::Error;

const LEAD_SIZE: u64 = 96;
const LEAD_MAGIC: [u8; 4] = [0xed, 0xab, 0xee, 0xdb];
const HEADER_MAGIC: [u8; 3] = [0x8e, 0xad, 0xe8];
const INTRO_SIZE: u64 = 16;
const INDEX_ENTRY_SIZE: u64 = 16;
/// createrepo_c's default: the newest ten changelog entries go into `other.xml`.
const CHANGELOG_LIMIT: usize = 10;

/// Bounds on what reading a package may cost.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_bytes: u64,
    pub index_entries: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_bytes: 64 << 20,
            index_entries: 1 << 20,
        }
    }
}

#[derive(Debug, Error)]
pub enum RpmError {
    #[error("not an RPM package: the file does not start with the RPM lead magic")]
    NotRpm,
    #[error("truncated package: {0}")]
    Truncated(String),
    #[error("malformed {0} header: bad magic")]
    BadHeaderMagic(&'static str),
    #[error("{which} header declares {declared} bytes, more than the {limit} byte limit")]
    TooLarge {
        which: &'static str,
        declared: u64,
        limit: u64,
    },
    #[error("malformed header: {0}")]
    Malformed(String),
    #[error("header has no {0} tag")]
    MissingTag(&'static str),
    #[error("{0}")]
    Invalid(String),
    #[error("reading the package failed: {0}")]
    Io(#[from] io::Error),
}

/// A dependency as repodata lists it: `flags` is `EQ`, `LT`, `LE`, `GT` or `GE` when versioned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub name: String,
    pub flags: Option<&'static str>,
    pub epoch: Option<String>,
    pub version: Option<String>,
    pub release: Option<String>,
    /// Needed before installation (`Requires(pre)`, `Requires(post)`, legacy PreReq).
    pub pre: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    File,
    Dir,
    Ghost,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpmFile {
    pub path: String,
    pub kind: FileKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changelog {
    pub author: String,
    pub date: u64,
    pub text: String,
}

/// Everything the repodata of one package needs.
#[derive(Debug, Clone)]
pub struct RpmPackage {
    pub name: String,
    pub epoch: u32,
    pub version: String,
    pub release: String,
    /// The architecture, or `src` for a source package.
    pub arch: String,
    pub is_source: bool,
    pub summary: String,
    pub description: String,
    pub packager: String,
    pub url: String,
    pub license: String,
    pub vendor: String,
    pub group: String,
    pub buildhost: String,
    pub source_rpm: String,
    pub build_time: u64,
    pub installed_size: u64,
    pub archive_size: u64,
    /// Byte range of the main header in the file, as `rpm:header-range` lists it.
    pub header_start: u64,
    pub header_end: u64,
    pub provides: Vec<Dependency>,
    pub requires: Vec<Dependency>,
    pub conflicts: Vec<Dependency>,
    pub obsoletes: Vec<Dependency>,
    pub recommends: Vec<Dependency>,
    pub suggests: Vec<Dependency>,
    pub supplements: Vec<Dependency>,
    pub enhances: Vec<Dependency>,
    pub files: Vec<RpmFile>,
    /// Oldest first, at most the newest ten entries.
    pub changelog: Vec<Changelog>,
}

impl RpmPackage {
    /// `epoch:version-release`, the version part of the package's identity.
    pub fn evr(&self) -> String {
        format!("{}:{}-{}", self.epoch, self.version, self.release)
    }

    /// `name-version-release.arch`, without the epoch, as file names use it.
    pub fn nvra(&self) -> String {
        format!(
            "{}-{}-{}.{}",
            self.name, self.version, self.release, self.arch
        )
    }
}

/// Reads the package metadata of an `.rpm` whose total length is `file_len`.
pub fn read_package<R: BufRead + Seek>(
    mut file: R,
    file_len: u64,
    limits: &Limits,
) -> Result<RpmPackage, RpmError> {
    let mut lead = [0u8; LEAD_SIZE as usize];
    read_exact_or(&mut file, &mut lead, || RpmError::NotRpm)?;
    if lead[..4] != LEAD_MAGIC {
        return Err(RpmError::NotRpm);
    }
    let signature_size = check_header(&mut file, "signature", LEAD_SIZE, file_len, limits)?;
    let header_start = LEAD_SIZE + signature_size + (8 - signature_size % 8) % 8;
    file.seek(SeekFrom::Start(header_start))?;
    let header_size = check_header(&mut file, "main", header_start, file_len, limits)?;
    let header_end = header_start + header_size;

    file.seek(SeekFrom::Start(0))?;
    let metadata =
        PackageMetadata::parse(&mut file).map_err(|e| RpmError::Malformed(e.to_string()))?;
    let offsets = metadata.get_package_segment_offsets();
    if offsets.header != header_start || offsets.payload != header_end {
        return Err(RpmError::Malformed(
            "header offsets disagree with the declared sizes".into(),
        ));
    }
    check_total_size(&metadata, header_start, file_len)?;
    extract(&metadata, header_start, header_end)
}

fn read_exact_or<R: Read>(
    file: &mut R,
    buf: &mut [u8],
    err: impl FnOnce() -> RpmError,
) -> Result<(), RpmError> {
    match file.read_exact(buf) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(err()),
        Err(e) => Err(e.into()),
    }
}

/// Checks a header's intro at `offset` and returns the header's total size.
fn check_header<R: Read>(
    file: &mut R,
    which: &'static str,
    offset: u64,
    file_len: u64,
    limits: &Limits,
) -> Result<u64, RpmError> {
    let mut intro = [0u8; INTRO_SIZE as usize];
    read_exact_or(file, &mut intro, || {
        RpmError::Truncated(format!("the {which} header is cut short"))
    })?;
    if intro[..3] != HEADER_MAGIC {
        return Err(RpmError::BadHeaderMagic(which));
    }
    let entries = u64::from(u32::from_be_bytes(
        intro[8..12].try_into().expect("4 bytes"),
    ));
    let data = u64::from(u32::from_be_bytes(
        intro[12..16].try_into().expect("4 bytes"),
    ));
    if entries > limits.index_entries {
        return Err(RpmError::TooLarge {
            which,
            declared: entries * INDEX_ENTRY_SIZE,
            limit: limits.index_entries * INDEX_ENTRY_SIZE,
        });
    }
    let size = INTRO_SIZE + entries * INDEX_ENTRY_SIZE + data;
    if size > limits.header_bytes {
        return Err(RpmError::TooLarge {
            which,
            declared: size,
            limit: limits.header_bytes,
        });
    }
    if offset + size > file_len {
        return Err(RpmError::Truncated(format!(
            "the {which} header declares {size} bytes but only {} remain in the file",
            file_len.saturating_sub(offset)
        )));
    }
    check_index(file, which, entries, data)?;
    Ok(size)
}

/// Checks that every index entry's value lies inside the header's data, before the `rpm`
/// crate reads them: it slices the data at the offsets the file gives and panics on some that
/// lie outside (found by fuzzing, `tests/fuzz_regressions.rs`).
fn check_index<R: Read>(
    file: &mut R,
    which: &'static str,
    entries: u64,
    data: u64,
) -> Result<(), RpmError> {
    let mut index = vec![0u8; (entries * INDEX_ENTRY_SIZE) as usize];
    read_exact_or(file, &mut index, || {
        RpmError::Truncated(format!("the {which} header's index is cut short"))
    })?;
    let word = |entry: &[u8], at: usize| {
        u64::from(u32::from_be_bytes(
            entry[at..at + 4].try_into().expect("4 bytes"),
        ))
    };
    for entry in index.chunks_exact(INDEX_ENTRY_SIZE as usize) {
        let (kind, offset, count) = (word(entry, 4), word(entry, 8), word(entry, 12));
        // Bytes per element of the fixed-size types; strings are at least their terminator.
        let element = match kind {
            0 => 0,
            1 | 2 | 6 | 7 | 8 | 9 => 1,
            3 => 2,
            4 => 4,
            5 => 8,
            _ => {
                return Err(RpmError::Malformed(format!(
                    "the {which} header has an entry of unknown type {kind}"
                )));
            }
        };
        if offset.saturating_add(count.saturating_mul(element)) > data {
            return Err(RpmError::Malformed(format!(
                "an entry of the {which} header points outside its data"
            )));
        }
    }
    Ok(())
}

/// The signature header records the size of header plus payload; a shorter file lost its end.
fn check_total_size(
    metadata: &PackageMetadata,
    header_start: u64,
    file_len: u64,
) -> Result<(), RpmError> {
    let declared = metadata
        .signature
        .get_entry_data_as_u64(IndexSignatureTag::RPMSIGTAG_LONGSIZE)
        .ok()
        .or_else(|| {
            metadata
                .signature
                .get_entry_data_as_u32(IndexSignatureTag::RPMSIGTAG_SIZE)
                .ok()
                .map(u64::from)
        });
    match declared {
        Some(size) if header_start + size != file_len => Err(RpmError::Truncated(format!(
            "the signature header records {} bytes of header and payload, the file has {}",
            size,
            file_len.saturating_sub(header_start)
        ))),
        _ => Ok(()),
    }
}

fn text(value: Result<&str, rpm::Error>) -> String {
    value.map(str::to_owned).unwrap_or_default()
}

fn required(value: Result<&str, rpm::Error>, tag: &'static str) -> Result<String, RpmError> {
    match value {
        Ok(v) if !v.is_empty() => Ok(v.to_owned()),
        _ => Err(RpmError::MissingTag(tag)),
    }
}

fn extract(
    metadata: &PackageMetadata,
    header_start: u64,
    header_end: u64,
) -> Result<RpmPackage, RpmError> {
    let name = required(metadata.get_name(), "NAME")?;
    let version = required(metadata.get_version(), "VERSION")?;
    let release = required(metadata.get_release(), "RELEASE")?;
    let is_source = metadata.is_source_package();
    let arch = if is_source {
        "src".to_owned()
    } else {
        required(metadata.get_arch(), "ARCH")?
    };
    let checks: [(&str, &str, &[char]); 4] = [
        ("name", &name, &[]),
        ("version", &version, &['-', ':']),
        ("release", &release, &['-', ':']),
        ("architecture", &arch, &['-', ':']),
    ];
    for (what, value, forbidden) in checks {
        let bad = value.len() > 256
            || value == "."
            || value == ".."
            || value
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '/' || forbidden.contains(&c));
        if bad {
            return Err(RpmError::Invalid(format!(
                "{what} {value:?} is not valid in an RPM package identity"
            )));
        }
    }

    let files = match metadata.get_file_entries() {
        Ok(entries) => entries
            .iter()
            .map(|entry| {
                let kind = if entry.file_type() == FileType::Dir {
                    FileKind::Dir
                } else if entry.flags().contains(FileFlags::GHOST) {
                    FileKind::Ghost
                } else {
                    FileKind::File
                };
                RpmFile {
                    path: entry.path().to_string_lossy().into_owned(),
                    kind,
                }
            })
            .collect(),
        Err(_) => Vec::new(),
    };

    let deps = |list: Result<Vec<rpm::Dependency>, rpm::Error>| -> Vec<Dependency> {
        list.unwrap_or_default()
            .into_iter()
            .map(dependency)
            .collect()
    };
    let provides = deps(metadata.get_provides());
    let requires = filter_requires(deps(metadata.get_requires()), &provides, &files);

    let mut changelog: Vec<Changelog> = metadata
        .get_changelog_entries()
        .unwrap_or_default()
        .into_iter()
        .take(CHANGELOG_LIMIT)
        .map(|c| Changelog {
            author: c.name.trim_end().to_owned(),
            date: c.timestamp,
            text: c.description,
        })
        .collect();
    changelog.reverse();

    Ok(RpmPackage {
        epoch: metadata.get_epoch().unwrap_or(0),
        is_source,
        summary: text(metadata.get_summary()),
        description: text(metadata.get_description()),
        packager: text(metadata.get_packager()),
        url: text(metadata.get_url()),
        license: text(metadata.get_license()),
        vendor: text(metadata.get_vendor()),
        group: text(metadata.get_group()),
        buildhost: text(metadata.get_build_host()),
        source_rpm: if is_source {
            String::new()
        } else {
            text(metadata.get_source_rpm())
        },
        build_time: metadata.get_build_time().unwrap_or(0),
        installed_size: metadata.get_installed_size().unwrap_or(0),
        archive_size: archive_size(metadata),
        header_start,
        header_end,
        provides,
        requires,
        conflicts: deps(metadata.get_conflicts()),
        obsoletes: deps(metadata.get_obsoletes()),
        recommends: deps(metadata.get_recommends()),
        suggests: deps(metadata.get_suggests()),
        supplements: deps(metadata.get_supplements()),
        enhances: deps(metadata.get_enhances()),
        files,
        changelog,
        name,
        version,
        release,
        arch,
    })
}

fn archive_size(metadata: &PackageMetadata) -> u64 {
    use rpm::IndexTag;
    metadata
        .header
        .get_entry_data_as_u64(IndexTag::RPMTAG_LONGARCHIVESIZE)
        .ok()
        .or_else(|| {
            metadata
                .header
                .get_entry_data_as_u32(IndexTag::RPMTAG_ARCHIVESIZE)
                .ok()
                .map(u64::from)
        })
        .or_else(|| {
            metadata
                .signature
                .get_entry_data_as_u32(IndexSignatureTag::RPMSIGTAG_PAYLOADSIZE)
                .ok()
                .map(u64::from)
        })
        .unwrap_or(0)
}

fn dependency(dep: rpm::Dependency) -> Dependency {
    let flags = dep.flags;
    let comparison =
        flags & (DependencyFlags::LESS | DependencyFlags::GREATER | DependencyFlags::EQUAL);
    let flag = match comparison {
        f if f == DependencyFlags::EQUAL => Some("EQ"),
        f if f == DependencyFlags::LESS => Some("LT"),
        f if f == DependencyFlags::GREATER => Some("GT"),
        f if f == DependencyFlags::LE => Some("LE"),
        f if f == DependencyFlags::GE => Some("GE"),
        _ => None,
    };
    let pre = flags.intersects(
        DependencyFlags::PREREQ | DependencyFlags::SCRIPT_PRE | DependencyFlags::SCRIPT_POST,
    );
    let (epoch, version, release) = if flag.is_some() && !dep.version.is_empty() {
        split_evr(&dep.version)
    } else {
        (None, None, None)
    };
    Dependency {
        name: dep.name,
        flags: flag,
        epoch,
        version,
        release,
        pre,
    }
}

/// `[epoch:]version[-release]`; a missing epoch is `0`, as createrepo_c writes it.
fn split_evr(evr: &str) -> (Option<String>, Option<String>, Option<String>) {
    let (epoch, rest) = match evr.split_once(':') {
        Some((e, rest)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => (e, rest),
        _ => ("0", evr),
    };
    let (version, release) = match rest.rsplit_once('-') {
        Some((v, r)) => (v, Some(r.to_owned())),
        None => (rest, None),
    };
    (Some(epoch.to_owned()), Some(version.to_owned()), release)
}

/// createrepo_c's rules: `rpmlib(...)` requirements, requirements on the package's own
/// primary files or its own provides, exact duplicates, and all but the highest
/// `libc.so.6(...)` requirement are left out.
fn filter_requires(
    requires: Vec<Dependency>,
    provides: &[Dependency],
    files: &[RpmFile],
) -> Vec<Dependency> {
    let mut kept: Vec<Dependency> = Vec::with_capacity(requires.len());
    let mut libc: Option<Dependency> = None;
    for dep in requires {
        if dep.name.starts_with("rpmlib(") {
            continue;
        }
        if is_primary_file(&dep.name) && files.iter().any(|f| f.path == dep.name) {
            continue;
        }
        if provides.iter().any(|p| p.name == dep.name) {
            continue;
        }
        if kept.iter().any(|k| k == &dep) {
            continue;
        }
        if dep.name.starts_with("libc.so.6") {
            if libc
                .as_ref()
                .is_none_or(|best| libc_version(&dep.name) > libc_version(&best.name))
            {
                libc = Some(dep);
            }
            continue;
        }
        kept.push(dep);
    }
    kept.extend(libc);
    kept
}

/// The numeric version inside `libc.so.6(GLIBC_2.34)(64bit)`, for picking the highest.
fn libc_version(name: &str) -> Vec<u64> {
    let inner = name
        .split_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .map_or("", |(v, _)| v);
    inner
        .trim_start_matches(|c: char| !c.is_ascii_digit())
        .split('.')
        .map_while(|p| p.parse().ok())
        .collect()
}

/// Files that `primary.xml` lists (the rest go only to `filelists.xml`), as createrepo_c and
/// yum decide it: anything under `/etc/`, any `bin/` directory, and `/usr/lib/sendmail`.
pub(crate) fn is_primary_file(path: &str) -> bool {
    path.starts_with("/etc/") || path.contains("bin/") || path == "/usr/lib/sendmail"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evr_splits_like_createrepo_c() {
        assert_eq!(
            split_evr("1.0-1"),
            (Some("0".into()), Some("1.0".into()), Some("1".into()))
        );
        assert_eq!(
            split_evr("2:1.0"),
            (Some("2".into()), Some("1.0".into()), None)
        );
    }

    #[test]
    fn highest_libc_requirement_wins() {
        assert!(
            libc_version("libc.so.6(GLIBC_2.34)(64bit)")
                > libc_version("libc.so.6(GLIBC_2.4)(64bit)")
        );
        assert!(libc_version("libc.so.6()(64bit)") < libc_version("libc.so.6(GLIBC_2.2.5)(64bit)"));
    }
}
