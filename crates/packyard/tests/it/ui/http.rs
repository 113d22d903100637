//! The web UI over plain HTTP: sessions and their cookies, forged and foreign form posts,
//! the limit on sign-in attempts, private repositories, what clients other than browsers
//! see, the package list's orders and the download links.

use reqwest::StatusCode;

use super::site::{PASSWORD, Site, form_token, set_sizes, stranger, with_password};
use crate::fixtures::{BOOKWORM, deb, deb_filename};

/// The raw-file distribution (`anyfile/1`).
const ANYFILE: i64 = 5;
use crate::support::TestApp;

#[tokio::test]
async fn sessions_are_stored_hashed_flagged_and_ended_by_signing_out() {
    let app = TestApp::new().await;
    with_password(&app).await;
    let mut site = Site::new(&app);

    // A wrong password: the same page again, 401, no session.
    let (_, html) = site.page("/login").await;
    let token = form_token(&html);
    let refused = site
        .post(
            "/login",
            &[("csrf", &token), ("login", "admin"), ("password", "wrong")],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(refused.text().await.unwrap().contains("is not right"));
    assert!(site.cookie("packyard_session").is_none());

    // The right one, by email: a session cookie, HttpOnly and SameSite=Lax, not Secure on
    // plain http.
    let (_, html) = site.page("/login").await;
    let token = form_token(&html);
    let response = site
        .post(
            "/login",
            &[
                ("csrf", &token),
                ("login", "admin@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let set_cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("packyard_session="))
        .expect("a session cookie");
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    assert!(!set_cookie.contains("Secure"), "{set_cookie}");
    let first = site.cookie("packyard_session").unwrap().to_owned();

    // The database keeps the id's hash, never the id.
    let stored = app
        .app
        .db
        .texts("SELECT id_hash FROM sessions")
        .await
        .unwrap();
    assert_eq!(
        stored,
        vec![packyard_formats::digest::sha256_hex(first.as_bytes())]
    );

    let (status, html) = site.page("/account").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Account: admin"));

    // Signing in gives a new id whatever cookie the browser brought (no fixation).
    let mut again = Site::new(&app);
    again.set_cookie("packyard_session", "planted-by-someone-else");
    again.sign_in("admin", PASSWORD).await;
    let second = again.cookie("packyard_session").unwrap().to_owned();
    assert_ne!(second, "planted-by-someone-else");
    assert_ne!(first, second);
    let mut site = again;

    // Signing out deletes the session: its cookie, replayed, signs no one in.
    let (_, html) = site.page("/account").await;
    let token = form_token(&html);
    let out = site.post("/logout", &[("csrf", &token)]).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let mut replay = Site::new(&app);
    replay.set_cookie("packyard_session", &second);
    let response = replay.get("/account").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/login?next=%2Faccount");
}

#[tokio::test]
async fn forms_without_their_token_or_from_another_site_are_refused() {
    let app = TestApp::new().await;
    with_password(&app).await;
    app.create_repo("stable", false).await;
    let mut site = Site::new(&app);
    site.sign_in("admin", PASSWORD).await;
    let (_, html) = site.page("/admin/stable/tokens").await;
    let token = form_token(&html);
    let create = |name: &'static str, token: &str| {
        vec![
            ("csrf", token.to_owned()),
            ("action", "create".to_owned()),
            ("name", name.to_owned()),
        ]
    };
    // What is wrong, the token sent, and the headers sent with it.
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);
    let cases: [Case; 4] = [
        ("no token", "", &[]),
        ("a forged token", "00ff", &[]),
        (
            "another origin",
            &token,
            &[("origin", "http://evil.example")],
        ),
        (
            "cross-site fetch",
            &token,
            &[("sec-fetch-site", "cross-site")],
        ),
    ];
    for (what, token, headers) in cases {
        let form = create("forged", token);
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let response = site.post_with("/admin/stable/tokens", &form, headers).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{what}");
        assert!(
            response.text().await.unwrap().contains("Form refused"),
            "{what}"
        );
    }
    // The form cookie of a visitor who is not signed in does not make a token that works
    // for the session.
    let mut anonymous = Site::new(&app);
    let (_, login) = anonymous.page("/login").await;
    let foreign = form_token(&login);
    let form = create("foreign", &foreign);
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let response = site.post("/admin/stable/tokens", &form).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    let names = app
        .app
        .db
        .texts("SELECT name FROM master_tokens")
        .await
        .unwrap();
    assert_eq!(
        names,
        vec!["default".to_owned()],
        "no refused post made a token"
    );

    // The same post, from the page itself, works.
    let form = create("production", &token);
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let response = site.post("/admin/stable/tokens", &form).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Master token production created")
    );

    // A session cookie never authenticates the API.
    let session = site.cookie("packyard_session").unwrap().to_owned();
    let api = reqwest::Client::new()
        .post(app.url("/api/v1/repos.json"))
        .header("cookie", format!("packyard_session={session}"))
        .form(&[("repository[name]", "by-cookie")])
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn signing_in_returns_to_the_page_asked_for_and_only_on_this_site() {
    let app = TestApp::new().await;
    with_password(&app).await;
    app.create_repo("stable", false).await;
    for (next, landing) in [
        ("/admin/stable/tokens", "/admin/stable/tokens"),
        ("//evil.example/x", "/admin"),
        ("https://evil.example/", "/admin"),
        ("/\\evil.example", "/admin"),
    ] {
        let mut site = Site::new(&app);
        let (_, html) = site.page(&format!("/login?next={}", urlencode(next))).await;
        let token = form_token(&html);
        let response = site
            .post(
                "/login",
                &[
                    ("csrf", &token),
                    ("login", "admin"),
                    ("password", PASSWORD),
                    ("next", next),
                ],
            )
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{next}");
        assert_eq!(response.headers()["location"], landing, "{next}");
    }
    // A page that needs a session sends a visitor to sign in with the way back.
    let mut site = Site::new(&app);
    let response = site.get("/admin/stable/tokens?confirm=rotate").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()["location"],
        "/login?next=%2Fadmin%2Fstable%2Ftokens%3Fconfirm%3Drotate"
    );
}

fn urlencode(text: &str) -> String {
    serde_urlencoded::to_string([("x", text)]).unwrap()[2..].to_owned()
}

#[tokio::test]
async fn sign_in_attempts_are_limited_per_address() {
    let app = TestApp::builder().max_auth_failures(3).start().await;
    with_password(&app).await;
    let mut site = Site::new(&app);
    for _ in 0..3 {
        let (_, html) = site.page("/login").await;
        let token = form_token(&html);
        let response = site
            .post(
                "/login",
                &[("csrf", &token), ("login", "admin"), ("password", "guess")],
            )
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let (_, html) = site.page("/login").await;
    let token = form_token(&html);
    let response = site
        .post(
            "/login",
            &[("csrf", &token), ("login", "admin"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(site.cookie("packyard_session").is_none());
}

#[tokio::test]
async fn private_repositories_are_not_found_for_anyone_who_may_not_read_them() {
    let app = TestApp::new().await;
    with_password(&app).await;
    stranger(&app).await;
    app.create_repo("secret", true).await;
    let filename = deb_filename("hidden", "1.0", "amd64");
    app.push_ok("secret", BOOKWORM, &filename, deb("hidden", "1.0", "amd64"))
        .await;
    app.wait_for_jobs().await;
    let package = format!("/admin/secret/packages/debian/bookworm/{filename}");
    let paths = [
        "/admin/secret".to_owned(),
        "/admin/secret/packages".to_owned(),
        package.clone(),
        format!("{package}/download"),
        "/admin/secret/stats".to_owned(),
        "/admin/secret/keys".to_owned(),
        "/admin/secret/tokens".to_owned(),
        "/admin/secret/upload".to_owned(),
    ];
    let mut anonymous = Site::new(&app);
    let mut other = Site::new(&app);
    other.sign_in("stranger", PASSWORD).await;
    // Administrators' pages are missing pages to everyone else.
    for path in ["/-/status", "/-/audit"] {
        assert_eq!(other.page(path).await.0, StatusCode::NOT_FOUND, "{path}");
    }
    for site in [&mut anonymous, &mut other] {
        for path in &paths {
            let (status, html) = site.page(path).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
            // The same page as for a repository that does not exist, but for the path its
            // sign-in link returns to.
            let missing = path.replace("/admin/secret", "/admin/nosuch");
            let (status, other) = site.page(&missing).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
            let escaped = |p: &str| serde_urlencoded::to_string([("next", p)]).unwrap();
            assert_eq!(
                html,
                other.replace(&escaped(&missing), &escaped(path)),
                "{path}"
            );
        }
        let (_, home) = site.page("/").await;
        assert!(!home.contains("secret"));
    }
    let mut owner = Site::new(&app);
    owner.sign_in("admin", PASSWORD).await;
    for path in &paths[..3] {
        assert_eq!(owner.page(path).await.0, StatusCode::OK, "{path}");
    }
    assert!(owner.page("/").await.1.contains("admin/secret"));
}

/// What apt, dnf, pip, npm and curl fetch is answered as before the UI existed: the same
/// bytes and type whatever `Accept` says, and never a page.
#[tokio::test]
async fn clients_other_than_browsers_see_the_repository_unchanged() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    let filename = deb_filename("tool", "1.0", "amd64");
    app.push_ok("stable", BOOKWORM, &filename, deb("tool", "1.0", "amd64"))
        .await;
    // A raw file: packagecloud's download path lies under `packages/`, beside the pages.
    app.push_ok(
        "stable",
        ANYFILE,
        "notes-1.0.txt",
        b"release notes\n".to_vec(),
    )
    .await;
    app.wait_for_jobs().await;
    let paths = [
        "/admin/stable/packages/anyfile/notes-1.0.txt/download",
        "/admin/stable/debian/dists/bookworm/InRelease",
        "/admin/stable/debian/dists/bookworm/main/binary-amd64/Packages",
        &format!("/admin/stable/debian/pool/bookworm/main/t/tool/{filename}"),
        "/admin/stable/gpgkey",
        "/install/repositories/admin/stable/script.deb.sh",
        "/install/repositories/admin/stable/config_file.list?os=debian&dist=bookworm",
        "/api/v1/repos/admin/stable/packages.json",
    ];
    let clients = [
        ("Debian APT-HTTP/1.3 (2.6.1)", "*/*"),
        ("libdnf (Fedora Linux 39; container; Linux.x86_64)", "*/*"),
        ("curl/7.88.1", "*/*"),
        (
            "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        ),
    ];
    let client = reqwest::Client::new();
    for path in paths {
        let mut seen: Option<(StatusCode, String, bytes::Bytes)> = None;
        for (agent, accept) in clients {
            let response = client
                .get(app.url(path))
                .header("user-agent", agent)
                .header("accept", accept)
                .send()
                .await
                .unwrap();
            let status = response.status();
            // (A pool file on S3 comes from the bucket, which may name no type.)
            let content_type = response
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            let body = response.bytes().await.unwrap();
            assert_eq!(status, StatusCode::OK, "{path} for {agent}");
            assert!(
                !content_type.starts_with("text/html"),
                "{path} for {agent}: {content_type}"
            );
            if let Some(first) = &seen {
                assert_eq!(first, &(status, content_type, body), "{path} for {agent}");
            } else {
                seen = Some((status, content_type, body));
            }
        }
    }
    // The UI's own paths answer only what no client asked for before: 404 for a repository
    // file that does not exist stays a bare 404 for apt.
    for path in [
        "/admin/stable/debian/dists/trixie/InRelease",
        "/admin/stable/packages/anyfile/missing.txt/download",
    ] {
        let missing = client
            .get(app.url(path))
            .header("user-agent", "Debian APT-HTTP/1.3 (2.6.1)")
            .header("accept", "text/html,*/*")
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(missing.bytes().await.unwrap().is_empty(), "{path}");
    }
    let missing = client
        .get(app.url("/admin/stable/debian/dists/trixie/InRelease"))
        .header("user-agent", "Debian APT-HTTP/1.3 (2.6.1)")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(missing.bytes().await.unwrap().is_empty());
}

/// The rows of the package list as (name, version, bytes), in page order.
fn listed(html: &str) -> Vec<(String, String, i64)> {
    let mut rows = Vec::new();
    for row in html.split("<tr>").skip(1) {
        let Some(bytes) = row.split("data-bytes=\"").nth(1) else {
            continue;
        };
        let bytes: i64 = bytes[..bytes.find('"').unwrap()].parse().unwrap();
        let link = &row[row.find("<a href=").unwrap()..];
        let name = link[link.find('>').unwrap() + 1..link.find("</a>").unwrap()].to_owned();
        let version = row.split("<td>").nth(1).unwrap();
        let version = version[..version.find('<').unwrap()].to_owned();
        rows.push((name, version, bytes));
    }
    rows
}

#[tokio::test]
async fn the_package_list_sorts_by_bytes_and_by_the_formats_version_order() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    for (name, version) in [
        ("small", "1.0"),
        ("medium", "1.0"),
        ("large", "1.0"),
        ("tool", "1.9"),
        ("tool", "1.10"),
        ("tool", "1.10~rc1"),
        ("tool", "1:0.1"),
    ] {
        app.push_deb("stable", name, version, "amd64").await;
    }
    // Sizes as big packages have them, set in place: the order must follow the bytes, not
    // the figures shown (2.0 GB > 900 MB > 15 kB).
    set_sizes(
        &app,
        &[
            ("small", 15_000),
            ("medium", 900_000_000),
            ("large", 2_000_000_000),
        ],
    )
    .await;
    let mut site = Site::new(&app);
    let (_, html) = site.page("/admin/stable/packages?sort=size&dir=desc").await;
    let rows = listed(&html);
    let names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).take(3).collect();
    assert_eq!(names, ["large", "medium", "small"]);
    assert!(html.contains(">2.0 GB<") && html.contains(">900 MB<") && html.contains(">15 kB<"));
    assert!(html.contains("aria-sort=\"descending\""));

    let (_, html) = site
        .page("/admin/stable/packages?sort=version&dir=asc&q=tool")
        .await;
    let versions: Vec<String> = listed(&html).into_iter().map(|r| r.1).collect();
    assert_eq!(versions, ["1.9", "1.10~rc1", "1.10", "1:0.1"]);
    let (_, html) = site
        .page("/admin/stable/packages?sort=version&dir=desc&q=tool")
        .await;
    let versions: Vec<String> = listed(&html).into_iter().map(|r| r.1).collect();
    assert_eq!(versions, ["1:0.1", "1.10", "1.10~rc1", "1.9"]);

    // Filters and paging stay in the query string of every link.
    let (_, html) = site
        .page("/admin/stable/packages?q=tool&arch=amd64&sort=name")
        .await;
    assert!(
        html.contains("q=tool&#38;arch=amd64&#38;sort=name&#38;dir=desc"),
        "{html}"
    );
}

#[tokio::test]
async fn download_links_redirect_to_the_file_as_packagecloud_does() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    let filename = deb_filename("tool", "1.0", "amd64");
    let bytes = deb("tool", "1.0", "amd64");
    app.push_ok("stable", BOOKWORM, &filename, bytes.clone())
        .await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for suffix in ["download", "download.deb"] {
        let path = format!("/admin/stable/packages/debian/bookworm/{filename}/{suffix}");
        let response = client.get(app.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FOUND, "{path}");
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.ends_with(&format!(
            "/admin/stable/debian/pool/bookworm/main/t/tool/{filename}"
        )));
        let file = reqwest::get(&location)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(file.as_ref(), bytes.as_slice());
    }
}

#[tokio::test]
async fn owners_delete_and_promote_through_a_confirmation() {
    let app = TestApp::new().await;
    with_password(&app).await;
    app.create_repo("staging", false).await;
    app.create_repo("production", false).await;
    for version in ["1.0", "2.0"] {
        app.push_deb("staging", "tool", version, "amd64").await;
    }
    app.wait_for_jobs().await;
    let mut site = Site::new(&app);
    site.sign_in("admin", PASSWORD).await;
    let page = format!(
        "/admin/staging/packages/debian/bookworm/{}",
        deb_filename("tool", "1.0", "amd64")
    );

    // The buttons lead to a question first; nothing has changed yet.
    let (_, html) = site.page(&format!("{page}?confirm=delete")).await;
    assert!(html.contains("Delete tool_1.0_amd64.deb from admin/staging?"));
    let token = form_token(&html);
    assert_eq!(
        app.app
            .db
            .scalar_i64("SELECT COUNT(*) FROM packages WHERE deleted_at IS NOT NULL")
            .await
            .unwrap(),
        0
    );
    let response = site
        .post(&page, &[("csrf", &token), ("action", "delete")])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    app.wait_for_jobs().await;
    let packages = app
        .text("/admin/staging/debian/dists/bookworm/main/binary-amd64/Packages")
        .await;
    assert!(!packages.contains("Version: 1.0\n") && packages.contains("Version: 2.0\n"));

    let page = format!(
        "/admin/staging/packages/debian/bookworm/{}",
        deb_filename("tool", "2.0", "amd64")
    );
    let (_, html) = site
        .page(&format!(
            "{page}?confirm=promote&destination=admin/production"
        ))
        .await;
    assert!(html.contains("Move tool_2.0_amd64.deb from admin/staging to admin/production?"));
    let token = form_token(&html);
    let response = site
        .post(
            &page,
            &[
                ("csrf", &token),
                ("action", "promote"),
                ("destination", "admin/production"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()["location"],
        "/admin/production/packages/debian/bookworm/tool_2.0_amd64.deb"
    );
    app.wait_for_jobs().await;
    let moved = app
        .text("/admin/production/debian/dists/bookworm/main/binary-amd64/Packages")
        .await;
    assert!(moved.contains("Package: tool"));

    // A stranger's post to the same page is refused like a missing page.
    stranger(&app).await;
    let mut other = Site::new(&app);
    other.sign_in("stranger", PASSWORD).await;
    let (_, html) = other.page("/").await;
    let token = form_token(&html);
    let page = "/admin/production/packages/debian/bookworm/tool_2.0_amd64.deb";
    let response = other
        .post(page, &[("csrf", &token), ("action", "delete")])
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

/// Without JavaScript the upload form posts every file at once and answers with a page.
#[tokio::test]
async fn the_upload_form_works_without_javascript() {
    let app = TestApp::new().await;
    with_password(&app).await;
    app.create_repo("stable", false).await;
    let mut site = Site::new(&app);
    site.sign_in("admin", PASSWORD).await;
    let (_, html) = site.page("/admin/stable/upload").await;
    let token = form_token(&html);
    let form = reqwest::multipart::Form::new()
        .text("csrf", token)
        .text("distro_version_id", BOOKWORM.to_string())
        .part(
            "package_file",
            reqwest::multipart::Part::bytes(deb("one", "1.0", "amd64"))
                .file_name("one_1.0_amd64.deb"),
        )
        .part(
            "package_file",
            reqwest::multipart::Part::bytes(b"not a package".to_vec())
                .file_name("fake_1.0_amd64.deb"),
        );
    let session = site.cookie("packyard_session").unwrap().to_owned();
    let response = reqwest::Client::new()
        .post(app.url("/admin/stable/upload"))
        .header("cookie", format!("packyard_session={session}"))
        .header("origin", app.base.clone())
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("one_1.0_amd64.deb") && html.contains(">stored<"),
        "{html}"
    );
    assert!(
        html.contains("fake_1.0_amd64.deb") && html.contains("refused"),
        "{html}"
    );
    app.wait_for_jobs().await;
    let packages = app
        .text("/admin/stable/debian/dists/bookworm/main/binary-amd64/Packages")
        .await;
    assert!(packages.contains("Package: one"));

    // Without the form token nothing is read or stored.
    let form = reqwest::multipart::Form::new()
        .text("distro_version_id", BOOKWORM.to_string())
        .part(
            "package_file",
            reqwest::multipart::Part::bytes(deb("two", "1.0", "amd64"))
                .file_name("two_1.0_amd64.deb"),
        );
    let response = reqwest::Client::new()
        .post(app.url("/admin/stable/upload"))
        .header("cookie", format!("packyard_session={session}"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let two = app
        .app
        .db
        .scalar_i64("SELECT COUNT(*) FROM packages WHERE name = 'two'")
        .await
        .unwrap();
    assert_eq!(two, 0);
}

/// Pages name their stylesheet and script by content hash, served `immutable`; a stale name is
/// not served; every page forbids inline script and style and framing, and is not cached.
#[tokio::test]
async fn assets_are_content_named_and_pages_carry_a_strict_policy() {
    let app = TestApp::new().await;
    let mut site = Site::new(&app);
    let response = site.get("/").await;
    let headers = response.headers().clone();
    let html = response.text().await.unwrap();
    let policy = headers["content-security-policy"].to_str().unwrap();
    assert!(
        policy.contains("script-src 'self'") && policy.contains("style-src 'self'"),
        "{policy}"
    );
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(
        !html.contains("<script>") && !html.contains(" style="),
        "inline script or style"
    );
    for (extension, content_type) in [("css", "text/css"), ("js", "text/javascript")] {
        let start = html.find("/static/ui.").unwrap();
        let path = html[start..]
            .split('"')
            .find(|p| p.ends_with(&format!(".{extension}")))
            .map(str::to_owned);
        let path = match path {
            Some(path) => path,
            None => {
                let at = html.find(&format!(".{extension}\"")).unwrap();
                let begin = html[..at].rfind('"').unwrap() + 1;
                html[begin..at + extension.len() + 1].to_owned()
            }
        };
        let response = reqwest::get(app.url(&path)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(content_type)
        );
        assert_eq!(
            response.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        let body = response.bytes().await.unwrap();
        let hash = packyard_formats::digest::sha256_hex(&body);
        assert!(
            path.contains(&hash[..12]),
            "{path} is named after its content"
        );
        let stale = reqwest::get(app.url(&format!("/static/ui.000000000000.{extension}")))
            .await
            .unwrap();
        assert_eq!(stale.status(), StatusCode::NOT_FOUND);
    }
}
