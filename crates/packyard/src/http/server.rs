//! Accepting and serving connections, and stopping without failing a request.
//!
//! On shutdown the process first *drains*: `/readyz` answers 503 and every response says
//! `Connection: close`, while the listener keeps accepting for `shutdown_drain_ms`, so load
//! balancers and clients move to other processes (or to a new process bound to the same port
//! with `SO_REUSEPORT`). Then the listener closes, connections finish their requests (uploads
//! included) for up to `shutdown_timeout_secs`, and the process exits.
//!
//! The listener is a socket systemd passes (`LISTEN_FDS`, socket activation: old and new
//! process share one accept queue), or one bound with `SO_REUSEPORT`, so a new process can
//! listen on the port before the old one leaves. Linux resets connections still queued on a
//! closing `SO_REUSEPORT` listener unless `net.ipv4.tcp_migrate_req = 1` hands them over.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::app::App;

/// The listener `serve` runs on: the first socket systemd passed, or `addr` bound with
/// `SO_REUSEPORT`.
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    // Only when systemd passed sockets: reading them clears the variables, which is best done
    // before other threads read the environment.
    if std::env::var_os("LISTEN_FDS").is_some()
        && let Some(listener) = listenfd::ListenFd::from_env().take_tcp_listener(0)?
    {
        listener.set_nonblocking(true)?;
        tracing::info!(listen = %listener.local_addr()?, "listening on the socket systemd passed");
        return TcpListener::from_std(listener);
    }
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Serves `app` on `listener` until `shutdown` completes, then drains and stops as the module
/// says.
pub async fn serve(
    listener: TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = super::router(app.clone());
    let connections = TaskTracker::new();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let drain = Duration::from_millis(app.config.shutdown_drain_ms);
    let header_timeout = Duration::from_secs(app.config.request_header_timeout_secs.max(1));
    let draining = {
        let app = app.clone();
        async move {
            shutdown.await;
            app.draining.store(true, Ordering::Relaxed);
            tracing::info!(
                drain_ms = drain.as_millis() as u64,
                "draining: /readyz answers 503"
            );
            tokio::time::sleep(drain).await;
        }
    };
    tokio::pin!(draining);
    loop {
        let (stream, client) = tokio::select! {
            () = &mut draining => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: wait rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Without TCP_NODELAY, a streamed body's first segment waits for the client's delayed
        // ACK of the headers: 40 ms on every small download.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "setting TCP_NODELAY failed");
        }
        let router = router.clone();
        let mut stop = stop_rx.clone();
        connections.spawn(async move {
            let service =
                hyper::service::service_fn(move |mut request: Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(client));
                    router.clone().oneshot(request.map(axum::body::Body::new))
                });
            let mut builder = auto::Builder::new(TokioExecutor::new());
            // A client gets this long to send its headers (hyper's timer also covers the
            // headers of each later request on a kept-alive connection).
            builder
                .http1()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_timeout);
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            tokio::pin!(connection);
            loop {
                tokio::select! {
                    result = connection.as_mut() => {
                        if let Err(e) = result {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                        break;
                    }
                    _ = stop.changed() => connection.as_mut().graceful_shutdown(),
                }
            }
        });
    }
    drop(listener);
    tracing::info!(
        connections = connections.len(),
        "listener closed; finishing requests"
    );
    let _ = stop_tx.send(true);
    connections.close();
    let timeout = Duration::from_secs(app.config.shutdown_timeout_secs);
    if tokio::time::timeout(timeout, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            connections = connections.len(),
            timeout_secs = timeout.as_secs(),
            "requests still running at shutdown_timeout_secs; stopping anyway"
        );
    }
    Ok(())
}
