//! The accept loop: TLS, then HTTP/1.1 or HTTP/2 on the same port, under a connection
//! limit, with graceful shutdown.
//!
//! `serve(listener, server, shutdown)` runs until `shutdown` is cancelled, then stops
//! accepting, lets requests in flight finish within the grace period, and returns.
//! Tests bind `127.0.0.1:0`, keep the listener and pass it in, so there is no race
//! between choosing a port and listening on it.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::BufWriter;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::connection::ConnectionService;
use crate::connection::in_flight::{IdleBounds, InFlight};
use crate::connection::io::TimedIo;
use crate::http::{self, App};
use crate::node::Limits;
use crate::tasks;

/// Everything `serve` needs besides the listener.
#[derive(Clone)]
pub struct Server {
    /// Request handling state.
    pub app: App,
    /// TLS configuration.
    pub tls: Arc<rustls::ServerConfig>,
}

/// Encrypted bytes a connection may hold for the socket (rustls's default is 64 KiB).
/// Each time the limit is reached the stream writes to the socket, so with the default
/// a 512 KiB share read went out in about nine system calls; with this, two or three,
/// which took about 7 % off the server's CPU per downloaded GiB. The cost is a larger
/// bound on what a stalled connection holds before it pushes back.
const TLS_BUFFER_LIMIT: usize = 256 * 1024;

/// Write buffer of an HTTP/2 connection.
const H2_WRITE_BUFFER: usize = 64 * 1024;

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
    let background = tasks::Background {
        storage: Arc::clone(&server.app.storage),
        activity: Arc::clone(&server.app.activity),
        limits: server.app.limits.clone(),
        expiry: server.app.expiry.clone(),
        metrics: Arc::clone(&server.app.metrics),
    };
    tasks::spawn_all(&tracker, background, &shutdown);
    let router = http::router(server.app.clone());
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&server.tls));
    // A reload changes the limits: each connection is served under the ones in force
    // when it was accepted, and the connection limit follows at once.
    let mut limit_changes = server.app.limits.changes();
    let mut limits = server.app.limits.get();
    let mut builder = connection_builder(&limits);
    let permits = crate::permits::Permits::new(limits.max_connections);
    // True while every connection place is taken: idle connections then get the short
    // idle bound, so that they make room for the clients waiting (`in_flight.rs`).
    let (full, _) = watch::channel(false);
    let mut backoff = Duration::from_millis(10);
    let accepting = Arc::clone(&server.app.accepting);
    accepting.store(true, std::sync::atomic::Ordering::Relaxed);
    // After a reload: the new limits for the next connection, and the new number of
    // places.
    let refresh = |changes: &mut watch::Receiver<Arc<Limits>>,
                   limits: &mut Arc<Limits>,
                   builder: &mut auto::Builder<TokioExecutor>| {
        // Compared by identity, not `has_changed`: the wait for a place below has
        // already marked the change seen when it wakes for it.
        let now = Arc::clone(&changes.borrow_and_update());
        if !Arc::ptr_eq(&now, limits) {
            *limits = now;
            *builder = connection_builder(limits);
            permits.resize(limits.max_connections);
        }
    };
    loop {
        refresh(&mut limit_changes, &mut limits, &mut builder);
        let permit = match Arc::clone(permits.semaphore()).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                full.send_replace(true);
                let permit = tokio::select! {
                    () = shutdown.cancelled() => break,
                    // A reload may add places: look again.
                    _ = limit_changes.changed() => { full.send_replace(false); continue; }
                    permit = Arc::clone(permits.semaphore()).acquire_owned() => permit.expect("invariant: semaphore never closed"),
                };
                full.send_replace(false);
                permit
            }
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
        // The accept waited: a reload may have come meanwhile.
        refresh(&mut limit_changes, &mut limits, &mut builder);
        let _ = tcp.set_nodelay(true);
        let connection = Connection {
            acceptor: acceptor.clone(),
            builder: builder.clone(),
            router: router.clone(),
            limits: Arc::clone(&limits),
            shutdown: shutdown.clone(),
            full: full.subscribe(),
            peer,
        };
        tracker.spawn(async move {
            let _permit = permit;
            connection.serve(tcp).await;
        });
    }
    drop(listener);
    accepting.store(false, std::sync::atomic::Ordering::Relaxed);
    tracing::info!("no longer accepting; ending feeds and finishing requests in flight");
    // Feeds end themselves (close frame, end of stream): graceful shutdown alone would
    // wait on them for the whole grace period.
    server
        .app
        .feeds
        .close_all(crate::feeds::CloseReason::Shutdown);
    tracker.close();
    let limits = server.app.limits.get();
    if tokio::time::timeout(limits.shutdown_grace, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(grace = ?limits.shutdown_grace, "requests still open after the grace period; closing them");
    }
    let storage = Arc::clone(&server.app.storage);
    if let Err(e) = tokio::task::spawn_blocking(move || storage.checkpoint_at_shutdown()).await {
        tracing::error!(error = %e, "the shutdown checkpoint did not finish");
    }
    Ok(())
}

