//! Aborts uploads that have received no write for the idle timeout (30 minutes by
//! default, as in Tahoe), freeing their promised space.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::http::App;

/// Runs until cancelled, checking a few times per timeout period.
pub async fn run(app: App, shutdown: CancellationToken) {
    let idle = app.limits.upload_idle_timeout;
    let every = (idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(60));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        match app.blocking(move |s| Ok(s.abort_idle_uploads(idle))).await {
            Ok(0) => {}
            Ok(n) => {
                app.activity
                    .add(crate::activity::Counter::UploadsAborted, n as u64);
                tracing::info!(aborted = n, ?idle, "aborted idle uploads");
            }
            Err(e) => tracing::error!(error = %e, "idle upload sweep failed"),
        }
    }
}
