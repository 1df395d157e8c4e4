//! One byte budget for the request bodies held in memory, over all connections and
//! HTTP/2 streams (`[storageserver.plugins.swamp] max_bodies_in_flight`).
//!
//! Why: each endpoint bounds its own body (64 MiB a PATCH, 256 MiB a read-test-write),
//! but thousands of connections each sending one such body at once would still add up
//! to more memory than the machine has. So before a body is read, its request reserves
//! its size (the `Content-Length`, or the largest body any endpoint takes when the
//! length is not announced) and keeps the reservation until the answer is ready, which
//! covers the copies the handler makes of it. A request that finds no room waits for
//! one, at most `[storageserver.plugins.swamp] body_budget_wait` (30 s), then gets a
//! 503: the node slows its writers down instead of running out of memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::{Request, State};
use axum::http::Method;
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, App};

/// Reservations are counted in units of this many bytes.
const UNIT: usize = 1024;

/// The budget, shared by every connection; a reload resizes it.
pub struct BodyBudget {
    units: crate::permits::Permits,
    /// What a body of unannounced length reserves.
    unannounced: AtomicUsize,
}

impl BodyBudget {
    /// A budget of `bytes`; bodies of unknown length reserve `largest_body`.
    pub fn new(bytes: usize, largest_body: usize) -> Self {
        Self {
            units: crate::permits::Permits::new(Self::units_of(bytes)),
            unannounced: AtomicUsize::new(largest_body),
        }
    }

    /// Makes the budget `bytes` and `largest_body` what unannounced bodies reserve
    /// (a reload). Requests holding reservations keep them; while they hold more than
    /// the new budget, new ones wait.
    pub fn resize(&self, bytes: usize, largest_body: usize) {
        self.unannounced.store(largest_body, Ordering::Relaxed);
        self.units.resize(Self::units_of(bytes));
    }

    fn units_of(bytes: usize) -> usize {
        bytes.div_ceil(UNIT)
    }

    /// Bytes not reserved now.
    pub fn available(&self) -> usize {
        self.units.semaphore().available_permits() * UNIT
    }

    /// A request larger than the whole budget reserves all of it (it then runs alone).
    fn units_for(&self, bytes: usize) -> u32 {
        let total = u32::try_from(self.units.size()).unwrap_or(u32::MAX).max(1);
        u32::try_from(bytes.div_ceil(UNIT))
            .unwrap_or(u32::MAX)
            .clamp(1, total)
    }
}

/// Middleware: reserves a request's body size in the budget for the whole request.
pub async fn reserve(State(app): State<App>, request: Request, next: Next) -> Response {
    let announced = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let bytes = match announced {
        Some(0) => return next.run(request).await,
        // Larger than any endpoint takes: the handler refuses it (413) unread.
        Some(n) => usize::try_from(n)
            .unwrap_or(usize::MAX)
            .min(app.budget.unannounced.load(Ordering::Relaxed)),
        None if matches!(*request.method(), Method::GET | Method::HEAD) => {
            return next.run(request).await;
        }
        None => app.budget.unannounced.load(Ordering::Relaxed),
    };
    let units = app.budget.units_for(bytes);
    let wait = Arc::clone(app.budget.units.semaphore()).acquire_many_owned(units);
    let _permit = match tokio::time::timeout(app.limits.get().body_budget_wait, wait).await {
        Ok(Ok(permit)) => permit,
        Ok(Err(_)) | Err(_) => return ApiError::Busy.into_response(),
    };
    next.run(request).await
}
