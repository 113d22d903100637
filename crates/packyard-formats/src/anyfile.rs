//! Raw files: packagecloud's `anyfile` (`NAME-VERSION.EXT`, pushed through API v1) and
//! Packyard's `raw/NAME/VERSION/FILE` (uploaded with `curl -T`). Neither has an index; these
//! are the names they are stored and served under.

/// Suffixes of more than one dot that belong together (`tool-1.2.tar.gz` is version `1.2`).
const COMPOUND_EXTENSIONS: &[&str] = &[
    ".tar.gz",
    ".tar.bz2",
    ".tar.xz",
    ".tar.zst",
    ".tar.lz4",
    ".tar.lzma",
    ".tar.Z",
];

/// Whether `segment` can be one segment of a raw file's path: 1 to 200 characters, none of
/// them `/`, `\`, a control character, whitespace or one a URL or a header would have to
/// escape (`"`, `%`, `?`, `#`), not `.`-led, no `..`.
pub fn is_name_segment(segment: &str) -> bool {
    !segment.is_empty()
        && segment.len() <= 200
        && !segment.starts_with('.')
        && !segment.contains("..")
        && !segment.chars().any(|c| {
            matches!(c, '/' | '\\' | '"' | '%' | '?' | '#') || c.is_control() || c.is_whitespace()
        })
}

/// `NAME` and `VERSION` of `NAME-VERSION.EXT`: the version starts at the first `-` followed
/// by a digit (or `v` and a digit) and ends before the extension. `None` when there is none.
pub fn split_filename(filename: &str) -> Option<(&str, &str)> {
    if !is_name_segment(filename) {
        return None;
    }
    let stem = COMPOUND_EXTENSIONS
        .iter()
        .find_map(|ext| filename.strip_suffix(ext))
        .or_else(|| {
            // An extension is letters and digits, not all digits (`tool-1.2` has none).
            let (stem, ext) = filename.rsplit_once('.')?;
            let is_extension = ext.bytes().all(|b| b.is_ascii_alphanumeric())
                && !ext.bytes().all(|b| b.is_ascii_digit());
            is_extension.then_some(stem)
        })
        .unwrap_or(filename);
    let bytes = stem.as_bytes();
    let at = (0..bytes.len()).find(|&i| {
        bytes[i] == b'-'
            && i > 0
            && match bytes.get(i + 1) {
                Some(b'0'..=b'9') => true,
                Some(b'v') => matches!(bytes.get(i + 2), Some(b'0'..=b'9')),
                _ => false,
            }
    })?;
    let (name, version) = (&stem[..at], &stem[at + 1..]);
    Some((name, version)).filter(|(_, v)| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_name_and_version() {
        assert_eq!(split_filename("tool-1.2.3.tar.gz"), Some(("tool", "1.2.3")));
        assert_eq!(
            split_filename("my-tool-2.0.0-rc.1.zip"),
            Some(("my-tool", "2.0.0-rc.1"))
        );
        assert_eq!(
            split_filename("agent-v3.1-linux"),
            Some(("agent", "v3.1-linux"))
        );
        assert_eq!(split_filename("data-7.bin"), Some(("data", "7")));
        assert_eq!(split_filename("tool-1.2"), Some(("tool", "1.2")));
        for bad in [
            "tool.tar.gz",
            "-1.0.zip",
            "tool-x.zip",
            "../tool-1.0.zip",
            "a b-1.0.zip",
            "",
        ] {
            assert_eq!(split_filename(bad), None, "{bad}");
        }
    }

    #[test]
    fn segments_cannot_climb_or_hide() {
        assert!(is_name_segment("tool-linux-amd64"));
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "a/b",
            "a\\b",
            "a..b",
            "a\nb",
            "a\"b",
            "a%3ab",
            "a?b",
            "a#b",
            &"x".repeat(201),
        ] {
            assert!(!is_name_segment(bad), "{bad:?}");
        }
    }
}
