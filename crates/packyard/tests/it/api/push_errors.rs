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
