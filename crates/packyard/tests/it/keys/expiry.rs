//! Expired keys never sign; an extension heals hosts that fetch the key again; the server warns.

use super::*;

#[tokio::test]
async fn an_expired_key_never_signs_and_hosts_of_the_valid_key_verify() {
    let app = ed25519_app().await;
    app.create_repo("stable", false).await;
    app.push_deb("stable", "hello", "1.0", "amd64").await;
    push_simple_rpm(&app, "stable", "hello", "1.0").await;
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
    push_simple_rpm(&app, "stable", "hello", "2.0").await;
    app.wait_for_jobs().await;

    let both =
        packyard::sign::binary_keyring(&[valid.public_armored.clone(), expired_public.clone()])
            .unwrap();
    let status = gpgv(&both, in_release(&app).await.as_bytes(), None);
    assert_eq!(
        good_signers(&status),
        std::slice::from_ref(&valid.fingerprint),
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
        std::slice::from_ref(&valid.fingerprint)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_warns_of_a_key_close_to_expiry_at_start_up() {
    use crate::deployment::{Deployment, create_repository};
    let deployment = Deployment::new().await;
    let server = deployment.serve("all", "all", &[]).await;
    let token = deployment.create_token().await;
    create_repository(&server.base, &token, "stable").await;
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
