//! The HTTP surface: packagecloud-compatible API v1, repository files for apt, and
//! operational endpoints. Handlers never write index files; they queue jobs.

mod api;
pub(crate) mod auth;
mod error;
mod install;
pub mod metrics;
mod ops;
mod present;
mod repo;
mod router;
mod system;

pub use router::router;

use std::future::Future;
use std::net::SocketAddr;

use crate::app::App;

/// Serves `app` on `listener` until `shutdown` completes, then lets in-flight requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let service = router(app).into_make_service_with_connect_info::<SocketAddr>();
    // Without TCP_NODELAY, a streamed body's first segment waits for the client's delayed ACK
    // of the headers: 40 ms on every small download.
    let listener = listener.tap_io(|stream| {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "setting TCP_NODELAY failed");
        }
    });
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown)
        .await
}
