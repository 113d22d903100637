//! Raw files: packagecloud's `anyfile` through API v1 and its download path, and
//! `raw/NAME/VERSION/FILE` with `curl -T`, `curl -C -`, ranges, checksums and deletes.

use std::path::Path;

use reqwest::Method;
use reqwest::header::{ACCEPT_RANGES, CONTENT_DISPOSITION, ETAG};
use serde_json::Value;

use crate::support::TestApp;

const ANYFILE: i64 = 5;

/// Runs the real curl; returns its exit status success and stderr.
async fn curl(args: &[&str]) -> (bool, String) {
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--fail-with-body"])
        .args(args)
        .output()
        .await
        .expect("curl runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn bytes_of(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anyfile_pushes_through_api_v1_and_downloads_where_packagecloud_serves_it() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    let distributions = app.json("/api/v1/distributions.json").await;
    let family = &distributions["anyfile"][0];
    assert_eq!(family["index_name"], "anyfile", "{distributions}");
    assert_eq!(family["versions"][0]["id"], ANYFILE);

    let bytes = bytes_of(300_000, 7);
    let pushed = app
        .push_ok("stable", ANYFILE, "tool-1.2.3.tar.gz", bytes.clone())
        .await;
    assert_eq!(pushed["package_type"], "anyfile", "{pushed}");
    assert_eq!(pushed["name"], "tool");
    assert_eq!(pushed["version"], "1.2.3");
    let download_url = pushed["download_url"].as_str().unwrap();
    assert_eq!(
        download_url,
        app.url("/admin/stable/packages/anyfile/tool-1.2.3.tar.gz/download")
    );
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("fetched");
    let (ok, text) = curl(&["-L", "-o", out.to_str().unwrap(), download_url]).await;
    assert!(ok, "{text}");
    assert_eq!(std::fs::read(&out).unwrap(), bytes);

    // Shown, listed and searched as packagecloud does.
    let shown = app
        .json("/api/v1/repos/admin/stable/package/anyfile/tool/1.2.3.json")
        .await;
    assert_eq!(shown["sha256sum"], pushed["sha256sum"], "{shown}");
    let listed = app
        .json("/api/v1/repos/admin/stable/packages/anyfile.json")
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let searched = app
        .json("/api/v1/repos/admin/stable/search.json?filter=anyfile&q=tool")
        .await;
    assert_eq!(searched.as_array().unwrap().len(), 1, "{searched}");
    let debs = app
        .json("/api/v1/repos/admin/stable/search.json?filter=debs&q=tool")
        .await;
    assert_eq!(debs.as_array().unwrap().len(), 0, "{debs}");

    // A name without a version is refused and nothing is stored.
    let refused = app
        .push("stable", ANYFILE, "tool.tar.gz", bytes.clone())
        .await;
    assert_eq!(refused.status(), 422);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["filename"][0]
            .as_str()
            .unwrap()
            .contains("NAME-VERSION"),
        "{body}"
    );

    // package_cloud yank: DELETE .../anyfile/1/FILE.
    assert_eq!(
        app.destroy("stable", "anyfile/1", "tool-1.2.3.tar.gz")
            .await,
        200
    );
    assert_eq!(
        app.status("/admin/stable/packages/anyfile/tool-1.2.3.tar.gz/download")
            .await,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_files_upload_with_curl_and_resume_with_curl_c() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    let work = tempfile::tempdir().unwrap();
    let local = work.path().join("tool-linux-amd64");
    let bytes = bytes_of(3 << 20, 1);
    std::fs::write(&local, &bytes).unwrap();
    let url = app.url("/admin/stable/raw/tool/1.0/tool-linux-amd64");
    let auth = format!("{}:", app.token);

    let (ok, text) = curl(&["-u", &auth, "-T", local.to_str().unwrap(), &url]).await;
    assert!(ok, "{text}");
    let created: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(created["name"], "tool", "{created}");
    assert_eq!(created["version"], "1.0");
    assert_eq!(created["download_url"], url.as_str());
    // The same bytes again succeed; other bytes under the taken name are a conflict.
    let (ok, text) = curl(&["-u", &auth, "-T", local.to_str().unwrap(), &url]).await;
    assert!(ok, "{text}");
    let other = work.path().join("other");
    std::fs::write(&other, bytes_of(10, 9)).unwrap();
    let response = app
        .authed(Method::PUT, "/admin/stable/raw/tool/1.0/tool-linux-amd64")
        .body(std::fs::read(&other).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409);
    // Every version may hold a file of the same name.
    let (ok, text) = curl(&[
        "-u",
        &auth,
        "-T",
        other.to_str().unwrap(),
        &app.url("/admin/stable/raw/tool/1.1/tool-linux-amd64"),
    ])
    .await;
    assert!(ok, "{text}");

    // HEAD: size, checksum, name to save under, ranges.
    let head = app.get("/admin/stable/raw/tool/1.0/tool-linux-amd64");
    let head = head.build().unwrap();
    let client = reqwest::Client::new();
    let head = client
        .request(Method::HEAD, head.url().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    let sha256 = created["sha256sum"].as_str().unwrap();
    assert_eq!(head.headers()["x-checksum-sha256"], sha256);
    assert_eq!(head.headers()[ETAG], format!("\"{sha256}\"").as_str());
    assert_eq!(head.headers()[ACCEPT_RANGES], "bytes");
    assert_eq!(
        head.headers()[CONTENT_DISPOSITION],
        "attachment; filename=\"tool-linux-amd64\""
    );

    // curl -C -: a download cut short resumes from where it stopped.
    let partial = work.path().join("partial");
    std::fs::write(&partial, &bytes[..1_000_000]).unwrap();
    let (ok, text) = curl(&["-L", "-C", "-", "-o", partial.to_str().unwrap(), &url]).await;
    assert!(ok, "{text}");
    assert_eq!(std::fs::read(&partial).unwrap(), bytes);

    // Bad names are refused naming the problem, and nothing is stored.
    for bad in ["tool/1.0/a%20b", "tool/1.0/.hidden", "tool/1.0/a%22b"] {
        let response = app
            .authed(Method::PUT, &format!("/admin/stable/raw/{bad}"))
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{bad}");
        let text = response.text().await.unwrap();
        assert!(text.contains("raw/NAME/VERSION/FILE"), "{bad}: {text}");
    }
    // Writes need a token that may write.
    let stranger = app.stranger_token().await;
    let (ok, text) = curl(&[
        "-u",
        &format!("{stranger}:"),
        "-T",
        local.to_str().unwrap(),
        &url,
    ])
    .await;
    assert!(!ok && text.contains("403"), "{text}");
    let (ok, text) = curl(&["-T", local.to_str().unwrap(), &url]).await;
    assert!(!ok && text.contains("401"), "{text}");

    // DELETE: gone from then on; the other version stays.
    let (ok, text) = curl(&["-u", &auth, "-X", "DELETE", &url]).await;
    assert!(ok, "{text}");
    assert_eq!(
        app.status("/admin/stable/raw/tool/1.0/tool-linux-amd64")
            .await,
        404
    );
    assert_eq!(
        app.status("/admin/stable/raw/tool/1.1/tool-linux-amd64")
            .await,
        200
    );
    let _ = Path::new(&local);
}

#[tokio::test]
async fn raw_files_of_private_repositories_need_a_read_token_and_uploads_a_size_limit() {
    let app = TestApp::builder().max_upload_bytes(1000).start().await;
    app.create_repo("secret", true).await;
    let put = app
        .authed(Method::PUT, "/admin/secret/raw/tool/1.0/tool.bin")
        .body(vec![1u8; 500])
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201);
    let too_big = app
        .authed(Method::PUT, "/admin/secret/raw/tool/2.0/tool.bin")
        .body(vec![1u8; 1001])
        .send()
        .await
        .unwrap();
    assert_eq!(too_big.status(), 413);
    assert_eq!(app.status("/admin/secret/raw/tool/2.0/tool.bin").await, 404);

    assert_eq!(app.status("/admin/secret/raw/tool/1.0/tool.bin").await, 404);
    let read = app.read_token("secret", "ci").await;
    let token = read["value"].as_str().unwrap();
    let fetched = app
        .get("/admin/secret/raw/tool/1.0/tool.bin")
        .basic_auth(token, Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.bytes().await.unwrap().len(), 500);
    // Other methods on repository paths are not allowed.
    let post = app
        .authed(
            Method::POST,
            "/admin/secret/debian/dists/bookworm/InRelease",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
}
