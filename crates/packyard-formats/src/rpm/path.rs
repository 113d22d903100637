//! The URL grammar of a repository's YUM tree, relative to `/OWNER/REPO/OS/VERSION/ARCH/`
//! (ARCH is an rpm architecture, or `SRPMS` for source packages):
//!
//! ```text
//! repodata/repomd.xml
//! repodata/repomd.xml.asc
//! repodata/<sha256>-{primary,filelists,other}.xml.gz
//! Packages/<first letter>/<file>.rpm
//! ```

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum YumPath {
    Repomd,
    RepomdAsc,
    /// A content-addressed metadata file, by its name under `repodata/`.
    Data {
        name: String,
    },
    Package {
        filename: String,
    },
}

impl YumPath {
    pub fn parse(path: &str) -> Option<YumPath> {
        let parts: Vec<&str> = path.split('/').collect();
        let safe = |s: &str| !s.is_empty() && s != "." && s != ".." && !s.contains(['\\', '\0']);
        if !parts.iter().all(|p| safe(p)) {
            return None;
        }
        match parts.as_slice() {
            ["repodata", "repomd.xml"] => Some(YumPath::Repomd),
            ["repodata", "repomd.xml.asc"] => Some(YumPath::RepomdAsc),
            ["repodata", name] if is_data_name(name) => Some(YumPath::Data {
                name: (*name).to_owned(),
            }),
            ["Packages", letter, filename] if filename.ends_with(".rpm") => {
                let first = filename.chars().next()?.to_string();
                (*letter == first).then(|| YumPath::Package {
                    filename: (*filename).to_owned(),
                })
            }
            _ => None,
        }
    }

    /// Where a package file lives, relative to the architecture's base URL.
    pub fn package_href(filename: &str) -> String {
        let letter = filename.chars().next().unwrap_or('_');
        format!("Packages/{letter}/{filename}")
    }
}

fn is_data_name(name: &str) -> bool {
    match name.split_once('-') {
        Some((hash, rest)) => {
            hash.len() == 64
                && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                && matches!(
                    rest,
                    "primary.xml.gz"
                        | "filelists.xml.gz"
                        | "other.xml.gz"
                        | "primary.xml.zst"
                        | "filelists.xml.zst"
                        | "other.xml.zst"
                )
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_yum_tree() {
        assert_eq!(YumPath::parse("repodata/repomd.xml"), Some(YumPath::Repomd));
        assert_eq!(
            YumPath::parse("repodata/repomd.xml.asc"),
            Some(YumPath::RepomdAsc)
        );
        let name = format!("{}-primary.xml.gz", "a".repeat(64));
        assert_eq!(
            YumPath::parse(&format!("repodata/{name}")),
            Some(YumPath::Data { name })
        );
        assert_eq!(
            YumPath::parse("Packages/h/hello-1.0-1.x86_64.rpm"),
            Some(YumPath::Package {
                filename: "hello-1.0-1.x86_64.rpm".into()
            })
        );
        for bad in [
            "repodata/x-primary.xml.gz",
            "repodata/../repomd.xml",
            "Packages/x/hello.rpm",
            "Packages/h/hello.deb",
            "hello.rpm",
        ] {
            assert_eq!(YumPath::parse(bad), None, "{bad}");
        }
        assert_eq!(
            YumPath::package_href("hello-1.0-1.x86_64.rpm"),
            "Packages/h/hello-1.0-1.x86_64.rpm"
        );
    }
}
