//! The `Release` file of one distribution, which `InRelease` and `Release.gpg` sign:
//!
//! ```text
//! Origin: acme stable
//! Label: acme stable
//! Suite: bookworm
//! Codename: bookworm
//! Date: Sun, 22 Nov 2026 02:13:25 UTC
//! Architectures: amd64 arm64 i386
//! Components: main
//! Acquire-By-Hash: yes
//! MD5Sum:
//!  9a0364b9e99bb480dd25e1f0284c8555 1234 main/binary-amd64/Packages
//! SHA256:
//!  ...
//! ```
//!
//! Every file is listed under each of the four hash fields, as the Debian repository format
//! describes; apt picks the strongest and, with `Acquire-By-Hash`, fetches
//! `main/binary-ARCH/by-hash/SHA512/<digest>`.

use crate::digest::FileDigests;

/// What the header of a `Release` says.
pub struct ReleaseInfo<'a> {
    pub origin: &'a str,
    pub label: &'a str,
    pub suite: &'a str,
    pub codename: &'a str,
    /// RFC 2822 date in UTC, for example `Sun, 22 Nov 2026 02:13:25 UTC`.
    pub date: &'a str,
    pub architectures: &'a [String],
    pub components: &'a [&'a str],
    pub description: &'a str,
}

/// One index file, by its path relative to `dists/DIST/`.
pub struct ReleaseFile<'a> {
    pub path: &'a str,
    pub digests: &'a FileDigests,
}

pub fn render_release(info: &ReleaseInfo<'_>, files: &[ReleaseFile<'_>]) -> String {
    let mut out = String::with_capacity(512 + files.len() * 400);
    let header = [
        ("Origin", info.origin),
        ("Label", info.label),
        ("Suite", info.suite),
        ("Codename", info.codename),
        ("Date", info.date),
    ];
    for (name, value) in header {
        out.push_str(&format!("{name}: {value}\n"));
    }
    out.push_str(&format!(
        "Architectures: {}\n",
        info.architectures.join(" ")
    ));
    out.push_str(&format!("Components: {}\n", info.components.join(" ")));
    out.push_str(&format!("Description: {}\n", info.description));
    out.push_str("Acquire-By-Hash: yes\n");
    let width = files
        .iter()
        .map(|f| f.digests.size.to_string().len())
        .max()
        .unwrap_or(1);
    type Digest = fn(&FileDigests) -> &str;
    let sections: [(&str, Digest); 4] = [
        ("MD5Sum", |d| &d.md5),
        ("SHA1", |d| &d.sha1),
        ("SHA256", |d| &d.sha256),
        ("SHA512", |d| &d.sha512),
    ];
    for (name, digest) in sections {
        out.push_str(name);
        out.push_str(":\n");
        for file in files {
            out.push_str(&format!(
                " {} {:>width$} {}\n",
                digest(file.digests),
                file.digests.size,
                file.path
            ));
        }
    }
    out
}

/// The `SHA256:` section of a Release file: digest, size and path of each index file.
pub fn release_sha256(release: &str) -> Vec<(String, u64, String)> {
    let mut in_section = false;
    let mut listed = Vec::new();
    for line in release.lines() {
        if !line.starts_with(' ') {
            in_section = line.trim_end() == "SHA256:";
            continue;
        }
        if !in_section {
            continue;
        }
        let mut fields = line.split_whitespace();
        if let (Some(hash), Some(size), Some(path)) = (fields.next(), fields.next(), fields.next())
            && let Ok(size) = size.parse()
        {
            listed.push((hash.to_owned(), size, path.to_owned()));
        }
    }
    listed
}

#[cfg(test)]
mod listing_tests {
    use super::*;

    #[test]
    fn reads_the_digests_a_release_lists() {
        let release = "Origin: x\nMD5Sum:\n 00 1 main/binary-amd64/Packages\nSHA256:\n aa 10 main/binary-amd64/Packages\n bb 5 main/binary-amd64/Packages.gz\nAcquire-By-Hash: yes\n";
        assert_eq!(
            release_sha256(release),
            [
                ("aa".to_owned(), 10, "main/binary-amd64/Packages".to_owned()),
                (
                    "bb".to_owned(),
                    5,
                    "main/binary-amd64/Packages.gz".to_owned()
                )
            ]
        );
    }
}
