//! The digests that index files list for each file, computed in one pass over the bytes.

use md5::Digest as _;

/// MD5, SHA-1, SHA-256 and SHA-512 of one file, as lowercase hex, with its size in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDigests {
    pub size: u64,
    pub md5: String,
    pub sha1: String,
    pub sha256: String,
    pub sha512: String,
}

/// Feeds bytes to the four hashes at once so a file is read only once.
#[derive(Clone)]
pub struct MultiHasher {
    size: u64,
    /// False when only SHA-256 is wanted (YUM metadata names nothing else).
    all: bool,
    md5: md5::Md5,
    sha1: sha1::Sha1,
    sha256: sha2::Sha256,
    sha512: sha2::Sha512,
}

impl Default for MultiHasher {
    fn default() -> Self {
        MultiHasher {
            size: 0,
            all: true,
            md5: Default::default(),
            sha1: Default::default(),
            sha256: Default::default(),
            sha512: Default::default(),
        }
    }
}

impl MultiHasher {
    /// A hasher of SHA-256 and size only; the other digests finish as empty strings.
    pub fn sha256_only() -> MultiHasher {
        MultiHasher {
            all: false,
            ..MultiHasher::default()
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        self.size += data.len() as u64;
        self.sha256.update(data);
        if self.all {
            self.md5.update(data);
            self.sha1.update(data);
            self.sha512.update(data);
        }
    }

    pub fn finish(self) -> FileDigests {
        let other = |digest: Vec<u8>| {
            if self.all {
                hex::encode(digest)
            } else {
                String::new()
            }
        };
        FileDigests {
            size: self.size,
            md5: other(self.md5.finalize().to_vec()),
            sha1: other(self.sha1.finalize().to_vec()),
            sha512: other(self.sha512.finalize().to_vec()),
            sha256: hex::encode(self.sha256.finalize()),
        }
    }
}

impl FileDigests {
    pub fn of(data: &[u8]) -> FileDigests {
        let mut hasher = MultiHasher::default();
        hasher.update(data);
        hasher.finish()
    }
}

/// SHA-256 of a byte string as lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_of_the_empty_file() {
        let d = FileDigests::of(b"");
        assert_eq!(d.size, 0);
        assert_eq!(d.md5, "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(d.sha1, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            d.sha256,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(d.sha512.starts_with("cf83e1357eefb8bd"));
    }

    #[test]
    fn split_updates_equal_one_update() {
        let mut h = MultiHasher::default();
        h.update(b"hello ");
        h.update(b"world");
        assert_eq!(h.finish(), FileDigests::of(b"hello world"));
    }
}
