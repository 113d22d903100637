//! Liveness and readiness.

use axum::extract::State;
use axum::http::StatusCode;

use crate::app::App;

pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the database and the blob storage answer, and the process is not shutting down.
pub async fn readyz(State(app): State<App>) -> (StatusCode, &'static str) {
    if app.draining.load(std::sync::atomic::Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    // Bounded: a probe must hear back while the pool is still waiting for the database.
    let ping = tokio::time::timeout(std::time::Duration::from_secs(2), app.db.ping()).await;
    if !matches!(ping, Ok(Ok(()))) {
        return (StatusCode::SERVICE_UNAVAILABLE, "database unreachable");
    }
    if app.blobs.ping().await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "blob storage unreachable");
    }
    (StatusCode::OK, "ready")
}
