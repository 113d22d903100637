//! Push, show, versions and destroy of .deb packages.

use reqwest::Method;
use serde_json::Value;

use crate::fixtures::{BOOKWORM, JAMMY, deb, deb_filename};
use crate::support::TestApp;

#[tokio::test]
async fn push_answers_201_with_the_package_details() {
    let app = TestApp::builder().without_workers().start().await;
    app.create_repo("stable", false).await;
    let bytes = deb("hello", "1.0-1", "amd64");
    let sha256 = packyard_formats::digest::FileDigests::of(&bytes).sha256;
    let body = app
        .push_ok("stable", BOOKWORM, "hello_1.0-1_amd64.deb", bytes.clone())
        .await;
    assert_eq!(body["name"], "hello");
    assert_eq!(body["version"], "1.0-1");
    assert_eq!(body["architecture"], "amd64");
    assert_eq!(body["distro_version"], "debian/bookworm");
    assert_eq!(body["filename"], "hello_1.0-1_amd64.deb");
    assert_eq!(body["size"], bytes.len().to_string());
    assert_eq!(body["sha256sum"], sha256);
    assert_eq!(body["indexed"], false, "no worker ran yet");
    assert_eq!(
        body["download_url"],
        format!(
            "{}/admin/stable/debian/pool/bookworm/main/h/hello/hello_1.0-1_amd64.deb",
            app.base
        )
    );

    let show_path = body["self_url"].as_str().unwrap().to_owned();
    app.run_jobs().await;
    let shown: Value = app.json(&show_path).await;
    assert_eq!(
        shown["indexed"], true,
        "the package is in the current signed index"
    );
    assert_eq!(shown["sha256sum"], sha256);
}

#[tokio::test]
async fn same_bytes_again_is_idempotent_different_bytes_conflict() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    let first = deb("hello", "1.0-1", "amd64");
    app.push_ok("stable", BOOKWORM, "hello_1.0-1_amd64.deb", first.clone())
        .await;
    let again = app
        .push_ok("stable", BOOKWORM, "hello_1.0-1_amd64.deb", first)
        .await;
    assert_eq!(again["name"], "hello");

    // Same name, version and architecture, other contents.
    let mut other = deb("hello", "1.0-1", "amd64");
    let tweaked = packyard_formats::deb::build_deb(
        "Package: hello\nVersion: 1.0-1\nArchitecture: amd64\nDescription: other\n",
        &[],
        packyard_formats::deb::Compression::Gzip,
    );
    other.clone_from(&tweaked);
    let response = app
        .push("stable", BOOKWORM, "hello_1.0-1_amd64.deb", other)
        .await;
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    let message = body["filename"][0].as_str().unwrap();
    assert!(
        message.contains("already in debian/bookworm with different contents"),
        "{message}"
    );

    // The same identity in another distribution is a different package.
    app.push_ok("stable", JAMMY, "hello_1.0-1_amd64.deb", tweaked)
        .await;
    let (rows, _) = app.stored().await;
    assert_eq!(
        rows, 4,
        "two pushed, and the keyring package of each distribution"
    );
}

#[tokio::test]
async fn versions_lists_every_version_and_show_finds_each() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    for version in ["1.0-1", "1.1-1", "2:0.9-1"] {
        app.push_ok(
            "stable",
            BOOKWORM,
            &deb_filename("hello", version.split(':').next_back().unwrap(), "amd64"),
            deb("hello", version, "amd64"),
        )
        .await;
    }
    let base = "/api/v1/repos/admin/stable/package/deb/debian/bookworm/hello/amd64";
    let versions: Value = app.json(&format!("{base}/versions.json")).await;
    assert_eq!(versions.as_array().unwrap().len(), 3);
    let epoch: Value = app.json(&format!("{base}/0.9-1.json")).await;
    assert_eq!(epoch["epoch"], 2);
    assert_eq!(epoch["version"], "0.9-1");
    let missing = app.get(&format!("{base}/9.9.json")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn destroy_removes_the_package_from_the_api() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    app.push_deb("stable", "hello", "1.0-1", "amd64").await;
    let path = "/api/v1/repos/admin/stable/debian/bookworm/hello_1.0-1_amd64.deb";
    let anonymous = app.get(path).send().await.unwrap();
    assert_eq!(anonymous.status(), 405, "destroy is DELETE only");
    let unauthenticated = reqwest::Client::new()
        .delete(app.url(path))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    let response = app.authed(Method::DELETE, path).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        serde_json::json!({})
    );
    let again = app.authed(Method::DELETE, path).send().await.unwrap();
    assert_eq!(again.status(), 404);
    let show = app
        .get("/api/v1/repos/admin/stable/package/deb/debian/bookworm/hello/amd64/1.0-1.json")
        .send()
        .await
        .unwrap();
    assert_eq!(show.status(), 404);
    // Pushing the same identity again after a destroy is allowed.
    app.push_deb("stable", "hello", "1.0-1", "amd64").await;
}

