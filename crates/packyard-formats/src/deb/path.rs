//! The URL grammar of a repository's APT tree, relative to `/OWNER/REPO/OS/`:
//!
//! ```text
//! dists/DIST/{InRelease,Release,Release.gpg}
//! dists/DIST/main/binary-ARCH/Packages{,.gz,.zst,.xz}
//! dists/DIST/main/source/Sources{,.gz,.zst,.xz}
//! dists/DIST/main/{binary-ARCH,source}/by-hash/{MD5Sum,SHA1,SHA256,SHA512}/HEX
//! pool/DIST/main/L/NAME/FILE                 (a .deb, or a source package's files)
//! ```

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    Xz,
}

impl Compression {
    pub fn suffix(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => ".gz",
            Compression::Zstd => ".zst",
            Compression::Xz => ".xz",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashKind {
    Md5,
    Sha1,
    Sha256,
    Sha512,
}

impl HashKind {
    fn parse(name: &str, hex: &str) -> Option<HashKind> {
        let (kind, len) = match name {
            "MD5Sum" => (HashKind::Md5, 32),
            "SHA1" => (HashKind::Sha1, 40),
            "SHA256" => (HashKind::Sha256, 64),
            "SHA512" => (HashKind::Sha512, 128),
            _ => return None,
        };
        let valid = hex.len() == len && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        valid.then_some(kind)
    }
}

/// The architecture that stands for source packages: their index is `main/source/Sources`.
pub const SOURCE: &str = "source";

/// `binary-ARCH` is ARCH's index directory, `source` that of source packages.
fn index_arch(dir: &str) -> Option<&str> {
    if dir == SOURCE {
        Some(SOURCE)
    } else {
        dir.strip_prefix("binary-").filter(|arch| *arch != SOURCE)
    }
}

/// A path under `/OWNER/REPO/OS/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AptPath {
    InRelease {
        dist: String,
    },
    Release {
        dist: String,
    },
    ReleaseGpg {
        dist: String,
    },
    /// `Packages` of an architecture, or `Sources` when `arch` is `SOURCE`.
    Packages {
        dist: String,
        arch: String,
        compression: Compression,
    },
    ByHash {
        dist: String,
        arch: String,
        kind: HashKind,
        hex: String,
    },
    Pool {
        dist: String,
        name: String,
        filename: String,
    },
}

impl AptPath {
    pub fn parse(path: &str) -> Option<AptPath> {
        let parts: Vec<&str> = path.split('/').collect();
        if !parts.iter().all(|p| is_segment(p)) {
            return None;
        }
        let owned = |s: &str| s.to_owned();
        match parts.as_slice() {
            ["dists", dist, "InRelease"] => Some(AptPath::InRelease { dist: owned(dist) }),
            ["dists", dist, "Release"] => Some(AptPath::Release { dist: owned(dist) }),
            ["dists", dist, "Release.gpg"] => Some(AptPath::ReleaseGpg { dist: owned(dist) }),
            ["dists", dist, "main", dir, file] => {
                let arch = index_arch(dir)?;
                let stem = if arch == SOURCE {
                    "Sources"
                } else {
                    "Packages"
                };
                let compression = match file.strip_prefix(stem)? {
                    "" => Compression::None,
                    ".gz" => Compression::Gzip,
                    ".zst" => Compression::Zstd,
                    ".xz" => Compression::Xz,
                    _ => return None,
                };
                Some(AptPath::Packages {
                    dist: owned(dist),
                    arch: owned(arch),
                    compression,
                })
            }
            ["dists", dist, "main", dir, "by-hash", kind, hex] => {
                let arch = index_arch(dir)?;
                Some(AptPath::ByHash {
                    dist: owned(dist),
                    arch: owned(arch),
                    kind: HashKind::parse(kind, hex)?,
                    hex: owned(hex),
                })
            }
            ["pool", dist, "main", letter, name, filename] => {
                let first = name.chars().next()?.to_string();
                if *letter != first {
                    return None;
                }
                Some(AptPath::Pool {
                    dist: owned(dist),
                    name: owned(name),
                    filename: owned(filename),
                })
            }
            _ => None,
        }
    }

    /// The distribution (suite) the path is under.
    pub fn dist(&self) -> &str {
        match self {
            AptPath::InRelease { dist }
            | AptPath::Release { dist }
            | AptPath::ReleaseGpg { dist }
            | AptPath::Packages { dist, .. }
            | AptPath::ByHash { dist, .. }
            | AptPath::Pool { dist, .. } => dist,
        }
    }

