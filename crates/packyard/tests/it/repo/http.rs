//! HTTP semantics of repository files: caching headers, conditional and range requests, HEAD,
//! by-hash retention across publishes, and 404 for anything else.

use reqwest::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_RANGE, ETAG, IF_NONE_MATCH, RANGE};

use packyard::config::DownloadMode;
use reqwest::StatusCode;
use reqwest::header::{LOCATION, USER_AGENT};

use crate::fixtures::{BOOKWORM, deb};
use crate::support::TestApp;

const POOL: &str = "/admin/stable/debian/pool/bookworm/main/h/hello/hello_1.0_amd64.deb";

/// Served by this process: from local storage, or streamed from S3 in `proxy` mode.
#[tokio::test]
async fn pool_files_support_head_range_and_etags() {
    let app = TestApp::builder()
        .download_mode(DownloadMode::Proxy)
        .start()
        .await;
    app.create_repo("stable", false).await;
    let bytes = deb("hello", "1.0", "amd64");
    app.push_ok("stable", BOOKWORM, "hello_1.0_amd64.deb", bytes.clone())
        .await;

    let full = app.get(POOL).send().await.unwrap();
    assert_eq!(full.status(), 200);
    assert_eq!(
        full.headers()[CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    let etag = full.headers()[ETAG].to_str().unwrap().to_owned();
    assert_eq!(full.bytes().await.unwrap(), bytes);

    let head = app.client_head(POOL).await;
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()[CONTENT_LENGTH], bytes.len().to_string());
    assert!(head.bytes().await.unwrap().is_empty());

    let part = app
        .get(POOL)
        .header(RANGE, "bytes=8-67")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()[CONTENT_RANGE],
        format!("bytes 8-67/{}", bytes.len())
    );
    assert_eq!(part.bytes().await.unwrap(), bytes[8..68]);

    let beyond = app
        .get(POOL)
        .header(RANGE, format!("bytes={}-", bytes.len()))
        .send()
        .await
        .unwrap();
    assert_eq!(beyond.status(), 416);

    let cached = app
        .get(POOL)
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), 304);

    for path in [
        "/admin/stable/debian/pool/bookworm/main/h/hello/nothing_1.0_amd64.deb",
        "/admin/stable/debian/pool/bookworm/main/x/hello/hello_1.0_amd64.deb",
        "/admin/stable/debian/pool/jammy/main/h/hello/hello_1.0_amd64.deb",
        "/admin/stable/debian/dists/nosuchdist/InRelease",
        "/admin/stable/debian/dists/bookworm/../../../etc/passwd",
        "/admin/nosuchrepo/debian/dists/bookworm/InRelease",
        "/admin/stable/debian/dists/bookworm/InRelease.bak",
    ] {
        assert_eq!(app.status(path).await, 404, "{path}");
    }
}

#[tokio::test]
async fn release_files_are_not_cached_and_old_generations_stay_reachable_by_hash() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    app.push_deb("stable", "hello", "1.0", "amd64").await;
    app.wait_for_jobs().await;

    let in_release = app
        .get("/admin/stable/debian/dists/bookworm/InRelease")
        .send()
        .await
        .unwrap();
    assert_eq!(in_release.status(), 200);
    assert_eq!(in_release.headers()[CACHE_CONTROL], "no-cache");
    let first = in_release.text().await.unwrap();
    let release = app
        .text("/admin/stable/debian/dists/bookworm/Release")
        .await;
    assert!(first.contains(&release), "InRelease signs the Release text");
    let signature = app
        .text("/admin/stable/debian/dists/bookworm/Release.gpg")
        .await;
    assert!(signature.starts_with("-----BEGIN PGP SIGNATURE-----"));

    let old_sha512 = sha512_of(&release, "main/binary-amd64/Packages.gz");
    app.push_deb("stable", "other", "1.0", "amd64").await;
    app.wait_for_jobs().await;
    let second = app
        .text("/admin/stable/debian/dists/bookworm/Release")
        .await;
    let new_sha512 = sha512_of(&second, "main/binary-amd64/Packages.gz");
    assert_ne!(old_sha512, new_sha512);

    // A client that fetched the previous InRelease can still get the files it lists.
    for sha512 in [&old_sha512, &new_sha512] {
        let path = format!(
            "/admin/stable/debian/dists/bookworm/main/binary-amd64/by-hash/SHA512/{sha512}"
        );
        let response = app.get(&path).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(
            response.headers()[CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
        let body = response.bytes().await.unwrap();
        assert_eq!(
            &packyard_formats::digest::FileDigests::of(&body).sha512,
            sha512
        );
    }

    // The uncompressed Packages is listed and served, decompressed from its .gz.
    let plain = app
        .bytes("/admin/stable/debian/dists/bookworm/main/binary-amd64/Packages")
        .await;
    assert_eq!(
        packyard_formats::digest::FileDigests::of(&plain).sha512,
        sha512_of(&second, "main/binary-amd64/Packages")
    );
}

/// Repository reads are cached in memory (and, in this suite, never expire on their own): a
/// destroy must drop the pool file at once, and the publish it queues the old index.
#[tokio::test]
async fn cached_reads_follow_destroys_and_publishes() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    app.push_deb("stable", "hello", "1.0", "amd64").await;
    app.wait_for_jobs().await;
    let packages = "/admin/stable/debian/dists/bookworm/main/binary-amd64/Packages";
    for _ in 0..2 {
        assert_eq!(app.status(POOL).await, 200);
        assert!(app.text(packages).await.contains("Package: hello\n"));
    }
    let in_release = app
        .text("/admin/stable/debian/dists/bookworm/InRelease")
        .await;

    assert_eq!(
        app.destroy("stable", "debian/bookworm", "hello_1.0_amd64.deb")
            .await,
        200
    );
    app.wait_for_jobs().await;
    assert_eq!(app.status(POOL).await, 200);
    assert!(!app.text(packages).await.contains("Package: hello\n"));
    let republished = app
        .text("/admin/stable/debian/dists/bookworm/InRelease")
        .await;
    assert_ne!(republished, in_release);
    let release = app
        .text("/admin/stable/debian/dists/bookworm/Release")
        .await;
    assert!(
        republished.contains(&release),
        "InRelease and Release agree"
    );
}

