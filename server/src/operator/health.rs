//! Liveness and readiness, and the disk figures `/metrics` reads.
//!
//! `/healthz` answers 200 whenever the process serves HTTP at all. `/readyz` answers
//! 200 only when the node can take writes: the storage directory's file system accepts
//! a file (a probe file made, synced and removed; whatever `[storage] readonly` says,
//! since a read-only node still serves reads), no sync of the write-ahead log has
//! failed (after one, nothing is acknowledged until a restart), and the storage
//! listener is accepting connections. Otherwise 503, with each check in the JSON body
//! so the operator sees which one failed.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use super::metrics::Disk;
use crate::backend::Storage;
use crate::http::App;

/// `GET /healthz`.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Each readiness check.
#[derive(Serialize)]
pub struct Readiness {
    /// The storage directory accepts a new file.
    pub storage_writable: bool,
    /// No sync of the write-ahead log has failed.
    pub log_open: bool,
    /// The storage listener accepts connections.
    pub accepting: bool,
}

/// `GET /readyz`.
pub async fn readyz(State(app): State<App>) -> (StatusCode, Json<Readiness>) {
    let storage = std::sync::Arc::clone(&app.storage);
    let writable = tokio::task::spawn_blocking(move || storage.probe_write().is_ok())
        .await
        .unwrap_or(false);
    let ready = Readiness {
        storage_writable: writable,
        log_open: !app.storage.needs_restart(),
        accepting: app.accepting.load(Ordering::Relaxed),
    };
    let status = if ready.storage_writable && ready.log_open && ready.accepting {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(ready))
}

/// Disk figures, uploads in progress, the reserve and whether immutable shares are
/// accepted now (blocking: `statvfs`).
pub fn snapshot(storage: &Storage) -> (Option<Disk>, usize, u64, bool) {
    let reserved = storage.limits().reserved_space;
    let disk = rustix::fs::statvfs(&storage.layout().shares)
        .ok()
        .map(|st| {
            let total = st.f_blocks.saturating_mul(st.f_frsize);
            let free_for_root = st.f_bfree.saturating_mul(st.f_frsize);
            let free_for_nonroot = st.f_bavail.saturating_mul(st.f_frsize);
            Disk {
                total,
                used: total.saturating_sub(free_for_root),
                free_for_root,
                free_for_nonroot,
                avail: free_for_nonroot.saturating_sub(reserved),
            }
        });
    let accepting = storage.available_space() > 0;
    (disk, storage.uploads_in_progress(), reserved, accepting)
}
