//! `GET /metrics`: Prometheus text exposition on the main listener of every role, behind
//! `metrics_token` (a bearer token) when one is set.
//!
//! What this process counts (requests, pushes, publish lag, index builds, failed jobs,
//! downloads, failed authentications) is recorded with the `metrics` crate; what the
//! database knows (queue depth, last publishes, key expiry, stored bytes, last backup) is read
//! at each scrape, so every process reports the same figures and none goes stale. Labels are
//! route templates, formats, kinds and repositories: never a raw path, a package or a token.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

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
        // Histograms keep their samples until upkeep folds them into buckets.
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_secs(5));
                    upkeep.run_upkeep();
                }
            })
            .expect("starting the metrics upkeep thread");
        handle
    })
}

/// The handles of one route and method, resolved once: a request then records without
/// building label sets or looking them up.
struct RouteMetrics {
    duration: metrics::Histogram,
    by_status: Mutex<Vec<(u16, metrics::Counter)>>,
    route: String,
    method: String,
}

impl RouteMetrics {
    fn requests(&self, status: u16) -> metrics::Counter {
        let mut by_status = self.by_status.lock().expect("never poisoned");
        if let Some((_, counter)) = by_status.iter().find(|(s, _)| *s == status) {
            return counter.clone();
        }
        let counter = metrics::counter!(
            "packyard_http_requests_total",
            "route" => self.route.clone(),
            "method" => self.method.clone(),
            "status" => status.to_string()
        );
        by_status.push((status, counter.clone()));
        counter
    }
}

type RouteTable = RwLock<HashMap<String, Vec<(axum::http::Method, Arc<RouteMetrics>)>>>;

fn route_metrics(route: &str, method: &axum::http::Method) -> Arc<RouteMetrics> {
    static ROUTES: OnceLock<RouteTable> = OnceLock::new();
    let routes = ROUTES.get_or_init(Default::default);
    if let Some(found) = routes
        .read()
        .expect("never poisoned")
        .get(route)
        .and_then(|methods| methods.iter().find(|(m, _)| m == method))
    {
        return found.1.clone();
    }
    let metrics = Arc::new(RouteMetrics {
        duration: metrics::histogram!(
            "packyard_http_request_duration_seconds",
            "route" => route.to_owned(),
            "method" => method.as_str().to_owned()
        ),
        by_status: Mutex::default(),
        route: route.to_owned(),
        method: method.as_str().to_owned(),
    });
    let mut routes = routes.write().expect("never poisoned");
    let methods = routes.entry(route.to_owned()).or_default();
    match methods.iter().find(|(m, _)| m == method) {
        Some((_, existing)) => existing.clone(),
        None => {
            methods.push((method.clone(), metrics.clone()));
            metrics
        }
    }
}

/// Counts and times every request by its route template (routes are a fixed set, so the
/// handles are resolved once each); while the process drains, tells the client to close
/// the connection after this response (see `http::server`).
pub async fn track(State(app): State<App>, request: Request, next: Next) -> Response {
    let metrics = match request.extensions().get::<MatchedPath>() {
        Some(path) => route_metrics(path.as_str(), request.method()),
        None => route_metrics("unmatched", request.method()),
    };
    let started = Instant::now();
    let mut response = next.run(request).await;
    metrics.duration.record(started.elapsed().as_secs_f64());
    metrics.requests(response.status().as_u16()).increment(1);
    if app.draining.load(std::sync::atomic::Ordering::Relaxed) {
        response.headers_mut().insert(
            header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    response
}

/// The download counter of a format, resolved once.
pub fn downloads(format: &'static str) -> &'static metrics::Counter {
    static DEB: OnceLock<metrics::Counter> = OnceLock::new();
    static RPM: OnceLock<metrics::Counter> = OnceLock::new();
    static OTHER: OnceLock<metrics::Counter> = OnceLock::new();
    let cell = match format {
        "deb" => &DEB,
        "rpm" => &RPM,
        _ => &OTHER,
    };
    cell.get_or_init(|| metrics::counter!("packyard_downloads_total", "format" => format))
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
