//! `GET /metrics`: Prometheus text exposition on the main listener of every role, behind
//! `metrics_token` (a bearer token) when one is set.
//!
//! What this process counts (requests, pushes, publish lag, index builds, failed jobs,
//! downloads, failed authentications) is recorded with the `metrics` crate; what the
//! database knows (queue depth, last publishes, key expiry, stored bytes, last backup) is read
//! at each scrape, so every process reports the same figures and none goes stale. Labels are
//! route templates, formats, kinds and repositories: never a raw path, a package or a token.

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use subtle::ConstantTimeEq;

use crate::app::App;
use crate::db;

/// Buckets of every `*_seconds` histogram: from a fast publish to a slow upload.
const SECONDS_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed on first use.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
            .expect("the buckets are not empty")
            .install_recorder()
            .expect("no other metrics recorder is installed");
        metrics::describe_counter!(
            "packyard_http_requests_total",
            "HTTP requests by route template, method and status"
        );
        metrics::describe_histogram!(
            "packyard_http_request_duration_seconds",
            "HTTP request durations by route template and method"
        );
        metrics::describe_counter!(
            "packyard_pushes_total",
            "Package pushes by format and result"
        );
        metrics::describe_histogram!(
            "packyard_publish_lag_seconds",
            "From a push accepted to the generation that lists it being current"
        );
        metrics::describe_histogram!(
            "packyard_index_build_duration_seconds",
            "Building one target's index files"
        );
        metrics::describe_counter!(
            "packyard_jobs_failed_total",
            "Job attempts that failed, by kind"
        );
        metrics::describe_counter!(
            "packyard_downloads_total",
            "Package file downloads by format"
        );
        metrics::describe_counter!("packyard_auth_failures_total", "Failed authentications");
        metrics::describe_gauge!(
            "packyard_build_info",
            "The running version and commit (always 1)"
        );
        metrics::gauge!(
            "packyard_build_info",
            "version" => crate::status::VERSION,
            "commit" => crate::status::COMMIT
        )
        .set(1.0);
        handle
    })
}

/// Counts and times every request by its route template.
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!("packyard_http_request_duration_seconds", "route" => route.clone(), "method" => method.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("packyard_http_requests_total", "route" => route, "method" => method, "status" => status)
        .increment(1);
    response
}

pub async fn metrics(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Some(expected) = &app.config.metrics_token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "metrics need the bearer token metrics_token",
            )
                .into_response();
        }
    }
    let mut text = handle().render();
    match from_database(&app).await {
        Ok(more) => text.push_str(&more),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "reading metrics from the database failed");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// A label value with `\`, `"` and newlines escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// One gauge family: its help, type, and samples (labels, value).
fn gauge(out: &mut String, name: &str, help: &str, samples: &[(Vec<(&str, String)>, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
    for (labels, value) in samples {
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", label(v)))
            .collect();
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{}}} {value}", labels.join(","));
        }
    }
}

async fn from_database(app: &App) -> anyhow::Result<String> {
    let now = db::now();
    let mut out = String::new();
    let depths = db::jobs::depths(&app.db).await?;
    let queued: Vec<_> = depths
        .iter()
        .map(|(kind, queued, _, _)| (vec![("kind", kind.clone())], *queued as f64))
        .collect();
    gauge(
        &mut out,
        "packyard_jobs_queued",
        "Jobs waiting to run, by kind",
        &queued,
    );
    let oldest = depths
        .iter()
        .filter_map(|(_, _, _, at)| *at)
        .min()
        .map_or(0, |at| (now - at).max(0));
    gauge(
        &mut out,
        "packyard_jobs_oldest_queued_age_seconds",
        "How long the oldest queued job has waited",
        &[(vec![], oldest as f64)],
    );
    let published: Vec<_> = crate::status::collect_targets(app)
        .await?
        .into_iter()
        .map(|t| {
            (
                vec![("repo", t.repository), ("target", t.target)],
                t.published_at as f64,
            )
        })
        .collect();
    gauge(
        &mut out,
        "packyard_last_publish_timestamp_seconds",
        "When each target's current index was published",
        &published,
    );
    let keys: Vec<_> = db::signing_keys::all_keys(&app.db)
        .await?
        .into_iter()
        .filter(|(_, _, k)| k.state.published() && k.expires_at != crate::sign::NEVER_EXPIRES)
        .map(|(owner, repo, k)| {
            (
                vec![
                    ("repo", format!("{owner}/{repo}")),
                    ("fingerprint", k.fingerprint),
                    ("state", k.state.name().to_owned()),
                ],
                k.expires_at as f64,
            )
        })
        .collect();
    gauge(
        &mut out,
        "packyard_signing_key_expiry_timestamp_seconds",
        "When each signing key that is not retired expires",
        &keys,
    );
    let bytes = app
        .db
        .scalar_i64("SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM packages")
        .await?;
    gauge(
        &mut out,
        "packyard_blob_bytes",
        "Bytes of package files stored (index files aside)",
        &[(vec![], bytes as f64)],
    );
    if let Some(at) = db::audit::last_success(&app.db, "backup").await? {
        gauge(
            &mut out,
            "packyard_backup_last_success_timestamp_seconds",
            "When the last backup succeeded",
            &[(vec![], at as f64)],
        );
    }
    Ok(out)
}