    /// The directory of an architecture's index under `dists/DIST/`: `main/binary-ARCH`, or
    /// `main/source` for `SOURCE`.
    pub fn index_dir(arch: &str) -> String {
        if arch == SOURCE {
            "main/source".to_owned()
        } else {
            format!("main/binary-{arch}")
        }
    }

    /// An architecture's index file under `dists/DIST/`: `main/binary-ARCH/Packages` or
    /// `main/source/Sources`, with the compression's suffix.
    pub fn index_file(arch: &str, compression: Compression) -> String {
        let stem = if arch == SOURCE {
            "Sources"
        } else {
            "Packages"
        };
        format!("{}/{stem}{}", Self::index_dir(arch), compression.suffix())
    }

    /// The pool path of a package file relative to `/OWNER/REPO/OS/`, as `Filename:` lists it.
    pub fn pool_filename(dist: &str, name: &str, filename: &str) -> String {
        let letter = name.chars().next().unwrap_or('_');
        format!("pool/{dist}/main/{letter}/{name}/{filename}")
    }
}

/// Debian's name for a package's file: `NAME_VERSION_ARCH.deb` with the epoch left out, as
/// dak, reprepro and aptly name pool files. The fields must have passed `validate_*`, which
/// leaves nothing a URL or a path would need to escape but `+` and `~`.
pub fn pool_name(name: &str, version: &str, architecture: &str) -> String {
    let version = version.split_once(':').map_or(version, |(_, rest)| rest);
    format!("{name}_{version}_{architecture}.deb")
}

/// A non-empty path segment that cannot climb out of its directory.
pub(crate) fn is_segment(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains('\\') && !s.contains('\0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_names_leave_the_epoch_out() {
        assert_eq!(
            pool_name("bsdutils", "1:2.38.1-5+deb12u3", "amd64"),
            "bsdutils_2.38.1-5+deb12u3_amd64.deb"
        );
        assert_eq!(
            pool_name("hello", "1.0~rc1", "all"),
            "hello_1.0~rc1_all.deb"
        );
    }

    #[test]
    fn parses_the_apt_tree() {
        assert_eq!(
            AptPath::parse("dists/bookworm/InRelease"),
            Some(AptPath::InRelease {
                dist: "bookworm".into()
            })
        );
        assert_eq!(
            AptPath::parse("dists/jammy/main/binary-arm64/Packages.gz"),
            Some(AptPath::Packages {
                dist: "jammy".into(),
                arch: "arm64".into(),
                compression: Compression::Gzip
            })
        );
        let hex = "a".repeat(128);
        assert_eq!(
            AptPath::parse(&format!(
                "dists/jammy/main/binary-amd64/by-hash/SHA512/{hex}"
            )),
            Some(AptPath::ByHash {
                dist: "jammy".into(),
                arch: "amd64".into(),
                kind: HashKind::Sha512,
                hex
            })
        );
        assert_eq!(
            AptPath::parse("pool/jammy/main/h/hello/hello_1.0_amd64.deb"),
            Some(AptPath::Pool {
                dist: "jammy".into(),
                name: "hello".into(),
                filename: "hello_1.0_amd64.deb".into()
            })
        );
    }

    #[test]
    fn sources_are_the_index_of_the_source_architecture() {
        let path = AptPath::parse("dists/bookworm/main/source/Sources.gz").unwrap();
        assert_eq!(
            path,
            AptPath::Packages {
                dist: "bookworm".into(),
                arch: SOURCE.into(),
                compression: Compression::Gzip
            }
        );
        assert_eq!(
            AptPath::index_file(SOURCE, Compression::Gzip),
            "main/source/Sources.gz"
        );
        assert_eq!(
            AptPath::index_file("amd64", Compression::None),
            "main/binary-amd64/Packages"
        );
        assert!(AptPath::parse("pool/bookworm/main/h/hello/hello_1.0-1.dsc").is_some());
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "",
            "dists/bookworm/Release.bak",
            "dists/../InRelease",
            "dists/bookworm/main/binary-amd64/Packages.bz2",
            "dists/bookworm/main/binary-amd64/by-hash/SHA256/xyz",
            "dists/bookworm/main/binary-amd64/by-hash/SHA256/ABCDEF",
            "pool/bookworm/main/x/hello/hello.deb",
            "dists/bookworm/main/source/Packages",
            "dists/bookworm/main/binary-amd64/Sources",
            "dists/bookworm/main/binary-source/Packages",
            "/dists/bookworm/InRelease",
        ] {
            assert_eq!(AptPath::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn pool_filename_uses_the_first_letter() {
        assert_eq!(
            AptPath::pool_filename("bookworm", "libfoo", "libfoo_1_amd64.deb"),
            "pool/bookworm/main/l/libfoo/libfoo_1_amd64.deb"
        );
    }
}