/// The HTTP side of every connection, with hyper's own timers: HTTP/2 pings, and the
/// HTTP/1.1 header read timeout. hyper starts the latter when the connection becomes
/// ready for its next request, so it also bounds keep-alive idleness: it is set to the
/// longest idle bound, as a backstop to the connection's own idle bounds.
fn connection_builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.idle_timeout.max(limits.header_read_timeout));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256)
        .enable_connect_protocol()
        .keep_alive_interval(limits.ping_interval)
        .keep_alive_timeout(limits.ping_timeout);
    builder
}

/// One accepted connection, before its TLS handshake.
struct Connection {
    acceptor: tokio_rustls::TlsAcceptor,
    builder: auto::Builder<TokioExecutor>,
    router: axum::Router,
    limits: Arc<Limits>,
    shutdown: CancellationToken,
    full: watch::Receiver<bool>,
    peer: std::net::SocketAddr,
}

/// How long a connection closed for idleness may take to end by itself (HTTP/2's
/// GOAWAY exchange) before it is dropped.
const IDLE_CLOSE_GRACE: Duration = Duration::from_secs(1);

impl Connection {
    /// Handshake, then serve until the client leaves, the connection has been idle for
    /// the idle timeout, or the server shuts down (both of which end it gracefully:
    /// HTTP/2 GOAWAY, or HTTP/1.1 closing after the answer in flight).
    async fn serve(self, tcp: TcpStream) {
        let Self {
            acceptor,
            builder,
            router,
            limits,
            shutdown,
            full,
            peer,
        } = self;
        let tcp = TimedIo::new(tcp, limits.write_timeout);
        let mut tls = tokio::select! {
            () = shutdown.cancelled() => return,
            r = tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)) => match r {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => { tracing::debug!(%peer, error = %e, "TLS handshake failed"); return; }
                Err(_) => { tracing::debug!(%peer, "TLS handshake timed out"); return; }
            },
        };
        tls.get_mut().1.set_buffer_limit(Some(TLS_BUFFER_LIMIT));
        // HTTP/2 writes one TLS record, and one system call, per 16 KiB frame; a write
        // buffer under it lets one flush carry several frames. HTTP/1.1 (hyper buffers
        // it already) and idle WebSocket connections go without, to keep an idle
        // connection small.
        let io = if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
            Either::Left(BufWriter::with_capacity(H2_WRITE_BUFFER, tls))
        } else {
            Either::Right(tls)
        };
        let in_flight = InFlight::default();
        let service = ConnectionService::new(router, in_flight.clone(), limits.body_read_timeout);
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(service));
        tokio::pin!(conn);
        let bounds = IdleBounds {
            short: limits.header_read_timeout,
            long: limits.idle_timeout,
        };
        let idle = in_flight.idle(bounds, full);
        tokio::pin!(idle);
        let mut closing = false;
        // Set when closed for idleness: by then, with still no request in flight (an
        // HTTP/1.1 head that never completes), the connection is dropped.
        let mut drop_at = None;
        let result = loop {
            tokio::select! {
                result = conn.as_mut() => break result,
                () = shutdown.cancelled(), if !closing => {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
                () = &mut idle, if !closing => {
                    tracing::debug!(%peer, "idle connection; closing it");
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                    drop_at = Some(tokio::time::Instant::now() + IDLE_CLOSE_GRACE);
                }
                () = sleep_until_some(drop_at) => {
                    if in_flight.count() == 0 {
                        tracing::debug!(%peer, "idle connection did not close; dropping it");
                        return;
                    }
                    drop_at = None;
                }
            }
        };
        if let Err(e) = result {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
        }
    }
}

/// Sleeps until `at`, or for ever when there is none.
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
