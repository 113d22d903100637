//! The operator's commands against a running server's data: reindex (also with every index
//! file gone, and rendering entries again), fsck and its repair, gc, status and failing jobs,
//! `/api/system`, and the audit log.

use std::process::Output;

use packyard::db;
use packyard::sign::KeyAlgorithm;
use packyard::storage::BlobKey;
use reqwest::Method;
use serde_json::Value;

use crate::apt_client::{Apt, combined};
use crate::dnf_client::Dnf;
use crate::rpm_fixtures::push_simple_rpm;
use crate::support::TestApp;

pub(crate) async fn app() -> TestApp {
    TestApp::builder()
        .key_algorithm(KeyAlgorithm::Ed25519)
        .start()
        .await
}

/// `packyard ARGS` on the test app's database and storage, while it runs.
pub(crate) async fn packyard(app: &TestApp, args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_packyard"));
    command.args(args).arg("--data-dir").arg(app.data_dir());
    let write_ahead = app.app.config.index_write_ahead_mib.to_string();
    command.env("PACKYARD_INDEX_WRITE_AHEAD_MIB", write_ahead);
    if let Some(url) = &app.app.config.database_url {
        command.arg("--database-url").arg(url);
    }
    if let Some(storage) = &app.storage {
        command.envs(storage.env());
    }
    command.output().await.unwrap()
}

/// `packyard backup verify DIR`, which reads the backup alone.
pub(crate) async fn verify(dir: &str) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_packyard"))
        .args(["backup", "verify", dir])
        .output()
        .await
        .unwrap()
}

pub(crate) fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A repository with a .deb in bookworm and an .rpm in el/9, published.
pub(crate) async fn published(app: &TestApp) -> Vec<u8> {
    app.create_repo("stable", false).await;
    app.push_deb("stable", "hello", "1.0", "amd64").await;
    push_simple_rpm(app, "stable", "hello", "1.0").await;
    app.wait_for_jobs().await;
    let repo = db::repos::by_owner_and_name(&app.app.db, "admin", "stable")
        .await
        .unwrap()
        .unwrap();
    let keys = db::signing_keys::list(&app.app.db, repo.id).await.unwrap();
    packyard::sign::binary_keyring(&[keys[0].public_armored.clone()]).unwrap()
}

pub(crate) async fn clients(app: &TestApp, keyring: &[u8]) -> (Apt, Dnf) {
    let apt = Apt::new(&app.url("/admin/stable/debian/"), "bookworm", keyring);
    let repo = db::repos::by_owner_and_name(&app.app.db, "admin", "stable")
        .await
        .unwrap()
        .unwrap();
    let keys = db::signing_keys::list(&app.app.db, repo.id).await.unwrap();
    let dnf = Dnf::new(
        &[("stable", &app.url("/admin/stable/el/9/x86_64"))],
        Some(&keys[0].public_armored),
        "x86_64",
    );
    (apt, dnf)
}

/// Every blob the current index files are stored in.
async fn index_blobs(app: &TestApp) -> Vec<String> {
    let mut blobs = Vec::new();
    for sql in [
        "SELECT f.blob_sha256 FROM generation_files f JOIN publish_targets t ON t.current_generation_id = f.generation_id WHERE f.segment_count = 0",
        "SELECT s.blob_sha256 FROM generation_file_segments s JOIN publish_targets t ON t.current_generation_id = s.generation_id",
    ] {
        blobs.extend(app.app.db.texts(sql).await.unwrap());
    }
    blobs.sort();
    blobs.dedup();
    blobs
}

