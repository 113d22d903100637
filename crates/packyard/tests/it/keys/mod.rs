//! Signing keys over their life, judged by the real clients: two keys signing through a
//! rotation while hosts know only one of them, the keyring package following the key set,
//! retirement gated on hosts having the newer key, extension, import, and expired keys.
//! `rotation` follows keys through rotation and retirement, `expiry` through expiry and
//! extension, `commands` drives import and the operator's commands.

mod commands;
mod expiry;
mod rotation;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use packyard::db::signing_keys::{self, KeyState, SigningKey};
use packyard::db::{self, repos::Repo};
use packyard::keys::{self, KeyError};
use packyard::sign::KeyAlgorithm;
use reqwest::Method;

use crate::apt_client::{Apt, combined};
use crate::dnf_client::Dnf;
use crate::rpm_fixtures::push_simple_rpm;
use crate::support::TestApp;

pub(super) async fn ed25519_app() -> TestApp {
    TestApp::builder()
        .key_algorithm(KeyAlgorithm::Ed25519)
        .start()
        .await
}

pub(super) async fn repo(app: &TestApp, name: &str) -> Repo {
    db::repos::by_owner_and_name(&app.app.db, "admin", name)
        .await
        .unwrap()
        .unwrap()
}

pub(super) async fn signing_keys(app: &TestApp, name: &str) -> Vec<SigningKey> {
    let repo = repo(app, name).await;
    signing_keys::list(&app.app.db, repo.id).await.unwrap()
}

pub(super) fn binary(keys: &[&SigningKey]) -> Vec<u8> {
    let armored: Vec<String> = keys.iter().map(|k| k.public_armored.clone()).collect();
    packyard::sign::binary_keyring(&armored).unwrap()
}

/// gpgv's status lines for `signed` (cleartext-signed, or detached with `data`) checked
/// against `keyring`.
pub(super) fn gpgv(keyring: &[u8], signed: &[u8], data: Option<&[u8]>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let keyring_path = dir.path().join("keyring.gpg");
    std::fs::write(&keyring_path, keyring).unwrap();
    let signed_path = dir.path().join("signed");
    std::fs::write(&signed_path, signed).unwrap();
    let mut command = Command::new("gpgv");
    command
        .args(["--status-fd", "1", "--keyring"])
        .arg(&keyring_path)
        .arg(&signed_path);
    if let Some(data) = data {
        let data_path = dir.path().join("data");
        std::fs::write(&data_path, data).unwrap();
        command.arg(&data_path);
    }
    let out = command
        .output()
        .expect("gpgv runs (scripts/test installs it)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The fingerprints gpgv reports good signatures by.
pub(super) fn good_signers(status: &str) -> Vec<String> {
    status
        .lines()
        .filter_map(|l| l.strip_prefix("[GNUPG:] VALIDSIG "))
        .map(|rest| rest.split_whitespace().next().unwrap().to_owned())
        .collect()
}

/// `apt-get update` against a repository with `Error-Mode=any`, so a failed verification fails.
pub(super) async fn apt_update_strict(apt: &Apt) -> (bool, String) {
    let out = apt
        .run("apt-get", &["update", "-o", "APT::Update::Error-Mode=any"])
        .await;
    (out.status.success(), combined(&out))
}

pub(super) async fn in_release(app: &TestApp) -> String {
    app.text("/admin/stable/debian/dists/bookworm/InRelease")
        .await
}

/// Waits until the download log has written what the hosts fetched.
pub(super) async fn wait_for_adoption(
    app: &TestApp,
    hosts: usize,
    adopted: usize,
) -> keys::Adoption {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, adoption) = keys::list(&app.app, &repo(app, "stable").await)
            .await
            .unwrap();
        if adoption.hosts == hosts && adoption.adopted == adopted {
            return adoption;
        }
        assert!(
            Instant::now() < deadline,
            "adoption stayed at {adoption:?}, expected {adopted} of {hosts}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(super) async fn wait_for_job_error(app: &TestApp) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(failing) = db::jobs::failing(&app.app.db).await.unwrap().pop() {
            return failing.error;
        }
        assert!(Instant::now() < deadline, "no job failed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The binary form of an armored keyring, as `gpg --dearmor` makes it.
pub(super) fn dearmor(armored: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.asc");
    let output = dir.path().join("out.gpg");
    std::fs::write(&input, armored).unwrap();
    let status = Command::new("gpg")
        .args(["--batch", "--homedir"])
        .arg(dir.path())
        .arg("--output")
        .arg(&output)
        .arg("--dearmor")
        .arg(&input)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read(output).unwrap()
}

/// A fresh GnuPG home for keys made by gpg itself.
pub(super) fn gpg_home() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        home.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    home
}

pub(super) fn gpg(home: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("gpg")
        .arg("--homedir")
        .arg(home)
        .args(["--batch", "--pinentry-mode", "loopback"])
        .args(args)
        .output()
        .expect("gpg runs (scripts/test installs it)");
    assert!(
        out.status.success(),
        "gpg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

pub(super) async fn import(app: &TestApp, keydata: &str) -> (u16, String) {
    let response = app
        .authed(
            Method::POST,
            "/api/v1/repos/admin/stable/gpg_keys/import.json",
        )
        .form(&[("keydata", keydata)])
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}
