//! The accept loop: TLS, then HTTP/1.1 or HTTP/2 on the same port, under a connection
//! limit, with graceful shutdown.
//!
//! `serve(listener, server, shutdown)` runs until `shutdown` is cancelled, then stops
//! accepting, lets requests in flight finish within the grace period, and returns.
//! Tests bind `127.0.0.1:0`, keep the listener and pass it in, so there is no race
//! between choosing a port and listening on it.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::BufWriter;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::backend::expiry::ExpiryPolicy;
use crate::http::{self, App};
use crate::tasks;

/// Everything `serve` needs besides the listener.
#[derive(Clone)]
pub struct Server {
    /// Request handling state.
    pub app: App,
    /// TLS configuration.
    pub tls: Arc<rustls::ServerConfig>,
    /// Lease expiry, if enabled.
    pub expiry: Option<ExpiryPolicy>,
}

/// Encrypted bytes a connection may hold for the socket (rustls's default is 64 KiB).
/// Each time the limit is reached the stream writes to the socket, so with the default
/// a 512 KiB share read went out in about nine system calls; with this, two or three,
/// which took about 7 % off the server's CPU per downloaded GiB. The cost is a larger
/// bound on what a stalled connection holds before it pushes back.
const TLS_BUFFER_LIMIT: usize = 256 * 1024;

/// Write buffer of an HTTP/2 connection.
const H2_WRITE_BUFFER: usize = 64 * 1024;

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// Serves until `shutdown` is cancelled.
///
/// # Errors
/// Only if the listener fails in a way that retrying cannot fix.
pub async fn serve(
    listener: TcpListener,
    server: Server,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let tracker = TaskTracker::new();
    tasks::spawn_all(&tracker, &server, &shutdown);
    let router = http::router(server.app.clone());
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&server.tls));
    let limits = server.app.limits.clone();
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut backoff = Duration::from_millis(10);
    loop {
        let permit = tokio::select! {
            () = shutdown.cancelled() => break,
            permit = Arc::clone(&permits).acquire_owned() => permit.expect("invariant: semaphore never closed"),
        };
        let (tcp, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => { backoff = Duration::from_millis(10); pair }
                Err(e) => {
                    // EMFILE and friends: wait and retry rather than spin or die.
                    tracing::warn!(error = %e, "accept failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(router.clone());
        let watcher = graceful.watcher();
        let conn_shutdown = shutdown.clone();
        tracker.spawn(async move {
            let _permit = permit;
            let mut tls = tokio::select! {
                () = conn_shutdown.cancelled() => return,
                r = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)) => match r {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => { tracing::debug!(%peer, error = %e, "TLS handshake failed"); return; }
                    Err(_) => { tracing::debug!(%peer, "TLS handshake timed out"); return; }
                },
            };
            tls.get_mut().1.set_buffer_limit(Some(TLS_BUFFER_LIMIT));
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder.http2().max_concurrent_streams(256).enable_connect_protocol();
            // HTTP/2 writes one TLS record, and one system call, per 16 KiB frame; a
            // write buffer under it lets one flush carry several frames. HTTP/1.1
            // (hyper buffers it already) and idle WebSocket connections go without, to
            // keep an idle connection small.
            let io = if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                Either::Left(BufWriter::with_capacity(H2_WRITE_BUFFER, tls))
            } else {
                Either::Right(tls)
            };
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service).into_owned();
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!("no longer accepting; ending feeds and finishing requests in flight");
    // Feeds end themselves (close frame, end of stream): graceful shutdown alone would
    // wait on them for the whole grace period.
    server
        .app
        .feeds
        .close_all(crate::feeds::CloseReason::Shutdown);
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(grace = ?limits.shutdown_grace, "requests still open after the grace period; closing them");
    }
    tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(1), tracker.wait()).await;
    Ok(())
}
