//! npm packages: names, versions (semver as npm orders it, through `nodejs-semver`), the
//! `package/package.json` inside a tarball, and the registry's URL grammar.

use std::io::Read;

pub use nodejs_semver::Version;
use thiserror::Error;

/// The largest package.json read from a tarball.
const MAX_MANIFEST_BYTES: u64 = 1 << 20;
/// The most tarball entries looked at, and bytes decompressed, while checking a tarball.
const MAX_ENTRIES: usize = 100_000;
const MAX_UNPACKED_BYTES: u64 = 1 << 30;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum NpmError {
    #[error("{0:?} is not a valid npm package name")]
    Name(String),
    #[error("{0:?} is not a semver version")]
    Version(String),
    #[error("the tarball is not readable: {0}")]
    Tarball(String),
    #[error("the tarball has an entry {0:?} outside its package folder")]
    Traversal(String),
    #[error("the tarball holds no package/package.json")]
    NoManifest,
    #[error("the tarball's package.json is not valid: {0}")]
    Manifest(String),
    #[error("the tarball unpacks to more than {MAX_UNPACKED_BYTES} bytes")]
    TooLarge,
}

/// Checks a package name as the registry does: at most 214 characters, lower case, URL-safe,
/// not starting with `.` or `_`; `@scope/name` for scoped packages.
pub fn validate_name(name: &str) -> Result<(), NpmError> {
    let bad = || NpmError::Name(name.to_owned());
    if name.is_empty() || name.len() > 214 {
        return Err(bad());
    }
    let part_ok = |part: &str| {
        !part.is_empty()
            && !part.starts_with(['.', '_'])
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._~".contains(&b))
    };
    match name.strip_prefix('@') {
        Some(scoped) => {
            let (scope, bare) = scoped.split_once('/').ok_or_else(bad)?;
            (part_ok(scope) && part_ok(bare))
                .then_some(())
                .ok_or_else(bad)
        }
        None => part_ok(name).then_some(()).ok_or_else(bad),
    }
}

/// The name without its scope: the tarball is `BARE-VERSION.tgz`.
pub fn bare_name(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// A version as npm stores it: valid semver, build metadata dropped (`1.0.0+b` is `1.0.0`).
pub fn normalize_version(version: &str) -> Result<nodejs_semver::Version, NpmError> {
    let bad = || NpmError::Version(version.to_owned());
    let written = version.trim().trim_start_matches(['v', '=']);
    let written = written.split_once('+').map_or(written, |(v, _)| v);
    let parsed = nodejs_semver::Version::parse(written).map_err(|_| bad())?;
    // Strict, as `semver.valid` is: the parser also takes `1.0` and `01.0.0`.
    (parsed.to_string() == written)
        .then_some(parsed)
        .ok_or_else(bad)
}

/// Whether a dist-tag name could be read as a version range, which npm refuses as a tag.
pub fn is_semver_like(tag: &str) -> bool {
    nodejs_semver::Range::parse(tag).is_ok()
}

/// Reads a package tarball: every entry must lie under its first folder (`package/`), and
/// `package/package.json` is returned parsed.
pub fn read_tarball_manifest(tarball: impl Read) -> Result<serde_json::Value, NpmError> {
    let bad = |e: std::io::Error| NpmError::Tarball(e.to_string());
    let gz = flate2::read::GzDecoder::new(tarball).take(MAX_UNPACKED_BYTES + 1);
    let mut archive = tar::Archive::new(gz);
    let mut manifest = None;
    let mut top: Option<String> = None;
    for (index, entry) in archive.entries().map_err(bad)?.enumerate() {
        if index >= MAX_ENTRIES {
            return Err(NpmError::Tarball(format!(
                "more than {MAX_ENTRIES} entries"
            )));
        }
        let mut entry = entry.map_err(bad)?;
        let path = entry.path().map_err(bad)?.to_string_lossy().into_owned();
        let components: Vec<&str> = path
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        if path.starts_with('/') || components.contains(&"..") || components.is_empty() {
            return Err(NpmError::Traversal(path));
        }
        let first = components[0].to_owned();
        if top.get_or_insert_with(|| first.clone()) != &first {
            return Err(NpmError::Traversal(path));
        }
        if components.len() == 2 && components[1] == "package.json" && manifest.is_none() {
            let mut text = Vec::new();
            (&mut entry)
                .take(MAX_MANIFEST_BYTES + 1)
                .read_to_end(&mut text)
                .map_err(bad)?;
            if text.len() as u64 > MAX_MANIFEST_BYTES {
                return Err(NpmError::Manifest("larger than 1 MiB".into()));
            }
            let value: serde_json::Value =
                serde_json::from_slice(&text).map_err(|e| NpmError::Manifest(e.to_string()))?;
            manifest = Some(value);
        } else {
            // Read through, so the size bound covers every entry.
            std::io::copy(&mut entry, &mut std::io::sink()).map_err(bad)?;
        }
    }
    manifest.ok_or(NpmError::NoManifest)
}

/// A path under `/OWNER/REPO/npm/`, `%2f` already decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NpmPath {
    /// `NAME`: the packument (GET), a publish or an update (PUT).
    Package {
        name: String,
    },
    /// `NAME/-rev/REV`: an update (PUT) or the removal of every version (DELETE).
    Revision {
        name: String,
    },
    /// `NAME/-/FILE.tgz` (and `/-rev/REV` after it for a DELETE).
    Tarball {
        name: String,
        filename: String,
    },
    /// `-/package/NAME/dist-tags[/TAG]`
    DistTags {
        name: String,
        tag: Option<String>,
    },
    /// `-/user/org.couchdb.user:USER`
    Login {
        user: String,
    },
    WhoAmI,
    Ping,
    /// `-/npm/v1/security/...`: audits, answered empty.
    Audit,
    /// Any other `-/...`, such as `-/v1/login` (404 makes npm fall back to the couch login).
    Other,
}

