//! Two keys signing through a rotation, the keyring package, a staged key, and retirement.

use super::*;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dnf_imports_the_new_key_by_itself_after_rotate_and_retire() {
    let app = ed25519_app().await;
    app.create_repo("stable", false).await;
    push_simple_rpm(&app, "stable", "hello", "1.0").await;
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