fn sha512_of(release: &str, path: &str) -> String {
    let section = release.split("SHA512:\n").nth(1).unwrap();
    section
        .lines()
        .find(|l| l.ends_with(&format!(" {path}")))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned()
}

impl TestApp {
    async fn client_head(&self, path: &str) -> reqwest::Response {
        reqwest::Client::new()
            .head(self.url(path))
            .send()
            .await
            .unwrap()
    }
}

/// In S3, package files are a `302` to a presigned URL of the store, given only after the
/// request was authorized; the index files stay with Packyard.
#[tokio::test]
async fn package_files_in_s3_redirect_to_presigned_urls_after_authorization() {
    let app = TestApp::builder().s3().start().await;
    let endpoint = app.storage.as_ref().unwrap().endpoint.clone();
    app.create_repo("stable", false).await;
    app.create_repo("secret", true).await;
    let bytes = deb("hello", "1.0", "amd64");
    app.push_ok("stable", BOOKWORM, "hello_1.0_amd64.deb", bytes.clone())
        .await;
    app.push_ok("secret", BOOKWORM, "hello_1.0_amd64.deb", bytes.clone())
        .await;
    app.wait_for_jobs().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let redirect = client
        .get(app.url(POOL))
        .header(USER_AGENT, "Debian APT-HTTP/1.3 (2.6.1)")
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), StatusCode::FOUND);
    assert_eq!(redirect.headers()[CACHE_CONTROL], "no-store");
    let location = redirect.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(&format!("{endpoint}/packyard/mirror/blobs/")),
        "{location}"
    );
    assert!(location.contains("X-Amz-Signature="), "{location}");
    assert!(location.contains("X-Amz-Expires=300"), "{location}");
    // The presigned URL works without credentials, and only as signed.
    let fetched = client.get(&location).send().await.unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.bytes().await.unwrap(), bytes);
    let tampered = location.replace("X-Amz-Expires=300", "X-Amz-Expires=3000");
    assert_eq!(client.get(&tampered).send().await.unwrap().status(), 403);
    let unsigned = location.split('?').next().unwrap();
    assert_ne!(client.get(unsigned).send().await.unwrap().status(), 200);

    // HEAD and conditional requests are answered here.
    let head = client.head(app.url(POOL)).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()[CONTENT_LENGTH], bytes.len().to_string());
    let etag = head.headers()[ETAG].to_str().unwrap().to_owned();
    let cached = client
        .get(app.url(POOL))
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), 304);
    // Raw files redirect the same way.
    let put = app
        .authed(reqwest::Method::PUT, "/admin/stable/raw/tool/1.0/tool.bin")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201);
    let raw = client
        .get(app.url("/admin/stable/raw/tool/1.0/tool.bin"))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::FOUND);
    let location = raw.headers()[LOCATION].to_str().unwrap();
    assert!(location.contains("X-Amz-Signature="), "{location}");
    let fetched = client.get(location).send().await.unwrap();
    assert_eq!(fetched.bytes().await.unwrap(), bytes);
    // Index files are never redirected.
    let in_release = client
        .get(app.url("/admin/stable/debian/dists/bookworm/InRelease"))
        .send()
        .await
        .unwrap();
    assert_eq!(in_release.status(), 200);

    // A private repository: strangers get 404, not a URL; a read token gets the redirect.
    let private_pool = POOL.replace("/stable/", "/secret/");
    let stranger = client.get(app.url(&private_pool)).send().await.unwrap();
    assert_eq!(stranger.status(), 404);
    assert!(stranger.headers().get(LOCATION).is_none());
    let token = app.read_token("secret", "web-1").await;
    let token = token["value"].as_str().unwrap();
    let allowed = client
        .get(app.url(&private_pool))
        .basic_auth(token, Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), StatusCode::FOUND);

    // The redirected download was counted like a streamed one.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let counted = app
            .app
            .db
            .scalar_i64("SELECT COUNT(*) FROM downloads WHERE user_agent LIKE 'Debian APT%'")
            .await
            .unwrap();
        if counted == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the redirected download was not counted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
