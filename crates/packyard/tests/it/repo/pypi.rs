//! The Python repository as twine, pip and uv use it: uploads, resolution among versions by
//! `Requires-Python`, content negotiation, PEP 658 metadata, private reads, and refusals.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE, LOCATION, VARY};
use reqwest::multipart::{Form, Part};
use serde_json::Value;

use crate::python_client::{build, combined, tool};
use crate::support::TestApp;

const PYTHON: i64 = 6;

fn twine(
    app: &TestApp,
    repo: &str,
    token: &str,
    files: &[PathBuf],
    extra: &[&str],
) -> (bool, String) {
    let out = Command::new(tool("twine"))
        .args([
            "upload",
            "--non-interactive",
            "--disable-progress-bar",
            "--repository-url",
        ])
        .arg(app.url(&format!("/admin/{repo}/pypi/")))
        // `--password=` keeps a token that starts with `-` from reading as an option.
        .args(["-u", "__token__"])
        .arg(format!("--password={token}"))
        .args(extra)
        .args(files)
        .output()
        .unwrap();
    (out.status.success(), combined(&out))
}

fn index_url(app: &TestApp, repo: &str, token: Option<&str>) -> String {
    let url = app.url(&format!("/admin/{repo}/pypi/simple/"));
    match token {
        Some(token) => url.replacen("http://", &format!("http://{token}:@"), 1),
        None => url,
    }
}

/// `pip install --target` of `spec`; returns success, output, and the installed versions.
fn pip_install(index: &str, spec: &str, target: &Path) -> (bool, String, Vec<String>) {
    let out = Command::new(tool("pip"))
        // --isolated: no configuration of this machine's (such as PIP_FIND_LINKS) joins in.
        .args([
            "--isolated",
            "install",
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--no-input",
        ])
        .args(["--index-url", index, "--target"])
        .arg(target)
        .arg(spec)
        .output()
        .unwrap();
    (out.status.success(), combined(&out), installed(target))
}

fn uv_install(index: &str, spec: &str, target: &Path) -> (bool, String, Vec<String>) {
    let out = Command::new(tool("uv"))
        .args(["pip", "install", "--no-config", "--no-cache", "--python"])
        .arg(tool("python"))
        .args(["--index-url", index, "--target"])
        .arg(target)
        .arg(spec)
        .output()
        .unwrap();
    (out.status.success(), combined(&out), installed(target))
}

