//! Retention: rules set by the operator command and API v1, a preview, and an apply that
//! real apt and dnf see; the daily run by itself.

use std::time::Duration;

use serde_json::{Value, json};

use crate::apt_client::combined;
use crate::operations::{app, clients, packyard, stdout};
use crate::rpm_fixtures::push_simple_rpm;
use crate::support::TestApp;

/// Seven versions of `app`, pushed out of version order (1.10 is the newest; deb and rpm
/// order both put it above 1.9).
const VERSIONS: [&str; 7] = ["1.10", "1.2", "1.9", "1.3", "1.8", "1.4", "1.5"];

async fn push_versions(app: &TestApp) {
    for version in VERSIONS {
        app.push_deb("stable", "app", version, "amd64").await;
        push_simple_rpm(app, "stable", "app", version).await;
    }
    // `tool` 0.9 is older than all its other versions, and protected below.
    for version in ["1.0", "0.9", "1.1", "1.2", "1.3"] {
        app.push_deb("stable", "tool", version, "amd64").await;
    }
    app.wait_for_jobs().await;
}

fn candidates(plan: &Value, name: &str, distribution: &str) -> Vec<String> {
    plan["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == name && c["distribution"] == distribution)
        .map(|c| c["version"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_last_three_leaves_three_versions_for_apt_and_dnf_and_protected_ones_stay() {
    let app = app().await;
    let keyring = crate::operations::published(&app).await;
    push_versions(&app).await;
    let (apt, dnf) = clients(&app, &keyring).await;
    apt.update().await;
    // A host holds an older version.
    apt.install("app=1.2").await;

    let out = packyard(
        &app,
        &["retention", "set", "admin/stable", "--keep-last", "3"],
    )
    .await;
    assert!(out.status.success(), "{}", combined(&out));
    let out = packyard(&app, &["retention", "preview", "admin/stable", "--json"]).await;
    assert!(out.status.success(), "{}", combined(&out));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        candidates(&plan, "app", "debian/bookworm"),
        ["1.5", "1.4", "1.3", "1.2"]
    );
    assert_eq!(
        candidates(&plan, "app", "el/9"),
        ["1.5-1", "1.4-1", "1.3-1", "1.2-1"]
    );
    assert_eq!(candidates(&plan, "tool", "debian/bookworm"), ["1.0", "0.9"]);
    let sizes: i64 = plan["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["size"].as_i64().unwrap())
        .sum();
    assert_eq!(plan["bytes_freed"], sizes);
    assert!(sizes > 0);

    // Through API v1: the same rule, protecting 0.x; the preview drops tool 0.9.
    let rules = app
        .post_form(
            "/api/v1/repos/admin/stable/retention.json",
            &[("keep_last", "3"), ("protect", "^0\\.")],
        )
        .await;
    assert_eq!(rules["rules"][0]["target"], "*", "{rules}");
    assert_eq!(rules["rules"][0]["protect"], "^0\\.");
    let bad = app
        .authed(
            reqwest::Method::POST,
            "/api/v1/repos/admin/stable/retention.json",
        )
        .form(&[("keep_last", "3"), ("protect", "([")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        bad.status(),
        422,
        "a pattern that does not compile is refused"
    );
    let plan: Value = app
        .authed(
            reqwest::Method::GET,
            "/api/v1/repos/admin/stable/retention/preview.json",
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(candidates(&plan, "tool", "debian/bookworm"), ["1.0"]);
    let stranger = app.stranger_token().await;
    let refused = app
        .get("/api/v1/repos/admin/stable/retention/preview.json")
        .basic_auth(&stranger, Some(""))
        .send()
        .await
        .unwrap();
    assert!(
        refused.status() == 404 || refused.status() == 403,
        "{}",
        refused.status()
    );

    let out = packyard(&app, &["retention", "apply", "admin/stable"]).await;
    assert!(out.status.success(), "{}", combined(&out));
    assert!(
        stdout(&out).contains("yanked 9 package(s)"),
        "{}",
        stdout(&out)
    );
    app.wait_for_jobs().await;

    apt.update().await;
    assert_eq!(apt.versions("app").await, ["1.10", "1.9", "1.8"]);
    assert_eq!(apt.versions("tool").await, ["1.3", "1.2", "1.1", "0.9"]);
    let pinned = apt
        .run("apt-get", &["install", "--simulate", "app=1.2"])
        .await;
    assert!(
        !pinned.status.success(),
        "the held version is gone: {}",
        combined(&pinned)
    );
    assert!(
        combined(&pinned).contains("'1.2' for 'app' was not found"),
        "{}",
        combined(&pinned)
    );
    dnf.ok(&["makecache"]).await;
    let listed = dnf
        .ok(&[
            "--refresh",
            "repoquery",
            "--showduplicates",
            "--qf",
            "%{evr}",
            "app",
        ])
        .await;
    let mut evrs: Vec<&str> = listed.lines().filter(|l| !l.trim().is_empty()).collect();
    evrs.sort();
    assert_eq!(evrs, ["1.10-1", "1.8-1", "1.9-1"], "{listed}");

    // A second run has nothing left to do, and both runs are in the audit log.
    let out = packyard(&app, &["retention", "apply", "admin/stable", "--json"]).await;
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["candidates"], json!([]));
    let events = packyard::db::audit::list(&app.app.db, 0, Some("admin/stable"), 100)
        .await
        .unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.action == "retention.apply")
            .count(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_run_applies_rules_once_a_day_and_a_distribution_s_rule_wins() {
    let app = app().await;
    app.create_repo("stable", false).await;
    for version in ["1.0", "2.0", "3.0"] {
        app.push_deb("stable", "app", version, "amd64").await;
        push_simple_rpm(&app, "stable", "app", version).await;
    }
    app.wait_for_jobs().await;
    let out = packyard(
        &app,
        &["retention", "set", "admin/stable", "--keep-last", "2"],
    )
    .await;
    assert!(out.status.success(), "{}", combined(&out));
    let out = packyard(
        &app,
        &[
            "retention",
            "set",
            "admin/stable",
            "--keep-last",
            "1",
            "--target",
            "el/9",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", combined(&out));
    let shown = stdout(&packyard(&app, &["retention", "show", "admin/stable"]).await);
    assert!(
        shown.contains("el/9") && shown.lines().any(|l| l.starts_with('*')),
        "{shown}"
    );

    let repo = packyard::db::repos::by_owner_and_name(&app.app.db, "admin", "stable")
        .await
        .unwrap()
        .unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let daily = tokio::spawn(packyard::retention::run_daily(
        app.app.clone(),
        stop.clone(),
    ));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let live = packyard::db::packages::live(&app.app.db, repo.id, None)
            .await
            .unwrap();
        let apps: Vec<(i64, String)> = live
            .iter()
            .filter(|p| p.name == "app")
            .map(|p| (p.distro_version_id, p.version.clone()))
            .collect();
        if apps.len() == 3 {
            assert!(
                apps.contains(&(12, "3.0".into())) && apps.contains(&(12, "2.0".into())),
                "{apps:?}"
            );
            assert!(apps.contains(&(309, "3.0-1".into())), "{apps:?}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the daily run did not apply: {apps:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    daily.await.unwrap();
    // Run today already: nobody claims it again for a day.
    assert_eq!(
        packyard::db::retention::claim_due(&app.app.db, packyard::retention::INTERVAL_SECS)
            .await
            .unwrap(),
        None
    );
    let events = packyard::db::audit::list(&app.app.db, 0, Some("admin/stable"), 100)
        .await
        .unwrap();
    let run = events
        .iter()
        .find(|e| e.action == "retention.apply")
        .unwrap();
    assert_eq!(
        (run.actor_kind.as_str(), run.actor.as_str()),
        ("system", "retention")
    );
}