#[tokio::test]
async fn a_burst_of_pushes_is_indexed_by_few_publishes() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    let pushes = (0..50).map(|i| {
        let app = &app;
        async move {
            let name = format!("pkg{i:02}");
            app.push_ok(
                "stable",
                BOOKWORM,
                &deb_filename(&name, "1.0", "amd64"),
                deb(&name, "1.0", "amd64"),
            )
            .await
        }
    });
    futures::future::join_all(pushes).await;
    app.wait_for_jobs().await;

    let packages = app
        .text("/admin/stable/debian/dists/bookworm/main/binary-amd64/Packages")
        .await;
    for i in 0..50 {
        assert!(
            packages.contains(&format!("Package: pkg{i:02}\n")),
            "pkg{i:02} is missing from the index"
        );
    }
    let generations: i64 = app
        .app
        .db
        .scalar_i64("SELECT COUNT(*) FROM generations")
        .await
        .unwrap();
    // Pushes that land while a publish runs coalesce into one more run.
    assert!(
        generations < 25,
        "{generations} publishes for 50 concurrent pushes"
    );
    let unindexed: i64 = app
        .app
        .db
        .scalar_i64("SELECT COUNT(*) FROM packages WHERE NOT indexed")
        .await
        .unwrap();
    assert_eq!(unindexed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpm_show_versions_destroy_and_a_burst_of_pushes() {
    use crate::rpm_fixtures::{EL9, file_name, rpmbuild, simple_spec};

    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    let work = tempfile::tempdir().unwrap();
    let rpms: Vec<_> = (0..20)
        .map(|i| {
            rpmbuild(
                work.path(),
                &simple_spec(&format!("r{i:02}"), "1.0", "1", "x86_64"),
                "x86_64",
                false,
            )
            .remove(0)
        })
        .collect();
    let pushes = rpms.iter().map(|rpm| {
        let app = &app;
        async move {
            app.push_ok("stable", EL9, &file_name(rpm), std::fs::read(rpm).unwrap())
                .await
        }
    });
    let pushed = futures::future::join_all(pushes).await;
    app.wait_for_jobs().await;

    let first = &pushed[0];
    assert_eq!(first["version"], "1.0");
    assert_eq!(first["release"], "1");
    assert_eq!(first["package_type"], "rpm");
    let shown = app.json(first["self_url"].as_str().unwrap()).await;
    assert_eq!(shown["indexed"], true);
    assert_eq!(shown["name"], first["name"]);
    let versions = app.json(first["versions_url"].as_str().unwrap()).await;
    assert_eq!(versions.as_array().unwrap().len(), 1);
    let download = first["download_url"]
        .as_str()
        .unwrap()
        .trim_start_matches(&app.base)
        .to_owned();
    assert_eq!(app.bytes(&download).await, std::fs::read(&rpms[0]).unwrap());

    let generations: i64 = app
        .app
        .db
        .scalar_i64("SELECT COUNT(*) FROM generations WHERE arch = 'x86_64'")
        .await
        .unwrap();
    assert!(
        generations < 15,
        "{generations} publishes for 20 concurrent pushes"
    );

    let destroy = first["destroy_url"].as_str().unwrap();
    assert_eq!(
        app.authed(Method::DELETE, destroy)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    app.wait_for_jobs().await;
    assert_eq!(app.status(first["self_url"].as_str().unwrap()).await, 404);
}