fn installed(target: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(target) else {
        return Vec::new();
    };
    let mut found: Vec<String> = entries
        .filter_map(|e| {
            let name = e.ok()?.file_name().to_string_lossy().into_owned();
            // Lower-cased: setuptools and uv spell the folder's name differently.
            name.strip_suffix(".dist-info").map(str::to_lowercase)
        })
        .collect();
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twine_uploads_and_pip_and_uv_resolve_by_requires_python() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    let work = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (version, requires) in [("0.9", ">=3.8"), ("1.0", ">=3.8"), ("1.1", ">=3.99")] {
        files.extend(build(work.path(), "Demo_Pkg", version, requires));
    }
    let (ok, text) = twine(&app, "stable", &app.token, &files, &[]);
    assert!(ok, "twine upload:\n{text}");
    app.wait_for_jobs().await;

    // 1.1 needs a Python that does not exist yet: both clients take 1.0.
    let index = index_url(&app, "stable", None);
    let target = work.path().join("pip");
    let (ok, text, versions) = pip_install(&index, "demo-pkg", &target);
    assert!(ok, "pip install:\n{text}");
    assert_eq!(versions, ["demo_pkg-1.0"], "{text}");
    let target = work.path().join("pip-pinned");
    let (ok, text, versions) = pip_install(&index, "Demo.Pkg==0.9", &target);
    assert!(ok, "{text}");
    assert_eq!(versions, ["demo_pkg-0.9"]);
    let target = work.path().join("uv");
    let (ok, text, versions) = uv_install(&index, "demo-pkg", &target);
    assert!(ok, "uv pip install:\n{text}");
    assert_eq!(versions, ["demo_pkg-1.0"], "{text}");

    // The same files again succeed; other bytes under a taken name are 409 "File already
    // exists", which is what `--skip-existing` skips (twine 7 offers that flag for PyPI's own
    // URLs only, so it is not run here).
    let (ok, text) = twine(&app, "stable", &app.token, &files[..2], &[]);
    assert!(ok, "{text}");
    let other = work.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let rebuilt = build(&other, "Demo_Pkg", "0.9", ">=3.7");
    let (ok, text) = twine(&app, "stable", &app.token, &rebuilt, &[]);
    assert!(!ok && text.contains("409"), "{text}");

    // PEP 592: a yanked release stays on the page, marked; pip passes it over unless pinned.
    let yank = app
        .authed(
            Method::POST,
            "/api/v1/repos/admin/stable/package/python/demo-pkg/1.0/yank.json",
        )
        .json(&serde_json::json!({ "reason": "broken build" }))
        .send()
        .await
        .unwrap();
    assert_eq!(yank.status(), 200, "{}", yank.text().await.unwrap());
    app.wait_for_jobs().await;
    let page: Value = app
        .get("/admin/stable/pypi/simple/demo-pkg/")
        .header(ACCEPT, "application/vnd.pypi.simple.v1+json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let yanked: Vec<&Value> = page["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["yanked"] == "broken build")
        .collect();
    assert_eq!(yanked.len(), 2, "the wheel and the sdist of 1.0: {page}");
    let target = work.path().join("pip-after-yank");
    let (ok, text, versions) = pip_install(&index, "demo-pkg", &target);
    assert!(ok, "{text}");
    assert_eq!(versions, ["demo_pkg-0.9"], "{text}");
    let target = work.path().join("pip-pinned-yanked");
    let (ok, text, versions) = pip_install(&index, "demo-pkg==1.0", &target);
    assert!(ok, "{text}");
    assert_eq!(versions, ["demo_pkg-1.0"]);
    assert!(
        text.contains("yanked") && text.contains("broken build"),
        "{text}"
    );
    // A rerender renders every file again from its blob; the mark stays.
    let repo = packyard::db::repos::by_owner_and_name(&app.app.db, "admin", "stable")
        .await
        .unwrap()
        .unwrap();
    let scope = packyard::reindex::Scope {
        repo: &repo,
        distro: None,
        filename: None,
    };
    packyard::reindex::reindex(&app.app, &scope, true)
        .await
        .unwrap();
    app.wait_for_jobs().await;
    let html = app.text("/admin/stable/pypi/simple/demo-pkg/").await;
    assert_eq!(
        html.matches("data-yanked=\"broken build\"").count(),
        2,
        "{html}"
    );
    let unyank = app
        .authed(
            Method::DELETE,
            "/api/v1/repos/admin/stable/package/python/demo-pkg/1.0/yank.json",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(unyank.status(), 200);
    app.wait_for_jobs().await;
    let html = app.text("/admin/stable/pypi/simple/demo-pkg/").await;
    assert!(!html.contains("data-yanked"), "{html}");

    // Shown through API v1 like any package.
    let shown = app
        .json("/api/v1/repos/admin/stable/package/python/demo-pkg/1.0.json")
        .await;
    assert_eq!(shown["package_type"], "python", "{shown}");
    assert_eq!(shown["name"], "demo-pkg");
    let download = reqwest::get(shown["download_url"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(download.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_negotiate_redirect_and_serve_metadata_as_the_specs_say() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    let work = tempfile::tempdir().unwrap();
    let files = build(work.path(), "Demo_Pkg", "1.0", ">=3.8");
    let (ok, text) = twine(&app, "stable", &app.token, &files, &[]);
    assert!(ok, "{text}");
    app.wait_for_jobs().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |path: &str, accept: Option<&str>| {
        let request = client.get(app.url(path));
        let request = match accept {
            Some(accept) => request.header(ACCEPT, accept),
            None => request,
        };
        request.send()
    };

    let json = get(
        "/admin/stable/pypi/simple/demo-pkg/",
        Some("application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"),
    )
    .await
    .unwrap();
    assert_eq!(json.status(), 200);
    assert_eq!(
        json.headers()[CONTENT_TYPE],
        "application/vnd.pypi.simple.v1+json"
    );
    assert_eq!(json.headers()[VARY], "Accept");
    let page: Value = json.json().await.unwrap();
    assert_eq!(page["name"], "demo-pkg");
    assert_eq!(page["meta"]["api-version"], "1.1");
    assert_eq!(page["versions"], serde_json::json!(["1.0"]));
    let wheel = page["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["filename"].as_str().unwrap().ends_with(".whl"))
        .unwrap();
    assert_eq!(wheel["requires-python"], ">=3.8");
    assert!(wheel["size"].as_u64().unwrap() > 0);
    let metadata_sha = wheel["core-metadata"]["sha256"].as_str().unwrap();
    // PEP 658: the METADATA beside the file, byte for byte as its hash says.
    let file_url = reqwest::Url::parse(&app.url("/admin/stable/pypi/simple/demo-pkg/"))
        .unwrap()
        .join(wheel["url"].as_str().unwrap())
        .unwrap();
    let metadata = client
        .get(format!("{file_url}.metadata"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        packyard_formats::digest::sha256_hex(&metadata),
        metadata_sha
    );
    let metadata = String::from_utf8_lossy(&metadata).to_lowercase();
    assert!(metadata.contains("name: demo"), "{metadata}");

    let html = get("/admin/stable/pypi/simple/demo-pkg/", None)
        .await
        .unwrap();
    assert_eq!(html.headers()[CONTENT_TYPE], "text/html");
    let html = html.text().await.unwrap();
    assert!(html.contains("data-requires-python=\"&gt;=3.8\""), "{html}");
    assert!(
        html.contains(&format!("data-core-metadata=\"sha256={metadata_sha}\"")),
        "{html}"
    );

    let root = get(
        "/admin/stable/pypi/simple/",
        Some("application/vnd.pypi.simple.v1+json"),
    )
    .await
    .unwrap();
    let root: Value = root.json().await.unwrap();
    assert_eq!(
        root["projects"],
        serde_json::json!([{ "name": "demo-pkg" }])
    );

    // Names as typed redirect to the normalized page, and the slash is added.
    for path in [
        "/admin/stable/pypi/simple/Demo_Pkg/",
        "/admin/stable/pypi/simple/demo-pkg",
    ] {
        let response = get(path, None).await.unwrap();
        assert_eq!(response.status(), 301, "{path}");
        assert_eq!(
            response.headers()[LOCATION],
            "/admin/stable/pypi/simple/demo-pkg/"
        );
    }
    let refused = get(
        "/admin/stable/pypi/simple/demo-pkg/",
        Some("application/xml"),
    )
    .await
    .unwrap();
    assert_eq!(refused.status(), 406);
    assert_eq!(
        get("/admin/stable/pypi/simple/nothing/", None)
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_projects_need_a_token_and_api_v1_pushes_land_in_the_index() {
    let app = TestApp::new().await;
    app.create_repo("secret", true).await;
    let work = tempfile::tempdir().unwrap();
    let files = build(work.path(), "hidden", "2.0", ">=3.8");
    // package_cloud push admin/secret/python FILE: the python distribution's id.
    let distributions = app.json("/api/v1/distributions.json").await;
    let python = distributions["py"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["index_name"] == "python")
        .unwrap();
    assert_eq!(python["versions"][0]["id"], PYTHON);
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        app.push_ok("secret", PYTHON, &name, std::fs::read(file).unwrap())
            .await;
    }
    app.wait_for_jobs().await;

    let target = work.path().join("anonymous");
    let (ok, _, _) = pip_install(&index_url(&app, "secret", None), "hidden", &target);
    assert!(!ok, "a stranger cannot install from a private repository");
    assert_eq!(app.status("/admin/secret/pypi/simple/hidden/").await, 404);
    let read = app.read_token("secret", "ci").await;
    let token = read["value"].as_str().unwrap();
    let target = work.path().join("reader");
    let (ok, text, versions) =
        pip_install(&index_url(&app, "secret", Some(token)), "hidden", &target);
    assert!(ok, "{text}");
    assert_eq!(versions, ["hidden-2.0"]);

    // package_cloud yank: DELETE python/1/FILE takes the file out of the index.
    let wheel = files
        .iter()
        .find(|f| f.extension().unwrap() == "whl")
        .unwrap();
    let name = wheel.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(app.destroy("secret", "python/1", &name).await, 200);
    app.wait_for_jobs().await;
    let page = app
        .get("/admin/secret/pypi/simple/hidden/")
        .basic_auth(token, Some(""))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains(".whl"), "{page}");
    assert!(page.contains("hidden-2.0.tar.gz"), "{page}");
}

/// A zip holding `entries`, stored (not compressed) unless `deflate`.
fn zip_file(entries: &[(&str, &[u8])], deflate: bool) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    let method = if deflate {
        zip::CompressionMethod::Deflated
    } else {
        zip::CompressionMethod::Stored
    };
    for (name, bytes) in entries {
        zip.start_file(
            *name,
            zip::write::SimpleFileOptions::default().compression_method(method),
        )
        .unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
    out.into_inner()
}

async fn upload_form(app: &TestApp, filename: &str, bytes: Vec<u8>) -> (u16, String) {
    let form = Form::new()
        .text(":action", "file_upload")
        .text("protocol_version", "1")
        .part("content", Part::bytes(bytes).file_name(filename.to_owned()));
    let response = app
        .authed(Method::POST, "/admin/stable/pypi/")
        .multipart(form)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn bad_distributions_are_refused_naming_the_problem_and_nothing_is_stored() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    let metadata = |name: &str, version: &str| {
        format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n").into_bytes()
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "demo-1.0-py3-none-any.whl",
            b"not a zip at all".to_vec(),
            "not a readable wheel",
        ),
        (
            "demo-1.0-py3-none-any.whl",
            zip_file(
                &[("other-1.0.dist-info/METADATA", &metadata("other", "1.0"))],
                false,
            ),
            "file name says demo 1.0, its metadata other 1.0",
        ),
        (
            "demo-1.0-py3-none-any.whl",
            zip_file(
                &[("demo-1.0.dist-info/METADATA", &metadata("demo", "one"))],
                false,
            ),
            "is not a PEP 440 version",
        ),
        (
            "demo-1.0-py3-none-any.whl",
            // 64 MiB of zeros deflate to a few KiB: a zip bomb in the METADATA.
            zip_file(
                &[("demo-1.0.dist-info/METADATA", &vec![0u8; 64 << 20])],
                true,
            ),
            "larger than",
        ),
        (
            "demo-1.0-py3-none-any.whl",
            zip_file(&[("demo/__init__.py", b"")], false),
            "no single .dist-info/METADATA",
        ),
        ("demo.exe", b"x".to_vec(), "file name"),
    ];
    for (filename, bytes, needle) in cases {
        let (status, text) = upload_form(&app, filename, bytes).await;
        assert_eq!(status, 400, "{filename}: {text}");
        assert!(text.contains(needle), "{filename}: {text} lacks {needle:?}");
    }
    // The form's digest must be the file's.
    let good = zip_file(
        &[("demo-1.0.dist-info/METADATA", &metadata("demo", "1.0"))],
        false,
    );
    let form = Form::new()
        .text(":action", "file_upload")
        .text("sha256_digest", "0".repeat(64))
        .part(
            "content",
            Part::bytes(good.clone()).file_name("demo-1.0-py3-none-any.whl"),
        );
    let response = app
        .authed(Method::POST, "/admin/stable/pypi/legacy/")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    // Without a token there is a challenge.
    let anonymous = reqwest::Client::new()
        .post(app.url("/admin/stable/pypi/"))
        .multipart(Form::new().part(
            "content",
            Part::bytes(good.clone()).file_name("demo-1.0-py3-none-any.whl"),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(anonymous.headers().contains_key("www-authenticate"));

    let listed = app.json("/api/v1/repos/admin/stable/packages.json").await;
    assert_eq!(listed.as_array().unwrap().len(), 0, "{listed}");
    // A hand-made wheel that is right is taken.
    let (status, text) = upload_form(&app, "demo-1.0-py3-none-any.whl", good).await;
    assert_eq!(status, 200, "{text}");
}

/// `script.python.sh` sets pip up for a private repository: afterwards a plain
/// `pip install NAME` finds the package through the user's configuration alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_python_sh_sets_pip_up_for_a_private_repository() {
    let app = TestApp::new().await;
    app.create_repo("secret", true).await;
    let work = tempfile::tempdir().unwrap();
    let files = build(work.path(), "scripted", "3.0", ">=3.8");
    let (ok, text) = twine(&app, "secret", &app.token, &files, &[]);
    assert!(ok, "{text}");
    app.wait_for_jobs().await;
    let master = app.master_token("secret", "default").await;
    let script = app
        .get("/install/repositories/admin/secret/script.python.sh")
        .basic_auth(&master, Some(""))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let home = work.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let path = format!(
        "{}:{}",
        crate::python_client::venv().join("bin").display(),
        std::env::var("PATH").unwrap()
    );
    let run = |program: &str, args: &[&str], stdin: Option<&str>| {
        let env = [("PATH", path.clone())];
        crate::fixtures::run_in_home(program, args, &home, &home, &env, stdin)
    };
    let out = run("bash", &[], Some(&script));
    assert!(
        out.status.success(),
        "script.python.sh:\n{}",
        combined(&out)
    );
    let target = work.path().join("target");
    let out = run(
        "pip",
        &[
            "install",
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--target",
            target.to_str().unwrap(),
            "scripted==3.0",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "pip install with the script's configuration:\n{}",
        combined(&out)
    );
    // The private index answered only because the script got the host a read token.
    assert_eq!(installed(&target), ["scripted-3.0"]);
}

/// A wheel promoted to another repository installs from there, and pip's download of it
/// counts, through the same API v1 paths as a .deb.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promoted_wheel_installs_from_its_new_repository_and_its_downloads_count() {
    let app = TestApp::new().await;
    app.create_repo("staging", false).await;
    app.create_repo("production", false).await;
    let work = tempfile::tempdir().unwrap();
    let files = build(work.path(), "moving", "1.0", ">=3.8");
    let (ok, text) = twine(&app, "staging", &app.token, &files, &[]);
    assert!(ok, "{text}");
    let wheel = files
        .iter()
        .find(|f| f.extension().unwrap() == "whl")
        .unwrap();
    let name = wheel.file_name().unwrap().to_string_lossy().into_owned();
    let promoted = app
        .authed(
            Method::POST,
            &format!("/api/v1/repos/admin/staging/python/1/{name}/promote.json"),
        )
        .form(&[("destination", "admin/production")])
        .send()
        .await
        .unwrap();
    assert_eq!(promoted.status(), 200, "{}", promoted.text().await.unwrap());
    app.wait_for_jobs().await;
    let staging = app.text("/admin/staging/pypi/simple/moving/").await;
    assert!(
        !staging.contains(".whl") && staging.contains(".tar.gz"),
        "moved, not copied: {staging}"
    );

    let target = work.path().join("target");
    let (ok, text, versions) = pip_install(&index_url(&app, "production", None), "moving", &target);
    assert!(ok, "{text}");
    assert_eq!(versions, ["moving-1.0"]);
    let count_url =
        "/api/v1/repos/admin/production/package/python/moving/1.0/stats/downloads/count.json";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let count = app.json(count_url).await;
        if count["value"] == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "pip's download was not counted: {count}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
