//! The `.deb` reader and the APT index renderers on packages built here.

use std::io::Cursor;

use packyard_formats::deb::{
    self, Compression, DataFile, DebError, Limits, ReleaseFile, ReleaseInfo, ar_member, build_deb,
    compress_member, read_control, render_release, render_stanza,
};
use packyard_formats::digest::FileDigests;

const HELLO: &str = "Package: hello
Version: 2.10-3
Architecture: amd64
Maintainer: Packyard Tests <tests@example.invalid>
Installed-Size: 280
Pre-Depends: dpkg (>= 1.15.6)
Depends: libc6 (>= 2.34), foo | bar (<< 2)
Provides: greeter (= 2.10)
Multi-Arch: foreign
Section: devel
Priority: optional
Homepage: https://example.invalid/hello
Description: example package that greets
 The hello program produces a familiar, friendly greeting.
 .
 A second paragraph.
";

fn read(bytes: &[u8]) -> Result<deb::Control, DebError> {
    read_control(Cursor::new(bytes), bytes.len() as u64, &Limits::default())
}

fn hello_deb(compression: Compression) -> Vec<u8> {
    let file = DataFile {
        path: "usr/bin/hello",
        contents: b"#!/bin/sh\necho hello\n",
        mode: 0o755,
    };
    build_deb(HELLO, &[file], compression)
}

#[test]
fn reads_the_control_file_under_every_compression() {
    for compression in [
        Compression::None,
        Compression::Gzip,
        Compression::Xz,
        Compression::Zstd,
    ] {
        let control =
            read(&hello_deb(compression)).unwrap_or_else(|e| panic!("{compression:?}: {e}"));
        assert_eq!(control.get("Package"), Some("hello"));
        assert_eq!(control.get("Version"), Some("2.10-3"));
        assert_eq!(
            control.get("Depends"),
            Some("libc6 (>= 2.34), foo | bar (<< 2)")
        );
    }
}

#[test]
fn stanza_and_release_render_as_expected() {
    let bytes = hello_deb(Compression::Gzip);
    let control = read(&bytes).unwrap();
    let digests = FileDigests {
        size: 1234,
        md5: "0".repeat(32),
        sha1: "1".repeat(40),
        sha256: "2".repeat(64),
        sha512: "3".repeat(128),
    };
    let stanza = render_stanza(
        &control,
        "pool/bookworm/main/h/hello/hello_2.10-3_amd64.deb",
        &digests,
    );
    insta::assert_snapshot!("hello_stanza", stanza);

    let packages = FileDigests::of(format!("{stanza}\n").as_bytes());
    let architectures = vec!["amd64".to_owned(), "arm64".to_owned()];
    let release = render_release(
        &ReleaseInfo {
            origin: "acme stable",
            label: "acme stable",
            suite: "bookworm",
            codename: "bookworm",
            date: "[date]",
            architectures: &architectures,
            components: &["main"],
            description: "acme/stable for debian/bookworm",
        },
        &[ReleaseFile {
            path: "main/binary-amd64/Packages",
            digests: &packages,
        }],
    );
    insta::assert_snapshot!("hello_release", release);
}

fn expect_error(bytes: &[u8], needle: &str) {
    match read(bytes) {
        Ok(_) => panic!("expected an error naming {needle:?}"),
        Err(e) => assert!(
            e.to_string().contains(needle),
            "{e} does not mention {needle:?}"
        ),
    }
}

#[test]
fn rejects_what_is_not_a_package() {
    expect_error(
        b"PK\x03\x04 this is a zip",
        "does not start with an ar archive",
    );
    expect_error(b"", "does not start with an ar archive");
    let mut no_binary = b"!<arch>\n".to_vec();
    ar_member(&mut no_binary, "README", b"hi");
    expect_error(&no_binary, "expected debian-binary");
}

#[test]
fn rejects_truncated_packages() {
    let whole = hello_deb(Compression::Gzip);
    for cut in [10, 70, whole.len() / 2, whole.len() - 5] {
        match read(&whole[..cut]) {
            Err(DebError::Truncated(_)) => {}
            other => panic!("cut at {cut}: expected Truncated, got {other:?}"),
        }
    }
}

#[test]
fn rejects_missing_members() {
    let mut only_data = b"!<arch>\n".to_vec();
    ar_member(&mut only_data, "debian-binary", b"2.0\n");
    ar_member(
        &mut only_data,
        "data.tar.gz",
        &compress_member(b"", Compression::Gzip),
    );
    expect_error(&only_data, "no control.tar member");

    let mut bad_control = b"!<arch>\n".to_vec();
    ar_member(&mut bad_control, "debian-binary", b"2.0\n");
    ar_member(&mut bad_control, "control.tar.bz2", b"BZh");
    ar_member(&mut bad_control, "data.tar.gz", b"");
    expect_error(&bad_control, "unsupported control member");
}

#[test]
fn rejects_a_decompression_bomb() {
    // 200 MiB of zeros compress to about 200 KiB; the limit on control.tar is 64 MiB.
    let zeros = vec![0u8; 200 << 20];
    let mut bomb = b"!<arch>\n".to_vec();
    ar_member(&mut bomb, "debian-binary", b"2.0\n");
    ar_member(
        &mut bomb,
        "control.tar.zst",
        &compress_member(&zeros, Compression::Zstd),
    );
    ar_member(&mut bomb, "data.tar.gz", b"");
    expect_error(&bomb, "larger than the 64 MiB limit");
}

#[test]
fn rejects_bad_control_fields() {
    let cases = [
        ("Version: 1.0\nArchitecture: all\n", "no Package field"),
        ("Package: hello\nArchitecture: all\n", "no Version field"),
        ("Package: hello\nVersion: 1.0\n", "no Architecture field"),
        (
            "Package: Hello_World\nVersion: 1.0\nArchitecture: all\n",
            "package name \"Hello_World\" is invalid",
        ),
        (
            "Package: hello\nVersion: one\nArchitecture: all\n",
            "version \"one\" is invalid",
        ),
        (
            "Package: hello\nVersion: 1.0\nArchitecture: ../x\n",
            "architecture \"../x\" is invalid",
        ),
        (
            "Package: hello\nVersion: 1.0\nArchitecture: all\nFilename: /etc/passwd\n",
            "only the repository may set",
        ),
        ("Package hello\n", "neither a `Field: value` line"),
    ];
    for (control, needle) in cases {
        expect_error(&build_deb(control, &[], Compression::Gzip), needle);
    }
}
