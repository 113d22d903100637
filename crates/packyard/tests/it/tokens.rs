//! Master and read tokens: the API, cascades, rotation with a grace period, and the limit on
//! failed authentications.

use reqwest::Method;
use serde_json::Value;

use crate::support::TestApp;

const IN_RELEASE: &str = "/admin/internal/debian/dists/bookworm/InRelease";

async fn status_with(app: &TestApp, token: &str, path: &str) -> u16 {
    app.get(path)
        .basic_auth(token, Some(""))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn private_repo_with_a_package() -> TestApp {
    let app = TestApp::new().await;
    app.create_repo("internal", true).await;
    app.push_deb("internal", "hello", "1.0", "amd64").await;
    app.wait_for_jobs().await;
    app
}

#[tokio::test]
async fn master_and_read_tokens_through_the_api() {
    let app = private_repo_with_a_package().await;
    let masters: Value = app
        .authed(Method::GET, "/api/v1/repos/admin/internal/master_tokens")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let default = &masters[0];
    assert_eq!(
        default["name"], "default",
        "every repository has a default master token"
    );
    assert!(default["value"].as_str().unwrap().len() >= 48);

    let created = app
        .authed(Method::POST, "/api/v1/repos/admin/internal/master_tokens")
        .form(&[("master_token[name]", "ci")])
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let ci: Value = created.json().await.unwrap();
    let again = app
        .authed(Method::POST, "/api/v1/repos/admin/internal/master_tokens")
        .form(&[("master_token[name]", "ci")])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 422);

    let read_path = format!(
        "/api/v1/repos/admin/internal/master_tokens/{}/read_tokens.json",
        ci["id"]
    );
    let read: Value = app
        .authed(Method::POST, &read_path)
        .form(&[("read_token[name]", "host-1")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let read_value = read["value"].as_str().unwrap().to_owned();
    crate::logs::secret(&read_value);
    assert_eq!(
        status_with(&app, &read_value, IN_RELEASE).await,
        200,
        "a read token reads"
    );
    let ci_value = ci["value"].as_str().unwrap();
    assert_eq!(
        status_with(&app, ci_value, IN_RELEASE).await,
        404,
        "a master token does not read"
    );
    // The /priv/TOKEN/ path form.
    assert_eq!(
        app.status(&format!("/priv/{read_value}{IN_RELEASE}")).await,
        200
    );
    assert_eq!(
        app.status(&format!("/priv/{ci_value}{IN_RELEASE}")).await,
        404
    );

    let listed: Value = app
        .authed(
            Method::GET,
            &format!("/api/v1/repos/admin/internal/master_tokens/{}", ci["id"]),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["read_tokens"][0]["value"], read_value.as_str());

    // Deleting a master token ends its read tokens.
    let deleted = app
        .authed(
            Method::DELETE,
            &format!("/api/v1/repos/admin/internal/master_tokens/{}", ci["id"]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(status_with(&app, &read_value, IN_RELEASE).await, 404);

    // Deleting `default` rotates it: a new value, and its read tokens end at once.
    let old_default = app.master_token("internal", "default").await;
    let host = app.read_token("internal", "host-2").await;
    let host_value = host["value"].as_str().unwrap().to_owned();
    assert_eq!(status_with(&app, &host_value, IN_RELEASE).await, 200);
    let rotated = app
        .authed(
            Method::DELETE,
            "/api/v1/repos/admin/internal/master_tokens/default",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.status(), 204);
    let new_default = app.master_token("internal", "default").await;
    assert_ne!(old_default, new_default);
    assert_eq!(status_with(&app, &host_value, IN_RELEASE).await, 404);

    // A read token can be deleted on its own.
    let third = app.read_token("internal", "host-3").await;
    let path = format!(
        "/api/v1/repos/admin/internal/master_tokens/default/read_tokens/{}",
        third["id"]
    );
    assert_eq!(
        app.authed(Method::DELETE, &path)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        status_with(&app, third["value"].as_str().unwrap(), IN_RELEASE).await,
        404
    );
}

#[tokio::test]
async fn rotation_keeps_old_tokens_working_until_the_grace_ends() {
    let app = private_repo_with_a_package().await;
    let old_master = app.master_token("internal", "default").await;
    let mint = |master: String| {
        let app = &app;
        async move {
            let response = reqwest::Client::new()
                .post(app.url("/install/repositories/admin/internal/tokens.text"))
                .basic_auth(master, Some(""))
                .form(&[("name", "web-1.example.invalid")])
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let (status, host_token) = mint(old_master.clone()).await;
    assert_eq!(status, 201);
    let (_, same) = mint(old_master.clone()).await;
    assert_eq!(same, host_token, "the same host gets the same read token");

    let rotated: Value = app
        .authed(
            Method::POST,
            "/api/v1/repos/admin/internal/master_tokens/default/rotate.json",
        )
        .form(&[("grace", "24h")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new_master = rotated["value"].as_str().unwrap().to_owned();
    assert_ne!(new_master, old_master);
    // Within the grace period: the old read token reads, the old master still mints.
    assert_eq!(status_with(&app, &host_token, IN_RELEASE).await, 200);
    assert_eq!(mint(old_master.clone()).await.0, 201);
    let (status, renewed) = mint(new_master.clone()).await;
    assert_eq!(status, 201);
    assert_ne!(
        renewed, host_token,
        "the new master token mints a new read token"
    );

    // Past the grace period: only what the new value minted works.
    app.app
        .db
        .execute_sql("UPDATE master_tokens SET previous_expires_at = 1")
        .await
        .unwrap();
    app.app
        .db
        .execute_sql("UPDATE read_tokens SET expires_at = 1 WHERE expires_at IS NOT NULL")
        .await
        .unwrap();
    // Changed behind the server's back: drop what it cached, which carries the real ends.
    app.app.cache.invalidate();
    assert_eq!(status_with(&app, &host_token, IN_RELEASE).await, 404);
    assert_eq!(mint(old_master).await.0, 404);
    assert_eq!(status_with(&app, &renewed, IN_RELEASE).await, 200);
}

#[tokio::test]
async fn too_many_failed_authentications_are_refused() {
    let app = TestApp::builder().max_auth_failures(5).start().await;
    app.create_repo("internal", true).await;
    for _ in 0..5 {
        assert_eq!(status_with(&app, "wrong-token", IN_RELEASE).await, 404);
    }
    assert_eq!(status_with(&app, "wrong-token", IN_RELEASE).await, 429);
    let api = app
        .authed(Method::GET, "/api/v1/repos.json")
        .send()
        .await
        .unwrap();
    assert_eq!(
        api.status(),
        429,
        "the address is refused, whatever token it sends now"
    );
}

#[tokio::test]
async fn token_json_trades_email_and_password_for_an_api_token() {
    let app = TestApp::new().await;
    packyard::db::users::set_login(
        &app.app.db,
        "admin",
        "admin@example.invalid",
        "correct horse",
    )
    .await
    .unwrap();
    let response = reqwest::Client::new()
        .get(app.url("/api/v1/token.json"))
        .basic_auth("admin@example.invalid", Some("correct horse"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let token: Value = response.json().await.unwrap();
    let token = token["token"].as_str().unwrap().to_owned();
    let repos = reqwest::Client::new()
        .get(app.url("/api/v1/repos.json"))
        .basic_auth(&token, Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(repos.status(), 200, "the token works");
    let wrong = reqwest::Client::new()
        .get(app.url("/api/v1/token.json"))
        .basic_auth("admin@example.invalid", Some("wrong horse"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
}

#[tokio::test]
async fn organisation_members_push_to_its_repositories() {
    let app = TestApp::new().await;
    let admin = packyard::db::users::by_name(&app.app.db, "admin")
        .await
        .unwrap()
        .unwrap();
    let org = packyard::db::users::create_org(&app.app.db, "acme", &[admin])
        .await
        .unwrap();
    let key = packyard::keys::generate_for(&app.app, "acme", "stable", None, None)
        .await
        .unwrap();
    let new = packyard::db::repos::NewRepo {
        owner_id: org.id,
        name: "stable",
        private: true,
        index_zstd: false,
        index_xz: false,
    };
    packyard::db::repos::create(&app.app.db, &new, &key)
        .await
        .unwrap();

    let form = reqwest::multipart::Form::new()
        .text("package[distro_version_id]", "12")
        .part(
            "package[package_file]",
            reqwest::multipart::Part::bytes(crate::fixtures::deb("hello", "1.0", "amd64"))
                .file_name("hello_1.0_amd64.deb"),
        );
    let pushed = app
        .authed(Method::POST, "/api/v1/repos/acme/stable/packages.json")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(pushed.status(), 201, "a member pushes");
    assert_eq!(
        app.authed(Method::GET, "/acme/stable/gpgkey")
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "and reads"
    );
    let stranger = app.stranger_token().await;
    assert_eq!(
        status_with(&app, &stranger, "/acme/stable/gpgkey").await,
        404
    );
}

/// Private reads authorize from the read cache: a token's lookup is kept (a change made behind
/// the server's back, in SQL, goes unseen while the entry lives), every revocation through
/// the server drops it at once, and a read token's end is checked on every read even while
/// its lookup is cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_reads_authorize_from_a_cache_that_token_changes_drop() {
    let app = TestApp::builder()
        .configure(|c| c.cache_ttl_ms = 600_000)
        .start()
        .await;
    app.create_repo("internal", true).await;
    app.push_deb("internal", "hello", "1.0", "amd64").await;
    app.wait_for_jobs().await;
    let read = |name: &'static str| {
        let app = &app;
        async move {
            let token = app.read_token("internal", name).await;
            (
                token["id"].as_i64().unwrap(),
                token["value"].as_str().unwrap().to_owned(),
            )
        }
    };

    // Cached: renaming the token's value in the database alone does not stop it.
    let (_, cached) = read("cached-host").await;
    assert_eq!(status_with(&app, &cached, IN_RELEASE).await, 200);
    app.app
        .db
        .execute_sql(
            "UPDATE read_tokens SET value = 'changed-behind-its-back', value_sha256 = 'x'
             WHERE name = 'cached-host'",
        )
        .await
        .unwrap();
    assert_eq!(status_with(&app, &cached, IN_RELEASE).await, 200);

    // Revoking through the API drops every cached lookup at once.
    let (id, revoked) = read("revoked-host").await;
    assert_eq!(status_with(&app, &revoked, IN_RELEASE).await, 200);
    let delete = app
        .authed(
            Method::DELETE,
            &format!("/api/v1/repos/admin/internal/master_tokens/default/read_tokens/{id}"),
        )
        .send()
        .await
        .unwrap();
    assert!(delete.status().is_success(), "{}", delete.status());
    assert_eq!(status_with(&app, &revoked, IN_RELEASE).await, 404);
    assert_eq!(status_with(&app, &cached, IN_RELEASE).await, 404);

    // A read token's end is checked on each read, also while its lookup is cached.
    let (_, ending) = read("ending-host").await;
    let end = packyard::db::now() + 2;
    app.app
        .db
        .execute_sql(&format!(
            "UPDATE read_tokens SET expires_at = {end} WHERE name = 'ending-host'"
        ))
        .await
        .unwrap();
    // Loaded with its end, then kept.
    app.app.cache.invalidate();
    assert_eq!(status_with(&app, &ending, IN_RELEASE).await, 200);
    tokio::time::sleep(std::time::Duration::from_millis(
        u64::try_from(end - packyard::db::now() + 1).unwrap() * 1000,
    ))
    .await;
    assert_eq!(status_with(&app, &ending, IN_RELEASE).await, 404);

    // Rotating the master token without grace ends the read tokens minted before, at once.
    let (_, before) = read("before-rotation").await;
    assert_eq!(status_with(&app, &before, IN_RELEASE).await, 200);
    let rotate = app
        .authed(
            Method::POST,
            "/api/v1/repos/admin/internal/master_tokens/default/rotate.json",
        )
        .form(&[("grace", "0")])
        .send()
        .await
        .unwrap();
    assert!(rotate.status().is_success(), "{:?}", rotate.text().await);
    assert_eq!(status_with(&app, &before, IN_RELEASE).await, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_looked_up_by_digest_and_older_rows_get_theirs() {
    let app = TestApp::new().await;
    app.create_repo("internal", true).await;
    app.push_deb("internal", "hello", "1.0", "amd64").await;
    app.wait_for_jobs().await;
    let token = app.read_token("internal", "digest-host").await;
    let value = token["value"].as_str().unwrap().to_owned();
    let stored = app
        .app
        .db
        .texts("SELECT value_sha256 FROM read_tokens WHERE name = 'digest-host'")
        .await
        .unwrap();
    assert_eq!(
        stored,
        vec![packyard_formats::digest::sha256_hex(value.as_bytes())]
    );
    assert_eq!(status_with(&app, &value, IN_RELEASE).await, 200);

    // Without its digest the token is not found, though its value is stored: lookups never
    // compare stored values in the database.
    app.app
        .db
        .execute_sql("UPDATE read_tokens SET value_sha256 = NULL")
        .await
        .unwrap();
    app.app
        .db
        .execute_sql("UPDATE master_tokens SET value_sha256 = NULL")
        .await
        .unwrap();
    app.app.tokens_changed().await.unwrap();
    assert_eq!(status_with(&app, &value, IN_RELEASE).await, 404);

    // What opening the database does for rows made before digests were kept.
    packyard::db::tokens::fill_digests(&app.app.db)
        .await
        .unwrap();
    app.app.tokens_changed().await.unwrap();
    assert_eq!(status_with(&app, &value, IN_RELEASE).await, 200);
    let master = app.master_token("internal", "default").await;
    let minted = app
        .client()
        .get(app.url(
            "/install/repositories/admin/internal/config_file.list?os=debian&dist=bookworm&name=host-2",
        ))
        .basic_auth(&master, Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(minted.status(), 200, "the master token mints again");
}
