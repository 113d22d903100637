//! Package names, versions and architectures as Debian Policy 5.6.1, 5.6.7 and 5.6.12 define
//! them, and dpkg's version ordering.

use std::cmp::Ordering;

/// Policy 5.6.1: lower case letters, digits, `+`, `-` and `.`; at least two characters,
/// starting with a letter or digit.
pub fn validate_package_name(name: &str) -> Result<(), String> {
    let bytes = name.as_bytes();
    let valid = bytes.len() >= 2
        && bytes.len() <= 128
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "package name {name:?} is invalid: it must be at least two characters of a-z, 0-9, \
             '+', '-' and '.', starting with a letter or digit"
        ))
    }
}

/// Policy 5.6.12: `[epoch:]upstream_version[-debian_revision]`.
pub fn validate_version(version: &str) -> Result<(), String> {
    let fail = |why: &str| Err(format!("version {version:?} is invalid: {why}"));
    if version.is_empty() || version.len() > 256 {
        return fail("it must be between 1 and 256 characters");
    }
    let (epoch, rest) = match version.split_once(':') {
        Some((epoch, rest)) => (Some(epoch), rest),
        None => (None, version),
    };
    if let Some(epoch) = epoch
        && (epoch.is_empty() || !epoch.bytes().all(|b| b.is_ascii_digit()) || epoch.len() > 9)
    {
        return fail("the epoch before ':' must be a number");
    }
    let (upstream, revision) = match rest.rsplit_once('-') {
        Some((upstream, revision)) => (upstream, Some(revision)),
        None => (rest, None),
    };
    if !upstream.starts_with(|c: char| c.is_ascii_digit()) {
        return fail("the upstream version must start with a digit");
    }
    let upstream_ok = upstream
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b".+~-:".contains(&b));
    if !upstream_ok {
        return fail("the upstream version may only hold letters, digits and . + ~ - :");
    }
    if let Some(revision) = revision
        && (revision.is_empty()
            || !revision
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+.~".contains(&b)))
    {
        return fail(
            "the Debian revision after the last '-' may only hold letters, digits and + . ~",
        );
    }
    Ok(())
}

/// A binary package's architecture: `all` or a Debian architecture name such as `amd64`.
pub fn validate_architecture(arch: &str) -> Result<(), String> {
    let valid = !arch.is_empty()
        && arch.len() <= 32
        && arch.as_bytes()[0].is_ascii_alphanumeric()
        && arch
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if valid && arch != "any" && arch != "source" {
        Ok(())
    } else {
        Err(format!(
            "architecture {arch:?} is invalid: a binary package needs `all` or a Debian \
             architecture such as amd64"
        ))
    }
}

/// dpkg's ordering of two valid versions (deb-version(7)).
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb)
        .then_with(|| compare_part(ua, ub))
        .then_with(|| compare_part(ra, rb))
}

fn split(v: &str) -> (u64, &str, &str) {
    let (epoch, rest) = match v.split_once(':') {
        Some((e, r)) => (e.parse().unwrap_or(0), r),
        None => (0, v),
    };
    match rest.rsplit_once('-') {
        Some((u, r)) => (epoch, u, r),
        None => (epoch, rest, ""),
    }
}

fn order(c: u8) -> i32 {
    match c {
        b'~' => -1,
        c if c.is_ascii_alphabetic() => c as i32,
        c => c as i32 + 256,
    }
}

fn compare_part(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    while !a.is_empty() || !b.is_empty() {
        let na = a.iter().take_while(|c| !c.is_ascii_digit()).count();
        let nb = b.iter().take_while(|c| !c.is_ascii_digit()).count();
        let (sa, sb) = (&a[..na], &b[..nb]);
        for i in 0..na.max(nb) {
            let ca = sa.get(i).map_or(0, |&c| order(c));
            let cb = sb.get(i).map_or(0, |&c| order(c));
            if ca != cb {
                return ca.cmp(&cb);
            }
        }
        a = &a[na..];
        b = &b[nb..];
        let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
        let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
        let ta = trim_zeros(&a[..da]);
        let tb = trim_zeros(&b[..db]);
        let by_digits = ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb));
        if by_digits != Ordering::Equal {
            return by_digits;
        }
        a = &a[da..];
        b = &b[db..];
    }
    Ordering::Equal
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let zeros = digits.iter().take_while(|&&c| c == b'0').count();
    &digits[zeros..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["hello", "libc6", "g++", "x.y-z", "0ad"] {
            assert!(validate_package_name(ok).is_ok(), "{ok}");
        }
        for bad in ["a", "Hello", "-x", "a_b", "a/b", "..", ""] {
            assert!(validate_package_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn versions() {
        for ok in [
            "1.0",
            "1.0-1",
            "2:1.0-1ubuntu1",
            "1.0~rc1-1",
            "1:2.3-4-5",
            "0.1+git20200101",
        ] {
            assert!(validate_version(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "a1.0", "1.0-", "x:1.0", "1.0_1", "1.0 1", "1.0/../x", "1.0-1-",
        ] {
            assert!(validate_version(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ordering_follows_dpkg() {
        use Ordering::*;
        let cases = [
            ("1.0", "1.0", Equal),
            ("1.0", "1.1", Less),
            ("1.0~rc1", "1.0", Less),
            ("1.0", "1.0+b1", Less),
            ("1:0.1", "2.0", Greater),
            ("1.0-1", "1.0-2", Less),
            ("1.10", "1.9", Greater),
            ("1.0a", "1.0", Greater),
            ("1.001", "1.1", Equal),
            ("2.0-1ubuntu1", "2.0-1", Greater),
        ];
        for (a, b, want) in cases {
            assert_eq!(compare_versions(a, b), want, "{a} vs {b}");
        }
    }

    #[test]
    fn architectures() {
        assert!(validate_architecture("amd64").is_ok());
        assert!(validate_architecture("all").is_ok());
        assert!(validate_architecture("AMD64").is_err());
        assert!(validate_architecture("../x").is_err());
        assert!(validate_architecture("any").is_err());
    }
}
