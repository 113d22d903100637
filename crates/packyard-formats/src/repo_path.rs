//! The URL grammar under `/OWNER/REPO/`, parsed into a typed path before any handler runs:
//!
//! ```text
//! gpgkey                             every public key of the repository, armored
//! gpgkey/NAME.pub.gpg                one of them
//! feed.atom                          the newest packages as an Atom feed
//! OS/dists/... and OS/pool/...       an APT tree (see `deb::AptPath`)
//! OS/VERSION/ARCH/...                a YUM tree (see `rpm::YumPath`)
//! packages/anyfile/FILE/download     a raw file pushed through API v1 (packagecloud's path)
//! raw/NAME/VERSION/FILE              a raw file uploaded with `curl -T`
//! pypi/...                           the Python simple repository (see `pypi::PypiPath`)
//! ```

use crate::anyfile::is_name_segment;
use crate::deb::AptPath;
use crate::deb::path::is_segment;
use crate::npm::NpmPath;
use crate::pypi::PypiPath;
use crate::rpm::YumPath;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoPath {
    GpgKey,
    Feed,
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
    AnyFile {
        filename: String,
    },
    Raw {
        name: String,
        version: String,
        filename: String,
    },
    Pypi(PypiPath),
    Npm(NpmPath),
}

impl RepoPath {
    pub fn parse(path: &str) -> Option<RepoPath> {
        if path == "gpgkey" {
            return Some(RepoPath::GpgKey);
        }
        if path == "feed.atom" {
            return Some(RepoPath::Feed);
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
        if let Some(filename) = path
            .strip_prefix("packages/anyfile/")
            .and_then(|f| f.strip_suffix("/download"))
        {
            return is_name_segment(filename).then(|| RepoPath::AnyFile {
                filename: filename.to_owned(),
            });
        }
        if let Some(rest) = path.strip_prefix("npm/") {
            return NpmPath::parse(rest).map(RepoPath::Npm);
        }
        if path == "pypi" {
            return Some(RepoPath::Pypi(PypiPath::Upload));
        }
        if let Some(rest) = path.strip_prefix("pypi/") {
            return PypiPath::parse(rest).map(RepoPath::Pypi);
        }
        if let Some(rest) = path.strip_prefix("raw/") {
            let mut parts = rest.split('/');
            let (name, version, filename) = (parts.next()?, parts.next()?, parts.next()?);
            let valid = parts.next().is_none()
                && [name, version, filename].iter().all(|s| is_name_segment(s));
            return valid.then(|| RepoPath::Raw {
                name: name.to_owned(),
                version: version.to_owned(),
                filename: filename.to_owned(),
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
        assert_eq!(RepoPath::parse("feed.atom"), Some(RepoPath::Feed));
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
        assert_eq!(
            RepoPath::parse("packages/anyfile/tool-1.0.tar.gz/download"),
            Some(RepoPath::AnyFile {
                filename: "tool-1.0.tar.gz".into()
            })
        );
        assert_eq!(
            RepoPath::parse("raw/tool/1.0/tool-linux-amd64"),
            Some(RepoPath::Raw {
                name: "tool".into(),
                version: "1.0".into(),
                filename: "tool-linux-amd64".into()
            })
        );
        for bad in [
            "raw/tool/1.0",
            "raw/tool/1.0/a/b",
            "raw/tool/../x",
            "raw/tool/1.0/.hidden",
            "packages/anyfile/../download",
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
