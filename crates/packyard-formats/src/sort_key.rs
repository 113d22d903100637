//! Version sort keys: bytes whose plain byte order is each format's own version order, so a
//! database can sort a repository's packages by version through an index (`ORDER BY
//! version_key`) with no knowledge of dpkg, rpm, PEP 440 or semver.
//!
//! Each key is a sequence of elements that start with a type byte, so two keys with an
//! equal prefix are at the same element boundary and the next byte decides as the format
//! would. Versions a format calls equal may get different keys (dpkg's `1.0` and `1.00`);
//! their order is then stable but arbitrary, as it is between equal versions anyway.

/// A number written in digits: its length, then the digits without leading zeros (numbers
/// of more than 255 digits compare by their first 255).
fn push_digits(out: &mut Vec<u8>, digits: &[u8]) {
    let start = digits
        .iter()
        .position(|d| *d != b'0')
        .unwrap_or(digits.len());
    let digits = &digits[start..digits.len().min(start + 255)];
    out.push(digits.len() as u8);
    out.extend_from_slice(digits);
}

fn push_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(&n.to_be_bytes());
}

/// dpkg's order (deb-version(7)): epoch, then upstream version, then revision, each part
/// compared as alternating runs of non-digits (`~` before the end, the end before letters,
/// letters before other characters) and numbers.
pub fn deb(version: &str) -> Vec<u8> {
    let (epoch, rest) = match version.split_once(':') {
        Some((epoch, rest)) => (epoch.parse().unwrap_or(0), rest),
        None => (0, version),
    };
    let (upstream, revision) = rest.rsplit_once('-').unwrap_or((rest, ""));
    let mut out = Vec::with_capacity(version.len() * 2 + 12);
    push_u64(&mut out, epoch);
    deb_part(&mut out, upstream.as_bytes());
    out.push(0x00);
    deb_part(&mut out, revision.as_bytes());
    out
}

fn deb_part(out: &mut Vec<u8>, mut part: &[u8]) {
    while !part.is_empty() {
        let letters = part.iter().take_while(|c| !c.is_ascii_digit()).count();
        for &c in &part[..letters] {
            match c {
                b'~' => out.push(0x01),
                c if c.is_ascii_alphabetic() => out.push(c),
                c => out.extend_from_slice(&[0xF0, c]),
            }
        }
        // The end of a run of non-digits: after `~`, before every other character.
        out.push(0x02);
        part = &part[letters..];
        let digits = part.iter().take_while(|c| c.is_ascii_digit()).count();
        push_digits(out, &part[..digits]);
        part = &part[digits..];
    }
    // An exhausted part reads as empty runs: the end of non-digits and zero.
    out.extend_from_slice(&[0x02, 0x00]);
}

/// rpm's order (rpmvercmp with `~` and `^`): epoch, then version, then release, each split
/// into alphabetic and numeric segments (separators ignored), `~` before the end, the end
/// before `^`, `^` before segments, letters before numbers.
pub fn rpm(evr: &str) -> Vec<u8> {
    let (epoch, rest) = match evr.split_once(':') {
        Some((epoch, rest)) => (epoch.parse().unwrap_or(0), rest),
        None => (0, evr),
    };
    let (version, release) = rest.rsplit_once('-').unwrap_or((rest, ""));
    let mut out = Vec::with_capacity(evr.len() * 2 + 12);
    push_u64(&mut out, epoch);
    rpm_part(&mut out, version.as_bytes());
    rpm_part(&mut out, release.as_bytes());
    out
}

fn rpm_part(out: &mut Vec<u8>, mut part: &[u8]) {
    loop {
        let skipped = part
            .iter()
            .take_while(|c| !c.is_ascii_alphanumeric() && **c != b'~' && **c != b'^')
            .count();
        part = &part[skipped..];
        match part.first() {
            None => break,
            Some(b'~') => {
                out.push(0x01);
                part = &part[1..];
            }
            Some(b'^') => {
                out.push(0x03);
                part = &part[1..];
            }
            Some(c) if c.is_ascii_digit() => {
                let n = part.iter().take_while(|c| c.is_ascii_digit()).count();
                out.push(0x05);
                push_digits(out, &part[..n]);
                part = &part[n..];
            }
            Some(_) => {
                let n = part.iter().take_while(|c| c.is_ascii_alphabetic()).count();
                out.push(0x04);
                out.extend_from_slice(&part[..n]);
                out.push(0x00);
                part = &part[n..];
            }
        }
    }
    out.push(0x02);
}