impl NpmPath {
    pub fn parse(path: &str) -> Option<NpmPath> {
        if let Some(rest) = path.strip_prefix("-/") {
            return Some(match rest {
                "whoami" => NpmPath::WhoAmI,
                "ping" => NpmPath::Ping,
                _ if rest.starts_with("npm/v1/security/") => NpmPath::Audit,
                _ => {
                    if let Some(user) = rest.strip_prefix("user/org.couchdb.user:") {
                        NpmPath::Login {
                            user: user.to_owned(),
                        }
                    } else if let Some(rest) = rest.strip_prefix("package/") {
                        let (name, rest) = split_name(rest)?;
                        let tag = match rest {
                            "dist-tags" | "dist-tags/" => None,
                            _ => Some(rest.strip_prefix("dist-tags/")?.to_owned()),
                        };
                        NpmPath::DistTags { name, tag }
                    } else {
                        NpmPath::Other
                    }
                }
            });
        }
        let (name, rest) = split_name(path)?;
        validate_name(&name).ok()?;
        match rest.split('/').collect::<Vec<_>>().as_slice() {
            [""] => Some(NpmPath::Package { name }),
            ["-rev", _] => Some(NpmPath::Revision { name }),
            ["-", file] | ["-", file, "-rev", _] if file.ends_with(".tgz") => {
                Some(NpmPath::Tarball {
                    name,
                    filename: (*file).to_owned(),
                })
            }
            _ => None,
        }
    }
}

/// `@scope/name/rest` or `name/rest` into the name and the rest.
fn split_name(path: &str) -> Option<(String, &str)> {
    let (first, rest) = path.split_once('/').unwrap_or((path, ""));
    if first.starts_with('@') {
        let (bare, rest) = rest.split_once('/').unwrap_or((rest, ""));
        Some((format!("{first}/{bare}"), rest))
    } else {
        Some((first.to_owned(), rest))
    }
}

