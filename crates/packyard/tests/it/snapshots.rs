//! Snapshots, promotion of a whole channel and rollback, seen by real apt and dnf hosts.

use serde_json::Value;

use crate::apt_client::{Apt, combined};
use crate::dnf_client::Dnf;
use crate::operations::{app, packyard, stdout};
use crate::rpm_fixtures::push_simple_rpm;
use crate::support::TestApp;

async fn keys_of(app: &TestApp, repo: &str) -> (Vec<u8>, String) {
    let repo = packyard::db::repos::by_owner_and_name(&app.app.db, "admin", repo)
        .await
        .unwrap()
        .unwrap();
    let keys = packyard::db::signing_keys::list(&app.app.db, repo.id)
        .await
        .unwrap();
    let armored = keys[0].public_armored.clone();
    (
        packyard::sign::binary_keyring(std::slice::from_ref(&armored)).unwrap(),
        armored,
    )
}

async fn push(app: &TestApp, repo: &str, version: &str) {
    app.push_deb(repo, "app", version, "amd64").await;
    push_simple_rpm(app, repo, "app", version).await;
}

fn json(out: &std::process::Output) -> Value {
    assert!(out.status.success(), "{}", combined(out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_all_moves_production_to_staging_and_restore_brings_the_old_version_back() {
    let app = app().await;
    app.create_repo("production", false).await;
    app.create_repo("staging", false).await;
    push(&app, "production", "1.0").await;
    push(&app, "staging", "2.0").await;
    app.push_deb("staging", "extra", "0.1", "amd64").await;
    app.wait_for_jobs().await;

    let (keyring, armored) = keys_of(&app, "production").await;
    let apt = Apt::new(&app.url("/admin/production/debian/"), "bookworm", &keyring);
    let dnf = Dnf::new(
        &[("production", &app.url("/admin/production/el/9/x86_64"))],
        Some(&armored),
        "x86_64",
    );
    apt.update().await;
    assert_eq!(apt.versions("app").await, ["1.0"]);
    let root = apt.install("app").await;
    let evrs = |listed: String| {
        let mut lines: Vec<String> = listed
            .lines()
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        lines.sort();
        lines
    };
    // `--refresh`: dnf trusts a cache younger than a second even with metadata_expire=0, and
    // these changes come faster than that.
    let query = [
        "--refresh",
        "repoquery",
        "--showduplicates",
        "--qf",
        "%{name} %{evr}",
        "app",
        "extra",
    ];
    dnf.ok(&["makecache"]).await;
    assert_eq!(evrs(dnf.ok(&query).await), ["app 1.0-1"]);

    // A dry run changes nothing and says what would.
    let out = packyard(
        &app,
        &[
            "promote-all",
            "admin/staging",
            "admin/production",
            "--dry-run",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", combined(&out));
    assert!(
        stdout(&out)
            .contains("would make admin/production equal to admin/staging: 3 added, 2 removed"),
        "{}",
        stdout(&out)
    );
    assert!(
        packyard(&app, &["snapshot", "list", "admin/production", "--json"])
            .await
            .stdout
            .starts_with(b"[]")
    );

    let promotion = json(
        &packyard(
            &app,
            &["promote-all", "admin/staging", "admin/production", "--json"],
        )
        .await,
    );
    let before = promotion["before"].as_str().unwrap().to_owned();
    assert!(before.starts_with("before-promote-all-"), "{promotion}");
    assert_eq!(
        promotion["added"].as_array().unwrap().len(),
        3,
        "{promotion}"
    );
    assert_eq!(
        promotion["removed"].as_array().unwrap().len(),
        2,
        "{promotion}"
    );
    app.wait_for_jobs().await;
    let release_before = app
        .text("/admin/production/debian/dists/bookworm/InRelease")
        .await;

    apt.update().await;
    assert_eq!(apt.versions("app").await, ["2.0"]);
    assert_eq!(apt.versions("extra").await, ["0.1"]);
    apt.install("app").await;
    let status = std::fs::read_to_string(root.join("var/lib/dpkg/status")).unwrap();
    assert!(
        status.contains("Package: app\nStatus: install ok installed")
            && status.contains("Version: 2.0"),
        "{status}"
    );
    assert_eq!(evrs(dnf.ok(&query).await), ["app 2.0-1"]);

    // The snapshot taken first lists what production held, and the difference to now.
    let list = json(&packyard(&app, &["snapshot", "list", "admin/production", "--json"]).await);
    assert_eq!(list[0]["name"], before.as_str());
    let diff = json(
        &packyard(
            &app,
            &["snapshot", "diff", "admin/production", &before, "--json"],
        )
        .await,
    );
    let names = |side: &str| -> Vec<String> {
        let mut v: Vec<String> = diff[side]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                format!(
                    "{} {} {}",
                    e["distribution"].as_str().unwrap(),
                    e["name"].as_str().unwrap(),
                    e["version"].as_str().unwrap()
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names("added"),
        [
            "debian/bookworm app 2.0",
            "debian/bookworm extra 0.1",
            "el/9 app 2.0-1"
        ]
    );
    assert_eq!(
        names("removed"),
        ["debian/bookworm app 1.0", "el/9 app 1.0-1"]
    );

    // Rollback: the old version is back after a plain update (the helper fails on any
    // warning), in a newer, freshly signed InRelease with the same suite and codename.
    let out = packyard(&app, &["snapshot", "restore", "admin/production", &before]).await;
    assert!(out.status.success(), "{}", combined(&out));
    assert!(
        stdout(&out).contains("2 added, 3 removed"),
        "{}",
        stdout(&out)
    );
    app.wait_for_jobs().await;
    let release_after = app
        .text("/admin/production/debian/dists/bookworm/InRelease")
        .await;
    let field = |text: &str, name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap()
            .to_owned()
    };
    for name in ["Origin", "Label", "Suite", "Codename"] {
        assert_eq!(
            field(&release_before, name),
            field(&release_after, name),
            "{name}"
        );
    }
    let date = |text: &str| {
        let date = field(text, "Date").replace(" UTC", " GMT");
        httpdate::parse_http_date(&date).unwrap_or_else(|e| panic!("{date}: {e}"))
    };
    assert!(date(&release_after) >= date(&release_before));
    assert_ne!(release_before, release_after);
    apt.update().await;
    assert_eq!(apt.versions("app").await, ["1.0"]);
    assert!(apt.versions("extra").await.is_empty());
    apt.install("app=1.0").await;
    assert_eq!(evrs(dnf.ok(&query).await), ["app 1.0-1"]);

    // Snapshots are the owner's: through API v1 too.
    let created = app
        .post_form(
            "/api/v1/repos/admin/staging/snapshots.json",
            &[("name", "week-49")],
        )
        .await;
    assert_eq!(created["name"], "week-49");
    assert_eq!(created["packages"], 3, "{created}");
    let again = app
        .authed(
            reqwest::Method::POST,
            "/api/v1/repos/admin/staging/snapshots.json",
        )
        .form(&[("name", "week-49")])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 422, "names are unique");
    let bad = app
        .authed(
            reqwest::Method::POST,
            "/api/v1/repos/admin/staging/snapshots.json",
        )
        .form(&[("name", "../x")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    let stranger = app.stranger_token().await;
    let hidden = app
        .get("/api/v1/repos/admin/staging/snapshots/week-49.json")
        .basic_auth(&stranger, Some(""))
        .send()
        .await
        .unwrap();
    assert!(hidden.status() == 404 || hidden.status() == 403);
    let shown: Value = app
        .authed(
            reqwest::Method::GET,
            "/api/v1/repos/admin/staging/snapshots/week-49.json",
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["packages"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn a_snapshot_keeps_destroyed_packages_from_the_collector_until_it_is_deleted() {
    let app = app().await;
    app.create_repo("staging", false).await;
    app.push_deb("staging", "app", "1.0", "amd64").await;
    app.wait_for_jobs().await;
    let out = packyard(&app, &["snapshot", "create", "admin/staging", "s1"]).await;
    assert!(out.status.success(), "{}", combined(&out));
    assert_eq!(
        app.destroy("staging", "debian/bookworm", "app_1.0_amd64.deb")
            .await,
        200
    );
    app.wait_for_jobs().await;
    let sha256: String = app
        .app
        .db
        .texts("SELECT sha256 FROM packages WHERE name = 'app'")
        .await
        .unwrap()
        .remove(0);

    // A collection with every grace over keeps what the snapshot names.
    let collect = async || {
        let mut tx = app.app.db.begin_write().await.unwrap();
        let collected = packyard::db::generations::collect(&mut tx, -60)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        collected
    };
    let collected = collect().await;
    assert!(!collected.unreferenced.contains(&sha256));
    let out = packyard(&app, &["snapshot", "restore", "admin/staging", "s1"]).await;
    assert!(out.status.success(), "{}", combined(&out));
    app.wait_for_jobs().await;
    let packages = app
        .text("/admin/staging/debian/dists/bookworm/main/binary-amd64/Packages")
        .await;
    assert!(packages.contains("Package: app\n"), "{packages}");

    // Once the snapshot is gone (and the copy destroyed), the collector takes the old row.
    let out = packyard(&app, &["snapshot", "delete", "admin/staging", "s1"]).await;
    assert!(out.status.success(), "{}", combined(&out));
    let before: i64 = app
        .app
        .db
        .texts("SELECT CAST(COUNT(*) AS TEXT) FROM packages WHERE name = 'app'")
        .await
        .unwrap()[0]
        .parse()
        .unwrap();
    collect().await;
    let after: i64 = app
        .app
        .db
        .texts("SELECT CAST(COUNT(*) AS TEXT) FROM packages WHERE name = 'app'")
        .await
        .unwrap()[0]
        .parse()
        .unwrap();
    assert_eq!(
        (before, after),
        (2, 1),
        "the destroyed row went, the restored one stays"
    );
}
