//! `/status?t=json`: the node's recent operations in Tahoe's shape
//! (`web/status.py`), what `tahoe status` reads besides `/statistics`.
//!
//! The transfer code tells this module of each finished immutable upload and
//! download; the last [`RECENT`] are kept, process-wide, in memory (as Tahoe's node
//! keeps its recent operations). Operations in progress are not followed: `active`
//! is always empty. Only the JSON is served; Tahoe's HTML status pages are not.

use std::collections::VecDeque;
use std::sync::Mutex;

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

static RECENT_OPS: Mutex<VecDeque<Value>> = Mutex::new(VecDeque::new());

fn remember(kind: &str, si: Option<swamp_proto::StorageIndex>, size: u64) {
    let op = json!({
        "type": kind,
        "storage-index-string": si.map(|si| si.to_base32()).unwrap_or_default(),
        "total-size": size,
        "status": "Finished",
    });
    let mut recent = RECENT_OPS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if recent.len() == RECENT {
        recent.pop_front();
    }
    recent.push_back(op);
}

/// An upload finished, as `cap`.
pub(crate) fn uploaded(cap: &Cap) {
    let size = match cap {
        Cap::Chk(chk) => chk.size,
        Cap::Lit(data) => data.len() as u64,
        _ => 0,
    };
    remember("upload", cap.storage_index(), size);
}

/// A download of `size` bytes of `cap` finished.
pub(crate) fn downloaded(cap: &ChkCap, size: u64) {
    remember("download", Some(cap.storage_index()), size);
}

/// `GET` or `POST /status?t=json`.
pub(crate) fn handle(method: &Method, args: &Args) -> Result<Response, WebError> {
    if !matches!(*method, Method::GET | Method::POST) {
        return Err(WebError::MethodNotAllowed(format!(
            "{method} is not allowed on /status"
        )));
    }
    if args.t() != "json" {
        return Err(WebError::NotImplemented(
            "/status is only served as JSON (t=json) by this node".into(),
        ));
    }
    let recent: Vec<Value> = RECENT_OPS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .rev()
        .cloned()
        .collect();
    Ok(text(
        StatusCode::OK,
        to_text(&json!({"active": [], "recent": recent})),
    ))
}
