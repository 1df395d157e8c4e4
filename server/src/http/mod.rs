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
use axum::routing::{get, post, put};
use swamp_proto::secrets::Swissnum;

use crate::backend::Storage;
use crate::node::Limits;
pub use error::ApiError;

/// What every request handler shares.
#[derive(Clone)]
pub struct App {
    /// The storage backend.
    pub storage: Arc<Storage>,
    /// The swissnum clients must present.
    pub swissnum: Swissnum,
    /// Request size limits.
    pub limits: Limits,
    /// The change feeds.
    pub feeds: Arc<crate::feeds::Feeds>,
    /// Activity counters for the operator's stream.
    pub activity: Arc<crate::activity::Activity>,
    /// The operator's secret.
    pub operator_secret: crate::node::OperatorSecret,
    /// Reused upload body buffers.
    pub buffers: Arc<buffers::BufferPool>,
    /// Reused buffers for reads answered from the page cache.
    pub reads: Arc<read_pool::ReadPool>,
    /// The memory all request bodies in flight may take together.
    pub budget: Arc<budget::BodyBudget>,
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

/// All routes of a storage node.
pub fn router(app: App) -> Router {
    let storage_routes = Router::new()
        .route("/storage/v1/version", get(version::version))
        .route("/storage/v1/lease/{si}", put(lease::add_or_renew))
        .route("/storage/v1/immutable/{si}", post(immutable::allocate))
        .route(
            "/storage/v1/immutable/{si}/shares",
            get(immutable::list_shares),
        )
        .route(
            "/storage/v1/immutable/{si}/{shnum}",
            get(read::immutable).patch(immutable::write),
        )
        .route(
            "/storage/v1/immutable/{si}/{shnum}/abort",
            put(immutable::abort),
        )
        .route(
            "/storage/v1/immutable/{si}/{shnum}/corrupt",
            post(immutable::advise_corrupt),
        )
        .route(
            "/storage/v1/mutable/{si}/read-test-write",
            post(mutable::read_test_write),
        )
        .route("/storage/v1/mutable/{si}/shares", get(mutable::list_shares))
        .route("/storage/v1/mutable/{si}/{shnum}", get(read::mutable))
        .route(
            "/storage/v1/mutable/{si}/{shnum}/corrupt",
            post(mutable::advise_corrupt),
        )
        .route("/storage/v1/feed/token", post(feed::issue_token))
        // Layers run last-added first: the swissnum is checked before any body
        // reserves memory.
        .route_layer(middleware::from_fn_with_state(app.clone(), budget::reserve))
        .route_layer(middleware::from_fn_with_state(
            app.clone(),
            require_swissnum,
        ));
    // The feed authorizes itself: the swissnum header, or a token in the query for
    // browsers. `any` admits CONNECT, which WebSocket over HTTP/2 uses (RFC 8441).
    let feed_routes = Router::new().route("/storage/v1/feed", axum::routing::any(feed::feed));
    let operator_routes = Router::new().route("/storage/v1/activity", get(activity::activity));
    storage_routes
        .merge(feed_routes)
        .merge(operator_routes)
        .fallback(|| async { ApiError::NoRoute.into_response() })
        .layer(middleware::from_fn_with_state(
            app.clone(),
            trace::trace_request,
        ))
        .with_state(app)
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
