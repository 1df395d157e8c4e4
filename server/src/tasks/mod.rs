//! Background work, each task stopping when the shutdown token is cancelled:
//! `uploads` aborts idle uploads; `expiry` applies the lease expiry policy; the metrics'
//! histogram samples are folded in every few seconds.
//!
//! Tasks take the parts of the node they use (storage, counters, settings), not the
//! HTTP layer's state, so nothing here depends on how requests are served.

pub mod expiry;
pub mod uploads;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::activity::Activity;
use crate::backend::expiry::ExpiryPolicy;
use crate::backend::{Storage, StorageError};
use crate::live::Live;
use crate::node::Limits;

/// What the background tasks of a node work on.
pub struct Background {
    /// The shares on disk.
    pub storage: Arc<Storage>,
    /// The operator's counters (idle uploads aborted).
    pub activity: Arc<Activity>,
    /// The limits (an upload with no write for `upload_idle_timeout` is aborted).
    pub limits: Live<Limits>,
    /// Lease expiry, if enabled.
    pub expiry: Live<Option<ExpiryPolicy>>,
    /// The node's metrics (their samples are folded in every few seconds).
    pub metrics: Arc<crate::operator::metrics::Metrics>,
}

/// Starts every background task of a node.
pub fn spawn_all(tracker: &TaskTracker, background: Background, shutdown: &CancellationToken) {
    tracker.spawn(uploads::run(
        Arc::clone(&background.storage),
        background.activity,
        background.limits,
        shutdown.clone(),
    ));
    tracker.spawn(metrics_upkeep(
        Arc::clone(&background.metrics),
        shutdown.clone(),
    ));
    tracker.spawn(expiry::run(
        background.storage,
        background.expiry,
        shutdown.clone(),
    ));
}

/// How often the metrics' histogram samples are folded in.
const METRICS_UPKEEP: std::time::Duration = std::time::Duration::from_secs(5);

/// Folds the metrics' histogram samples in every [`METRICS_UPKEEP`], so memory stays
/// bounded when nobody scrapes (`Metrics::run_upkeep`).
async fn metrics_upkeep(
    metrics: Arc<crate::operator::metrics::Metrics>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(METRICS_UPKEEP) => metrics.run_upkeep(),
        }
    }
}

/// Runs storage work on the blocking pool (it does file I/O and takes share locks).
/// The error is for the log: a task has no one to answer.
async fn on_blocking_pool<T: Send + 'static>(
    storage: &Arc<Storage>,
    f: impl FnOnce(&Storage) -> Result<T, StorageError> + Send + 'static,
) -> Result<T, String> {
    let storage = Arc::clone(storage);
    match tokio::task::spawn_blocking(move || f(&storage)).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(e) => Err(format!("storage task failed: {e}")),
    }
}