/// PEP 440's order: epoch; release (trailing zeros ignored); a developmental release of a
/// final version before its pre-releases, pre-releases (a, b, rc) before the final version,
/// the final version before post-releases; `.devN` before the release it precedes; local
/// versions after the public one.
pub fn pep440(version: &pep440_rs::Version) -> Vec<u8> {
    let mut out = Vec::with_capacity(48);
    push_u64(&mut out, version.epoch());
    let release = version.release();
    let significant = release.iter().rposition(|n| *n != 0).map_or(0, |i| i + 1);
    for n in &release[..significant] {
        out.push(0x01);
        push_u64(&mut out, *n);
    }
    out.push(0x00);
    match (version.pre(), version.post(), version.dev()) {
        (None, None, Some(_)) => out.push(0x00),
        (None, _, _) => out.push(0x02),
        (Some(pre), _, _) => {
            out.push(0x01);
            out.push(match pre.kind {
                pep440_rs::PrereleaseKind::Alpha => 0,
                pep440_rs::PrereleaseKind::Beta => 1,
                pep440_rs::PrereleaseKind::Rc => 2,
            });
            push_u64(&mut out, pre.number);
        }
    }
    match version.post() {
        None => out.push(0x00),
        Some(n) => {
            out.push(0x01);
            push_u64(&mut out, n);
        }
    }
    match version.dev() {
        Some(n) => {
            out.push(0x00);
            push_u64(&mut out, n);
        }
        None => out.push(0x01),
    }
    let local = version.local();
    if local.is_empty() {
        out.push(0x00);
    } else {
        out.push(0x01);
        for segment in local {
            out.extend_from_slice(segment.to_string().as_bytes());
            out.push(0x00);
        }
    }
    out
}

/// semver's order: major, minor, patch; a pre-release before its release; pre-release
/// identifiers numeric before alphanumeric, numbers by value, text by bytes, a shorter list
/// first.
pub fn semver(version: &nodejs_semver::Version) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    for n in [version.major(), version.minor(), version.patch()] {
        push_u64(&mut out, n);
    }
    let pre = version.pre_release();
    if pre.is_empty() {
        out.push(0xFF);
        return out;
    }
    for identifier in pre {
        match identifier {
            nodejs_semver::Identifier::Numeric(n) => {
                out.push(0x01);
                push_u64(&mut out, *n);
            }
            nodejs_semver::Identifier::AlphaNumeric(text) => {
                out.push(0x02);
                out.extend_from_slice(text.as_bytes());
                out.push(0x00);
            }
        }
    }
    out.push(0x00);
    out
}

/// Versions of formats without an order of their own: as text.
pub fn text(version: &str) -> Vec<u8> {
    version.as_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering;
    use std::str::FromStr;

    use super::*;

    /// Whether `key` orders `versions` as `compare` does.
    fn agrees(
        versions: &[&str],
        key: impl Fn(&str) -> Vec<u8>,
        compare: impl Fn(&str, &str) -> Ordering,
    ) -> Result<(), String> {
        for a in versions {
            for b in versions {
                let by_key = key(a).cmp(&key(b));
                let expected = compare(a, b);
                if expected != Ordering::Equal && by_key != expected {
                    return Err(format!(
                        "{a} against {b}: key says {by_key:?}, the format {expected:?}"
                    ));
                }
            }
        }
        Ok(())
    }

    #[test]
    fn deb_keys_follow_dpkg() {
        let versions = [
            "1.0",
            "1.0-1",
            "1.0-2",
            "1.0-10",
            "1.0~rc1",
            "1.0~rc1-1",
            "1.0~~",
            "1.0~",
            "1.0a",
            "1.0.1",
            "1.0+b1",
            "1.00",
            "1:0.1",
            "2:1.0",
            "10.0",
            "9.9",
            "1.0-1ubuntu1",
            "1.0-1+deb12u1",
            "0",
            "a",
            "1.2.3-alpha",
            "16.2.0-ce.0",
            "16.10.0-ce.0",
            "1.0.",
            "1_0",
            "1-0-1",
        ];
        agrees(&versions, deb, crate::deb::compare_versions).unwrap();
    }

    #[test]
    fn rpm_keys_follow_rpmvercmp() {
        let versions = [
            "1.0-1",
            "1.0-2",
            "1.0-10",
            "1.0~rc1-1",
            "1.0^git1-1",
            "1.0-1.el9",
            "1.0.1-1",
            "1.0a-1",
            "1:0.1-1",
            "2.0-1",
            "10.0-1",
            "1.0-1~",
            "1.0-1^",
            "1.01-1",
            "1.0_1-1",
            "1.0-1.fc39",
            "5.9-0.1.beta",
            "5.9-1",
        ];
        let compare =
            |a: &str, b: &str| rpm_version::Evr::parse(a).cmp(&rpm_version::Evr::parse(b));
        agrees(&versions, rpm, compare).unwrap();
    }

    #[test]
    fn pep440_keys_follow_the_specification() {
        let versions = [
            "1.0.dev1",
            "1.0a1.dev1",
            "1.0a1",
            "1.0a2",
            "1.0b1",
            "1.0rc1",
            "1.0",
            "1.0.0",
            "1.0.post1.dev1",
            "1.0.post1",
            "1.0+local",
            "1.1",
            "1.10",
            "1!0.1",
            "2.0",
            "0.9",
        ];
        let key = |v: &str| pep440(&pep440_rs::Version::from_str(v).unwrap());
        let compare = |a: &str, b: &str| {
            pep440_rs::Version::from_str(a)
                .unwrap()
                .cmp(&pep440_rs::Version::from_str(b).unwrap())
        };
        agrees(&versions, key, compare).unwrap();
    }

    #[test]
    fn semver_keys_follow_npm() {
        let versions = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.10.0",
            "2.0.0",
            "0.0.1",
        ];
        let parse = |v: &str| nodejs_semver::Version::parse(v).unwrap();
        agrees(
            &versions,
            |v| semver(&parse(v)),
            |a, b| parse(a).cmp(&parse(b)),
        )
        .unwrap();
    }
}
