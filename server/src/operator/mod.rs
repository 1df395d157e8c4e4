//! The operator listener: a second, plain-HTTP listener (loopback by default,
//! `[swamp] operator_port`) for the people and programs that run the node, never for
//! storage clients. It serves `/metrics` (Prometheus), `/healthz` (the process
//! answers) and `/readyz` (storage writable, log open, accepting connections), with
//! no secret, since monitoring systems scrape them.
//!
//! Why a listener of its own: a storage client holds the swissnum, so nothing an
//! operator sees may hang off the storage port's authority; and Prometheus, health
//! probes and a browser speak plain HTTP to a port a firewall keeps local.
//!
//! Behind the operator secret (a header, or the cookie a login sets: `session`): the
//! live dashboard (`/dashboard`, `dashboard`), the activity stream (`/activity`, as on
//! the storage port) and the node's state as JSON (`/status`, `status`, read by
//! `swamp-server status`, `status_cli`); and `POST /reload` (`reload`), with the secret
//! in a header.
//!
//! `serve_operator(listener, app, shutdown)` follows `serve`: tests bind
//! `127.0.0.1:0` and pass the listener in.

pub(crate) mod dashboard;
pub mod health;
pub mod metrics;
pub mod reload;
pub(crate) mod session;
pub mod status;
pub mod status_cli;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::http::App;

/// Paths of the operator listener.
pub const METRICS: &str = "/metrics";
/// Liveness.
pub const HEALTHZ: &str = "/healthz";
/// Readiness.
pub const READYZ: &str = "/readyz";
/// The dashboard page (and its login form).
pub const DASHBOARD: &str = "/dashboard";
/// Login: `secret=<operator secret>`, form-encoded; sets the session cookie.
pub const LOGIN: &str = "/login";
/// Logout: clears the session cookie.
pub const LOGOUT: &str = "/logout";
/// The activity stream (guarded).
pub const ACTIVITY: &str = "/activity";
/// The node's state as JSON (guarded).
pub const STATUS: &str = "/status";
/// Reload the configuration (`POST`, guarded by the secret in a header).
pub const RELOAD: &str = "/reload";

/// How long a scrape or probe may take before it is answered 503.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a connection may take to send a request's headers (also how long an idle
/// kept-alive connection stays).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections open at once; more are closed at once.
const MAX_CONNECTIONS: usize = 32;

/// The operator listener's routes.
pub fn router(app: App) -> Router {
    let guarded = Router::new()
        .route(ACTIVITY, get(activity))
        .route(STATUS, get(status::status))
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            session::require,
        ));
    Router::new()
        .route(METRICS, get(metrics))
        .route(HEALTHZ, get(health::healthz))
        .route(READYZ, get(health::readyz))
        .route("/", get(dashboard::root))
        .route(DASHBOARD, get(dashboard::page))
        .route(LOGIN, post(session::login))
        .route(LOGOUT, post(session::logout))
        .route(RELOAD, post(reload::reload))
        .merge(guarded)
        .layer(axum::middleware::from_fn(bounded))
        .with_state(app)
}

/// `GET /activity`: the activity stream, as on the storage port.
async fn activity(State(app): State<App>, request: axum::extract::Request) -> Response {
    crate::http::activity::respond(app, &request).into_response()
}

/// Answers 503 to a request that takes longer than [`REQUEST_TIMEOUT`].
async fn bounded(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the request took too long\n",
        )
            .into_response(),
    }
}

/// Serves the operator listener (plain HTTP/1.1) until `shutdown` is cancelled; then
/// closes its connections.
///
/// # Errors
/// If the listener fails in a way retrying cannot fix.
pub async fn serve_operator(
    listener: TcpListener,
    app: App,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let router = router(app);
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (tcp, _) = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "operator listener: accept failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            continue;
        };
        let service = TowerToHyperService::new(router.clone());
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(tcp), service);
            tokio::select! {
                _ = connection => {}
                () = shutdown.cancelled() => {}
            }
        });
    }
}

/// `GET /metrics`: OpenMetrics-compatible Prometheus text.
async fn metrics(State(app): State<App>) -> Response {
    let storage = Arc::clone(&app.storage);
    // statvfs and the feeds' queue sizes: quick, but not for an async worker.
    let snapshot = tokio::task::spawn_blocking(move || health::snapshot(&storage)).await;
    let Ok((disk, uploads_in_progress, reserved, accepting)) = snapshot else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "reading the figures failed",
        )
            .into_response();
    };
    let now = metrics::Snapshot {
        activity: app.activity.read(),
        disk,
        reserved_space: reserved,
        accepting_immutable_shares: accepting,
        uploads_in_progress,
        feeds: app.feeds.figures(),
        // Read now: a reload may have replaced them, and states change with time.
        certificates: app.certificates.get().statuses(app.storage.now()),
        lease_expiry_enabled: app.expiry.get().is_some(),
        lease_expiry: app.storage.expiry_progress().read(),
    };
    let body = app.metrics.render(&now);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}
