//! The URL grammar under `/OWNER/REPO/`, parsed into a typed path before any handler runs:
//!
//! ```text
//! gpgkey
//! OS/dists/... and OS/pool/...       an APT tree (see `deb::AptPath`)
//! OS/VERSION/ARCH/...                a YUM tree (see `rpm::YumPath`)
//! ```

use crate::deb::AptPath;
use crate::deb::path::is_segment;
use crate::rpm::YumPath;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoPath {
    GpgKey,
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
