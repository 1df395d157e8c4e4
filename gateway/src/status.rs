//! `/status?t=json` and `/statistics?t=json`: what `tahoe status` reads from a
//! running node (Tahoe's `web/status.py` shapes): the recent uploads and downloads,
//! and the uploader's and downloader's counters with the node's uptime.
//!
//! The counts are of this process (a node keeps them in memory, as Tahoe's does),
//! kept in one process-wide place that the transfer code tells of each finished
//! upload and download. Operations in progress are not followed: `active` is
//! always empty. At most [`RECENT`] finished operations are remembered.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::Instant;

use axum::response::Response;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use swamp_formats::cap::{Cap, ChkCap};

use crate::args::Args;
use crate::error::WebError;
use crate::listing::to_text;
use crate::reply::text;

/// Finished operations remembered.
pub(crate) const RECENT: usize = 50;

struct Stats {
    started: Instant,
    files_uploaded: AtomicU64,
    bytes_uploaded: AtomicU64,
    files_downloaded: AtomicU64,
    bytes_downloaded: AtomicU64,
    recent: Mutex<VecDeque<Value>>,
}

static STATS: LazyLock<Stats> = LazyLock::new(|| Stats {
    started: Instant::now(),
    files_uploaded: AtomicU64::new(0),
    bytes_uploaded: AtomicU64::new(0),
    files_downloaded: AtomicU64::new(0),
    bytes_downloaded: AtomicU64::new(0),
    recent: Mutex::new(VecDeque::new()),
});

/// Starts the uptime clock (when the gateway is made).
pub(crate) fn start_clock() {
    LazyLock::force(&STATS);
}

fn remember(kind: &str, si: Option<swamp_proto::StorageIndex>, size: u64) {
    let op = json!({
        "type": kind,
        "storage-index-string": si.map(|si| si.to_base32()).unwrap_or_default(),
        "total-size": size,
        "status": "Finished",
    });
    let mut recent = STATS
        .recent
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if recent.len() == RECENT {
        recent.pop_front();
    }
    recent.push_back(op);
}

/// An upload finished, as `cap`.
pub(crate) fn uploaded(cap: &Cap) {
    let (si, size) = match cap {
        Cap::Chk(chk) => (cap.storage_index(), chk.size),
        Cap::Lit(data) => (None, data.len() as u64),
        _ => (cap.storage_index(), 0),
    };
    STATS.files_uploaded.fetch_add(1, Ordering::Relaxed);
    STATS.bytes_uploaded.fetch_add(size, Ordering::Relaxed);
    remember("upload", si, size);
}

/// A download of `size` bytes of `cap` finished.
pub(crate) fn downloaded(cap: &ChkCap, size: u64) {
    let si = Some(cap.storage_index());
    STATS.files_downloaded.fetch_add(1, Ordering::Relaxed);
    STATS.bytes_downloaded.fetch_add(size, Ordering::Relaxed);
    remember("download", si, size);
}

/// `GET` or `POST` `/status` and `/statistics`, `t=json` only.
pub(crate) fn handle(method: &Method, which: &str, args: &Args) -> Result<Response, WebError> {
    if !matches!(*method, Method::GET | Method::POST) {
        return Err(WebError::MethodNotAllowed(format!(
            "{method} is not allowed on /{which}"
        )));
    }
    if args.t() != "json" {
        return Err(WebError::NotImplemented(format!(
            "/{which} is only served as JSON (t=json) by this node"
        )));
    }
    let value = if which == "status" {
        let recent: Vec<Value> = STATS
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .rev()
            .cloned()
            .collect();
        json!({"active": [], "recent": recent})
    } else {
        json!({
            "counters": {
                "uploader.files_uploaded": STATS.files_uploaded.load(Ordering::Relaxed),
                "uploader.bytes_uploaded": STATS.bytes_uploaded.load(Ordering::Relaxed),
                "downloader.files_downloaded": STATS.files_downloaded.load(Ordering::Relaxed),
                "downloader.bytes_downloaded": STATS.bytes_downloaded.load(Ordering::Relaxed),
            },
            "stats": {"node.uptime": STATS.started.elapsed().as_secs_f64()},
        })
    };
    Ok(text(StatusCode::OK, to_text(&value)))
}
