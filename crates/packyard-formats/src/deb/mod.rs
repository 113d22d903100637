//! Debian binary packages and APT repository indexes.
//!
//! Specs followed: deb(5) for the ar container, deb-control(5) and Debian Policy 5.6 for the
//! control fields, and the Debian repository format (wiki.debian.org/DebianRepository/Format)
//! for `Packages`, `Release` and the `by-hash` layout.

mod archive;
mod control;
mod dsc;
mod packages;
pub(crate) mod path;
mod release;
mod version;
mod writer;

pub use archive::{DebError, Limits, read_control};
pub use control::{Control, ControlError};
pub use dsc::{
    Dsc, DscError, MAX_DSC_BYTES, NamedFile, is_clearsigned, parse_dsc, render_sources_stanza,
};
pub use packages::render_stanza;
pub use path::{AptPath, Compression, HashKind, SOURCE, pool_name};
pub use release::{ReleaseFile, ReleaseInfo, release_sha256, render_release};
pub use version::{
    compare_versions, validate_architecture, validate_package_name, validate_version,
};
pub use writer::{DataFile, ar_header, ar_member, build_deb, compress_member, control_member};
