//! The URL grammar under `/OWNER/REPO/`, parsed into a typed path before any handler runs:
//!
//! ```text
//! gpgkey                             every public key of the repository, armored
//! gpgkey/NAME.pub.gpg                one of them
//! OS/dists/... and OS/pool/...       an APT tree (see `deb::AptPath`)
//! OS/VERSION/ARCH/...                a YUM tree (see `rpm::YumPath`)
//! ```

use crate::deb::AptPath;
use crate::deb::path::is_segment;
use crate::rpm::YumPath;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoPath {
    GpgKey,
    GpgKeyFile {
        name: String,
    },
    Apt {
        os: String,
        path: AptPath,
    },
    Yum {
        os: String,
        version: String,
        arch: String,
        path: YumPath,
    },
}

impl RepoPath {
    pub fn parse(path: &str) -> Option<RepoPath> {
        if path == "gpgkey" {
            return Some(RepoPath::GpgKey);
        }
        if let Some(name) = path
            .strip_prefix("gpgkey/")
            .and_then(|f| f.strip_suffix(".pub.gpg"))
        {
            let valid =
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            return valid.then(|| RepoPath::GpgKeyFile {
                name: name.to_owned(),
            });
        }
        let (os, rest) = path.split_once('/')?;
        if !is_segment(os) {
            return None;
        }
        if rest.starts_with("dists/") || rest.starts_with("pool/") {
            return Some(RepoPath::Apt {
                os: os.to_owned(),
                path: AptPath::parse(rest)?,
            });
        }
        let (version, rest) = rest.split_once('/')?;
        let (arch, rest) = rest.split_once('/')?;
        if !is_segment(version) || !is_segment(arch) {
            return None;
        }
        Some(RepoPath::Yum {
            os: os.to_owned(),
            version: version.to_owned(),
            arch: arch.to_owned(),
            path: YumPath::parse(rest)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatches_by_shape() {
        assert_eq!(RepoPath::parse("gpgkey"), Some(RepoPath::GpgKey));
        assert_eq!(
            RepoPath::parse("gpgkey/package-0123456789abcdef.pub.gpg"),
            Some(RepoPath::GpgKeyFile {
                name: "package-0123456789abcdef".into()
            })
        );
        assert_eq!(RepoPath::parse("gpgkey/../x.pub.gpg"), None);
        assert_eq!(
            RepoPath::parse("debian/dists/bookworm/InRelease"),
            Some(RepoPath::Apt {
                os: "debian".into(),
                path: AptPath::InRelease {
                    dist: "bookworm".into()
                }
            })
        );
        assert_eq!(
            RepoPath::parse("el/9/x86_64/repodata/repomd.xml"),
            Some(RepoPath::Yum {
                os: "el".into(),
                version: "9".into(),
                arch: "x86_64".into(),
                path: YumPath::Repomd
            })
        );
        for bad in [
            "",
            "debian",
            "debian//dists/x/InRelease",
            "el/9/x86_64",
            "el/../x86_64/repodata/repomd.xml",
            "../gpgkey",
        ] {
            assert_eq!(RepoPath::parse(bad), None, "{bad}");
        }
    }
}
