//! `/metrics` read by Prometheus's own tools: `promtool check metrics` accepts the exposition,
//! the publish lag histogram counts a push, labels are route templates, the token guards it,
//! and `promtool check rules` accepts the shipped alerts.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::TestApp;

/// `promtool check metrics` on `text`: its success and what it printed.
fn promtool_check_metrics(text: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (scripts/test installs prometheus)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

/// The value of the sample `name` with exactly these `labels` (`key="value"` pairs, in any
/// order), or 0 when it is absent.
fn sample(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, "}"));
            (metric == name).then_some((rest.trim_end_matches('}'), value))
        })
        .filter(|(series_labels, _)| labels.iter().all(|l| series_labels.contains(l)))
        .map(|(_, value)| value.parse::<f64>().unwrap())
        .sum()
}

#[tokio::test]
async fn metrics_parse_with_promtool_and_count_what_happens() {
    let app = TestApp::builder()
        .key_algorithm(packyard::sign::KeyAlgorithm::Ed25519)
        .start()
        .await;
    app.create_repo("stable", false).await;
    let before = app.text("/metrics").await;
    let lag_before = sample(
        &before,
        "packyard_publish_lag_seconds_count",
        &["format=\"deb\""],
    );
    let pushes_before = sample(
        &before,
        "packyard_pushes_total",
        &["format=\"deb\"", "result=\"created\""],
    );

    app.push_deb("stable", "hello", "1.0", "amd64").await;
    app.wait_for_jobs().await;
    assert_eq!(
        app.status("/admin/stable/debian/pool/bookworm/main/h/hello/hello_1.0_amd64.deb")
            .await,
        200
    );
    let bad = app
        .get("/api/v1/repos.json")
        .basic_auth("not-a-token", Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);

    let text = app.text("/metrics").await;
    let (ok, said) = promtool_check_metrics(&text);
    assert!(ok, "promtool rejects the exposition:\n{said}\n{text}");
    assert!(
        sample(
            &text,
            "packyard_publish_lag_seconds_count",
            &["format=\"deb\""]
        ) > lag_before,
        "{text}"
    );
    assert!(
        sample(
            &text,
            "packyard_pushes_total",
            &["format=\"deb\"", "result=\"created\""]
        ) > pushes_before
    );
    assert!(sample(&text, "packyard_downloads_total", &["format=\"deb\""]) >= 1.0);
    assert!(sample(&text, "packyard_auth_failures_total", &[]) >= 1.0);
    assert!(
        sample(
            &text,
            "packyard_build_info",
            &[&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))]
        ) == 1.0
    );
    assert!(
        sample(
            &text,
            "packyard_http_requests_total",
            &[
                "route=\"/{owner}/{repo}/{*path}\"",
                "method=\"GET\"",
                "status=\"200\""
            ]
        ) >= 1.0,
        "requests are labelled by route template"
    );
    assert!(
        !text.contains("hello_1.0_amd64.deb"),
        "no raw path is a label"
    );
    assert!(
        sample(
            &text,
            "packyard_last_publish_timestamp_seconds",
            &["repo=\"admin/stable\"", "target=\"debian/bookworm\""]
        ) > 0.0
    );
    assert!(
        sample(
            &text,
            "packyard_signing_key_expiry_timestamp_seconds",
            &["repo=\"admin/stable\"", "state=\"active\""]
        ) > 0.0
    );
    assert_eq!(
        sample(&text, "packyard_jobs_oldest_queued_age_seconds", &[]),
        0.0
    );
    assert!(sample(&text, "packyard_blob_bytes", &[]) > 0.0);
}

#[tokio::test]
async fn a_metrics_token_guards_the_endpoint() {
    let config_app = TestApp::builder().metrics_token("scrape-me").start().await;
    let denied = config_app.get("/metrics").send().await.unwrap();
    assert_eq!(denied.status(), 401);
    let wrong = config_app
        .get("/metrics")
        .bearer_auth("guess")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let allowed = config_app
        .get("/metrics")
        .bearer_auth("scrape-me")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
}

#[test]
fn the_shipped_alerts_pass_promtool() {
    let rules = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/prometheus/alerts.yml"
    );
    let out = Command::new("promtool")
        .args(["check", "rules", rules])
        .output()
        .expect("promtool runs (scripts/test installs prometheus)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("SUCCESS: 5 rules found"));
}
