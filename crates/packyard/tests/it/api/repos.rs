//! `POST /api/v1/repos.json`, `GET /api/v1/repos.json`, `GET /api/v1/repos/OWNER/REPO.json`.

use reqwest::Method;
use serde_json::Value;

use crate::support::TestApp;

#[tokio::test]
async fn create_list_and_show() {
    let app = TestApp::new().await;
    let created = app.create_repo("stable", false).await;
    assert_eq!(created["fqname"], "admin/stable");
    let stored = app
        .app
        .db
        .scalar_text("SELECT secret_armored FROM signing_keys")
        .await
        .unwrap();
    assert!(
        stored.starts_with("enc:v1:") && !stored.contains("PRIVATE KEY"),
        "signing keys are sealed at rest"
    );
    assert_eq!(created["private"], false);

    let list: Value = app
        .authed(Method::GET, "/api/v1/repos.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["name"], "stable");

    let shown: Value = app.json("/api/v1/repos/admin/stable.json").await;
    // The package_cloud CLI builds its next requests from these.
    assert_eq!(
        shown["paths"]["create_package"],
        "/api/v1/repos/admin/stable/packages.json"
    );
    assert_eq!(shown["paths"]["self"], "/api/v1/repos/admin/stable");
    assert_eq!(
        shown["paths"]["gpg_keys"],
        "/api/v1/repos/admin/stable/gpg_keys.json"
    );
    assert_eq!(
        shown["urls"]["install_script"],
        format!(
            "{}/install/repositories/admin/stable/script.deb.sh",
            app.base
        )
    );
}

#[tokio::test]
async fn create_accepts_json_bodies() {
    let app = TestApp::new().await;
    let response = app
        .authed(Method::POST, "/api/v1/repos.json")
        .json(&serde_json::json!({"repository": {"name": "internal", "private": true}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["private"], true);
}

#[tokio::test]
async fn duplicate_and_invalid_names_are_422_with_field_lists() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    for (name, needle) in [
        ("stable", "has already been taken"),
        ("../etc", "must be 1 to 100"),
        ("", "must be 1 to 100"),
    ] {
        let response = app
            .authed(Method::POST, "/api/v1/repos.json")
            .form(&[("repository[name]", name)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "{name:?}");
        let body: Value = response.json().await.unwrap();
        let message = body["name"][0]
            .as_str()
            .expect("422 bodies map fields to lists of messages");
        assert!(message.contains(needle), "{name:?}: {message}");
    }
}

#[tokio::test]
async fn writes_need_a_valid_token() {
    let app = TestApp::new().await;
    let anonymous = app.get("/api/v1/repos.json").send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(body["error"], "Unauthenticated");

    let wrong = reqwest::Client::new()
        .post(app.url("/api/v1/repos.json"))
        .basic_auth(
            "not-a-real-token-not-a-real-token-not-a-real-token",
            Some(""),
        )
        .form(&[("repository[name]", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
}

#[tokio::test]
async fn private_repositories_are_404_to_strangers() {
    let app = TestApp::new().await;
    app.create_repo("internal", true).await;
    let stranger = app.stranger_token().await;
    let paths = [
        "/api/v1/repos/admin/internal.json",
        "/admin/internal/gpgkey",
        "/admin/internal/debian/dists/bookworm/InRelease",
    ];
    for path in paths {
        let anonymous = app.get(path).send().await.unwrap();
        assert_eq!(anonymous.status(), 404, "anonymous {path}");
        let other = app
            .get(path)
            .basic_auth(&stranger, Some(""))
            .send()
            .await
            .unwrap();
        assert_eq!(other.status(), 404, "stranger {path}");
    }
    let missing = app
        .get("/api/v1/repos/admin/nothing-here.json")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let owner = app
        .authed(Method::GET, "/api/v1/repos/admin/internal.json")
        .send()
        .await
        .unwrap();
    assert_eq!(owner.status(), 200);
    let key = app
        .authed(Method::GET, "/admin/internal/gpgkey")
        .send()
        .await
        .unwrap();
    assert_eq!(key.status(), 200);

    // A stranger cannot push to it either, and learns nothing: 404.
    let push = app
        .push_as(
            &stranger,
            "internal",
            12,
            "hello_1.0_all.deb",
            crate::fixtures::deb("hello", "1.0", "all"),
        )
        .await;
    assert_eq!(push.status(), 404);
}

#[tokio::test]
async fn the_repository_list_is_paginated() {
    let app = TestApp::new().await;
    for name in ["a", "b", "c"] {
        app.create_repo(name, false).await;
    }
    let page = app
        .authed(Method::GET, "/api/v1/repos.json?per_page=2")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["total"], "3");
    assert!(
        page.headers()["link"]
            .to_str()
            .unwrap()
            .contains("page=2&per_page=2>; rel=\"next\"")
    );
    let first: Value = page.json().await.unwrap();
    assert_eq!(first.as_array().unwrap().len(), 2);
    let second: Value = app
        .authed(Method::GET, "/api/v1/repos.json?per_page=2&page=2")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(second[0]["name"], "c");
}
