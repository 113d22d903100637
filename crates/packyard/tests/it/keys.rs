//! Signing keys over their life, judged by the real clients: two keys signing through a
//! rotation while hosts know only one of them, the keyring package following the key set,
//! retirement gated on hosts having the newer key, extension, import, and expired keys.

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
use crate::rpm_fixtures::{EL9, file_name, rpmbuild, simple_spec};
use crate::support::TestApp;

async fn ed25519_app() -> TestApp {
    TestApp::builder()
        .key_algorithm(KeyAlgorithm::Ed25519)
        .start()
        .await
}

async fn repo(app: &TestApp, name: &str) -> Repo {
    db::repos::by_owner_and_name(&app.app.db, "admin", name)
        .await
        .unwrap()
        .unwrap()
}

async fn signing_keys(app: &TestApp, name: &str) -> Vec<SigningKey> {
    let repo = repo(app, name).await;
    signing_keys::list(&app.app.db, repo.id).await.unwrap()
}

fn binary(keys: &[&SigningKey]) -> Vec<u8> {
    let armored: Vec<String> = keys.iter().map(|k| k.public_armored.clone()).collect();
    packyard::sign::binary_keyring(&armored).unwrap()
}

/// gpgv's status lines for `signed` (cleartext-signed, or detached with `data`) checked
/// against `keyring`.
fn gpgv(keyring: &[u8], signed: &[u8], data: Option<&[u8]>) -> String {
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
fn good_signers(status: &str) -> Vec<String> {
    status
        .lines()
        .filter_map(|l| l.strip_prefix("[GNUPG:] VALIDSIG "))
        .map(|rest| rest.split_whitespace().next().unwrap().to_owned())
        .collect()
}

/// `apt-get update` against a repository with `Error-Mode=any`, so a failed verification fails.
async fn apt_update_strict(apt: &Apt) -> (bool, String) {
    let out = apt
        .run("apt-get", &["update", "-o", "APT::Update::Error-Mode=any"])
        .await;
    (out.status.success(), combined(&out))
}

async fn in_release(app: &TestApp) -> String {
    app.text("/admin/stable/debian/dists/bookworm/InRelease")
        .await
}

/// Waits until the download log has written what the hosts fetched.
async fn wait_for_adoption(app: &TestApp, hosts: usize, adopted: usize) -> keys::Adoption {
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

#[tokio::test]
async fn during_a_rotation_both_keys_sign_and_hosts_knowing_either_verify() {
    let app = TestApp::new().await; // RSA-4096, the default.
    app.create_repo("stable", false).await;
    app.push_deb("stable", "hello", "1.0", "amd64").await;
    app.wait_for_jobs().await;
    let old = signing_keys(&app, "stable").await.remove(0);
    let keyring_v1 = app
        .json("/api/v1/repos/admin/stable/package/deb/debian/bookworm/admin-stable-archive-keyring/all/1.json")
        .await;
    assert_eq!(keyring_v1["name"], "admin-stable-archive-keyring");

    let change = keys::rotate(&app.app, &repo(&app, "stable").await, None, None, false)
        .await
        .unwrap();
    app.wait_for_jobs().await;
    let keys_now = signing_keys(&app, "stable").await;
    let new = keys_now
        .iter()
        .find(|k| k.fingerprint == change.fingerprint)
        .unwrap();
    assert_eq!(new.state, KeyState::Active);
    assert_eq!(keys_now[0].state, KeyState::Retiring);
    assert_ne!(new.fingerprint, old.fingerprint);

    // gpgv sees two good signatures on InRelease and on Release.gpg.
    let both = binary(&[&old, new]);
    let signed = in_release(&app).await;
    let mut signers = good_signers(&gpgv(&both, signed.as_bytes(), None));
    signers.sort();
    let mut expected = vec![old.fingerprint.clone(), new.fingerprint.clone()];
    expected.sort();
    assert_eq!(signers, expected, "{signed}");
    let release = app
        .bytes("/admin/stable/debian/dists/bookworm/Release")
        .await;
    let detached = app
        .bytes("/admin/stable/debian/dists/bookworm/Release.gpg")
        .await;
    assert_eq!(
        good_signers(&gpgv(&both, &detached, Some(&release))).len(),
        2
    );

    // An apt host that knows only the old key and one that knows only the new key.
    let source = app.url("/admin/stable/debian/");
    for (which, key) in [("old", &old), ("new", new)] {
        let apt = Apt::new(&source, "bookworm", &binary(&[key]));
        apt.update().await;
        let out = apt
            .run("apt-get", &["install", "--simulate", "hello"])
            .await;
        assert!(
            out.status.success(),
            "a host with the {which} key only installs:\n{}",
            combined(&out)
        );
    }

    // The keyring package moved to version 2 and carries both keys, as apt reads them.
    let listed = app
        .json("/api/v1/repos/admin/stable/package/deb/debian/bookworm/admin-stable-archive-keyring/all/versions.json")
        .await;
    let versions: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["2"], "the previous version left the index");
    assert_eq!(change.keyring_version, 2);
    let deb = app
        .bytes("/admin/stable/debian/pool/bookworm/main/a/admin-stable-archive-keyring/admin-stable-archive-keyring_2_all.deb")
        .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("k.deb"), &deb).unwrap();
    let extracted = dir.path().join("x");
    let status = Command::new("dpkg-deb")
        .arg("-x")
        .arg(dir.path().join("k.deb"))
        .arg(&extracted)
        .status()
        .unwrap();
    assert!(status.success());
    let shipped =
        std::fs::read(extracted.join("usr/share/keyrings/admin-stable-archive-keyring.gpg"))
            .unwrap();
    assert_eq!(shipped, both);

    // Nobody pushes over it or destroys it.
    let pushed = app
        .push(
            "stable",
            crate::fixtures::BOOKWORM,
            "admin-stable-archive-keyring_9_all.deb",
            crate::fixtures::deb("admin-stable-archive-keyring", "9", "all"),
        )
        .await;
    assert_eq!(pushed.status(), 422);
    let message = pushed.text().await.unwrap();
    assert!(message.contains("keyring package"), "{message}");
    let destroyed = app
        .authed(
            Method::DELETE,
            "/api/v1/repos/admin/stable/debian/bookworm/admin-stable-archive-keyring_2_all.deb",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(destroyed.status(), 422);
}

#[tokio::test]
async fn an_expired_key_never_signs_and_hosts_of_the_valid_key_verify() {
    let app = ed25519_app().await;
    app.create_repo("stable", false).await;
    app.push_deb("stable", "hello", "1.0", "amd64").await;
    let dir = tempfile::tempdir().unwrap();
    let rpm = rpmbuild(
        dir.path(),
        &simple_spec("hello", "1.0", "1", "x86_64"),
        "x86_64",
        false,
    )
    .remove(0);
    app.push_ok(
        "stable",
        EL9,
        &file_name(&rpm),
        std::fs::read(&rpm).unwrap(),
    )
    .await;
    app.wait_for_jobs().await;
    let valid = signing_keys(&app, "stable").await.remove(0);

    // A key made ten days ago that expired after one, marked active beside the valid one.
    let repo = repo(&app, "stable").await;
    let ten_days_ago = (db::now() - 10 * 86_400) as u32;
    let mut expired = packyard::sign::generate_at(
        "Expired <expired@example.invalid>",
        KeyAlgorithm::Ed25519,
        ten_days_ago,
        86_400,
    )
    .unwrap();
    let expired_public = expired.public_armored.clone();
    expired.secret_armored = app.app.secrets.seal(&expired.secret_armored).unwrap();
    let mut tx = app.app.db.begin_write().await.unwrap();
    signing_keys::insert(&mut tx, repo.id, &expired, KeyState::Active, 1)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    app.push_deb("stable", "hello", "2.0", "amd64").await;
    let rpm2 = rpmbuild(
        dir.path(),
        &simple_spec("hello", "2.0", "1", "x86_64"),
        "x86_64",
        false,
    )
    .into_iter()
    .find(|p| file_name(p).contains("2.0"))
    .unwrap();
    app.push_ok(
        "stable",
        EL9,
        &file_name(&rpm2),
        std::fs::read(&rpm2).unwrap(),
    )
    .await;
    app.wait_for_jobs().await;

    let both =
        packyard::sign::binary_keyring(&[valid.public_armored.clone(), expired_public.clone()])
            .unwrap();
    let status = gpgv(&both, in_release(&app).await.as_bytes(), None);
    assert_eq!(
        good_signers(&status),
        [valid.fingerprint.clone()],
        "{status}"
    );
    assert!(!status.contains("EXPKEYSIG"), "{status}");
    let repomd = app
        .bytes("/admin/stable/el/9/x86_64/repodata/repomd.xml")
        .await;
    let asc = app
        .bytes("/admin/stable/el/9/x86_64/repodata/repomd.xml.asc")
        .await;
    assert_eq!(
        good_signers(&gpgv(&both, &asc, Some(&repomd))),
        [valid.fingerprint.clone()]
    );

    let apt = Apt::new(
        &app.url("/admin/stable/debian/"),
        "bookworm",
        &binary(&[&valid]),
    );
    apt.update().await;
    let dnf = Dnf::new(
        &[("stable", &app.url("/admin/stable/el/9/x86_64"))],
        Some(&valid.public_armored),
        "x86_64",
    );
    let listed = dnf
        .ok(&["repoquery", "--qf", "%{name} %{evr}", "hello"])
        .await;
    assert!(listed.contains("hello 2.0-1"), "{listed}");

    // With no usable key left, publishing fails naming the fix, and the index stays served.
    let before = in_release(&app).await;
    let mut tx = app.app.db.begin_write().await.unwrap();
    signing_keys::set_state(&mut tx, valid.id, KeyState::Retired)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    app.push_deb("stable", "hello", "3.0", "amd64").await;
    let error = wait_for_job_error(&app).await;
    assert!(
        error.contains("no usable signing key")
            && error.contains("packyard key extend admin/stable")
            && error.contains("packyard key rotate admin/stable"),
        "{error}"
    );
    assert_eq!(in_release(&app).await, before);
}

async fn wait_for_job_error(app: &TestApp) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(error) = db::jobs::errors(&app.app.db).await.unwrap().pop() {
            return error;
        }
        assert!(Instant::now() < deadline, "no job failed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_extended_key_verifies_after_its_old_expiry_for_hosts_that_fetch_it_again() {
    let app = ed25519_app().await;
    app.create_repo("stable", false).await;
    app.push_deb("stable", "hello", "1.0", "amd64").await;
    app.wait_for_jobs().await;
    let repo = repo(&app, "stable").await;

    // The repository's only key: made ten days ago, expired after one.
    let first = signing_keys(&app, "stable").await.remove(0);
    let mut expired = packyard::sign::generate_at(
        "Short <short@example.invalid>",
        KeyAlgorithm::Ed25519,
        (db::now() - 10 * 86_400) as u32,
        86_400,
    )
    .unwrap();
    let expired_public = expired.public_armored.clone();
    expired.secret_armored = app.app.secrets.seal(&expired.secret_armored).unwrap();
    let mut tx = app.app.db.begin_write().await.unwrap();
    signing_keys::set_state(&mut tx, first.id, KeyState::Retired)
        .await
        .unwrap();
    signing_keys::insert(&mut tx, repo.id, &expired, KeyState::Active, 1)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    app.push_deb("stable", "hello", "2.0", "amd64").await;
    wait_for_job_error(&app).await;

    let change = keys::extend(&app.app, &repo, &expired.fingerprint, 30)
        .await
        .unwrap();
    assert_eq!(change.fingerprint, expired.fingerprint, "same fingerprint");
    assert!(
        change.warnings.iter().any(|w| w.contains("dnf")),
        "{:?}",
        change.warnings
    );
    app.wait_for_jobs().await;
    let extended = signing_keys(&app, "stable")
        .await
        .into_iter()
        .find(|k| k.fingerprint == expired.fingerprint)
        .unwrap();
    assert!(extended.expires_at > db::now() + 29 * 86_400);

    // A host that fetches /gpgkey again verifies what was signed after the old expiry...
    let source = app.url("/admin/stable/debian/");
    let gpgkey = app.text("/admin/stable/gpgkey").await;
    let fresh = dearmor(&gpgkey);
    let apt = Apt::new(&source, "bookworm", &fresh);
    apt.update().await;
    let status = gpgv(&fresh, in_release(&app).await.as_bytes(), None);
    assert_eq!(good_signers(&status), [expired.fingerprint.clone()]);
    // ...and one still holding the key as it was does not.
    let stale = packyard::sign::binary_keyring(&[expired_public]).unwrap();
    let apt = Apt::new(&source, "bookworm", &stale);
    let (ok, text) = apt_update_strict(&apt).await;
    assert!(!ok && text.contains("EXPKEYSIG"), "{text}");
}

/// The binary form of an armored keyring, as `gpg --dearmor` makes it.
fn dearmor(armored: &str) -> Vec<u8> {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dnf_imports_the_new_key_by_itself_after_rotate_and_retire() {
    let app = ed25519_app().await;
    app.create_repo("stable", false).await;
    let dir = tempfile::tempdir().unwrap();
    let rpm = rpmbuild(
        dir.path(),
        &simple_spec("hello", "1.0", "1", "x86_64"),
        "x86_64",
        false,
    )
    .remove(0);
    app.push_ok(
        "stable",
        EL9,
        &file_name(&rpm),
        std::fs::read(&rpm).unwrap(),
    )
    .await;
    app.wait_for_jobs().await;
    let old = signing_keys(&app, "stable").await.remove(0);
    let repo_file = format!(
        "[stable]\nname=stable\nbaseurl={}\ngpgcheck=0\nrepo_gpgcheck=1\ngpgkey={}\nmetadata_expire=0\n",
        app.url("/admin/stable/el/9/x86_64"),
        app.url("/admin/stable/gpgkey")
    );
    let dnf = Dnf::from_repo_file(&repo_file, "x86_64");
    dnf.ok(&["makecache"]).await;

    let repo = repo(&app, "stable").await;
    let change = keys::rotate(&app.app, &repo, None, None, false)
        .await
        .unwrap();
    app.wait_for_jobs().await;
    dnf.ok(&["makecache"]).await;
    keys::retire(&app.app, &repo, &old.fingerprint, true)
        .await
        .unwrap();
    app.wait_for_jobs().await;

    // Only the new key signs now; dnf had only the old one and imports the new one itself.
    let out = dnf.run(&["makecache"]).await;
    let text = combined(&out);
    assert!(out.status.success(), "{text}");
    let short_id = &change.fingerprint[change.fingerprint.len() - 8..];
    assert!(
        text.to_uppercase().contains(&format!("0X{short_id}")),
        "dnf imports key 0x{short_id}:\n{text}"
    );

    // The keyring rpm holds the keys that are not retired: the new one.
    dnf.ok(&["install", "admin-stable-archive-keyring"]).await;
    let key_file = dnf.root().join("etc/pki/rpm-gpg/RPM-GPG-KEY-admin-stable");
    let shipped = std::fs::read_to_string(&key_file).unwrap();
    let exported = keys::export(&app.app, &repo, None).await.unwrap();
    assert_eq!(shipped, exported);
    // Imported outside a transaction, as script.rpm.sh does, rpm lists it.
    let root = dnf.root();
    let status = Command::new("rpmkeys")
        .arg(format!("--root={}", root.display()))
        .arg("--import")
        .arg(&key_file)
        .status()
        .unwrap();
    assert!(status.success());
    let out = Command::new("rpm")
        .arg(format!("--root={}", root.display()))
        .args(["-q", "gpg-pubkey"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(
        listed.contains(&format!("gpg-pubkey-{}", short_id.to_lowercase())),
        "{listed}"
    );
    let old_id = old.fingerprint[old.fingerprint.len() - 8..].to_lowercase();
    assert!(!listed.contains(&old_id), "{listed}");
}

#[tokio::test]
async fn retire_is_refused_for_the_last_key_and_while_hosts_lag() {
    let app = ed25519_app().await;
    app.create_repo("stable", false).await;
    app.push_deb("stable", "hello", "1.0", "amd64").await;
    app.wait_for_jobs().await;
    let old = signing_keys(&app, "stable").await.remove(0);
    let retire = |force: bool| {
        let path = format!(
            "/api/v1/repos/admin/stable/gpg_keys/{}/retire.json",
            old.fingerprint
        );
        app.authed(Method::POST, &path)
            .form(&[("force", force.to_string())])
            .send()
    };

    let refused = retire(false).await.unwrap();
    assert_eq!(refused.status(), 422);
    let message = refused.text().await.unwrap();
    assert!(message.contains("last usable signing key"), "{message}");
    let refused = retire(true).await.unwrap();
    assert_eq!(refused.status(), 422, "not even with force");

    // A host reads the repository with the old key, then the key rotates.
    let apt = Apt::new(
        &app.url("/admin/stable/debian/"),
        "bookworm",
        &binary(&[&old]),
    );
    apt.update().await;
    let rotated = app
        .authed(
            Method::POST,
            "/api/v1/repos/admin/stable/gpg_keys/rotate.json",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.status(), 201);
    app.wait_for_jobs().await;
    apt.update().await;
    wait_for_adoption(&app, 1, 0).await;

    let refused = retire(false).await.unwrap();
    assert_eq!(refused.status(), 422);
    let message = refused.text().await.unwrap();
    assert!(message.contains("1 of 1 hosts"), "{message}");
    assert_eq!(
        signing_keys(&app, "stable").await[0].state,
        KeyState::Retiring
    );

    // The host upgrades the keyring package: nobody lags, and retiring needs no force.
    let out = apt
        .run("apt-get", &["download", "admin-stable-archive-keyring"])
        .await;
    assert!(out.status.success(), "{}", combined(&out));
    let adoption = wait_for_adoption(&app, 1, 1).await;
    assert_eq!(adoption.keyring_version, 2);
    let forced = retire(false).await.unwrap();
    assert_eq!(forced.status(), 200, "{}", forced.text().await.unwrap());
    assert_eq!(
        signing_keys(&app, "stable").await[0].state,
        KeyState::Retired
    );
}

#[tokio::test]
async fn retire_with_force_goes_ahead_while_hosts_lag() {
    let app = ed25519_app().await;
    app.create_repo("stable", false).await;
    app.push_deb("stable", "hello", "1.0", "amd64").await;
    app.wait_for_jobs().await;
    let old = signing_keys(&app, "stable").await.remove(0);
    let apt = Apt::new(
        &app.url("/admin/stable/debian/"),
        "bookworm",
        &binary(&[&old]),
    );
    apt.update().await;
    let repo = repo(&app, "stable").await;
    keys::rotate(&app.app, &repo, None, None, false)
        .await
        .unwrap();
    wait_for_adoption(&app, 1, 0).await;
    let refused = keys::retire(&app.app, &repo, &old.fingerprint, false).await;
    assert!(matches!(refused, Err(KeyError::Refused(_))), "{refused:?}");
    let forced = keys::retire(&app.app, &repo, &old.fingerprint, true)
        .await
        .unwrap();
    assert!(
        forced.warnings.iter().any(|w| w.contains("1 of 1 hosts")),
        "{:?}",
        forced.warnings
    );
    app.wait_for_jobs().await;
    // The lagging host is now broken, which is what the gate was for.
    let (ok, text) = apt_update_strict(&apt).await;
    assert!(!ok, "{text}");
}

/// A fresh GnuPG home for keys made by gpg itself.
fn gpg_home() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        home.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    home
}

fn gpg(home: &Path, args: &[&str]) -> Vec<u8> {
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

async fn import(app: &TestApp, keydata: &str) -> (u16, String) {
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

#[tokio::test]
async fn import_takes_a_gpg_made_key_and_refuses_bad_ones_changing_nothing() {
    let app = ed25519_app().await;
    app.create_repo("stable", false).await;
    app.push_deb("stable", "hello", "1.0", "amd64").await;
    app.wait_for_jobs().await;
    let before = signing_keys(&app, "stable").await;
    let version_before = repo(&app, "stable").await.keyring_version;

    let home = gpg_home();
    let h = home.path();
    gpg(
        h,
        &[
            "--passphrase",
            "",
            "--quick-gen-key",
            "Vault <vault@example.invalid>",
            "default",
            "default",
            "1y",
        ],
    );
    gpg(
        h,
        &[
            "--passphrase",
            "secret",
            "--quick-gen-key",
            "Locked <locked@example.invalid>",
            "default",
            "default",
            "1y",
        ],
    );
    let public =
        String::from_utf8(gpg(h, &["--armor", "--export", "vault@example.invalid"])).unwrap();
    let locked = String::from_utf8(gpg(
        h,
        &[
            "--passphrase",
            "secret",
            "--armor",
            "--export-secret-keys",
            "locked@example.invalid",
        ],
    ))
    .unwrap();
    let bad_cases = [
        (public.as_str(), "public key"),
        (
            "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nbm90IGEga2V5\n-----END PGP PRIVATE KEY BLOCK-----\n",
            "not an armored",
        ),
        ("hello", "not an armored"),
        (locked.as_str(), "passphrase"),
    ];
    for (keydata, expected) in bad_cases {
        let (status, body) = import(&app, keydata).await;
        assert_eq!(status, 422, "{body}");
        assert!(body.contains(expected), "{expected}: {body}");
    }
    for action in ["retire.json", "extend.json"] {
        let response = app
            .authed(
                Method::POST,
                &format!("/api/v1/repos/admin/stable/gpg_keys/0123456789ABCDEF0123/{action}"),
            )
            .form(&[("days", "30")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{action}");
        let body = response.text().await.unwrap();
        assert!(body.contains("no signing key"), "{body}");
    }
    let after = signing_keys(&app, "stable").await;
    assert_eq!(after.len(), before.len(), "nothing changed");
    assert_eq!(repo(&app, "stable").await.keyring_version, version_before);
    assert_eq!(db::jobs::pending(&app.app.db).await.unwrap(), 0);

    // The good one: InRelease verifies with the public part gpg exports.
    let secret = String::from_utf8(gpg(
        h,
        &["--armor", "--export-secret-keys", "vault@example.invalid"],
    ))
    .unwrap();
    let (status, body) = import(&app, &secret).await;
    assert_eq!(status, 201, "{body}");
    app.wait_for_jobs().await;
    let binary_public = gpg(h, &["--export", "vault@example.invalid"]);
    let status = gpgv(&binary_public, in_release(&app).await.as_bytes(), None);
    let imported: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        good_signers(&status),
        [imported["fingerprint"].as_str().unwrap()]
    );
    let apt = Apt::new(
        &app.url("/admin/stable/debian/"),
        "bookworm",
        &binary_public,
    );
    apt.update().await;
    let (status, body) = import(&app, &secret).await;
    assert_eq!(status, 422, "the same key twice: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_commands_on_the_data_folder_while_the_server_runs() {
    let app = ed25519_app().await;
    app.create_repo("stable", false).await;
    app.push_deb("stable", "hello", "1.0", "amd64").await;
    app.wait_for_jobs().await;
    let cli = |args: Vec<String>| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_packyard"));
        command
            .args(&args)
            .arg("--data-dir")
            .arg(app.data_dir())
            .env("PACKYARD_SIGNING_KEY_ALGORITHM", "ed25519");
        if let Some(url) = &app.app.config.database_url {
            command.arg("--database-url").arg(url);
        }
        if let Some(storage) = &app.storage {
            command.envs(storage.env());
        }
        command.output()
    };
    let args = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    let out = cli(args(&[
        "key",
        "rotate",
        "admin/stable",
        "--days",
        "10",
        "--json",
    ]))
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rotated: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let new = rotated["fingerprint"].as_str().unwrap().to_owned();
    app.wait_for_jobs().await;

    let out = cli(args(&["key", "list", "admin/stable", "--json"]))
        .await
        .unwrap();
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys = listed["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0]["state"], "retiring");
    assert_eq!(keys[1]["state"], "active");
    assert_eq!(keys[1]["fingerprint"], new.as_str());
    assert_eq!(keys[1]["algorithm"], "ed25519");
    assert!(keys[1]["days_left"].as_i64().unwrap() <= 10);
    let out = cli(args(&["key", "list", "admin/stable"])).await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&new) && text.contains("adoption: 0 of 0 hosts"),
        "{text}"
    );

    // The server signs with both keys after the command, without a restart.
    let signed = in_release(&app).await;
    let all = signing_keys(&app, "stable").await;
    assert_eq!(
        good_signers(&gpgv(
            &binary(&all.iter().collect::<Vec<_>>()),
            signed.as_bytes(),
            None
        ))
        .len(),
        2
    );

    // The old key retired, the new one expires in 10 days: check-config fails and says what to run.
    let old = all[0].fingerprint.clone();
    let out = cli(args(&["key", "retire", "admin/stable", &old]))
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "no host read the repository: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(args(&["check-config"])).await.unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("packyard key rotate admin/stable"), "{text}");
    let out = cli(args(&["key", "retire", "admin/stable", &new]))
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("last usable signing key"));
    let out = cli(args(&[
        "key",
        "extend",
        "admin/stable",
        &new[new.len() - 16..],
        "--days",
        "400",
    ]))
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("dnf hosts never import"));
    let out = cli(args(&["check-config"])).await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let out = cli(args(&["key", "export", "admin/stable"])).await.unwrap();
    let exported = String::from_utf8_lossy(&out.stdout);
    assert!(exported.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"));
    assert!(!exported.contains("PRIVATE"));
    assert_eq!(exported, app.text("/admin/stable/gpgkey").await);
}

#[tokio::test]
async fn a_staged_key_is_published_first_and_signs_from_the_next_rotate() {
    let app = ed25519_app().await;
    app.create_repo("stable", false).await;
    app.push_deb("stable", "hello", "1.0", "amd64").await;
    app.wait_for_jobs().await;
    let repo = repo(&app, "stable").await;
    let staged = keys::rotate(&app.app, &repo, None, None, true)
        .await
        .unwrap();
    app.wait_for_jobs().await;
    let keys_now = signing_keys(&app, "stable").await;
    assert_eq!(keys_now[0].state, KeyState::Active);
    assert_eq!(keys_now[1].state, KeyState::Next);
    let all: Vec<&SigningKey> = keys_now.iter().collect();
    // In the keyring and at /gpgkey, not signing yet.
    let status = gpgv(&binary(&all), in_release(&app).await.as_bytes(), None);
    assert_eq!(good_signers(&status), [keys_now[0].fingerprint.clone()]);
    assert_eq!(
        dearmor(&app.text("/admin/stable/gpgkey").await),
        binary(&all)
    );
    let again = keys::rotate(&app.app, &repo, None, None, true).await;
    assert!(matches!(again, Err(KeyError::Refused(_))), "{again:?}");

    let activated = keys::rotate(&app.app, &repo, None, None, false)
        .await
        .unwrap();
    assert_eq!(
        activated.fingerprint, staged.fingerprint,
        "no new key is made"
    );
    app.wait_for_jobs().await;
    let keys_now = signing_keys(&app, "stable").await;
    assert_eq!(keys_now.len(), 2);
    assert_eq!(keys_now[0].state, KeyState::Retiring);
    assert_eq!(keys_now[1].state, KeyState::Active);
    let status = gpgv(&binary(&all), in_release(&app).await.as_bytes(), None);
    assert_eq!(good_signers(&status).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_warns_of_a_key_close_to_expiry_at_start_up() {
    use crate::deployment::Deployment;
    let deployment = Deployment::new().await;
    let server = deployment.serve("all", "all", &[]).await;
    let token = deployment.create_token().await;
    let client = reqwest::Client::new();
    let created = client
        .post(server.url("/api/v1/repos.json"))
        .basic_auth(&token, Some(""))
        .form(&[("repository[name]", "stable")])
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let key = |args: &[&str]| {
        let mut command = deployment.command(&deployment.data_dir("cli"));
        command.arg("key").args(args);
        command.output()
    };
    let out = key(&["list", "admin/stable", "--json"]).await.unwrap();
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let old = listed["keys"][0]["fingerprint"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = key(&["rotate", "admin/stable", "--days", "20"])
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = key(&["retire", "admin/stable", &old]).await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    server.signal("-TERM").await;
    drop(server);
    let server = deployment.serve("all", "all", &[]).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = server.log();
        let warned = log.lines().any(|l| {
            l.contains("WARN")
                && l.contains("admin/stable")
                && l.contains("days left")
                && l.contains("packyard key rotate admin/stable")
        });
        if warned {
            break;
        }
        assert!(Instant::now() < deadline, "no expiry warning:\n{log}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
