//! The digests that index files list for each file, computed in one pass over the bytes.

use md5::Digest as _;
use sha2::digest::common::hazmat::{SerializableState, SerializedState};
use sha2::digest::typenum::Unsigned;

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
    /// Which digests are computed (`MD5 | SHA1 | SHA256 | SHA512`); the rest finish empty.
    which: u8,
    sha256: sha2::Sha256,
    /// The other three, held only when one of them is computed: a SHA-256 state (YUM keeps
    /// three for every chunk of every index it published) is then a quarter of the size.
    others: Option<Box<Others>>,
}

#[derive(Clone, Default)]
struct Others {
    md5: md5::Md5,
    sha1: sha1::Sha1,
    sha512: sha2::Sha512,
}

const MD5: u8 = 1;
const SHA1: u8 = 2;
const SHA256: u8 = 4;
const SHA512: u8 = 8;

impl Default for MultiHasher {
    fn default() -> Self {
        MultiHasher::of(MD5 | SHA1 | SHA256 | SHA512)
    }
}

impl MultiHasher {
    fn of(which: u8) -> MultiHasher {
        MultiHasher {
            size: 0,
            which,
            sha256: Default::default(),
            others: (which & !SHA256 != 0).then(Box::default),
        }
    }

    /// A hasher of SHA-256 and size only; the other digests finish as empty strings.
    pub fn sha256_only() -> MultiHasher {
        MultiHasher::of(SHA256)
    }

    /// The four digests as two hashers of about equal cost, to run on two threads over the
    /// same bytes; `FileDigests::merge` joins what they finish with.
    pub fn halves() -> (MultiHasher, MultiHasher) {
        (
            MultiHasher::of(MD5 | SHA256),
            MultiHasher::of(SHA1 | SHA512),
        )
    }

    /// This state as two hashers of about equal cost that carry on with part of its digests
    /// each, to hash the same bytes on two threads; `join` makes one of them again.
    pub fn split(self) -> (MultiHasher, MultiHasher) {
        let mut first = self.clone();
        first.which &= MD5 | SHA256;
        let mut second = self;
        second.which &= SHA1 | SHA512;
        (first, second)
    }

    /// Joins the two hashers `split` made, after they hashed the same bytes.
    pub fn join(self, other: MultiHasher) -> MultiHasher {
        debug_assert_eq!(self.size, other.size, "both hashed the same bytes");
        let mut joined = self;
        if other.which & SHA256 != 0 {
            joined.sha256 = other.sha256;
        }
        if let Some(theirs) = other.others {
            let ours = joined.others.get_or_insert_with(Box::default);
            if other.which & MD5 != 0 {
                ours.md5 = theirs.md5;
            }
            if other.which & SHA1 != 0 {
                ours.sha1 = theirs.sha1;
            }
            if other.which & SHA512 != 0 {
                ours.sha512 = theirs.sha512;
            }
        }
        joined.which |= other.which;
        joined
    }

    pub fn update(&mut self, data: &[u8]) {
        self.size += data.len() as u64;
        if self.which & SHA256 != 0 {
            self.sha256.update(data);
        }
        if let Some(others) = &mut self.others {
            if self.which & MD5 != 0 {
                others.md5.update(data);
            }
            if self.which & SHA1 != 0 {
                others.sha1.update(data);
            }
            if self.which & SHA512 != 0 {
                others.sha512.update(data);
            }
        }
    }

    /// This state as bytes, from which [`MultiHasher::from_bytes`] makes it again, in this
    /// process or a later one. They end with a check of the digests the state finishes with,
    /// so bytes laid out otherwise (by another version of a hash crate) are refused rather
    /// than resumed from.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = vec![self.which, u8::from(self.others.is_some())];
        bytes.extend_from_slice(&self.size.to_le_bytes());
        bytes.extend_from_slice(&self.sha256.serialize());
        if let Some(others) = &self.others {
            bytes.extend_from_slice(&others.md5.serialize());
            bytes.extend_from_slice(&others.sha1.serialize());
            bytes.extend_from_slice(&others.sha512.serialize());
        }
        bytes.extend_from_slice(&self.clone().check());
        bytes
    }

    /// The state `to_bytes` gave, or `None` for bytes it did not give.
    pub fn from_bytes(bytes: &[u8]) -> Option<MultiHasher> {
        let (&[which, has_others], rest) = bytes.split_first_chunk::<2>()?;
        let (size, rest) = rest.split_first_chunk::<8>()?;
        let (sha256, rest) = take_state(rest)?;
        let (others, rest) = match has_others {
            0 => (None, rest),
            1 => {
                let (md5, rest) = take_state(rest)?;
                let (sha1, rest) = take_state(rest)?;
                let (sha512, rest) = take_state(rest)?;
                (Some(Box::new(Others { md5, sha1, sha512 })), rest)
            }
            _ => return None,
        };
        let hasher = MultiHasher {
            size: u64::from_le_bytes(*size),
            which,
            sha256,
            others,
        };
        (rest == hasher.clone().check()).then_some(hasher)
    }

    /// Eight bytes of the SHA-256 of what this state finishes with.
    fn check(self) -> [u8; 8] {
        let d = self.finish();
        let text = [&d.md5, &d.sha1, &d.sha256, &d.sha512]
            .map(String::as_str)
            .join(":");
        let digest = sha2::Sha256::digest(format!("{}:{text}", d.size));
        let mut check = [0; 8];
        check.copy_from_slice(&digest[..8]);
        check
    }

    pub fn finish(self) -> FileDigests {
        let which = self.which;
        let hex_if = |bit: u8, digest: &[u8]| {
            if which & bit != 0 {
                hex::encode(digest)
            } else {
                String::new()
            }
        };
        let others = self.others.map(|others| *others).unwrap_or_default();
        FileDigests {
            size: self.size,
            md5: hex_if(MD5, &others.md5.finalize()),
            sha1: hex_if(SHA1, &others.sha1.finalize()),
            sha256: hex_if(SHA256, &self.sha256.finalize()),
            sha512: hex_if(SHA512, &others.sha512.finalize()),
        }
    }
}

