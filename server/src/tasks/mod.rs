//! Background work, each task stopping when the shutdown token is cancelled:
//! `uploads` aborts idle uploads; `expiry` applies the lease expiry policy.

pub mod expiry;
pub mod uploads;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::serve::Server;

/// Starts every background task of a node.
pub fn spawn_all(tracker: &TaskTracker, server: &Server, shutdown: &CancellationToken) {
    tracker.spawn(uploads::run(server.app.clone(), shutdown.clone()));
    if let Some(policy) = server.expiry.clone() {
        tracker.spawn(expiry::run(server.app.clone(), policy, shutdown.clone()));
    }
}
