//! The GBS HTTP API: routes, authorization, and one file per resource family.
//!
//! `router(app)` is everything a connection serves. Storage routes check the swissnum
//! first (401 before anything else), then each handler checks exactly the secrets its
//! endpoint needs, then the body. Paths whose storage index or share number does not
//! parse match no route (404), which also keeps path traversal out.

pub mod activity;
pub mod budget;
pub mod buffers;
pub mod error;
pub mod extract;
pub mod feed;
pub mod immutable;
pub mod lease;
pub mod mutable;
pub mod negotiate;
pub mod read;
pub mod read_pool;
pub mod trace;
pub mod version;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter};
use swamp_proto::secrets::Swissnum;

use crate::backend::Storage;
use crate::node::Limits;
pub use error::ApiError;

/// What every request handler shares: cloned for every extractor and middleware of
/// every request, so a clone is one reference count.
#[derive(Clone)]
pub struct App(Arc<AppState>);

impl App {
    /// Shares `state` among the request handlers.
    pub fn new(state: AppState) -> Self {
        Self(Arc::new(state))
    }
}

impl std::ops::Deref for App {
    type Target = AppState;

    fn deref(&self) -> &AppState {
        &self.0
    }
}

/// What an [`App`] holds.
pub struct AppState {
    /// The storage backend.
    pub storage: Arc<Storage>,
    /// The swissnum clients must present.
    pub swissnum: Swissnum,
    /// Request limits and timeouts (changed by a reload; a connection keeps the ones
    /// it was accepted under).
    pub limits: crate::live::Live<Limits>,
    /// The change feeds.
    pub feeds: Arc<crate::feeds::Feeds>,
    /// Activity counters for the operator's stream.
    pub activity: Arc<crate::activity::Activity>,
    /// The operator's secret (a reload may change it).
    pub operator_secret: crate::live::Live<crate::node::OperatorSecret>,
    /// Lease expiry, if enabled (the sweep reads it at each storage index prefix).
    pub expiry: crate::live::Live<Option<crate::backend::expiry::ExpiryPolicy>>,
    /// The grid-manager certificates announced, as last checked.
    pub certificates: crate::live::Live<crate::node::grid_manager::GridCertificates>,
    /// Reused upload body buffers.
    pub buffers: Arc<buffers::BufferPool>,
    /// Reused buffers for reads answered from the page cache.
    pub reads: Arc<read_pool::ReadPool>,
    /// The memory all request bodies in flight may take together.
    pub budget: Arc<budget::BodyBudget>,
    /// The node's metrics (`crate::operator`).
    pub metrics: Arc<crate::operator::metrics::Metrics>,
    /// Reloads the node's configuration (set when it was started from a node
    /// directory; `crate::reload`).
    pub reload: std::sync::OnceLock<Arc<dyn Reload>>,
    /// Whether the storage listener accepts connections (for readiness).
    pub accepting: Arc<std::sync::atomic::AtomicBool>,
}

/// What reloads the node's configuration (`crate::reload::Reloader`), as the operator
/// listener asks for it: a trait here, so that the HTTP layer does not depend on the
/// layer that assembles and reloads a node.
pub trait Reload: Send + Sync {
    /// Reads the configuration again and applies it: the report (as JSON), or why
    /// the configuration was refused (nothing changed then). Blocks on file reads.
    ///
    /// # Errors
    /// The reason, for a person.
    fn reload_now(&self) -> Result<serde_json::Value, String>;

    /// Whether `presented` is the operator secret the node directory holds now.
    fn is_secret_on_disk(&self, presented: &str) -> bool;
}

impl App {
    /// Runs blocking storage work on the blocking pool.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Storage) -> Result<T, crate::backend::StorageError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let storage = Arc::clone(&self.storage);
        tokio::task::spawn_blocking(move || f(&storage))
            .await
            .map_err(|e| ApiError::Internal(format!("storage task failed: {e}")))?
            .map_err(ApiError::from)
    }
}

/// All routes of a storage node, from the wire crate's endpoint table.
pub fn router(app: App) -> Router {
    use swamp_proto::v1::endpoint as e;
    let routes = |pairs: Vec<(&'static str, MethodRouter<App>)>| {
        pairs
            .into_iter()
            .fold(Router::new(), |router, (pattern, handler)| {
                router.route(pattern, handler)
            })
    };
    // Layers run last-added first: the swissnum is checked before any body
    // reserves memory.
    let storage_routes = routes(vec![
        on(&e::VERSION, version::version),
        on(&e::LEASE, lease::add_or_renew),
        on(&e::ALLOCATE, immutable::allocate),
        on(&e::LIST_IMMUTABLE, immutable::list_shares),
        on(&e::READ_IMMUTABLE, read::immutable),
        on(&e::WRITE_IMMUTABLE, immutable::write),
        on(&e::ABORT, immutable::abort),
        on(&e::CORRUPT_IMMUTABLE, immutable::advise_corrupt),
        on(&e::READ_TEST_WRITE, mutable::read_test_write),
        on(&e::LIST_MUTABLE, mutable::list_shares),
        on(&e::READ_MUTABLE, read::mutable),
        on(&e::CORRUPT_MUTABLE, mutable::advise_corrupt),
        on(&e::FEED_TOKEN, feed::issue_token),
    ])
    .route_layer(middleware::from_fn_with_state(app.clone(), budget::reserve))
    .route_layer(middleware::from_fn_with_state(
        app.clone(),
        require_swissnum,
    ));
    // The feed authorizes itself: the swissnum header, or a token in the query for
    // browsers; the activity stream takes the operator's secret.
    let own_auth_routes = routes(vec![
        on(&e::FEED, feed::feed),
        on(&e::ACTIVITY, activity::activity),
    ]);
    storage_routes
        .merge(own_auth_routes)
        .fallback(|| async { ApiError::NoRoute.into_response() })
        .layer(middleware::from_fn_with_state(
            app.clone(),
            trace::trace_request,
        ))
        .with_state(app)
}

/// The endpoint's pattern, and its method (any method for `*`: WebSocket over HTTP/2
/// opens with CONNECT, RFC 8441) routed to `handler`.
fn on<H, T>(
    endpoint: &swamp_proto::v1::endpoint::Endpoint,
    handler: H,
) -> (&'static str, MethodRouter<App>)
where
    H: axum::handler::Handler<T, App>,
    T: 'static,
{
    if endpoint.method == "*" {
        return (endpoint.pattern, axum::routing::any(handler));
    }
    let filter = axum::http::Method::from_bytes(endpoint.method.as_bytes())
        .ok()
        .and_then(|m| MethodFilter::try_from(m).ok())
        .expect("invariant: the endpoint table names standard methods");
    (endpoint.pattern, axum::routing::on(filter, handler))
}

/// Rejects requests without the right `Authorization: Tahoe-LAFS <swissnum>`.
async fn require_swissnum(State(app): State<App>, request: Request, next: Next) -> Response {
    match request.headers().get(axum::http::header::AUTHORIZATION) {
        None => ApiError::Unauthorized.into_response(),
        Some(value)
            if value.to_str().is_err() && std::str::from_utf8(value.as_bytes()).is_err() =>
        {
            ApiError::BadAuthorizationHeader.into_response()
        }
        Some(value) if app.swissnum.matches_header(value.as_bytes()) => next.run(request).await,
        Some(_) => ApiError::Unauthorized.into_response(),
    }
}
