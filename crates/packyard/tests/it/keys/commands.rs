//! Importing keys made by gpg, refusing bad ones, and the `packyard key` commands.

use super::*;

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
