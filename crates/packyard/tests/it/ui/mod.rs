//! The web UI: over plain HTTP (`http`), and in a real Chromium (the tests here), where every
//! page is also checked with axe-core and kept as screenshots.

mod browser;
mod http;
mod site;

use std::time::{Duration, Instant};

use browser::Browser;
use site::{PASSWORD, with_password};

use crate::fixtures::{BOOKWORM, deb, deb_filename, dpkg_deb};
use crate::support::TestApp;

/// A server with a password for its admin, a public and a private repository, and a few
/// packages.
async fn populated() -> TestApp {
    let app = TestApp::new().await;
    with_password(&app).await;
    app.create_repo("stable", false).await;
    app.create_repo("pre-release", true).await;
    for (name, version) in [
        ("gitlab-ce", "16.1.0-ce.0"),
        ("gitlab-ce", "16.2.0-ce.0"),
        ("runner", "1.0"),
    ] {
        app.push_deb("stable", name, version, "amd64").await;
    }
    app.push_deb("pre-release", "gitlab-ee", "16.3.0-ee.0", "amd64")
        .await;
    app.wait_for_jobs().await;
    app
}

async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn signing_in_with_a_wrong_password_then_the_right_one_then_out() {
    let app = populated().await;
    let browser = Browser::open(&app.base).await;
    browser.goto("/").await;
    assert!(browser.body().await.contains("admin/stable"));
    assert!(
        !browser.body().await.contains("pre-release"),
        "private repositories stay hidden"
    );
    browser.check_page("home-anonymous").await;

    browser.sign_in("admin", "not the password").await;
    assert!(browser.text("#login-error").await.contains("is not right"));
    assert_eq!(browser.path().await, "/login");
    browser.check_page("login-error").await;

    browser.sign_in("admin@example.com", PASSWORD).await;
    wait_until("the owner's page", || async {
        browser.path().await == "/admin"
    })
    .await;
    let body = browser.body().await;
    assert!(body.contains("admin/pre-release") && body.contains("private"));
    let cookie = browser
        .client
        .get_named_cookie("packyard_session")
        .await
        .unwrap();
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.same_site(), Some(cookie::SameSite::Lax));
    browser.check_page("owner").await;

    browser.goto("/account").await;
    browser.check_page("account").await;
    browser.press("Sign out").await;
    wait_until("the sign-out", || async { browser.path().await == "/" }).await;
    assert!(browser.body().await.contains("Sign in"));
    // The session is gone from the server, not only from the browser.
    let remaining = app
        .app
        .db
        .scalar_i64("SELECT COUNT(*) FROM sessions")
        .await
        .unwrap();
    assert_eq!(remaining, 0);
    browser.goto("/account").await;
    assert_eq!(browser.path().await, "/login?next=%2Faccount");
}

