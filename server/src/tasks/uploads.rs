//! Aborts uploads that have received no write for the idle timeout (30 minutes by
//! default, as in Tahoe), freeing their promised space.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::activity::{Activity, Counter};
use crate::backend::Storage;
use crate::live::Live;
use crate::node::Limits;

/// Runs until cancelled, checking a few times per timeout period (the timeout in force
/// at each check: a reload may change it).
pub async fn run(
    storage: Arc<Storage>,
    activity: Arc<Activity>,
    limits: Live<Limits>,
    shutdown: CancellationToken,
) {
    let mut changes = limits.changes();
    loop {
        let idle = limits.get().upload_idle_timeout;
        let every = (idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(60));
        tokio::select! {
            () = shutdown.cancelled() => return,
            // A new timeout: start the wait again with it.
            _ = changes.changed() => continue,
            () = tokio::time::sleep(every) => {}
        }
        match super::on_blocking_pool(&storage, move |s| Ok(s.abort_idle_uploads(idle))).await {
            Ok(0) => {}
            Ok(n) => {
                activity.add(Counter::UploadsAborted, n as u64);
                tracing::info!(aborted = n, ?idle, "aborted idle uploads");
            }
            Err(e) => tracing::error!(error = %e, "idle upload sweep failed"),
        }
    }
}
