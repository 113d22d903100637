//! The `.deb` container (deb(5)): an ar archive holding `debian-binary` (`2.0\n`), then
//! `control.tar[.gz|.xz|.zst]`, then `data.tar[.*]`.
//!
//! Only the control member is decompressed, and only up to fixed limits, so a crafted file
//! (a decompression bomb, a header claiming more bytes than the file has) costs a bounded
//! amount of memory and time. The data member is checked for presence and length, never read.

use std::io::{self, Read, Seek, SeekFrom};

use thiserror::Error;

use super::control::{Control, ControlError};

const AR_MAGIC: &[u8; 8] = b"!<arch>\n";
const HEADER_LEN: u64 = 60;

/// Bounds on what reading a package may cost.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest compressed control member accepted.
    pub control_member_bytes: u64,
    /// Largest decompressed control.tar accepted.
    pub control_tar_bytes: u64,
    /// Largest `control` file inside control.tar accepted.
    pub control_file_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            control_member_bytes: 16 << 20,
            control_tar_bytes: 64 << 20,
            control_file_bytes: 1 << 20,
        }
    }
}

#[derive(Debug, Error)]
pub enum DebError {
    #[error("not a Debian package: the file does not start with an ar archive header")]
    NotAr,
    #[error("truncated package: {0}")]
    Truncated(String),
    #[error("malformed ar member header at byte {0}")]
    BadMemberHeader(u64),
    #[error("not a Debian package: the first member is {0:?}, expected debian-binary")]
    NoDebianBinary(String),
    #[error("unsupported package format version {0:?}: only 2.x is supported")]
    UnsupportedFormat(String),
    #[error("package has no control.tar member")]
    MissingControl,
    #[error("package has no data.tar member")]
    MissingData,
    #[error(
        "unsupported control member {0:?}: expected control.tar, control.tar.gz, control.tar.xz or control.tar.zst"
    )]
    UnsupportedControlCompression(String),
    #[error("{member} is larger than the {limit_mib} MiB limit")]
    TooLarge { member: String, limit_mib: u64 },
    #[error("{member} is corrupt: {reason}")]
    Corrupt { member: String, reason: String },
    #[error("control.tar has no control file")]
    NoControlFile,
    #[error("control file: {0}")]
    Control(#[from] ControlError),
    #[error("control file has no {0} field")]
    MissingField(&'static str),
    #[error("{0}")]
    InvalidField(String),
    #[error("reading the package failed: {0}")]
    Io(#[from] io::Error),
}

struct Member {
    name: String,
    size: u64,
}

/// Reads the control paragraph of a `.deb` whose total length is `file_len`, and checks that
/// the mandatory fields are present and well formed.
pub fn read_control<R: Read + Seek>(
    mut file: R,
    file_len: u64,
    limits: &Limits,
) -> Result<Control, DebError> {
    let mut magic = [0u8; 8];
    read_exact_or(&mut file, &mut magic, || DebError::NotAr)?;
    if &magic != AR_MAGIC {
        return Err(DebError::NotAr);
    }
    let mut offset = AR_MAGIC.len() as u64;

    let first = next_member(&mut file, &mut offset, file_len)?
        .ok_or_else(|| DebError::Truncated("no members after the ar header".into()))?;
    if first.name != "debian-binary" {
        return Err(DebError::NoDebianBinary(first.name));
    }
    let mut format = vec![0u8; first.size.min(64) as usize];
    read_exact_or(&mut file, &mut format, || {
        DebError::Truncated("debian-binary is cut short".into())
    })?;
    let format = String::from_utf8_lossy(&format).trim().to_owned();
    if !format.starts_with("2.") {
        return Err(DebError::UnsupportedFormat(format));
    }
    skip_member(&mut file, &mut offset, &first)?;

    let mut control = None;
    let mut has_data = false;
    while let Some(member) = next_member(&mut file, &mut offset, file_len)? {
        if member.name.starts_with("control.tar") {
            if control.is_some() {
                return Err(DebError::Corrupt {
                    member: member.name,
                    reason: "the package has two control members".into(),
                });
            }
            control = Some(read_control_member(&mut file, &member, limits)?);
        } else if member.name.starts_with("data.tar") {
            if control.is_none() {
                return Err(DebError::MissingControl);
            }
            has_data = true;
        }
        skip_member(&mut file, &mut offset, &member)?;
    }
    let control = control.ok_or(DebError::MissingControl)?;
    if !has_data {
        return Err(DebError::MissingData);
    }
    check_fields(&control)?;
    Ok(control)
}

fn check_fields(control: &Control) -> Result<(), DebError> {
    let name = control
        .get("Package")
        .ok_or(DebError::MissingField("Package"))?;
    let version = control
        .get("Version")
        .ok_or(DebError::MissingField("Version"))?;
    let arch = control
        .get("Architecture")
        .ok_or(DebError::MissingField("Architecture"))?;
    super::validate_package_name(name).map_err(DebError::InvalidField)?;
    super::validate_version(version).map_err(DebError::InvalidField)?;
    super::validate_architecture(arch).map_err(DebError::InvalidField)?;
    for field in ["Filename", "Size", "MD5sum", "SHA1", "SHA256", "SHA512"] {
        if control.get(field).is_some() {
            return Err(DebError::InvalidField(format!(
                "control file sets {field}, which only the repository may set"
            )));
        }
    }
    Ok(())
}

fn read_exact_or<R: Read>(
    file: &mut R,
    buf: &mut [u8],
    err: impl FnOnce() -> DebError,
) -> Result<(), DebError> {
    match file.read_exact(buf) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(err()),
        Err(e) => Err(e.into()),
    }
}

/// Reads the next member header, or `None` at the end of the archive.
fn next_member<R: Read>(
    file: &mut R,
    offset: &mut u64,
    file_len: u64,
) -> Result<Option<Member>, DebError> {
    if *offset >= file_len {
        return Ok(None);
    }
    let mut header = [0u8; HEADER_LEN as usize];
    let at = *offset;
    read_exact_or(file, &mut header, || {
        DebError::Truncated(format!("ar member header at byte {at} is cut short"))
    })?;
    if &header[58..60] != b"`\n" {
        return Err(DebError::BadMemberHeader(at));
    }
    let name = String::from_utf8_lossy(&header[0..16])
        .trim_end()
        .trim_end_matches('/')
        .to_owned();
    let size: u64 = std::str::from_utf8(&header[48..58])
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or(DebError::BadMemberHeader(at))?;
    *offset += HEADER_LEN;
    if size > file_len.saturating_sub(*offset) {
        return Err(DebError::Truncated(format!(
            "member {name} declares {size} bytes but only {} remain in the file",
            file_len.saturating_sub(*offset)
        )));
    }
    Ok(Some(Member { name, size }))
}

/// Moves to the next header: past the member's data and its padding to an even offset.
fn skip_member<R: Seek>(file: &mut R, offset: &mut u64, member: &Member) -> Result<(), DebError> {
    *offset += member.size + (member.size % 2);
    file.seek(SeekFrom::Start(*offset))?;
    Ok(())
}

fn read_control_member<R: Read>(
    file: &mut R,
    member: &Member,
    limits: &Limits,
) -> Result<Control, DebError> {
    if member.size > limits.control_member_bytes {
        return Err(too_large(&member.name, limits.control_member_bytes));
    }
    let compressed = file.take(member.size);
    let corrupt = |e: io::Error| DebError::Corrupt {
        member: member.name.clone(),
        reason: e.to_string(),
    };
    let decoder: Box<dyn Read + '_> = match member.name.as_str() {
        "control.tar" => Box::new(compressed),
        "control.tar.gz" => Box::new(flate2::read::GzDecoder::new(compressed)),
        "control.tar.xz" => Box::new(liblzma::read::XzDecoder::new(compressed)),
        "control.tar.zst" => {
            Box::new(zstd::stream::read::Decoder::new(compressed).map_err(corrupt)?)
        }
        other => return Err(DebError::UnsupportedControlCompression(other.to_owned())),
    };
    // One byte past the limit tells a file at the limit from a larger one.
    let mut tar_bytes = Vec::new();
    decoder
        .take(limits.control_tar_bytes + 1)
        .read_to_end(&mut tar_bytes)
        .map_err(corrupt)?;
    if tar_bytes.len() as u64 > limits.control_tar_bytes {
        return Err(too_large(&member.name, limits.control_tar_bytes));
    }

    let mut archive = tar::Archive::new(&tar_bytes[..]);
    let entries = archive.entries().map_err(corrupt)?;
    for entry in entries {
        let mut entry = entry.map_err(corrupt)?;
        let path = entry.path().map_err(corrupt)?;
        let is_control = path
            .to_str()
            .is_some_and(|p| p.trim_start_matches("./") == "control");
        if !is_control || !entry.header().entry_type().is_file() {
            continue;
        }
        if entry.size() > limits.control_file_bytes {
            return Err(too_large("the control file", limits.control_file_bytes));
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut bytes).map_err(corrupt)?;
        return Ok(Control::parse(&bytes)?);
    }
    Err(DebError::NoControlFile)
}

fn too_large(member: &str, limit: u64) -> DebError {
    DebError::TooLarge {
        member: member.to_owned(),
        limit_mib: limit >> 20,
    }
}
