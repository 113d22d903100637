//! Backups: taken while pushes go on, verified, damaged and taken again, refused without the
//! secret, restored into an empty deployment, and every package installs from it.

use packyard::db;
use serde_json::Value;

use crate::apt_client::{Apt, combined};
use crate::dnf_client::Dnf;
use crate::operations::{app, packyard, published, stdout, verify};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_during_pushes_restores_and_every_package_installs() {
    use crate::deployment::Deployment;
    let app = app().await;
    let keyring = published(&app).await;
    let backup = tempfile::tempdir().unwrap();
    let dir = backup.path().join("backup");
    let dir_arg = dir.to_str().unwrap().to_owned();

    // Pushes go on while the backup runs.
    let pushing = {
        let (base, token) = (app.base.clone(), app.token.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut acknowledged = Vec::new();
            for n in 0..20 {
                let name = format!("during{n:02}");
                let form = reqwest::multipart::Form::new()
                    .text("package[distro_version_id]", "12")
                    .part(
                        "package[package_file]",
                        reqwest::multipart::Part::bytes(crate::fixtures::deb(
                            &name, "1.0", "amd64",
                        ))
                        .file_name(crate::fixtures::deb_filename(&name, "1.0", "amd64")),
                    );
                let response = client
                    .post(format!("{base}/api/v1/repos/admin/stable/packages.json"))
                    .basic_auth(&token, Some(""))
                    .multipart(form)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 201);
                acknowledged.push(name);
            }
            acknowledged
        })
    };
    let out = packyard(&app, &["backup", "--to", &dir_arg]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("PACKYARD_SECRET_KEY"),
        "without --include-secret it warns"
    );
    pushing.await.unwrap();
    let out = verify(&dir_arg).await;
    assert!(out.status.success(), "{}", stdout(&out));

    // A damaged file is found; a second run copies what is missing and only that.
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let blob = manifest["files"]
        .as_object()
        .unwrap()
        .keys()
        .find(|p| p.starts_with("blobs/"))
        .unwrap()
        .clone();
    // Replaced, not written through: the backup's files may be hard links to storage's.
    std::fs::remove_file(dir.join(&blob)).unwrap();
    std::fs::write(dir.join(&blob), "damaged").unwrap();
    let out = verify(&dir_arg).await;
    assert!(!out.status.success());
    assert!(
        stdout(&out).contains(&format!("FAIL {blob} has SHA-256")),
        "{}",
        stdout(&out)
    );
    std::fs::remove_file(dir.join(&blob)).unwrap();
    let out = packyard(&app, &["backup", "--to", &dir_arg, "--json"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let second: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        second["blobs_copied"].as_i64().unwrap() <= 21,
        "the second run copies only the new files: {second}"
    );
    let out = verify(&dir_arg).await;
    assert!(out.status.success(), "{}", stdout(&out));

    // Restore into an empty deployment: refused without the secret, then done with it.
    let secret = {
        use base64::Engine as _;
        let raw = packyard::secrets::SecretBox::raw_key(&app.app.config).unwrap();
        base64::engine::general_purpose::STANDARD.encode(raw)
    };
    let target = Deployment::new().await;
    let restore = |secret: Option<&str>| {
        let mut command = target.command(&target.data_dir("all"));
        command.env_remove("PACKYARD_SECRET_KEY");
        if let Some(secret) = secret {
            command.env("PACKYARD_SECRET_KEY", secret);
        }
        command.args(["restore", "--from", &dir_arg]).output()
    };
    // A backup from a newer schema is refused before anything changes.
    let manifest_path = dir.join("manifest.json");
    let original = std::fs::read(&manifest_path).unwrap();
    let mut newer: Value = serde_json::from_slice(&original).unwrap();
    newer["schema_version"] = serde_json::json!(99_999_999_999_i64);
    std::fs::write(&manifest_path, serde_json::to_vec(&newer).unwrap()).unwrap();
    let out = restore(Some(&secret)).await.unwrap();
    assert!(!out.status.success());
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(error.contains("newer than this Packyard knows"), "{error}");
    std::fs::write(&manifest_path, &original).unwrap();

    let out = restore(None).await.unwrap();
    assert!(!out.status.success());
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(error.contains("PACKYARD_SECRET_KEY"), "{error}");
    let out = restore(Some(&secret)).await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let server = target
        .serve("all", "all", &[("PACKYARD_SECRET_KEY", &secret)])
        .await;
    let client = reqwest::Client::new();
    let listed: Value = client
        .get(server.url("/api/v1/repos/admin/stable/packages.json?per_page=100"))
        .basic_auth(&app.token, Some(""))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let packages = listed.as_array().unwrap();
    assert!(packages.len() >= 4, "{listed}");
    // Wait until every restored package is indexed again.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let out = target
            .command(&target.data_dir("cli"))
            .env("PACKYARD_SECRET_KEY", &secret)
            .args(["reindex", "--all", "--wait", "--timeout", "60"])
            .output()
            .await
            .unwrap();
        if out.status.success() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let apt = Apt::new(&server.url("/admin/stable/debian/"), "bookworm", &keyring);
    apt.update().await;
    for package in packages.iter().filter(|p| p["package_type"] == "deb") {
        let spec = format!(
            "{}={}",
            package["name"].as_str().unwrap(),
            package["version"].as_str().unwrap()
        );
        let out = apt.run("apt-get", &["download", &spec]).await;
        assert!(out.status.success(), "{spec}: {}", combined(&out));
    }
    let out = apt
        .run("apt-get", &["install", "--simulate", "hello"])
        .await;
    assert!(out.status.success(), "{}", combined(&out));
    let repo = db::repos::by_owner_and_name(&app.app.db, "admin", "stable")
        .await
        .unwrap()
        .unwrap();
    let keys = db::signing_keys::list(&app.app.db, repo.id).await.unwrap();
    let dnf = Dnf::new(
        &[("stable", &server.url("/admin/stable/el/9/x86_64"))],
        Some(&keys[0].public_armored),
        "x86_64",
    );
    dnf.ok(&["install", "hello"]).await;
    assert!(dnf.root().join("usr/bin/hello").exists());
    let out = target
        .command(&target.data_dir("cli"))
        .env("PACKYARD_SECRET_KEY", &secret)
        .arg("fsck")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "every row has its blob: {}",
        stdout(&out)
    );
}
