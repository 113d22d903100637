//! Hostile and careless clients: slow headers (slowloris), uploads that stop sending, more
//! uploads at once than a process takes, and oversized bodies where no upload is expected.

use std::time::{Duration, Instant};

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::TestApp;

async fn app() -> TestApp {
    let app = TestApp::builder()
        .configure(|c| {
            c.request_header_timeout_secs = 1;
            c.upload_idle_timeout_secs = 1;
            c.max_concurrent_uploads = 1;
        })
        .start()
        .await;
    app.create_repo("stable", false).await;
    app
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Reads until the server closes the connection or `limit` passes; what it sent.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&got).into_owned()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Reads a response's status line and headers, within `limit`.
async fn read_head(stream: &mut TcpStream, limit: Duration) -> String {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    let deadline = tokio::time::Instant::now() + limit;
    while !got.ends_with(b"\r\n\r\n") {
        match tokio::time::timeout_at(deadline, stream.read(&mut byte)).await {
            Ok(Ok(1)) => got.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// The head of a raw-file upload of `length` bytes, of which the test sends only some.
fn upload_head(app: &TestApp, file: &str, length: usize) -> String {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{}:", app.token));
    format!(
        "PUT /admin/stable/raw/tool/1.0/{file} HTTP/1.1\r\nHost: test\r\n\
         Authorization: Basic {auth}\r\nContent-Length: {length}\r\n\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_are_closed_and_the_server_keeps_serving() {
    let app = app().await;
    let mut slow = Vec::new();
    for _ in 0..50 {
        let mut stream = connect(&app).await;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: ")
            .await
            .unwrap();
        slow.push(stream);
    }
    let started = Instant::now();
    // Keep trickling a byte now and then: the headers never end.
    for stream in &mut slow {
        let _ = stream.write_all(b"a").await;
    }
    assert_eq!(app.status("/healthz").await, 200, "served while they hang");
    for stream in &mut slow {
        let closed = read_until_closed(stream, Duration::from_secs(10)).await;
        assert!(closed.is_some(), "a slow connection was kept open");
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    // On a new connection: the server also closes kept-alive connections idle that long.
    let fresh = reqwest::Client::new().get(app.url("/healthz")).send().await;
    assert_eq!(fresh.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_that_stops_sending_is_refused_and_leaves_nothing() {
    let app = app().await;
    let mut stream = connect(&app).await;
    stream
        .write_all(upload_head(&app, "stalled.bin", 1000).as_bytes())
        .await
        .unwrap();
    stream.write_all(&[7u8; 100]).await.unwrap();
    let answer = read_head(&mut stream, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let gone = app
        .get("/admin/stable/raw/tool/1.0/stalled.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    let staged: Vec<_> = std::fs::read_dir(app.data_dir().join("tmp"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .collect();
    assert!(staged.is_empty(), "staged files left: {staged:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_past_the_limit_wait_their_turn_with_retry_after() {
    let app = app().await;
    // One upload in progress takes the only permit.
    let mut first = connect(&app).await;
    first
        .write_all(upload_head(&app, "first.bin", 10).as_bytes())
        .await
        .unwrap();
    first.write_all(b"01234").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let busy = app
        .authed(
            reqwest::Method::PUT,
            "/admin/stable/raw/tool/1.0/second.bin",
        )
        .body("second")
        .send()
        .await
        .unwrap();
    assert_eq!(busy.status(), 503);
    assert_eq!(busy.headers()["retry-after"], "1");
    // The first finishes; then the second goes through.
    first.write_all(b"56789").await.unwrap();
    let answer = read_head(&mut first, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    let again = app
        .authed(
            reqwest::Method::PUT,
            "/admin/stable/raw/tool/1.0/second.bin",
        )
        .body("second")
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 201, "{:?}", again.text().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_where_no_upload_is_expected_are_capped() {
    let app = app().await;
    // axum's 2 MiB default for forms and JSON; 4 MiB for manifests, as registries cap them.
    let huge = "x".repeat(3 << 20);
    let status = refused_status(|| {
        app.authed(reqwest::Method::POST, "/api/v1/repos.json")
            .form(&[("repository[name]", huge.as_str())])
    })
    .await;
    assert_eq!(status, 413);
    let status = refused_status(|| {
        app.authed(reqwest::Method::PUT, "/v2/admin/stable/app/manifests/1")
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body("x".repeat(5 << 20))
    })
    .await;
    assert_eq!(status, 413);
}

/// The status of a request whose body the server may refuse before reading it all. The server
/// answers and closes the connection; a client still writing the body can then fail with a
/// broken pipe before it reads the answer, so such a failure is tried again (a few times).
async fn refused_status(request: impl Fn() -> reqwest::RequestBuilder) -> reqwest::StatusCode {
    let mut tries = 0;
    loop {
        match request().send().await {
            Ok(response) => return response.status(),
            Err(e) if e.is_request() && tries < 5 => tries += 1,
            Err(e) => panic!("{e:?}"),
        }
    }
}

/// A small file system of the test's own, unmounted when dropped.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "mounting a tmpfs needs root, which the tests run as"
        );
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.0.path())
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_507_and_pushes_work_again_once_space_is_freed() {
    use std::io::Write;
    let disk = Tmpfs::mount("32m");
    let app = TestApp::builder()
        .data_dir(&disk.0.path().join("data"))
        .start()
        .await;
    app.create_repo("stable", false).await;
    // Fill the disk, then leave 2 MiB free.
    let filler_path = disk.0.path().join("filler");
    let mut filler = std::fs::File::create(&filler_path).unwrap();
    let chunk = vec![0u8; 1 << 20];
    while filler.write_all(&chunk).is_ok() {}
    let _ = filler.flush();
    let filled = filler.metadata().unwrap().len();
    filler.set_len(filled.saturating_sub(2 << 20)).unwrap();
    drop(filler);

    let file: Vec<u8> = (0..(8u32 << 20)).map(|i| (i % 251) as u8).collect();
    let push = || {
        app.authed(reqwest::Method::PUT, "/admin/stable/raw/tool/1.0/big.bin")
            .body(file.clone())
            .send()
    };
    let refused = push().await.unwrap();
    assert_eq!(refused.status(), 507);
    let message = refused.text().await.unwrap();
    assert!(message.contains("no space left"), "{message}");
    assert_eq!(app.status("/healthz").await, 200, "the server stays up");
    let missing = app
        .get("/admin/stable/raw/tool/1.0/big.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404, "nothing half-stored");

    std::fs::remove_file(&filler_path).unwrap();
    let stored = push().await.unwrap();
    assert_eq!(stored.status(), 201, "{:?}", stored.text().await);
    let back = app.bytes("/admin/stable/raw/tool/1.0/big.bin").await;
    assert!(
        back.as_ref() == file.as_slice(),
        "the file comes back whole"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_unreachable_at_start_up_is_not_ready_until_it_is_back() {
    let port = crate::support::free_port();
    let app = TestApp::builder()
        .s3_endpoint(&format!("http://127.0.0.1:{port}"))
        .start()
        .await;
    app.create_repo("stable", false).await;
    for _ in 0..3 {
        assert_eq!(app.status("/healthz").await, 200, "alive");
        assert_eq!(
            app.status("/readyz").await,
            503,
            "not ready without its storage"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let refused = app.put_raw("early.bin", "too early").await;
    assert_eq!(refused.status(), 503, "a push the storage cannot take");
    assert!(refused.headers().contains_key("retry-after"));

    let _storage = crate::support::TestStorage::start_on(port).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while app.status("/readyz").await != 200 {
        assert!(
            Instant::now() < deadline,
            "still not ready with its storage back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stored = app.put_raw("late.bin", "in time").await;
    assert_eq!(stored.status(), 201, "{:?}", stored.text().await);
    assert_eq!(
        app.text("/admin/stable/raw/tool/1.0/late.bin").await,
        "in time"
    );
}