/// A minimal package tarball of `name` at `version` (`package/package.json` and an
/// `index.js`), for benchmarks and tests.
pub fn build_tarball(name: &str, version: &str) -> Vec<u8> {
    use std::io::Write;
    let manifest =
        serde_json::json!({ "name": name, "version": version, "main": "index.js" }).to_string();
    let index = format!("module.exports = {version:?};\n");
    let mut builder = tar::Builder::new(Vec::new());
    for (path, text) in [
        ("package/package.json", manifest),
        ("package/index.js", index),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, path, text.as_bytes())
            .expect("writing to memory");
    }
    let tar = builder.into_inner().expect("writing to memory");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).expect("writing to memory");
    gz.finish().expect("writing to memory")
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn tarball(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, bytes) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            // Written raw so a hostile path survives the builder's own checks.
            header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_cksum();
            builder.append(&header, *bytes).unwrap();
        }
        let tar = builder.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn names_follow_the_registry_rules() {
        for good in ["demo", "@acme/demo", "a.b-c_d", "x"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in [
            "Demo", "@acme", "@acme/", ".hidden", "_x", "a b", "@a/b/c", "../x", "",
        ] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        assert_eq!(bare_name("@acme/demo"), "demo");
    }

    #[test]
    fn versions_order_as_npm_orders_them() {
        let order = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
        ];
        let parsed: Vec<_> = order
            .iter()
            .map(|v| normalize_version(v).unwrap())
            .collect();
        assert!(parsed.windows(2).all(|w| w[0] < w[1]), "{parsed:?}");
        assert_eq!(
            normalize_version("1.0.0+build.5").unwrap().to_string(),
            "1.0.0"
        );
        assert!(normalize_version("1.0").is_err() && normalize_version("01.0.0").is_err());
        assert!(is_semver_like("1.x") && !is_semver_like("beta"));
    }

    #[test]
    fn tarballs_keep_to_their_folder() {
        let good = tarball(&[
            (
                "package/package.json",
                br#"{"name":"demo","version":"1.0.0"}"#,
            ),
            ("package/index.js", b""),
        ]);
        assert_eq!(read_tarball_manifest(&good[..]).unwrap()["name"], "demo");
        let climbing = tarball(&[
            ("package/package.json", b"{}"),
            ("package/../../etc/x", b""),
        ]);
        assert!(matches!(
            read_tarball_manifest(&climbing[..]),
            Err(NpmError::Traversal(_))
        ));
        let two_tops = tarball(&[("package/package.json", b"{}"), ("other/x", b"")]);
        assert!(matches!(
            read_tarball_manifest(&two_tops[..]),
            Err(NpmError::Traversal(_))
        ));
        assert_eq!(
            read_tarball_manifest(&tarball(&[("package/x", b"")])[..]),
            Err(NpmError::NoManifest)
        );
        assert!(read_tarball_manifest(&b"not gzip"[..]).is_err());
    }

    #[test]
    fn built_tarballs_read_back() {
        let tarball = build_tarball("@acme/demo", "1.2.3");
        let manifest = read_tarball_manifest(&tarball[..]).unwrap();
        assert_eq!(
            (manifest["name"].as_str(), manifest["version"].as_str()),
            (Some("@acme/demo"), Some("1.2.3"))
        );
    }

    #[test]
    fn registry_paths_parse() {
        assert_eq!(
            NpmPath::parse("@acme/demo"),
            Some(NpmPath::Package {
                name: "@acme/demo".into()
            })
        );
        assert_eq!(
            NpmPath::parse("@acme/demo/-/demo-1.0.0.tgz"),
            Some(NpmPath::Tarball {
                name: "@acme/demo".into(),
                filename: "demo-1.0.0.tgz".into()
            })
        );
        assert_eq!(
            NpmPath::parse("demo/-/demo-1.0.0.tgz/-rev/3-abc"),
            Some(NpmPath::Tarball {
                name: "demo".into(),
                filename: "demo-1.0.0.tgz".into()
            })
        );
        assert_eq!(
            NpmPath::parse("demo/-rev/3-abc"),
            Some(NpmPath::Revision {
                name: "demo".into()
            })
        );
        assert_eq!(
            NpmPath::parse("-/package/@acme/demo/dist-tags/beta"),
            Some(NpmPath::DistTags {
                name: "@acme/demo".into(),
                tag: Some("beta".into())
            })
        );
        assert_eq!(
            NpmPath::parse("-/user/org.couchdb.user:ci"),
            Some(NpmPath::Login { user: "ci".into() })
        );
        assert_eq!(NpmPath::parse("-/v1/login"), Some(NpmPath::Other));
        assert_eq!(NpmPath::parse("../x"), None);
    }
}