impl FileDigests {
    pub fn of(data: &[u8]) -> FileDigests {
        let mut hasher = MultiHasher::default();
        hasher.update(data);
        hasher.finish()
    }

    /// Joins the digests of two `MultiHasher::halves` that hashed the same bytes.
    pub fn merge(self, other: FileDigests) -> FileDigests {
        debug_assert_eq!(self.size, other.size, "the halves hashed the same bytes");
        let pick = |a: String, b: String| if a.is_empty() { b } else { a };
        FileDigests {
            size: self.size,
            md5: pick(self.md5, other.md5),
            sha1: pick(self.sha1, other.sha1),
            sha256: pick(self.sha256, other.sha256),
            sha512: pick(self.sha512, other.sha512),
        }
    }
}

/// A hash's state serialized at the start of `bytes`, and the bytes after it.
fn take_state<H: SerializableState>(bytes: &[u8]) -> Option<(H, &[u8])> {
    let (state, rest) = bytes.split_at_checked(H::SerializedStateSize::USIZE)?;
    let state: &SerializedState<H> = state.try_into().ok()?;
    Some((H::deserialize(state).ok()?, rest))
}

/// SHA-256 of a byte string as lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

/// SHA-256 of everything `reader` gives, as lowercase hex, read 64 KiB at a time.
pub fn sha256_hex_of(mut reader: impl std::io::Read) -> std::io::Result<String> {
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0; 64 << 10];
    loop {
        match reader.read(&mut buffer) {
            Ok(0) => return Ok(hex::encode(hasher.finalize())),
            Ok(n) => hasher.update(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
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
    fn a_state_made_again_from_its_bytes_finishes_alike() {
        let hashers = [
            MultiHasher::default(),
            MultiHasher::sha256_only(),
            MultiHasher::halves().1,
        ];
        for mut hasher in hashers {
            // Past a block and into the next, so the buffered bytes matter too.
            hasher.update(&[7; 200]);
            let bytes = hasher.to_bytes();
            let mut again = MultiHasher::from_bytes(&bytes).expect("its own bytes");
            again.update(b"more");
            let computes_sha256 = hasher.which & SHA256 != 0;
            hasher.update(b"more");
            assert_eq!(again.finish(), hasher.finish());

            // Bytes that are not its own are refused: the head, a state it finishes (the
            // SHA-256 state starts at byte 10), the check, or cut short.
            let mut damaged = vec![0, 1, 5, bytes.len() - 1];
            if computes_sha256 {
                damaged.extend([10, 20]);
            }
            for at in damaged {
                let mut changed = bytes.clone();
                changed[at] ^= 1;
                assert!(MultiHasher::from_bytes(&changed).is_none(), "byte {at}");
            }
            assert!(MultiHasher::from_bytes(&bytes[..bytes.len() - 1]).is_none());
            assert!(MultiHasher::from_bytes(&[bytes.clone(), vec![0]].concat()).is_none());
        }
    }

    #[test]
    fn a_reader_hashes_as_its_bytes() {
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(sha256_hex_of(&bytes[..]).unwrap(), sha256_hex(&bytes));
    }

    #[test]
    fn split_updates_equal_one_update() {
        let mut h = MultiHasher::default();
        h.update(b"hello ");
        h.update(b"world");
        assert_eq!(h.finish(), FileDigests::of(b"hello world"));
    }

    #[test]
    fn a_split_state_hashed_on_in_halves_joins_into_the_whole() {
        for whole in [MultiHasher::default(), MultiHasher::sha256_only()] {
            let mut whole = whole;
            whole.update(b"hello ");
            let (mut a, mut b) = whole.clone().split();
            whole.update(b"world");
            a.update(b"world");
            b.update(b"world");
            assert_eq!(a.join(b).finish(), whole.finish());
        }
    }

    #[test]
    fn halves_merge_into_all_four_and_sha256_only_has_one() {
        let (mut a, mut b) = MultiHasher::halves();
        a.update(b"hello world");
        b.update(b"hello world");
        assert_eq!(
            a.finish().merge(b.finish()),
            FileDigests::of(b"hello world")
        );

        let mut only = MultiHasher::sha256_only();
        only.update(b"hello");
        let (first, mut second) = only.split();
        let mut first = first.join(second.clone());
        first.update(b" world");
        second.update(b" world");
        assert!(first.others.is_none() && second.others.is_none());
        let only = first.finish();
        assert_eq!(only.sha256, FileDigests::of(b"hello world").sha256);
        assert_eq!((only.md5.as_str(), only.sha512.as_str()), ("", ""));
        // Kept for every chunk, a SHA-256 state holds no room for the other three.
        let size = std::mem::size_of::<MultiHasher>();
        assert!(
            size < std::mem::size_of::<sha2::Sha256>() + 32,
            "{size} bytes"
        );
    }
}
