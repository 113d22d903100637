//! Every malformed push gets a 4xx naming the problem, and stores nothing.

use packyard_formats::deb::{Compression, ar_member, build_deb, compress_member};
use serde_json::Value;

use crate::fixtures::{BOOKWORM, deb};
use crate::support::TestApp;

async fn rejected(
    app: &TestApp,
    distro: i64,
    filename: &str,
    bytes: Vec<u8>,
    status: u16,
    needle: &str,
) {
    let response = app.push("stable", distro, filename, bytes).await;
    assert_eq!(response.status(), status, "{filename}: expected {status}");
    let body = response.text().await.unwrap();
    assert!(
        body.contains(needle),
        "{filename}: {body} does not mention {needle:?}"
    );
    if status == 422 {
        let json: Value = serde_json::from_str(&body).unwrap();
        assert!(
            json.as_object().unwrap().values().all(Value::is_array),
            "422 values are lists: {body}"
        );
    }
    assert_eq!(
        app.stored().await,
        (0, 0),
        "{filename}: a rejected push stored something"
    );
}

#[tokio::test]
async fn malformed_packages_are_rejected_and_nothing_is_stored() {
    let app = TestApp::builder().max_upload_bytes(1 << 20).start().await;
    app.create_repo("stable", false).await;

    rejected(
        &app,
        BOOKWORM,
        "zip.deb",
        b"PK\x03\x04 not a deb".to_vec(),
        422,
        "does not start with an ar archive",
    )
    .await;

    let whole = deb("hello", "1.0", "amd64");
    rejected(
        &app,
        BOOKWORM,
        "cut.deb",
        whole[..whole.len() - 10].to_vec(),
        422,
        "truncated package",
    )
    .await;

    let mut no_control = b"!<arch>\n".to_vec();
    ar_member(&mut no_control, "debian-binary", b"2.0\n");
    ar_member(
        &mut no_control,
        "data.tar.gz",
        &compress_member(b"", Compression::Gzip),
    );
    rejected(
        &app,
        BOOKWORM,
        "nocontrol.deb",
        no_control,
        422,
        "no control.tar member",
    )
    .await;

    let mut bomb = b"!<arch>\n".to_vec();
    ar_member(&mut bomb, "debian-binary", b"2.0\n");
    ar_member(
        &mut bomb,
        "control.tar.xz",
        &compress_member(&vec![0u8; 100 << 20], Compression::Xz),
    );
    ar_member(&mut bomb, "data.tar.gz", b"");
    rejected(
        &app,
        BOOKWORM,
        "bomb.deb",
        bomb,
        422,
        "larger than the 64 MiB limit",
    )
    .await;

    let fields = [
        ("Version: 1.0\nArchitecture: all\n", "no Package field"),
        ("Package: hello\nArchitecture: all\n", "no Version field"),
        ("Package: hello\nVersion: 1.0\n", "no Architecture field"),
        (
            "Package: Hello!\nVersion: 1.0\nArchitecture: all\n",
            "package name",
        ),
        (
            "Package: hello\nVersion: v1\nArchitecture: all\n",
            "version \\\"v1\\\" is invalid",
        ),
    ];
    for (control, needle) in fields {
        rejected(
            &app,
            BOOKWORM,
            "fields.deb",
            build_deb(control, &[], Compression::Gzip),
            422,
            needle,
        )
        .await;
    }

    for name in ["../../etc/passwd.deb", "a/b.deb", "..deb", "hello.txt"] {
        rejected(
            &app,
            BOOKWORM,
            name,
            deb("hello", "1.0", "amd64"),
            422,
            "file name",
        )
        .await;
    }
    rejected(
        &app,
        99_999,
        "hello_1.0_amd64.deb",
        deb("hello", "1.0", "amd64"),
        422,
        "not a known distribution version id",
    )
    .await;
    rejected(
        &app,
        BOOKWORM,
        "big.deb",
        vec![0u8; 2 << 20],
        413,
        "upload limit",
    )
    .await;
}

