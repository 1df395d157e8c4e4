//! Aborts uploads that have received no write for the idle timeout (30 minutes by
//! default, as in Tahoe), freeing their promised space.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::activity::{Activity, Counter};
use crate::backend::Storage;

/// Runs until cancelled, checking a few times per timeout period.
pub async fn run(
    storage: Arc<Storage>,
    activity: Arc<Activity>,
    idle: Duration,
    shutdown: CancellationToken,
) {
    let every = (idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(60));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
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
