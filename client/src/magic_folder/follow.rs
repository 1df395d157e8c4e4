//! Following one folder: a [`watch`] of its collective directory, depth 1, so the
//! participants' personal directories are followed as they join and leave. Each
//! event that means "poll" goes to the bridge as a [`Cause`] with the time it was
//! seen. When the watch fails (the collective unreadable: servers down, a bad cap
//! in the daemon's list) it is started again after a backoff, and its `Ready` then
//! asks for one poll, since changes may have been missed meanwhile.

use std::sync::Arc;
use std::time::{Duration, Instant};

use swamp_formats::cap::Cap;
use tokio::sync::mpsc;

use super::api::FolderInfo;
use super::participants::{Cause, classify};
use super::report::BridgeEvent;
use crate::grid::Grid;
use crate::watch::{WatchEvent, WatchOptions, watch};

/// A cause for polling `folder`, seen at `at`.
#[derive(Debug)]
pub struct Noted {
    /// The folder's name.
    pub folder: String,
    /// Why.
    pub cause: Cause,
    /// When the bridge learned of it.
    pub at: Instant,
}

/// Longest wait before following a folder again after its watch failed.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Follows `folder` until the task is aborted (or the bridge is gone).
pub async fn follow_folder(
    grid: Arc<Grid>,
    folder: FolderInfo,
    mut options: WatchOptions,
    causes: mpsc::Sender<Noted>,
    log: mpsc::Sender<BridgeEvent>,
) {
    let info = |text: String| BridgeEvent::Info(format!("folder {}: {text}", folder.name));
    let cap: Cap = match folder.collective_dircap.parse() {
        Ok(cap) => cap,
        Err(e) => {
            let _ = log
                .send(info(format!(
                    "the collective cap does not parse ({e}); not followed"
                )))
                .await;
            return;
        }
    };
    options.snapshot = false;
    options.recursive = true;
    options.max_depth = Some(1);
    // Our own personal directory changes with magic-folder's own uploads: not followed.
    options.skip = vec![folder.author.clone()];
    let mut backoff = Duration::from_secs(1);
    loop {
        let (tx, mut rx) = mpsc::channel(256);
        let watching = watch(&grid, cap.clone(), options.clone(), tx);
        let forwarding = async {
            while let Some(event) = rx.recv().await {
                let at = Instant::now();
                // Resyncs are reported by the bridge, with the poll they cause.
                if let WatchEvent::Notice(text) = &event
                    && log.send(info(text.clone())).await.is_err()
                {
                    return false;
                }
                if matches!(event, WatchEvent::Ready) {
                    backoff = Duration::from_secs(1);
                }
                if let Some(cause) = classify(&event, &folder.author) {
                    let noted = Noted {
                        folder: folder.name.clone(),
                        cause,
                        at,
                    };
                    if causes.send(noted).await.is_err() {
                        return false;
                    }
                }
            }
            true
        };
        let (result, bridge_alive) = tokio::join!(watching, forwarding);
        if !bridge_alive {
            return;
        }
        let why = match result {
            Ok(()) => "the watch ended".to_string(),
            Err(e) => format!("cannot follow the collective ({e})"),
        };
        let retry = backoff.mul_f64(0.5 + rand::random::<f64>());
        let text = format!("{why}; retrying in {:.1} s", retry.as_secs_f64());
        if log.send(info(text)).await.is_err() {
            return;
        }
        tokio::time::sleep(retry).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