#[tokio::test]
async fn wrong_or_missing_tokens_are_401_and_other_owners_404() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    let missing = reqwest::Client::new()
        .post(app.url("/api/v1/repos/admin/stable/packages.json"))
        .multipart(reqwest::multipart::Form::new().text("package[distro_version_id]", "12"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 401);
    let wrong = app
        .push_as(
            "wrong-token-wrong-token-wrong-token-wrong-token",
            "stable",
            BOOKWORM,
            "hello_1.0_amd64.deb",
            deb("hello", "1.0", "amd64"),
        )
        .await;
    assert_eq!(wrong.status(), 401);
    let stranger = app.stranger_token().await;
    let other = app
        .push_as(
            &stranger,
            "stable",
            BOOKWORM,
            "hello_1.0_amd64.deb",
            deb("hello", "1.0", "amd64"),
        )
        .await;
    assert_eq!(
        other.status(),
        403,
        "a public repository exists, but only its owner may push"
    );
    let nowhere = app
        .push_as(
            &app.token,
            "no-such-repo",
            BOOKWORM,
            "hello_1.0_amd64.deb",
            deb("hello", "1.0", "amd64"),
        )
        .await;
    assert_eq!(nowhere.status(), 404);
    assert_eq!(app.stored().await, (0, 0));
}

/// The offset of the main header of an rpm: after the lead and the padded signature header.
fn main_header_offset(rpm: &[u8]) -> usize {
    let be = |at: usize| u32::from_be_bytes(rpm[at..at + 4].try_into().unwrap()) as usize;
    let signature_size = 16 + be(96 + 8) * 16 + be(96 + 12);
    96 + signature_size + (8 - signature_size % 8) % 8
}

#[tokio::test]
async fn malformed_rpms_are_rejected_and_nothing_is_stored() {
    use crate::rpm_fixtures::{EL9, rpmbuild, simple_spec};

    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    let work = tempfile::tempdir().unwrap();
    let rpm = std::fs::read(
        &rpmbuild(
            work.path(),
            &simple_spec("hello", "1.0", "1", "x86_64"),
            "x86_64",
            false,
        )[0],
    )
    .unwrap();
    let header = main_header_offset(&rpm);

    rejected(
        &app,
        EL9,
        "junk.rpm",
        b"\xde\xad\xbe\xef not an rpm at all".to_vec(),
        422,
        "RPM lead magic",
    )
    .await;
    rejected(
        &app,
        EL9,
        "cut.rpm",
        rpm[..header + 40].to_vec(),
        422,
        "truncated package",
    )
    .await;
    rejected(
        &app,
        EL9,
        "cut-payload.rpm",
        rpm[..rpm.len() - 100].to_vec(),
        422,
        "truncated package",
    )
    .await;

    let mut huge = rpm.clone();
    huge[header + 12..header + 16].copy_from_slice(&0x7fff_ffffu32.to_be_bytes());
    rejected(&app, EL9, "huge.rpm", huge, 422, "byte limit").await;
    let mut beyond = rpm.clone();
    beyond[header + 12..header + 16].copy_from_slice(&(rpm.len() as u32).to_be_bytes());
    rejected(&app, EL9, "beyond.rpm", beyond, 422, "only").await;

    // Rename the NAME tag (1000) in the header index to an unknown tag.
    let mut nameless = rpm.clone();
    let entries = u32::from_be_bytes(rpm[header + 8..header + 12].try_into().unwrap()) as usize;
    let index = (0..entries)
        .map(|i| header + 16 + i * 16)
        .find(|&at| rpm[at..at + 4] == 1000u32.to_be_bytes())
        .unwrap();
    nameless[index..index + 4].copy_from_slice(&999_999u32.to_be_bytes());
    rejected(&app, EL9, "nameless.rpm", nameless, 422, "NAME").await;

    rejected(
        &app,
        EL9,
        "hello_1.0_amd64.deb",
        deb("hello", "1.0", "amd64"),
        422,
        "takes .rpm packages",
    )
    .await;
    rejected(
        &app,
        BOOKWORM,
        "hello-1.0-1.x86_64.rpm",
        rpm.clone(),
        422,
        "takes .deb packages",
    )
    .await;
    rejected(
        &app,
        EL9,
        "../hello-1.0-1.x86_64.rpm",
        rpm.clone(),
        422,
        "file name",
    )
    .await;

    app.push_ok("stable", EL9, "hello-1.0-1.x86_64.rpm", rpm)
        .await;
    // Built again: same NEVRA, other bytes (the build time differs).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let rebuilt = std::fs::read(
        &rpmbuild(
            work.path(),
            &simple_spec("hello", "1.0", "1", "x86_64"),
            "x86_64",
            false,
        )[0],
    )
    .unwrap();
    let response = app
        .push("stable", EL9, "hello-1.0-1.x86_64.rpm", rebuilt)
        .await;
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    let message = body["filename"][0].as_str().unwrap();
    assert!(
        message.contains("hello 1.0-1 (x86_64) is already in el/9 with different contents"),
        "{message}"
    );
}
