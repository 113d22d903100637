//! The HTTP surface: packagecloud-compatible API v1, repository files for apt, and
//! operational endpoints. Handlers never write index files; they queue jobs.

mod api;
pub(crate) mod auth;
mod error;
mod install;
mod ops;
mod present;
mod repo;
mod router;

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
    let service = router(app).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown)
        .await
}
