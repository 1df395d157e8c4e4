//! The accept loop, with the bounds a listener needs whoever connects: a limit on
//! connections (more wait to be accepted), a deadline for a request's head (a
//! client that never finishes one is dropped), and a graceful end (requests in
//! flight finish within [`GRACE`] after shutdown).
//!
//! The API normally listens on loopback for local programs; the bounds are there
//! because `web.port` may name any interface.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Connections served at once.
const MAX_CONNECTIONS: usize = 512;
/// Time a client has to send a request's head.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Time requests in flight get to finish after shutdown.
const GRACE: Duration = Duration::from_secs(10);
/// Pause after a failed accept (out of file descriptors), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `app` on `listener` until `shutdown` is cancelled.
pub(crate) async fn run(listener: TcpListener, app: Router, shutdown: CancellationToken) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let builder = Arc::new(builder);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let tasks = TaskTracker::new();
    loop {
        let permit = tokio::select! {
            () = shutdown.cancelled() => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let tcp = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a web API connection failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let (builder, app, shutdown) = (builder.clone(), app.clone(), shutdown.clone());
        tasks.spawn(async move {
            let _permit = permit;
            let conn = builder
                .serve_connection_with_upgrades(TokioIo::new(tcp), TowerToHyperService::new(app));
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => return,
                () = shutdown.cancelled() => conn.as_mut().graceful_shutdown(),
            }
            // A request in flight finishes; the task ends when the connection does.
            let _ = conn.await;
        });
    }
    tasks.close();
    if tokio::time::timeout(GRACE, tasks.wait()).await.is_err() {
        tracing::info!("web API requests still running at shutdown were cut off");
    }
}
