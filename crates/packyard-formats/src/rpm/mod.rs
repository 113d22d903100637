//! RPM packages and YUM/DNF repository metadata.
//!
//! Specs followed: the RPM file format (lead, signature header, header; rpm.org's
//! `docs/manual/format.md` and `tags.md`) and the repodata XML that createrepo_c writes
//! (`repomd.xml`, `primary.xml`, `filelists.xml`, `other.xml`).

mod header;
mod path;
mod xml;

pub use header::{Dependency, FileKind, Limits, RpmError, RpmFile, RpmPackage, read_package};
pub use path::YumPath;
pub use xml::{
    RepomdRecord, filelists_entry, other_entry, primary_entry, render_repomd, repomd_sha256,
    xml_frame,
};