async fn delete_blob(app: &TestApp, sha256: &str) {
    app.app
        .blobs
        .delete(&BlobKey::from_sha256(sha256).unwrap())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reindex_rebuilds_indexes_whose_files_are_all_gone() {
    // Every publish stores each chunk as soon as it compresses it, as a rebuild of a large
    // repository does every 16 MiB.
    let app = TestApp::builder()
        .key_algorithm(KeyAlgorithm::Ed25519)
        .configure(|c| c.index_write_ahead_mib = 0)
        .start()
        .await;
    let keyring = published(&app).await;
    let (apt, dnf) = clients(&app, &keyring).await;
    apt.update().await;
    dnf.ok(&["makecache"]).await;

    // Storage lost every index file (this server still holds small ones in memory, as a
    // restarted one would not: fsck reads storage itself).
    for blob in index_blobs(&app).await {
        delete_blob(&app, &blob).await;
    }
    let out = packyard(&app, &["fsck"]).await;
    assert!(!out.status.success());
    assert!(
        stdout(&out).contains("FAIL index_file admin/stable debian/bookworm")
            && stdout(&out).contains("missing from storage"),
        "{}",
        stdout(&out)
    );

    let out = packyard(&app, &["reindex", "admin/stable", "--wait", "--json"]).await;
    assert!(
        out.status.success(),
        "{}{}",
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    let reports: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        reports[0]["report"]["targets_queued"].as_i64().unwrap() >= 3,
        "{reports}"
    );
    let unindexed = app
        .app
        .db
        .scalar_i64("SELECT COUNT(*) FROM packages WHERE NOT indexed AND deleted_at IS NULL")
        .await
        .unwrap();
    assert_eq!(unindexed, 0, "indexed is true again at the end");
    let (apt, dnf) = clients(&app, &keyring).await;
    apt.update().await;
    let out = apt
        .run("apt-get", &["install", "--simulate", "hello"])
        .await;
    assert!(out.status.success(), "{}", combined(&out));
    let listed = dnf
        .ok(&["repoquery", "--qf", "%{name} %{evr}", "hello"])
        .await;
    assert!(listed.contains("hello 1.0-1"), "{listed}");
    let out = packyard(&app, &["fsck"]).await;
    assert!(
        out.status.success(),
        "every index file is back in storage: {}",
        stdout(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsck_names_corrupt_and_missing_blobs_and_repair_restores_the_index() {
    let app = app().await;
    let keyring = published(&app).await;
    app.push_deb("stable", "other", "1.0", "amd64").await;
    app.wait_for_jobs().await;
    let out = packyard(&app, &["fsck", "--json"]).await;
    assert!(out.status.success(), "{}", stdout(&out));
    let healthy: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(healthy["packages_checked"].as_i64().unwrap() >= 4);

    // One package's blob replaced by other bytes, another's deleted, an index segment deleted.
    let sha = |name: &'static str| {
        let db = app.app.db.clone();
        async move {
            db.texts(&format!(
                "SELECT sha256 FROM packages WHERE name = '{name}' AND format = 'deb'"
            ))
            .await
            .unwrap()
            .remove(0)
        }
    };
    let hello = sha("hello").await;
    let other = sha("other").await;
    delete_blob(&app, &hello).await;
    app.app
        .blobs
        .put_bytes(
            &BlobKey::from_sha256(&hello).unwrap(),
            "not the package".into(),
        )
        .await
        .unwrap();
    delete_blob(&app, &other).await;
    let segment = app
        .app
        .db
        .texts(
            "SELECT s.blob_sha256 FROM generation_file_segments s JOIN publish_targets t
             ON t.current_generation_id = s.generation_id WHERE s.path LIKE 'main/binary-amd64/Packages.gz'",
        )
        .await
        .unwrap()
        .remove(0);
    delete_blob(&app, &segment).await;

    let out = packyard(&app, &["fsck"]).await;
    assert!(!out.status.success());
    let text = stdout(&out);
    assert!(
        text.contains(&format!("blob {hello} holds 15 bytes")),
        "{text}"
    );
    assert!(text.contains(&format!("blob {other} is missing")), "{text}");
    assert!(
        text.contains(&format!(
            "main/binary-amd64/Packages.gz: blob {segment} is missing"
        )),
        "{text}"
    );

    let out = packyard(&app, &["fsck", "--repair"]).await;
    assert!(!out.status.success(), "the package blobs are still gone");
    assert!(
        stdout(&out).contains("queued a rebuild of admin/stable debian/bookworm"),
        "{}",
        stdout(&out)
    );
    app.wait_for_jobs().await;
    app.app.cache.invalidate();
    let apt = Apt::new(&app.url("/admin/stable/debian/"), "bookworm", &keyring);
    apt.update().await;
    let out = packyard(&app, &["fsck", "--json"]).await;
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let kinds: Vec<&str> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["package_blob", "package_blob"], "{report}");
    let rows = app
        .app
        .db
        .scalar_i64("SELECT COUNT(*) FROM packages WHERE deleted_at IS NULL")
        .await
        .unwrap();
    assert_eq!(rows, 5, "no row is deleted");
}

#[tokio::test]
async fn rerender_renders_entries_again_from_the_stored_files() {
    let app = app().await;
    published(&app).await;
    // As an older parser might have left it.
    app.app
        .db
        .execute_sql("UPDATE package_entries SET body = REPLACE(body, 'Maintainer:', 'X-Broken-Maintainer:') WHERE part = 'packages'")
        .await
        .unwrap();
    let out = packyard(&app, &["reindex", "admin/stable/debian/bookworm", "--wait"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    app.app.cache.invalidate();
    let packages = app
        .text("/admin/stable/debian/dists/bookworm/main/binary-amd64/Packages")
        .await;
    assert!(
        packages.contains("X-Broken-Maintainer:"),
        "a plain reindex keeps the entries"
    );

    let out = packyard(
        &app,
        &[
            "reindex",
            "admin/stable/debian/bookworm",
            "--rerender",
            "--wait",
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout(&out).contains("package(s) rendered again"),
        "{}",
        stdout(&out)
    );
    app.app.cache.invalidate();
    let packages = app
        .text("/admin/stable/debian/dists/bookworm/main/binary-amd64/Packages")
        .await;
    assert!(
        !packages.contains("X-Broken") && packages.contains("\nMaintainer: "),
        "{packages}"
    );
}

#[tokio::test]
async fn status_lists_targets_and_failing_jobs_which_retry_runs_again() {
    let app = app().await;
    published(&app).await;
    let out = packyard(&app, &["status", "--json"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(status["queue_depth"], 0);
    let targets: Vec<&str> = status["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["target"].as_str().unwrap())
        .collect();
    assert!(
        targets.contains(&"debian/bookworm") && targets.contains(&"el/9/x86_64"),
        "{status}"
    );
    let bookworm = status["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == "debian/bookworm")
        .unwrap();
    assert!(
        bookworm["push_to_visible_ms"].as_i64().is_some(),
        "{bookworm}"
    );
    assert!(status["soonest_key_expiry"]["days_left"].as_i64().unwrap() > 1800);

    // No usable key: the publish fails and status says why.
    app.app
        .db
        .execute_sql("UPDATE signing_keys SET state = 'retired', active = FALSE")
        .await
        .unwrap();
    app.push_deb("stable", "hello", "2.0", "amd64").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let failing = loop {
        let out = packyard(&app, &["status", "--json"]).await;
        let status: Value = serde_json::from_slice(&out.stdout).unwrap();
        let failing = status["failing_jobs"].as_array().unwrap().clone();
        if !failing.is_empty() {
            break failing;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no job failed: {status}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(failing[0]["repository"], "admin/stable");
    assert!(
        failing[0]["error"]
            .as_str()
            .unwrap()
            .contains("no usable signing key")
    );
    assert!(failing[0]["first_failed_at"].as_i64().is_some());
    let out = packyard(&app, &["status"]).await;
    assert!(stdout(&out).contains("failing job"), "{}", stdout(&out));

    app.app
        .db
        .execute_sql("UPDATE signing_keys SET state = 'active', active = TRUE")
        .await
        .unwrap();
    let out = packyard(&app, &["jobs", "retry", "--failed"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout(&out).contains("job(s) will run at once"));
    app.wait_for_jobs().await;
    assert!(db::jobs::failing(&app.app.db).await.unwrap().is_empty());

    // The collector on demand: nothing is past its grace yet.
    let out = packyard(&app, &["gc", "--dry-run", "--json"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let preview: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (preview["generations"].as_i64(), preview["blobs"].as_i64()),
        (Some(0), Some(0))
    );
    let out = packyard(&app, &["gc"]).await;
    assert!(
        stdout(&out).starts_with("removed 0 generation(s)"),
        "{}",
        stdout(&out)
    );
}

#[tokio::test]
async fn api_system_shows_the_build_to_anyone_and_everything_to_administrators() {
    let app = app().await;
    published(&app).await;
    let anonymous = app.json("/api/system").await;
    let keys: Vec<&String> = anonymous.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["build_date", "commit", "version"], "{anonymous}");
    assert_eq!(anonymous["version"], env!("CARGO_PKG_VERSION"));
    let stranger = app.stranger_token().await;
    let limited: Value = app
        .get("/api/system")
        .basic_auth(&stranger, Some(""))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(limited.as_object().unwrap().len(), 3, "{limited}");

    make_admin(&app).await;
    let full: Value = app
        .authed(Method::GET, "/api/system")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for field in [
        "version",
        "commit",
        "build_date",
        "roles",
        "database",
        "storage",
        "uptime_secs",
        "queue_depth",
        "oldest_queued_age_secs",
        "last_publish_at",
        "soonest_key_expiry",
        "last_backup_at",
    ] {
        assert!(full.get(field).is_some(), "{field} in {full}");
    }
    assert!(full["database"]["schema_version"].as_i64().unwrap() >= 10);
    assert!(full["last_publish_at"].as_i64().is_some());
}

async fn make_admin(app: &TestApp) {
    let admin = db::users::by_name(&app.app.db, "admin")
        .await
        .unwrap()
        .unwrap();
    db::users::set_admin(&app.app.db, admin.id, true)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_audit_log_records_each_change_and_never_a_token() {
    let app = app().await;
    published(&app).await;
    app.create_repo("internal", true).await;
    let master = app.master_token("internal", "default").await;
    let read = app.read_token("internal", "web-1").await["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let created = app
        .authed(Method::POST, "/api/v1/repos/admin/internal/master_tokens")
        .form(&[("master_token[name]", "ci")])
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let ci: Value = created.json().await.unwrap();
    let rotated: Value = app
        .authed(
            Method::POST,
            "/api/v1/repos/admin/internal/master_tokens/ci/rotate.json",
        )
        .form(&[("grace", "1h")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let revoked = app
        .authed(
            Method::DELETE,
            "/api/v1/repos/admin/internal/master_tokens/ci",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 204);
    assert_eq!(
        app.destroy("stable", "debian/bookworm", "hello_1.0_amd64.deb")
            .await,
        200
    );
    app.push_deb("stable", "hello", "2.0", "amd64").await;
    let promoted = app
        .authed(
            Method::POST,
            "/api/v1/repos/admin/stable/debian/bookworm/hello_2.0_amd64.deb/promote.json",
        )
        .form(&[("destination", "admin/internal"), ("copy", "true")])
        .send()
        .await
        .unwrap();
    assert_eq!(promoted.status(), 200);
    let reindexed = app
        .authed(Method::POST, "/api/v1/repos/admin/stable/reindex.json")
        .form(&[("os", "debian"), ("dist", "bookworm")])
        .send()
        .await
        .unwrap();
    assert_eq!(reindexed.status(), 202);
    let rotated_key = app
        .authed(
            Method::POST,
            "/api/v1/repos/admin/stable/gpg_keys/rotate.json",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(rotated_key.status(), 201);
    let out = packyard(
        &app,
        &[
            "token",
            "rotate",
            "admin/internal",
            "default",
            "--grace",
            "1h",
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let new_master = stdout(&out).trim().to_owned();
    app.wait_for_jobs().await;

    // Not for everyone.
    let forbidden = app
        .authed(Method::GET, "/api/v1/audit.json")
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status(), 403);
    make_admin(&app).await;
    let log: Value = app
        .authed(Method::GET, "/api/v1/audit.json?since=1h")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events = log["events"].as_array().unwrap();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in [
        "repository.create",
        "package.push",
        "package.yank",
        "package.promote",
        "token.create",
        "token.rotate",
        "token.revoke",
        "reindex",
        "key.rotate",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    let local = events
        .iter()
        .find(|e| e["actor_kind"] == "local" && e["action"] == "token.rotate")
        .expect("the operator's command is recorded");
    assert_eq!(local["repository"], "admin/internal");
    let push = events
        .iter()
        .find(|e| e["action"] == "package.push")
        .unwrap();
    assert_eq!(push["actor"], "admin");
    assert_eq!(push["ip_address"], "127.0.0.1");
    assert_eq!(push["outcome"], "ok");

    // No token value anywhere in the log, as the API or the command shows it.
    let out = packyard(&app, &["audit", "--json", "--since", "1h"]).await;
    assert!(out.status.success());
    let everything = format!("{log}\n{}", stdout(&out));
    let mut secrets = vec![app.token.clone(), master, read, new_master];
    for value in [&ci["value"], &rotated["value"]] {
        secrets.push(value.as_str().unwrap().to_owned());
    }
    for secret in secrets {
        assert!(!secret.is_empty());
        assert!(
            !everything.contains(&secret),
            "a token value is in the audit log"
        );
    }
    let by_repo = packyard(
        &app,
        &["audit", "--repo", "admin/internal", "--since", "1h"],
    )
    .await;
    let text = stdout(&by_repo);
    assert!(
        text.contains("token.rotate") && !text.contains("package.yank"),
        "{text}"
    );
}
