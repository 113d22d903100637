//! Raw files, with no index: packagecloud's `anyfile` (`NAME-VERSION.EXT` pushed through API
//! v1 to `anyfile/1`, fetched from `/OWNER/REPO/packages/anyfile/FILE/download`) and
//! `/OWNER/REPO/raw/NAME/VERSION/FILE`, uploaded with `curl -T` and fetched at the same path.
//!
//! A file pushed through API v1 is stored under its own name, one per repository; a file
//! uploaded to `raw/` under `NAME/VERSION/FILE`, so every version may hold a file of the same
//! name. Either way the row's architecture is the file's own name: a version holds many files.

pub mod serve;

use packyard_formats::anyfile;

use crate::db::packages::Package;
use crate::ingest::{Parsed, PushError, Staged};

/// How a stored name reads: `FILE` (API v1) or `NAME/VERSION/FILE` (`raw/`).
fn split_stored(filename: &str) -> Option<(&str, &str, &str)> {
    match filename.split('/').collect::<Vec<_>>().as_slice() {
        [name, version, file] => Some((name, version, file)),
        [file] => anyfile::split_filename(file).map(|(name, version)| (name, version, *file)),
        _ => None,
    }
}

pub fn check_filename(filename: &str) -> Result<(), String> {
    let segments: Vec<&str> = filename.split('/').collect();
    if !segments.iter().all(|s| anyfile::is_name_segment(s)) {
        return Err(
            "must be 1 to 200 characters without '/', '\\', '..', spaces, control characters, \
             '\"', '%', '?' or '#', and not start with '.'"
                .into(),
        );
    }
    match segments.len() {
        1 if anyfile::split_filename(filename).is_none() => Err(
            "must read NAME-VERSION.EXT (tool-1.2.3.tar.gz) so the file has a name and a \
             version; upload other names to /OWNER/REPO/raw/NAME/VERSION/FILE"
                .into(),
        ),
        1 | 3 => Ok(()),
        _ => Err("must be FILE or NAME/VERSION/FILE".into()),
    }
}

pub fn parse(staged: &Staged) -> Result<Parsed, PushError> {
    check_filename(&staged.filename)
        .map_err(|why| PushError::BadFilename(format!("file name {:?} {why}", staged.filename)))?;
    let (name, version, file) = split_stored(&staged.filename)
        .ok_or_else(|| PushError::BadFilename(format!("file name {:?}", staged.filename)))?;
    Ok(Parsed {
        format: super::PackageFormat::AnyFile,
        name: name.to_owned(),
        version: version.to_owned(),
        architecture: file.to_owned(),
        filename: staged.filename.clone(),
        dependencies: Default::default(),
        entries: Vec::new(),
        files: Vec::new(),
    })
}

/// `packages/anyfile/FILE/download` or `raw/NAME/VERSION/FILE`, relative to `/OWNER/REPO/`.
pub fn file_path(package: &Package) -> String {
    if package.filename.contains('/') {
        format!("raw/{}", package.filename)
    } else {
        format!("packages/anyfile/{}/download", package.filename)
    }
}
