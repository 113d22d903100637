//! Package listings with pagination, filters and search; promote; download counts.

use reqwest::Method;
use serde_json::Value;

use crate::fixtures::{JAMMY, deb, deb_filename};
use crate::support::TestApp;

#[tokio::test]
async fn lists_paginate_filter_and_search() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    for i in 0..5 {
        app.push_deb("stable", &format!("tool{i}"), "1.0", "amd64")
            .await;
    }
    app.push_deb("stable", "tool0", "2.0", "amd64").await;
    app.push_ok(
        "stable",
        JAMMY,
        &deb_filename("other", "1.0", "all"),
        deb("other", "1.0", "all"),
    )
    .await;

    let page = app
        .get("/api/v1/repos/admin/stable/packages.json?per_page=3&page=2")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    // Seven pushed, and the keyring package of each of the two distributions.
    assert_eq!(page.headers()["total"], "9");
    assert_eq!(page.headers()["per-page"], "3");
    assert!(page.headers().contains_key("max-per-page"));
    let link = page.headers()["link"].to_str().unwrap().to_owned();
    assert!(
        link.contains("page=3&per_page=3>; rel=\"next\"")
            && link.contains("rel=\"last\"")
            && link.contains("rel=\"prev\""),
        "{link}"
    );
    let body: Value = page.json().await.unwrap();
    assert_eq!(body.as_array().unwrap().len(), 3);

    let grouped = app
        .json("/api/v1/repos/admin/stable/packages/deb/debian/bookworm.json")
        .await;
    let groups = grouped.as_array().unwrap();
    assert_eq!(
        groups.len(),
        6,
        "one group per name, distribution and architecture, the keyring package's included"
    );
    assert!(
        groups
            .iter()
            .any(|g| g["name"] == "admin-stable-archive-keyring")
    );
    let tool0 = groups.iter().find(|g| g["name"] == "tool0").unwrap();
    assert_eq!(tool0["versions_count"], 2);
    let versions = app.json(tool0["versions_url"].as_str().unwrap()).await;
    assert_eq!(versions.as_array().unwrap().len(), 2);
    let ubuntu = app
        .json("/api/v1/repos/admin/stable/packages/deb/ubuntu.json")
        .await;
    assert_eq!(ubuntu.as_array().unwrap().len(), 2);
    assert_eq!(
        app.json("/api/v1/repos/admin/stable/packages/rpm.json")
            .await
            .as_array()
            .unwrap()
            .len(),
        0
    );

    let found = app
        .json("/api/v1/repos/admin/stable/search.json?q=tool0")
        .await;
    assert_eq!(found.as_array().unwrap().len(), 2);
    let by_dist = app
        .json("/api/v1/repos/admin/stable/search.json?q=oth&dist=ubuntu/jammy&filter=debs")
        .await;
    assert_eq!(by_dist.as_array().unwrap().len(), 1);
    assert_eq!(by_dist[0]["name"], "other");
    assert_eq!(
        app.json("/api/v1/repos/admin/stable/search.json?filter=rpms")
            .await
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        app.json("/api/v1/repos/admin/stable/search.json?q=%25")
            .await
            .as_array()
            .unwrap()
            .len(),
        0,
        "% is literal"
    );
}

#[tokio::test]
async fn promote_moves_or_copies_between_repositories() {
    let app = TestApp::new().await;
    app.create_repo("nightly", false).await;
    app.create_repo("stable", false).await;
    app.push_deb("nightly", "hello", "1.0", "amd64").await;
    app.push_deb("nightly", "extra", "1.0", "amd64").await;
    app.wait_for_jobs().await;

    let moved = app
        .authed(
            Method::POST,
            "/api/v1/repos/admin/nightly/debian/bookworm/hello_1.0_amd64.deb/promote.json",
        )
        .form(&[("destination", "admin/stable")])
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), 200);
    let copied = app
        .authed(
            Method::POST,
            "/api/v1/repos/admin/nightly/debian/bookworm/extra_1.0_amd64.deb/promote.json",
        )
        .form(&[("destination", "admin/stable"), ("copy", "true")])
        .send()
        .await
        .unwrap();
    assert_eq!(copied.status(), 200);
    app.wait_for_jobs().await;

    let stable = app
        .text("/admin/stable/debian/dists/bookworm/main/binary-amd64/Packages")
        .await;
    assert!(
        stable.contains("Package: hello\n") && stable.contains("Package: extra\n"),
        "{stable}"
    );
    let nightly = app
        .text("/admin/nightly/debian/dists/bookworm/main/binary-amd64/Packages")
        .await;
    assert!(!nightly.contains("Package: hello\n"), "a promotion moves");
    assert!(
        nightly.contains("Package: extra\n"),
        "copy=true keeps the source"
    );
    assert_eq!(
        app.status("/admin/stable/debian/pool/bookworm/main/h/hello/hello_1.0_amd64.deb")
            .await,
        200
    );

    let nowhere = app
        .authed(
            Method::POST,
            "/api/v1/repos/admin/nightly/debian/bookworm/extra_1.0_amd64.deb/promote.json",
        )
        .form(&[("destination", "admin/missing")])
        .send()
        .await
        .unwrap();
    assert_eq!(nowhere.status(), 404);
}

#[tokio::test]
async fn downloads_are_counted_off_the_request_path() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    let pushed = app.push_deb("stable", "hello", "1.0", "amd64").await;
    let download = pushed["download_url"]
        .as_str()
        .unwrap()
        .trim_start_matches(&app.base)
        .to_owned();
    for _ in 0..3 {
        let response = app
            .get(&download)
            .header("user-agent", "Debian APT-HTTP/1.3 (2.6.1)")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let head = reqwest::Client::new()
        .head(app.url(&download))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200, "HEAD is not a download");

    let count_url = pushed["downloads_count_url"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let count = app.json(&count_url).await;
        if count["value"] == 3 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "downloads were not recorded: {count}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let detail = app
        .json(pushed["downloads_detail_url"].as_str().unwrap())
        .await;
    assert_eq!(detail.as_array().unwrap().len(), 3);
    assert_eq!(detail[0]["user_agent"], "Debian APT-HTTP/1.3 (2.6.1)");
    assert_eq!(detail[0]["ip_address"], "127.0.0.1");
    let series = app
        .json(pushed["downloads_series_url"].as_str().unwrap())
        .await;
    let days = series.as_object().unwrap();
    assert_eq!(days.len(), 1);
    let (day, n) = days.iter().next().unwrap();
    assert!(day.ends_with('Z') && day.len() == 9, "{day}");
    assert_eq!(n, 3);
}
