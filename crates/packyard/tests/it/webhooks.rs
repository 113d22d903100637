//! Webhooks: deliveries a receiver on loopback verifies with the `standardwebhooks` package,
//! retries until a failing receiver takes one, redelivery, and refused targets.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::apt_client::combined;
use crate::operations::{packyard, stdout};
use crate::python_client::tool;
use crate::support::TestApp;

/// One request a receiver got: its webhook headers and body.
type Received = (HashMap<String, String>, String);

/// What a receiver got, in order.
#[derive(Clone, Default)]
pub(crate) struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    /// Answer 500 to this many attempts of each message before taking it.
    fail_first: usize,
}

impl Receiver {
    pub(crate) async fn start(fail_first: usize) -> (Receiver, String) {
        let receiver = Receiver {
            fail_first,
            ..Receiver::default()
        };
        let state = receiver.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let state = state.clone();
                async move {
                    let mut got = state.got.lock().unwrap();
                    let pick = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned()
                    };
                    let id = pick("webhook-id");
                    let earlier = got.iter().filter(|(h, _)| h["webhook-id"] == id).count();
                    let fields = [
                        "webhook-id",
                        "webhook-timestamp",
                        "webhook-signature",
                        "content-type",
                    ]
                    .map(|n| (n.to_owned(), pick(n)));
                    got.push((fields.into_iter().collect(), body));
                    if earlier < state.fail_first {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::NO_CONTENT
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (receiver, url)
    }

    pub(crate) fn events(&self) -> Vec<(String, Value)> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|(h, body)| (h["webhook-id"].clone(), serde_json::from_str(body).unwrap()))
            .collect()
    }

    pub(crate) async fn wait_for(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.got.lock().unwrap().len() < count {
            assert!(
                Instant::now() < deadline,
                "{} of {count} deliveries arrived",
                self.got.lock().unwrap().len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Checks every delivery with the standardwebhooks package; how many it accepted.
    fn verified(&self, secret: &str) -> usize {
        use std::io::Write;
        let deliveries: Vec<Value> = self
            .got
            .lock()
            .unwrap()
            .iter()
            .map(|(h, body)| json!({ "headers": h, "body": body }))
            .collect();
        let script = "import json, sys\nfrom standardwebhooks import Webhook\n\
                      secret, deliveries = json.load(sys.stdin)\n\
                      hook = Webhook(secret)\n\
                      for d in deliveries:\n    hook.verify(d['body'], d['headers'])\n\
                      print(len(deliveries))";
        let mut child = std::process::Command::new(tool("python"))
            .args(["-c", script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let input = json!([secret, deliveries]).to_string();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "standardwebhooks refused a delivery: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }
}

pub(crate) async fn app() -> (TestApp, CancellationToken) {
    let app = TestApp::builder()
        .configure(|c| {
            c.webhook_allow_hosts = vec!["127.0.0.1".into()];
            c.webhook_backoff_ms = 100;
        })
        .start()
        .await;
    let stop = CancellationToken::new();
    tokio::spawn(packyard::webhooks::run_deliveries(
        app.app.clone(),
        stop.clone(),
    ));
    (app, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_is_announced_as_pushed_then_visible_with_signatures_standard_webhooks_accepts() {
    let (app, _stop) = app().await;
    app.create_repo("stable", false).await;
    let (receiver, url) = Receiver::start(0).await;
    let added = app
        .post_form(
            "/api/v1/repos/admin/stable/webhooks.json",
            &[("url", url.as_str())],
        )
        .await;
    let secret = added["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{added}");
    let id = added["id"].as_i64().unwrap();

    app.push_deb("stable", "hello", "1.0", "amd64").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let events = loop {
        let events = receiver.events();
        let types: Vec<&str> = events
            .iter()
            .filter(|(_, e)| e["data"]["name"] == "hello")
            .map(|(_, e)| e["type"].as_str().unwrap())
            .collect();
        if types.contains(&"package.visible") {
            assert_eq!(types, ["package.pushed", "package.visible"]);
            break events;
        }
        assert!(Instant::now() < deadline, "no package.visible: {types:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let visible = &events
        .iter()
        .find(|(_, e)| e["type"] == "package.visible" && e["data"]["name"] == "hello")
        .unwrap()
        .1;
    assert_eq!(visible["data"]["repository"], "admin/stable");
    assert_eq!(visible["data"]["distribution"], "debian/bookworm");
    assert_eq!(visible["data"]["filename"], "hello_1.0_amd64.deb");
    assert!(
        visible["data"]["visible_after_ms"].as_i64().unwrap() >= 0,
        "{visible}"
    );
    assert!(receiver.verified(&secret) >= 2);

    // The delivery log says so, through the operator command and the API.
    let out = packyard(
        &app,
        &[
            "webhook",
            "deliveries",
            "admin/stable",
            &id.to_string(),
            "--json",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", combined(&out));
    let log: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        log.iter()
            .all(|d| d["state"] == "delivered" && d["attempts"] == 1),
        "{log:?}"
    );
    let listed = stdout(&packyard(&app, &["webhook", "list", "admin/stable"]).await);
    assert!(
        listed.contains(&url) && !listed.contains(&secret),
        "{listed}"
    );

    // A yank is announced too, and a removed webhook hears nothing more.
    assert_eq!(
        app.destroy("stable", "debian/bookworm", "hello_1.0_amd64.deb")
            .await,
        200
    );
    let before = receiver.got.lock().unwrap().len();
    receiver.wait_for(before + 1).await;
    assert!(
        receiver
            .events()
            .iter()
            .any(|(_, e)| e["type"] == "package.yanked")
    );
    let out = packyard(
        &app,
        &["webhook", "remove", "admin/stable", &id.to_string()],
    )
    .await;
    assert!(out.status.success(), "{}", combined(&out));
    app.push_deb("stable", "later", "1.0", "amd64").await;
    app.wait_for_jobs().await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        !receiver
            .events()
            .iter()
            .any(|(_, e)| e["data"]["name"] == "later")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_receiver_gets_the_delivery_on_the_fourth_try_and_redelivery_repeats_it() {
    let (app, _stop) = app().await;
    app.create_repo("stable", false).await;
    let (receiver, url) = Receiver::start(3).await;
    // (The operator command reads the server's configuration, which does not allow loopback.)
    let added = app
        .post_form(
            "/api/v1/repos/admin/stable/webhooks.json",
            &[("url", url.as_str()), ("events", "webhook.test")],
        )
        .await;
    let (id, secret) = (
        added["id"].as_i64().unwrap().to_string(),
        added["secret"].as_str().unwrap().to_owned(),
    );
    let out = packyard(&app, &["webhook", "test", "admin/stable", &id]).await;
    assert!(out.status.success(), "{}", combined(&out));

    receiver.wait_for(4).await;
    let log: Vec<Value> = app
        .authed(
            reqwest::Method::GET,
            &format!("/api/v1/repos/admin/stable/webhooks/{id}/deliveries.json"),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut log = log;
    while log[0]["state"] != "delivered" {
        assert!(Instant::now() < deadline, "{log:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
        log = app
            .authed(
                reqwest::Method::GET,
                &format!("/api/v1/repos/admin/stable/webhooks/{id}/deliveries.json"),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    }
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["attempts"], 4, "{log:?}");
    let ids: Vec<String> = receiver.events().into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids.len(), 4);
    assert!(
        ids.iter().all(|i| *i == ids[0]),
        "one message, four attempts: {ids:?}"
    );
    assert_eq!(receiver.verified(&secret), 4);

    let redelivered = app
        .authed(
            reqwest::Method::POST,
            &format!(
                "/api/v1/repos/admin/stable/webhooks/{id}/deliveries/{}/redeliver.json",
                log[0]["id"]
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(redelivered.status(), 202);
    receiver.wait_for(5).await;
    assert_eq!(receiver.events()[4].0, ids[0], "the same message id again");
}

#[tokio::test]
async fn targets_on_private_networks_are_refused_unless_allowed() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    for url in [
        "http://10.0.0.1/hook",
        "http://127.0.0.1:9/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest",
        "http://localhost/x",
        "ftp://example.com/x",
    ] {
        let response = app
            .authed(
                reqwest::Method::POST,
                "/api/v1/repos/admin/stable/webhooks.json",
            )
            .form(&[("url", url)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "{url}");
    }
    let out = packyard(
        &app,
        &["webhook", "add", "admin/stable", "http://192.168.1.10/hook"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        combined(&out).contains("webhook_allow_hosts"),
        "{}",
        combined(&out)
    );
    let stranger = app.stranger_token().await;
    let hidden = app
        .get("/api/v1/repos/admin/stable/webhooks.json")
        .basic_auth(&stranger, Some(""))
        .send()
        .await
        .unwrap();
    assert!(hidden.status() == 404 || hidden.status() == 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_and_expiry_are_announced_once_per_threshold() {
    let (app, _stop) = app().await;
    app.create_repo("stable", false).await;
    app.push_deb("stable", "hello", "1.0", "amd64").await;
    app.wait_for_jobs().await;
    let (receiver, url) = Receiver::start(0).await;
    app.post_form(
        "/api/v1/repos/admin/stable/webhooks.json",
        &[
            ("url", url.as_str()),
            ("events", "key.expiring,key.rotated"),
        ],
    )
    .await;
    let repo = packyard::db::repos::by_owner_and_name(&app.app.db, "admin", "stable")
        .await
        .unwrap()
        .unwrap();
    // A key made elsewhere that expires in 20 days signs from now on.
    let short = packyard::sign::generate(
        "Short <k@example.invalid>",
        packyard::sign::KeyAlgorithm::Ed25519,
        20 * 86_400,
    )
    .unwrap();
    packyard::keys::import(&app.app, &repo, &short.secret_armored, false)
        .await
        .unwrap();
    assert_eq!(
        packyard::webhooks::announce_expiring_keys(&app.app)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        packyard::webhooks::announce_expiring_keys(&app.app)
            .await
            .unwrap(),
        0,
        "once per threshold"
    );
    receiver.wait_for(1).await;
    let (_, expiring) = receiver.events().remove(0);
    assert_eq!(expiring["type"], "key.expiring");
    assert_eq!(expiring["data"]["fingerprint"], short.fingerprint.as_str());
    assert_eq!(expiring["data"]["threshold_days"], 30);

    let out = packyard(
        &app,
        &["key", "rotate", "admin/stable", "--algorithm", "ed25519"],
    )
    .await;
    assert!(out.status.success(), "{}", combined(&out));
    receiver.wait_for(2).await;
    let (_, rotated) = receiver.events().remove(1);
    assert_eq!(rotated["type"], "key.rotated");
    assert_eq!(rotated["data"]["repository"], "admin/stable");
}
