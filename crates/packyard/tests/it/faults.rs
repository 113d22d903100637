//! The blob storage misbehaving, through a fault-injecting proxy in front of the S3 emulator:
//! `503 SlowDown`, `500`, connections reset before an answer, and stalls. A push either
//! succeeds after the storage client's own retries, or answers 503 with `Retry-After` and
//! leaves nothing behind; the server stays up and works once the storage does.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::support::{TestApp, TestStorage};

#[derive(Debug, Clone, Copy)]
enum Fault {
    SlowDown,
    ServerError,
    /// The connection closed before any answer.
    Reset,
    /// No answer for this long, then the request is forwarded.
    Stall(Duration),
}

/// Faults for the writes (`PUT`, `POST`) that reach the proxy: the queue first, one per write,
/// then `always` while it is set. Reads pass untouched.
#[derive(Default)]
struct Faults {
    queue: Mutex<VecDeque<Fault>>,
    always: Mutex<Option<Fault>>,
    injected: AtomicUsize,
}

impl Faults {
    fn next(&self) -> Option<Fault> {
        let fault = self
            .queue
            .lock()
            .unwrap()
            .pop_front()
            .or(*self.always.lock().unwrap());
        if fault.is_some() {
            self.injected.fetch_add(1, Ordering::SeqCst);
        }
        fault
    }
}

/// Starts the proxy in front of `upstream`; its URL.
async fn proxy(upstream: String, faults: Arc<Faults>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let client = reqwest::Client::new();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (client, upstream, faults) = (client.clone(), upstream.clone(), faults.clone());
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                        let (client, upstream, faults) =
                            (client.clone(), upstream.clone(), faults.clone());
                        async move { answer(&client, &upstream, &faults, request).await }
                    });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    format!("http://{addr}")
}

fn s3_error(status: u16, code: &str) -> Response<Body> {
    let body = format!(
        "<?xml version=\"1.0\"?><Error><Code>{code}</Code><Message>injected</Message></Error>"
    );
    Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .body(Body::from(body))
        .unwrap()
}

async fn answer(
    client: &reqwest::Client,
    upstream: &str,
    faults: &Faults,
    request: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, std::io::Error> {
    let writes = matches!(request.method().as_str(), "PUT" | "POST");
    match writes.then(|| faults.next()).flatten() {
        Some(Fault::SlowDown) => return Ok(s3_error(503, "SlowDown")),
        Some(Fault::ServerError) => return Ok(s3_error(500, "InternalError")),
        Some(Fault::Reset) => return Err(std::io::Error::other("injected reset")),
        Some(Fault::Stall(pause)) => tokio::time::sleep(pause).await,
        None => {}
    }
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(Body::new(body), usize::MAX)
        .await
        .map_err(std::io::Error::other)?;
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes()).unwrap();
    let mut forwarded = client.request(method, format!("{upstream}{path}"));
    // The signature covers the Host the client saw: pass every header on as it came.
    for (name, value) in &parts.headers {
        forwarded = forwarded.header(name.as_str(), value.as_bytes());
    }
    let response = forwarded
        .body(body)
        .send()
        .await
        .map_err(std::io::Error::other)?;
    let mut answer = Response::builder().status(response.status().as_u16());
    for (name, value) in response.headers() {
        answer = answer.header(name.as_str(), value.as_bytes());
    }
    let bytes = response.bytes().await.map_err(std::io::Error::other)?;
    Ok(answer.body(Body::from(bytes)).unwrap())
}

/// A server whose blobs go through the proxy to an emulator of their own, with few, quick
/// retries and a short request timeout so that a failure shows within seconds.
async fn app() -> (TestApp, Arc<Faults>, TestStorage) {
    let storage = TestStorage::start().await;
    let faults = Arc::new(Faults::default());
    let url = proxy(storage.endpoint.clone(), faults.clone()).await;
    let app = TestApp::builder()
        .s3_endpoint(&url)
        .configure(|c| {
            c.s3_retries = 3;
            c.s3_retry_timeout_secs = 5;
            c.s3_request_timeout_secs = 2;
        })
        .start()
        .await;
    app.create_repo("stable", false).await;
    (app, faults, storage)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_storage_faults_are_retried_and_the_push_succeeds() {
    let (app, faults, _storage) = app().await;
    for (file, fault) in [
        ("slow.bin", Fault::SlowDown),
        ("error.bin", Fault::ServerError),
        ("reset.bin", Fault::Reset),
        ("stall.bin", Fault::Stall(Duration::from_secs(4))),
    ] {
        faults.queue.lock().unwrap().extend([fault, fault]);
        let before = faults.injected.load(Ordering::SeqCst);
        // Contents of its own, so the blob is new and must be written.
        let contents = format!("{file} stored after retries");
        let stored = app.put_raw(file, contents.clone()).await;
        assert_eq!(stored.status(), 201, "{fault:?}: {:?}", stored.text().await);
        assert_eq!(
            faults.injected.load(Ordering::SeqCst),
            before + 2,
            "{fault:?} was injected"
        );
        assert_eq!(
            app.text(&format!("/admin/stable/raw/tool/1.0/{file}"))
                .await,
            contents,
            "{fault:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_that_keeps_failing_answers_503_stores_nothing_and_recovers() {
    let (app, faults, _storage) = app().await;
    for fault in [Fault::ServerError, Fault::SlowDown, Fault::Reset] {
        *faults.always.lock().unwrap() = Some(fault);
        let refused = app
            .put_raw("never.bin", format!("never stored ({fault:?})"))
            .await;
        assert_eq!(refused.status(), 503, "{fault:?}");
        assert!(refused.headers().contains_key("retry-after"), "{fault:?}");
        assert_eq!(app.status("/healthz").await, 200, "{fault:?}");
        let listed = app.json("/api/v1/repos/admin/stable/packages.json").await;
        assert_eq!(
            listed,
            serde_json::json!([]),
            "{fault:?}: nothing half-stored"
        );
    }
    *faults.always.lock().unwrap() = None;
    let stored = app
        .put_raw("later.bin", "stored once the storage works")
        .await;
    assert_eq!(stored.status(), 201, "{:?}", stored.text().await);
    assert_eq!(
        app.text("/admin/stable/raw/tool/1.0/later.bin").await,
        "stored once the storage works"
    );
}
