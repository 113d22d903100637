//! The npm registry as npm and pnpm use it: publish scoped and unscoped packages, install,
//! dist-tags, deprecate, unpublish, login and whoami, private reads, and refusals.

use std::io::Write;
use std::path::Path;

use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use serde_json::{Value, json};

use crate::npm_client::{Npm, combined, package, pnpm};
use crate::support::TestApp;

const NODE: i64 = 7;

fn ok(out: std::process::Output, what: &str) -> String {
    let text = combined(&out);
    assert!(out.status.success(), "{what}:\n{text}");
    text
}

fn installed_version(root: &Path, name: &str) -> String {
    let manifest =
        std::fs::read_to_string(root.join("node_modules").join(name).join("package.json"))
            .unwrap_or_else(|e| panic!("{name} is not installed in {}: {e}", root.display()));
    let manifest: Value = serde_json::from_str(&manifest).unwrap();
    manifest["version"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_and_pnpm_publish_install_tag_deprecate_and_unpublish() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    let registry = app.url("/admin/stable/npm/");
    let npm = Npm::new(&registry, &app.token);
    let work = tempfile::tempdir().unwrap();

    for (name, version, tag) in [
        ("@acme/demo", "1.0.0", None),
        ("@acme/demo", "1.1.0", None),
        ("@acme/demo", "2.0.0-beta.1", Some("beta")),
        ("plain", "0.1.0", None),
    ] {
        let folder = package(work.path(), name, version);
        let mut args = vec!["publish"];
        if let Some(tag) = tag {
            args.extend(["--tag", tag]);
        }
        ok(
            npm.npm(&folder, &args),
            &format!("npm publish {name}@{version}"),
        );
    }
    app.wait_for_jobs().await;

    // Publishing over an existing version is refused, as by the public registry.
    let again = npm.npm(
        &package(&work.path().join("again"), "plain", "0.1.0"),
        &["publish"],
    );
    let text = combined(&again);
    assert!(
        !again.status.success()
            && text.contains("You cannot publish over the previously published versions: 0.1.0"),
        "{text}"
    );

    let tags = ok(
        npm.npm(work.path(), &["dist-tag", "ls", "@acme/demo"]),
        "dist-tag ls",
    );
    assert!(
        tags.contains("latest: 1.1.0") && tags.contains("beta: 2.0.0-beta.1"),
        "{tags}"
    );
    ok(
        npm.npm(
            work.path(),
            &["dist-tag", "add", "@acme/demo@1.0.0", "stable"],
        ),
        "dist-tag add",
    );
    app.wait_for_jobs().await;
    let view = ok(
        npm.npm(work.path(), &["view", "@acme/demo", "versions", "--json"]),
        "npm view",
    );
    let versions: Value = serde_json::from_str(&view).unwrap();
    assert_eq!(versions, json!(["1.0.0", "1.1.0", "2.0.0-beta.1"]));

    // npm installs the caret range's highest; pnpm the tag asked for.
    let app_dir = work.path().join("app");
    std::fs::create_dir_all(&app_dir).unwrap();
    std::fs::write(
        app_dir.join("package.json"),
        r#"{"name":"app","version":"1.0.0","private":true}"#,
    )
    .unwrap();
    ok(
        npm.npm(&app_dir, &["install", "@acme/demo@^1", "plain"]),
        "npm install",
    );
    assert_eq!(installed_version(&app_dir, "@acme/demo"), "1.1.0");
    assert_eq!(installed_version(&app_dir, "plain"), "0.1.0");
    let pnpm_dir = work.path().join("pnpm-app");
    std::fs::create_dir_all(&pnpm_dir).unwrap();
    std::fs::write(
        pnpm_dir.join("package.json"),
        r#"{"name":"app","version":"1.0.0","private":true}"#,
    )
    .unwrap();
    let store = npm.path().join("pnpm-store");
    let store = format!("--store-dir={}", store.display());
    ok(
        npm.run(
            &pnpm(),
            &pnpm_dir,
            &["add", &store, "@acme/demo@stable", "plain"],
        ),
        "pnpm add",
    );
    assert_eq!(installed_version(&pnpm_dir, "@acme/demo"), "1.0.0");

    ok(
        npm.npm(
            work.path(),
            &["dist-tag", "add", "@acme/demo@1.1.0", "temporary"],
        ),
        "dist-tag add",
    );
    ok(
        npm.npm(work.path(), &["dist-tag", "rm", "@acme/demo", "temporary"]),
        "dist-tag rm",
    );
    app.wait_for_jobs().await;
    let tags = ok(
        npm.npm(work.path(), &["dist-tag", "ls", "@acme/demo"]),
        "dist-tag ls",
    );
    assert!(
        !tags.contains("temporary") && tags.contains("stable: 1.0.0"),
        "{tags}"
    );
    ok(npm.npm(work.path(), &["ping"]), "npm ping");

    ok(
        npm.npm(work.path(), &["deprecate", "@acme/demo@1.0.0", "use 1.1"]),
        "npm deprecate",
    );
    app.wait_for_jobs().await;
    let deprecated = ok(
        npm.npm(work.path(), &["view", "@acme/demo@1.0.0", "deprecated"]),
        "view deprecated",
    );
    assert!(deprecated.contains("use 1.1"), "{deprecated}");

    ok(
        npm.npm(work.path(), &["unpublish", "@acme/demo@1.1.0"]),
        "npm unpublish",
    );
    app.wait_for_jobs().await;
    let view = ok(
        npm.npm(work.path(), &["view", "@acme/demo", "versions", "--json"]),
        "npm view",
    );
    let versions: Value = serde_json::from_str(&view).unwrap();
    assert_eq!(versions, json!(["1.0.0", "2.0.0-beta.1"]));
    // npm itself moves latest off an unpublished version, to the highest left (its rule
    // counts pre-releases).
    let latest = || {
        ok(
            npm.npm(work.path(), &["view", "@acme/demo", "dist-tags.latest"]),
            "view latest",
        )
    };
    assert_eq!(latest().trim(), "2.0.0-beta.1");
    // A yank through API v1 leaves latest at the highest release left, as packagecloud does.
    let yank = app
        .authed(
            Method::DELETE,
            "/api/v1/repos/admin/stable/node/1/demo-2.0.0-beta.1.tgz?scope=%40acme",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(yank.status(), 200);
    app.wait_for_jobs().await;
    assert_eq!(latest().trim(), "1.0.0");
    let whoami = ok(npm.npm(work.path(), &["whoami"]), "npm whoami");
    assert_eq!(whoami.trim(), "admin");

    // package_cloud promote of a scoped package: the destination lists it, with latest.
    app.create_repo("production", false).await;
    let promoted = app
        .authed(
            Method::POST,
            "/api/v1/repos/admin/stable/node/1/demo-1.0.0.tgz/promote.json?scope=%40acme",
        )
        .form(&[("destination", "admin/production")])
        .send()
        .await
        .unwrap();
    assert_eq!(promoted.status(), 200, "{}", promoted.text().await.unwrap());
    app.wait_for_jobs().await;
    let production = Npm::new(&app.url("/admin/production/npm/"), &app.token);
    let latest = ok(
        production.npm(work.path(), &["view", "@acme/demo", "dist-tags.latest"]),
        "view latest",
    );
    assert_eq!(latest.trim(), "1.0.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packuments_are_abbreviated_on_request_cache_with_etags_and_stay_private() {
    let app = TestApp::new().await;
    app.create_repo("secret", true).await;
    let npm = Npm::new(&app.url("/admin/secret/npm/"), &app.token);
    let work = tempfile::tempdir().unwrap();
    ok(
        npm.npm(&package(work.path(), "@acme/hidden", "1.0.0"), &["publish"]),
        "publish",
    );
    app.wait_for_jobs().await;

    let client = reqwest::Client::new();
    let url = app.url("/admin/secret/npm/@acme%2fhidden");
    let stranger = client.get(&url).send().await.unwrap();
    assert_eq!(stranger.status(), 404);
    let read = app.read_token("secret", "ci").await;
    let token = read["value"].as_str().unwrap().to_owned();
    let short = client
        .get(&url)
        .bearer_auth(&token)
        .header(
            ACCEPT,
            "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(short.status(), 200);
    assert_eq!(
        short.headers()[CONTENT_TYPE],
        "application/vnd.npm.install-v1+json"
    );
    let etag = short.headers()[ETAG].to_str().unwrap().to_owned();
    let body: Value = short.json().await.unwrap();
    let dist = &body["versions"]["1.0.0"]["dist"];
    assert_eq!(
        dist["tarball"],
        app.url("/admin/secret/npm/@acme/hidden/-/hidden-1.0.0.tgz"),
        "the tarball URL names the host asked, and no scope in the file name"
    );
    assert!(dist["integrity"].as_str().unwrap().starts_with("sha512-"));
    assert!(
        body["versions"]["1.0.0"].get("description").is_none(),
        "abbreviated"
    );
    let cached = client
        .get(&url)
        .bearer_auth(&token)
        .header(ACCEPT, "application/vnd.npm.install-v1+json")
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), 304);
    let full: Value = client
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(full["description"], "demo");
    assert_eq!(full["dist-tags"]["latest"], "1.0.0");
    let tarball = client
        .get(dist["tarball"].as_str().unwrap())
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(tarball.status(), 200);
    let bytes = tarball.bytes().await.unwrap();
    assert_eq!(
        packyard_formats::digest::FileDigests::of(&bytes).sha1,
        dist["shasum"].as_str().unwrap()
    );

    // npm login (the couch flavour npm falls back to when /-/v1/login is 404): name and
    // password for a token that then publishes and reads.
    packyard::db::users::set_login(&app.app.db, "admin", "admin@example.invalid", "s3cret-pass")
        .await
        .unwrap();
    let web_login = client
        .post(app.url("/admin/secret/npm/-/v1/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(web_login.status(), 404);
    let login = client
        .put(app.url("/admin/secret/npm/-/user/org.couchdb.user:admin"))
        .json(&json!({ "name": "admin", "password": "s3cret-pass" }))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 201);
    let issued: Value = login.json().await.unwrap();
    let issued = issued["token"].as_str().unwrap().to_owned();
    let whoami: Value = client
        .get(app.url("/admin/secret/npm/-/whoami"))
        .bearer_auth(&issued)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(whoami["username"], "admin");
    let wrong = client
        .put(app.url("/admin/secret/npm/-/user/org.couchdb.user:admin"))
        .json(&json!({ "name": "admin", "password": "wrong" }))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);

    // Shown, and yanked, through API v1 as package_cloud does.
    let shown: Value = app
        .authed(
            Method::GET,
            "/api/v1/repos/admin/secret/package/node/@acme%2Fhidden/1.0.0.json",
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["package_type"], "node", "{shown}");
    // The URLs the answer hands out are the ones that work.
    assert_eq!(
        shown["destroy_url"],
        "/api/v1/repos/admin/secret/node/1/hidden-1.0.0.tgz?scope=%40acme"
    );
    let again = app
        .authed(Method::GET, shown["package_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200, "{}", shown["package_url"]);
    let yank = app
        .authed(Method::DELETE, shown["destroy_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(yank.status(), 200);
}

fn tarball(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, bytes) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_cksum();
        builder.append(&header, *bytes).unwrap();
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&builder.into_inner().unwrap()).unwrap();
    gz.finish().unwrap()
}

#[tokio::test]
async fn hostile_tarballs_and_lying_publishes_are_refused_and_nothing_is_stored() {
    use base64::Engine as _;
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    let manifest = |name: &str| format!(r#"{{"name":"{name}","version":"1.0.0"}}"#);
    let publish = |name: &'static str, data: Vec<u8>, shasum: Option<String>| {
        let encoded = base64::engine::general_purpose::STANDARD.encode(&data);
        let mut dist = json!({ "tarball": "http://elsewhere.invalid/x.tgz" });
        if let Some(shasum) = shasum {
            dist["shasum"] = shasum.into();
        }
        json!({
            "_id": name, "name": name, "dist-tags": { "latest": "1.0.0" },
            "versions": { "1.0.0": { "name": name, "version": "1.0.0", "dist": dist } },
            "_attachments": { "x-1.0.0.tgz": { "content_type": "application/octet-stream", "data": encoded, "length": data.len() } }
        })
    };
    let cases = [
        (
            "x",
            tarball(&[
                ("package/package.json", manifest("x").as_bytes()),
                ("package/../../evil", b""),
            ]),
            None,
            "outside its package folder",
        ),
        (
            "x",
            tarball(&[("package/package.json", manifest("other").as_bytes())]),
            None,
            "is other@1.0.0, not x@1.0.0",
        ),
        (
            "x",
            tarball(&[("package/package.json", manifest("x").as_bytes())]),
            Some("0".repeat(40)),
            "dist.shasum",
        ),
        ("x", b"not a tarball".to_vec(), None, "not readable"),
    ];
    for (name, data, shasum, needle) in cases {
        let response = app
            .authed(Method::PUT, &format!("/admin/stable/npm/{name}"))
            .json(&publish(name, data, shasum))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, 400, "{needle}: {text}");
        assert!(text.contains(needle), "{text} lacks {needle:?}");
    }
    let listed = app.json("/api/v1/repos/admin/stable/packages.json").await;
    assert_eq!(listed.as_array().unwrap().len(), 0, "{listed}");

    // A good one through API v1 as `package_cloud push admin/stable/node x-1.0.0.tgz`, and
    // its dist.tarball is the server's own.
    let good = tarball(&[("package/package.json", manifest("x").as_bytes())]);
    app.push_ok("stable", NODE, "x-1.0.0.tgz", good).await;
    app.wait_for_jobs().await;
    let packument = app.json("/admin/stable/npm/x").await;
    assert_eq!(
        packument["versions"]["1.0.0"]["dist"]["tarball"],
        app.url("/admin/stable/npm/x/-/x-1.0.0.tgz")
    );
}

/// `script.node.sh` with `scope=@acme` points that scope at a private repository in the
/// user's ~/.npmrc, with a read token: a plain `npm install @acme/...` then works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_node_sh_sets_a_scope_up_for_a_private_repository() {
    let app = TestApp::new().await;
    app.create_repo("secret", true).await;
    let npm = Npm::new(&app.url("/admin/secret/npm/"), &app.token);
    let work = tempfile::tempdir().unwrap();
    ok(
        npm.npm(&package(work.path(), "@acme/tool", "1.2.3"), &["publish"]),
        "publish",
    );
    app.wait_for_jobs().await;
    let master = app.master_token("secret", "default").await;
    let script = app
        .get("/install/repositories/admin/secret/script.node.sh")
        .basic_auth(&master, Some(""))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let home = work.path().join("home");
    let project = work.path().join("project");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join("package.json"),
        r#"{"name":"app","version":"1.0.0","private":true}"#,
    )
    .unwrap();
    let run = |program: &str, args: &[&str], cwd: &Path, stdin: Option<&str>| {
        let env = [
            ("scope", "acme".to_owned()),
            ("NPM_CONFIG_CACHE", home.join("cache").display().to_string()),
        ];
        crate::fixtures::run_in_home(program, args, cwd, &home, &env, stdin)
    };
    let out = run("bash", &[], &home, Some(&script));
    assert!(out.status.success(), "script.node.sh:\n{}", combined(&out));
    let npmrc = std::fs::read_to_string(home.join(".npmrc")).unwrap();
    assert!(npmrc.contains("@acme:registry="), "{npmrc}");
    let out = run(
        "npm",
        &["install", "--no-audit", "--no-fund", "@acme/tool"],
        &project,
        None,
    );
    assert!(
        out.status.success(),
        "npm install with the script's configuration:\n{}",
        combined(&out)
    );
    assert_eq!(installed_version(&project, "@acme/tool"), "1.2.3");
}
