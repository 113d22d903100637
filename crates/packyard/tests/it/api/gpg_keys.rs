//! `gpg_keys`: the repository's signing key and uploaded package keys, listed, shown,
//! downloaded, and (package keys only) deleted.

use reqwest::Method;
use serde_json::Value;

use crate::support::TestApp;

async fn show_keys(armored: &str) -> String {
    use tokio::io::AsyncWriteExt;
    let home = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new("gpg")
        .args(["--batch", "--with-colons", "--show-keys"])
        .env("GNUPGHOME", home.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(armored.as_bytes())
        .await
        .unwrap();
    let out = child.wait_with_output().await.unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn package_keys_are_uploaded_listed_downloaded_and_deleted() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    let work = tempfile::tempdir().unwrap();
    let (_, armored) = crate::rpm_fixtures::signing_key(work.path());
    let upload = |keydata: String| {
        let form = reqwest::multipart::Form::new().text("gpg_key[keydata]", keydata);
        app.authed(Method::POST, "/api/v1/repos/admin/stable/gpg_keys.json")
            .multipart(form)
            .send()
    };

    let created = upload(armored.clone()).await.unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["keytype"], "package");
    let fingerprint = created["fingerprint"].as_str().unwrap().to_owned();
    assert!(
        show_keys(&armored).await.contains(&fingerprint),
        "the fingerprint is the key's own"
    );

    let again = upload(armored.clone()).await.unwrap();
    assert_eq!(again.status(), 422, "the same key twice");
    let junk = upload("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot a key\n".into())
        .await
        .unwrap();
    assert_eq!(junk.status(), 422);
    let junk: Value = junk.json().await.unwrap();
    assert!(
        junk["keydata"][0]
            .as_str()
            .unwrap()
            .contains("not an armored OpenPGP public key")
    );

    let list = app.json("/api/v1/repos/admin/stable/gpg_keys.json").await;
    let keys = list["gpg_keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0]["keytype"], "repo");
    assert_eq!(keys[1]["fingerprint"], fingerprint.as_str());

    let download = created["download_url"]
        .as_str()
        .unwrap()
        .trim_start_matches(&app.base)
        .to_owned();
    let downloaded = app.text(&download).await;
    assert!(show_keys(&downloaded).await.contains(&fingerprint));
    let keyring = show_keys(&app.text("/admin/stable/gpgkey").await).await;
    assert_eq!(
        keyring.lines().filter(|l| l.starts_with("pub:")).count(),
        2,
        "the keyring holds both keys"
    );
    assert!(keyring.contains(&fingerprint));

    let shown = app.json(created["self"].as_str().unwrap()).await;
    assert_eq!(shown["name"], created["name"]);
    let repo_key = keys[0]["self"].as_str().unwrap();
    let refused = app.authed(Method::DELETE, repo_key).send().await.unwrap();
    assert_eq!(
        refused.status(),
        422,
        "the repository signing key cannot be deleted"
    );
    let stranger = app.stranger_token().await;
    let other = reqwest::Client::new()
        .delete(app.url(created["self"].as_str().unwrap()))
        .basic_auth(&stranger, Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 403);
    let deleted = app
        .authed(Method::DELETE, created["self"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(app.status(&download).await, 404);
    let list = app.json("/api/v1/repos/admin/stable/gpg_keys.json").await;
    assert_eq!(list["gpg_keys"].as_array().unwrap().len(), 1);
}