/// packages.gitlab.com's runbook: revoke an environment's master token, make a new one of
/// the same name, copy its value; hosts then use the new value and the old one is dead.
#[tokio::test]
async fn the_master_token_runbook_in_the_browser() {
    let app = populated().await;
    let client = reqwest::Client::new();
    let created = app
        .post_form(
            "/api/v1/repos/admin/pre-release/master_tokens",
            &[("master_token[name]", "production")],
        )
        .await;
    let old = created["value"].as_str().unwrap().to_owned();
    let read = app
        .post_form(
            "/api/v1/repos/admin/pre-release/master_tokens/production/read_tokens.json",
            &[("read_token[name]", "web-01.example.com")],
        )
        .await;
    let old_read = read["value"].as_str().unwrap().to_owned();

    // "Visit /gitlab/pre-release/tokens": to a visitor a private repository is not found,
    // and the page's sign-in link leads back to it.
    let browser = Browser::open(&app.base).await;
    browser.goto("/admin/pre-release/tokens").await;
    assert!(browser.text("h1").await.contains("Not found"));
    browser.click("main a[href^='/login?next=']").await;
    browser.fill("#login", "admin").await;
    browser.fill("#password", PASSWORD).await;
    browser.press("Sign in").await;
    wait_until("the tokens page", || async {
        browser.path().await == "/admin/pre-release/tokens"
    })
    .await;
    assert!(browser.body().await.contains("Custom Master Tokens"));
    assert!(browser.body().await.contains("web-01.example.com"));
    browser.check_page("tokens").await;
    browser
        .click("button[aria-label='Revoke production']")
        .await;
    let question = browser.text(".notice.warn").await;
    assert!(
        question.contains("1 read token(s) stop working"),
        "{question}"
    );
    browser.check_page("tokens-confirm").await;
    browser.click(".notice.warn button.danger").await;
    wait_until("the revocation", || async {
        !browser.body().await.contains("web-01.example.com")
    })
    .await;

    browser.fill("#token-name", "production").await;
    browser.press("Create Master Token").await;
    let new = browser.text("#fresh-token").await;
    assert_eq!(new.len(), 48, "a master token's value: {new:?}");
    assert_ne!(new, old);

    let script = |token: String| {
        let client = client.clone();
        let url = app.url("/install/repositories/admin/pre-release/script.deb.sh");
        async move {
            client
                .get(url)
                .basic_auth(token, Some(""))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        script(new.clone()).await,
        200,
        "the new value fetches the install script"
    );
    assert_ne!(script(old.clone()).await, 200, "the revoked value does not");
    let gpgkey = client
        .get(app.url("/admin/pre-release/gpgkey"))
        .basic_auth(&old_read, Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(
        gpgkey.status(),
        404,
        "the revoked token's read token stopped working"
    );

    // A host's read token of the new master token, revoked on its own.
    let read = app
        .post_form(
            "/api/v1/repos/admin/pre-release/master_tokens/production/read_tokens.json",
            &[("read_token[name]", "web-02.example.com")],
        )
        .await;
    browser.goto("/admin/pre-release/tokens").await;
    browser
        .click("button[aria-label='Revoke read token web-02.example.com']")
        .await;
    assert!(
        browser
            .text(".notice.warn")
            .await
            .contains("web-02.example.com")
    );
    browser.click(".notice.warn button.danger").await;
    wait_until("the read token's revocation", || async {
        browser.path().await == "/admin/pre-release/tokens"
            && !browser.body().await.contains("web-02.example.com")
    })
    .await;
    let gpgkey = client
        .get(app.url("/admin/pre-release/gpgkey"))
        .basic_auth(read["value"].as_str().unwrap(), Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(gpgkey.status(), 404);
}

#[tokio::test]
async fn sorting_and_filters_survive_a_reload() {
    let app = populated().await;
    app.push_deb("stable", "runner", "1.0", "arm64").await;
    site::set_sizes(&app, &[("runner", 15_000), ("gitlab-ce", 2_000_000_000)]).await;
    let browser = Browser::open(&app.base).await;
    browser.goto("/admin/stable/packages").await;
    // Sort by size through the column heading: biggest first, then (clicked again) smallest.
    let sizes = || async {
        let sizes = browser
            .script("return [...document.querySelectorAll('td[data-bytes]')].map(td => Number(td.dataset.bytes));")
            .await;
        sizes
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect::<Vec<i64>>()
    };
    let aria_sort = || async {
        let heading = browser.find("th[aria-sort]").await;
        (
            heading.text().await.unwrap(),
            heading.attr("aria-sort").await.unwrap().unwrap(),
        )
    };
    // Each click loads a page: wait for its address before reading the table.
    browser.click("th a[href*='sort=size']").await;
    wait_until("the size order", || async {
        browser.path().await.contains("sort=size")
    })
    .await;
    let descending = sizes().await;
    let mut sorted = descending.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(descending, sorted);
    assert_eq!(descending[0], 2_000_000_000);
    assert_eq!(
        aria_sort().await,
        ("Size ▼".to_owned(), "descending".to_owned())
    );
    browser.click("th[aria-sort] a").await;
    wait_until("the ascending order", || async {
        browser.path().await.contains("dir=asc")
    })
    .await;
    let ascending = sizes().await;
    sorted.reverse();
    assert_eq!(ascending, sorted);
    assert_eq!(aria_sort().await.1, "ascending");
    browser.click("th[aria-sort] a").await;
    wait_until("the descending order", || async {
        browser.path().await.contains("dir=desc")
    })
    .await;
    assert_eq!(sizes().await, descending);

    // A filter, applied with the form, then a reload: the same rows, the same fields.
    browser.fill("#f-arch", "arm64").await;
    browser.press("Apply").await;
    wait_until("the filtered list", || async {
        browser.path().await.contains("arch=arm64")
    })
    .await;
    let path = browser.path().await;
    assert!(
        path.contains("sort=size") && path.contains("dir=desc"),
        "{path}"
    );
    browser.client.refresh().await.unwrap();
    assert_eq!(browser.path().await, path);
    let arch = browser.find("#f-arch").await.prop("value").await.unwrap();
    assert_eq!(arch.as_deref(), Some("arm64"));
    let sort = browser.find("#f-sort").await.prop("value").await.unwrap();
    assert_eq!(sort.as_deref(), Some("size"));
    let summary = browser.text("#list-summary").await;
    assert!(summary.ends_with("of 1 packages"), "{summary}");
    browser.check_page("packages").await;
}

#[tokio::test]
async fn copy_buttons_put_the_snippet_on_the_clipboard() {
    let app = populated().await;
    let browser = Browser::open(&app.base).await;
    browser.goto("/admin/stable").await;
    browser.check_page("repository").await;
    let expected = browser.text("#deb-script").await;
    assert!(expected.contains("/install/repositories/admin/stable/script.deb.sh | sudo bash"));

    // A secure context (127.0.0.1 is one): navigator.clipboard.
    browser
        .script(
            "window.copied = [];
             Object.defineProperty(navigator, 'clipboard', { configurable: true, value: {
                 writeText: text => { window.copied.push(text); return Promise.resolve(); } } });",
        )
        .await;
    browser.click("button[data-copy='deb-script']").await;
    wait_until("the copy", || async {
        browser.script("return window.copied.length").await == 1
    })
    .await;
    assert_eq!(browser.script("return window.copied[0]").await, expected);
    wait_until("the announcement", || async {
        let said = browser
            .script("return document.getElementById('announce').textContent")
            .await;
        said.as_str().is_some_and(|s| s.contains("Copied"))
    })
    .await;

    // Plain http on another host is not a secure context: the textarea and execCommand.
    browser
        .script(
            "Object.defineProperty(window, 'isSecureContext', { configurable: true, value: false });
             window.executed = [];
             document.execCommand = command => {
                 window.executed.push([command, document.activeElement.value]); return true; };",
        )
        .await;
    browser.click("button[data-copy='deb-pin']").await;
    let pin = browser.text("#deb-pin").await;
    wait_until("the fallback copy", || async {
        browser.script("return window.executed.length").await == 1
    })
    .await;
    let executed = browser.script("return window.executed[0]").await;
    assert_eq!(executed[0], "copy");
    assert_eq!(executed[1], pin.as_str());
    assert!(
        pin.contains("apt-get install runner=1.0\nsudo apt-mark hold runner"),
        "{pin}"
    );
}

#[tokio::test]
async fn a_package_uploaded_through_the_form_ends_up_indexed() {
    let app = populated().await;
    let dir = tempfile::tempdir().unwrap();
    let filename = deb_filename("uploaded", "2.0", "amd64");
    let file = dir.path().join(&filename);
    std::fs::write(&file, deb("uploaded", "2.0", "amd64")).unwrap();

    let browser = Browser::open(&app.base).await;
    browser.sign_in("admin", PASSWORD).await;
    browser.goto("/admin/stable/upload").await;
    browser.check_page("upload").await;
    browser
        .find("#distro")
        .await
        .select_by_value(&BOOKWORM.to_string())
        .await
        .unwrap();
    browser
        .find("#package-file")
        .await
        .send_keys(file.to_str().unwrap())
        .await
        .unwrap();
    browser.press("Upload").await;
    let link = browser.find("#upload-progress a").await;
    assert_eq!(link.text().await.unwrap(), "stored");
    link.click().await.unwrap();
    wait_until("the package page", || async {
        browser
            .path()
            .await
            .ends_with(&format!("/packages/debian/bookworm/{filename}"))
    })
    .await;
    wait_until("the package in the signed index", || async {
        browser.client.refresh().await.unwrap();
        browser.body().await.contains("In the signed index since")
    })
    .await;
    let packages = app
        .text("/admin/stable/debian/dists/bookworm/main/binary-amd64/Packages")
        .await;
    assert!(packages.contains("Package: uploaded"));
}

#[tokio::test]
async fn markup_in_a_package_stays_inert() {
    let app = populated().await;
    let dir = tempfile::tempdir().unwrap();
    let control = "Package: hostile\nVersion: 1.0\nArchitecture: amd64\n\
        Maintainer: Mallory <script>window.pwned = 1</script> <m@example.com>\n\
        Homepage: javascript:window.pwned=2\n\
        Description: <img src=x onerror=\"window.pwned=3\"> hello\n \
        <a href=\"javascript:window.pwned=4\">click</a> and <b>bold</b>\n";
    let bytes = dpkg_deb(dir.path(), control, "usr/share/hostile/README", "hi\n");
    app.push_ok("stable", BOOKWORM, "hostile_1.0_amd64.deb", bytes)
        .await;
    let browser = Browser::open(&app.base).await;
    browser
        .goto("/admin/stable/packages/debian/bookworm/hostile_1.0_amd64.deb")
        .await;
    let body = browser.body().await;
    assert!(
        body.contains("Mallory <script>window.pwned = 1</script>"),
        "{body}"
    );
    assert!(body.contains("javascript:window.pwned=2"));
    assert!(body.contains("<img src=x onerror=\"window.pwned=3\"> hello"));
    let found = browser
        .script(
            "return { pwned: window.pwned === undefined ? null : window.pwned,
                      scripts: document.querySelectorAll('main script').length,
                      images: document.querySelectorAll('main img:not([src^=\"data:image/svg\"])').length,
                      js_links: document.querySelectorAll('a[href^=\"javascript\"]').length,
                      bold: document.querySelectorAll('main b').length };",
        )
        .await;
    assert_eq!(
        found,
        serde_json::json!({ "pwned": null, "scripts": 0, "images": 0, "js_links": 0, "bold": 0 })
    );
    browser.check_page("package").await;
    // The list shows the name as text too.
    browser.goto("/admin/stable/packages?q=hostile").await;
    assert!(browser.body().await.contains("hostile"));
}

#[tokio::test]
async fn a_private_repository_is_not_found_by_a_visitor() {
    let app = populated().await;
    let browser = Browser::open(&app.base).await;
    browser.goto("/admin/pre-release").await;
    assert!(browser.text("h1").await.contains("Not found"));
    assert!(!browser.body().await.contains("gitlab-ee"));
    browser.check_page("not-found").await;
    browser.goto("/admin/pre-release/packages").await;
    assert!(browser.text("h1").await.contains("Not found"));

    // Its owner sees it, and can make a read token for the snippets, shown once.
    browser.sign_in("admin", PASSWORD).await;
    browser.goto("/admin/pre-release").await;
    assert!(browser.text("#deb-manual").await.contains("READ_TOKEN"));
    browser.press("Make a read token for these snippets").await;
    wait_until("the snippets with a read token", || async {
        !browser.text("#deb-manual").await.contains("READ_TOKEN")
    })
    .await;
    let manual = browser.text("#deb-manual").await;
    let names = app
        .app
        .db
        .texts("SELECT name FROM read_tokens")
        .await
        .unwrap();
    let minted = names
        .iter()
        .find(|n| n.starts_with("web-admin-"))
        .expect("a read token named web-USER-DATE");
    let token = app
        .app
        .db
        .scalar_text(&format!(
            "SELECT value FROM read_tokens WHERE name = '{minted}'"
        ))
        .await
        .unwrap();
    assert!(manual.contains(&format!("http://{token}:@")), "{manual}");
    browser.check_page("repository-private").await;
}

#[tokio::test]
async fn keys_stats_organisation_and_status_pages() {
    let app = TestApp::builder().without_workers().start().await;
    with_password(&app).await;
    app.create_repo("stable", false).await;
    app.push_deb("stable", "tool", "1.0", "amd64").await;
    app.run_jobs().await;
    // A key that expires in 30 days, and a job that keeps failing.
    let now = packyard::db::now();
    app.app
        .db
        .execute_sql(&format!(
            "UPDATE signing_keys SET expires_at = {}",
            now + 30 * 86_400 + 3600
        ))
        .await
        .unwrap();
    let repo_id = app
        .app
        .db
        .scalar_i64("SELECT id FROM repositories")
        .await
        .unwrap();
    app.app
        .db
        .execute_sql(&format!(
            "INSERT INTO jobs (kind, repository_id, distro_version_id, arch, state, attempts, run_at,
                               last_error, created_at, first_failed_at, last_failed_at)
             VALUES ('apt_publish', {repo_id}, {BOOKWORM}, '', 'queued', 4, {}, 'the storage answered 503', {now}, {}, {now})",
            now + 3600,
            now - 600
        ))
        .await
        .unwrap();
    packyard::db::users::create_org(
        &app.app.db,
        "acme",
        &[packyard::db::users::by_name(&app.app.db, "admin")
            .await
            .unwrap()
            .unwrap()],
    )
    .await
    .unwrap();

    let browser = Browser::open(&app.base).await;
    browser.goto("/admin/stable/keys").await;
    assert!(browser.body().await.contains("warning: expires in 30 days"));
    assert!(
        !browser.body().await.contains("Retire"),
        "visitors get no buttons"
    );
    browser.check_page("keys-anonymous").await;

    browser.sign_in("admin", PASSWORD).await;
    browser.goto("/admin/stable/keys").await;
    browser.click("button[aria-label^='Extend key']").await;
    assert!(browser.text(".notice.warn").await.contains("365 days"));
    browser.check_page("keys-confirm").await;
    browser.click(".notice.warn button.danger").await;
    let message = browser.text("p.notice").await;
    assert!(message.starts_with("Done"), "{message}");
    assert!(!browser.body().await.contains("warning: expires"));
    let expires = app
        .app
        .db
        .scalar_i64("SELECT MIN(expires_at) FROM signing_keys")
        .await
        .unwrap();
    assert!(expires > now + 360 * 86_400);

    browser.goto("/admin/stable/stats").await;
    browser.check_page("stats").await;
    browser.goto("/orgs/acme").await;
    assert!(browser.body().await.contains("Members of acme"));
    browser.check_page("organisation").await;

    browser.goto("/-/status").await;
    assert!(browser.body().await.contains("the storage answered 503"));
    browser.check_page("status").await;
    browser.click("button[aria-label^='Retry the job']").await;
    assert!(
        browser
            .text("p.notice")
            .await
            .contains("1 job(s) will run again now")
    );
    let run_at = app
        .app
        .db
        .scalar_i64("SELECT run_at FROM jobs WHERE last_error IS NOT NULL")
        .await
        .unwrap();
    assert!(run_at <= packyard::db::now());

    // What was done above is in the audit log, filtered by action.
    browser.goto("/-/audit?action=key.").await;
    let body = browser.body().await;
    assert!(
        body.contains("key.extend") && !body.contains("job.retry"),
        "{body}"
    );
    browser.check_page("audit").await;
    browser.fill("#a-action", "job.").await;
    browser.press("Apply").await;
    wait_until("the filtered log", || async {
        browser
            .text("#audit-summary")
            .await
            .starts_with("1 event(s)")
    })
    .await;
    assert!(browser.body().await.contains("job.retry"));
}
