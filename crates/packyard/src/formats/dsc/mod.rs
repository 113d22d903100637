//! Debian source packages: a `.dsc` pushed with the files it names
//! (`package[source_files][]`), to a deb distribution. Its stanza goes into the APT target's
//! `main/source/Sources`, which the deb publisher builds beside `Packages`; the `.dsc` and its
//! files are served from the pool directory the stanza names, for `apt-get source`.

use anyhow::Context;
use packyard_formats::deb::{self, AptPath, SOURCE};
use packyard_formats::digest::FileDigests;

use crate::db::packages::{Package, PackageFile};
use crate::distros::Distro;
use crate::ingest::{Parsed, PushError, Staged};

/// The relation fields API v1 lists under a source package's dependencies.
const RELATIONS: [&str; 6] = [
    "Build-Depends",
    "Build-Depends-Indep",
    "Build-Depends-Arch",
    "Build-Conflicts",
    "Build-Conflicts-Indep",
    "Build-Conflicts-Arch",
];

/// `pool/DIST/main/L/SOURCE/FILE`, relative to `/OWNER/REPO/OS/`.
pub fn file_path(distro: &Distro, package: &Package) -> String {
    AptPath::pool_filename(distro.dist, &package.name, &package.filename)
}

/// Reads an uploaded `.dsc`, clear-signed or not.
pub async fn read(staged: &Staged) -> Result<deb::Dsc, PushError> {
    let bad = |m: String| PushError::BadPackage(m);
    // A clear-signature adds a few KiB; anything far larger is not a .dsc.
    if staged.digests.size > 2 * deb::MAX_DSC_BYTES as u64 {
        return Err(bad(format!(
            "{} is {} bytes, too large for a .dsc",
            staged.filename, staged.digests.size
        )));
    }
    let bytes = tokio::fs::read(&staged.path)
        .await
        .context("reading the .dsc")?;
    let text = if deb::is_clearsigned(&bytes) {
        let signed = String::from_utf8(bytes).map_err(|_| bad("the .dsc is not UTF-8".into()))?;
        crate::sign::cleartext_body(&signed)
            .map_err(|e| bad(format!("the .dsc's clear-signature does not parse: {e:#}")))?
            .into_bytes()
    } else {
        bytes
    };
    deb::parse_dsc(&text).map_err(|e| bad(e.to_string()))
}

pub async fn parse(staged: &Staged, distro: &Distro) -> Result<Parsed, PushError> {
    let bad = |m: String| PushError::BadPackage(m);
    let dsc = read(staged).await?;

    // Every named file uploaded, each exactly as named; nothing else.
    let mut files: Vec<(&str, &FileDigests)> = Vec::new();
    for named in &dsc.files {
        let uploaded = staged
            .source_files
            .iter()
            .find(|f| f.filename == named.name)
            .ok_or_else(|| {
                bad(format!(
                    "{}, which the .dsc names, was not uploaded with it (package[source_files][])",
                    named.name
                ))
            })?;
        let d = &uploaded.digests;
        let matches = d.size == named.size
            && d.md5 == named.md5
            && named.sha1.as_ref().is_none_or(|h| *h == d.sha1)
            && named.sha256.as_ref().is_none_or(|h| *h == d.sha256);
        if !matches {
            return Err(bad(format!(
                "{} differs from what the .dsc lists: it names {} bytes with MD5 {}{}, the upload \
                 has {} bytes with MD5 {} and SHA-256 {}",
                named.name,
                named.size,
                named.md5,
                named
                    .sha256
                    .as_ref()
                    .map(|h| format!(" and SHA-256 {h}"))
                    .unwrap_or_default(),
                d.size,
                d.md5,
                d.sha256
            )));
        }
        files.push((&named.name, d));
    }
    if let Some(extra) = staged
        .source_files
        .iter()
        .find(|f| !dsc.files.iter().any(|n| n.name == f.filename))
    {
        return Err(bad(format!(
            "{} was uploaded with the .dsc, which does not name it",
            extra.filename
        )));
    }

    let (name, version) = (dsc.source().to_owned(), dsc.version().to_owned());
    let without_epoch = version.split_once(':').map_or(version.as_str(), |(_, v)| v);
    let filename = format!("{name}_{without_epoch}.dsc");
    if dsc.files.iter().any(|f| f.name == filename) {
        return Err(bad(format!("the .dsc names {filename}, its own name")));
    }
    let directory = AptPath::pool_filename(distro.dist, &name, "");
    let directory = directory.trim_end_matches('/');
    let mut listed = vec![(filename.as_str(), &staged.digests)];
    listed.extend(files.iter().copied());
    let stanza = deb::render_sources_stanza(&dsc.control, directory, &listed);
    let dependencies = RELATIONS
        .iter()
        .filter_map(|field| {
            let value = dsc.control.get(field)?;
            let relations = value
                .split(',')
                .map(|r| r.split_whitespace().collect::<Vec<_>>().join(" "))
                .filter(|r| !r.is_empty())
                .collect();
            Some((field.to_lowercase(), relations))
        })
        .collect();
    let stored = files
        .iter()
        .map(|(filename, d)| PackageFile {
            filename: filename.to_string(),
            size: d.size as i64,
            md5: d.md5.clone(),
            sha1: d.sha1.clone(),
            sha256: d.sha256.clone(),
            sha512: d.sha512.clone(),
        })
        .collect();
    Ok(Parsed {
        format: super::PackageFormat::Dsc,
        name,
        version,
        architecture: SOURCE.to_owned(),
        filename,
        dependencies,
        entries: vec![("packages", stanza)],
        files: stored,
    })
}
