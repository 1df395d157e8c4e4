//! `GET /status` on the operator listener (secret-guarded): the node's state in one
//! small JSON document, for `swamp-server status DIR` and the dashboard's header.
//!
//! Counting shares means listing the share directories (`shares/<prefix>/<si>/`), one
//! directory read per storage index, so it is bounded: at most [`MAX_BUCKETS`] storage
//! indexes and [`COUNT_BUDGET`] of time; a count cut short says so (`complete: false`)
//! and is a lower bound. Everything else is read from counters the node keeps anyway.
//!
//! The NURL is not in it: it carries the swissnum, which grants storage access, and
//! the operator secret must not lead to it. `swamp-server status` reads the NURL from
//! the node directory it was pointed at, as `swamp-server nurl` does.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::backend::layout;
use crate::http::App;

/// Most storage indexes one count visits.
pub const MAX_BUCKETS: u64 = 1_000_000;

/// Longest one count may take.
pub const COUNT_BUDGET: Duration = Duration::from_secs(3);

/// The answer.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Status {
    /// `swamp-server`'s version.
    pub version: String,
    /// Seconds since the node started.
    pub uptime_seconds: f64,
    /// The storage file system's space (absent if `statvfs` failed).
    pub disk: Option<DiskStatus>,
    /// `[storage] reserved_space`, bytes.
    pub reserved_space: u64,
    /// Whether immutable shares are accepted now.
    pub accepting_immutable_shares: bool,
    /// Shares held.
    pub shares: ShareCount,
    /// Change feeds.
    pub feeds: FeedStatus,
    /// Requests served since start.
    pub requests: RequestCounts,
    /// `[storage] grid_management`: the node announces its certificates.
    #[serde(default)]
    pub grid_management: bool,
    /// Grid-manager certificates (`[grid_manager_certificates]`), sorted by name, in
    /// their state now; empty when grid management is off.
    pub certificates: Vec<CertificateStatus>,
    /// Certificates listed in `tahoe.cfg` but not read because grid management is off.
    #[serde(default)]
    pub certificates_ignored: usize,
    /// The lease expiry sweep.
    #[serde(default)]
    pub lease_expiry: LeaseExpiryStatus,
}

/// Disk figures, bytes.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DiskStatus {
    /// Size of the file system.
    pub total: u64,
    /// Used.
    pub used: u64,
    /// Free for unprivileged users.
    pub free: u64,
    /// What new shares may use: free less the reserve.
    pub avail: u64,
}

/// Shares counted in the storage directory.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ShareCount {
    /// Storage indexes (buckets and slots) with at least one share.
    pub storage_indexes: u64,
    /// Share files.
    pub shares: u64,
    /// False if the count stopped at its bound (the figures are then lower bounds).
    pub complete: bool,
    /// Immutable uploads allocated and not complete.
    pub uploads_in_progress: usize,
}

/// Feed figures.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FeedStatus {
    /// Open streams by transport (`websocket`, `sse`, `long-poll`).
    pub connections: BTreeMap<String, usize>,
    /// Storage indexes followed, over all streams.
    pub subscriptions: usize,
    /// Events handed to transports since start.
    pub deliveries: u64,
    /// Events replaced by newer ones in slow subscribers' queues.
    pub coalesced: u64,
    /// Streams closed because their subscriber read too slowly.
    pub slow_closes: u64,
    /// Bytes queued for subscribers now.
    pub queued_bytes: usize,
}

/// Requests since start.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RequestCounts {
    /// All requests.
    pub total: u64,
    /// Answered 4xx.
    pub client_errors: u64,
    /// Answered 5xx.
    pub server_errors: u64,
}

/// One grid-manager certificate, as the node checked it at start (or at the last
/// reload), in its state now.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CertificateStatus {
    /// Its name in `[grid_manager_certificates]`.
    pub name: String,
    /// `valid`, `expiring` (within `grid_manager::EXPIRY_WARNING`) or `expired`
    /// (`CertificateState::as_str`); a string, so that an older `status` reads a
    /// newer node's states.
    pub state: String,
    /// Unix seconds at which it expires.
    pub expires: i64,
    /// Seconds until then; negative once expired.
    pub seconds_left: i64,
    /// Whether its signature was verified against a key in `[grid_managers]` (without
    /// that section only its shape is checked).
    pub signature_checked: bool,
    /// The `[grid_managers]` entry whose key verified it.
    pub signed_by: Option<String>,
    /// That grid manager's public key, `pub-v0-<base32>`.
    pub grid_manager_key: Option<String>,
}

impl From<crate::node::grid_manager::CertificateStatus> for CertificateStatus {
    fn from(c: crate::node::grid_manager::CertificateStatus) -> Self {
        Self {
            name: c.name,
            state: c.state.as_str().to_string(),
            expires: c.expires,
            seconds_left: c.seconds_left,
            signature_checked: c.grid_manager_key.is_some(),
            signed_by: c.signed_by,
            grid_manager_key: c.grid_manager_key,
        }
    }
}

/// The lease expiry sweep (`tasks::expiry`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LeaseExpiryStatus {
    /// A policy is in force (`[storage] expire.enabled`).
    pub enabled: bool,
    /// A pass is under way.
    pub running: bool,
    /// Prefix directories swept in the current pass (or the last, when none runs).
    pub prefixes_done: u64,
    /// Prefix directories in a pass (1,024).
    pub prefixes_total: u64,
    /// Passes completed since start.
    pub passes: u64,
    /// When the last complete pass ended, Unix seconds.
    pub last_pass_end: Option<u64>,
    /// Shares examined since start.
    pub shares_examined: u64,
    /// Shares deleted since start because every lease had expired.
    pub shares_deleted: u64,
}

/// Counters of the activity stream that are requests (not bytes or outcomes).
const REQUEST_COUNTERS: &[&str] = &[
    "version",
    "allocate",
    "write",
    "read_immutable",
    "read_mutable",
    "read_test_write",
    "list",
    "lease",
    "abort",
    "corrupt",
    "feed",
    "other",
];

/// The handler.
pub async fn status(State(app): State<App>) -> Response {
    let storage = Arc::clone(&app.storage);
    let read = tokio::task::spawn_blocking(move || {
        let figures = super::health::snapshot(&storage);
        let shares = count_shares(&storage.layout().shares, MAX_BUCKETS, COUNT_BUDGET);
        (figures, shares)
    })
    .await;
    let Ok(((disk, uploads_in_progress, reserved_space, accepting), shares)) = read else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "reading the figures failed\n",
        )
            .into_response();
    };
    let activity = app.activity.read();
    let counter = |name: &str| activity.0.get(name).copied().unwrap_or(0);
    let feeds = app.feeds.figures();
    // Read now: a reload may have replaced them, and states change with time.
    let certificates = app.certificates.get();
    let now = app.storage.now();
    let sweep = app.storage.expiry_progress().read();
    Json(Status {
        version: env!("CARGO_PKG_VERSION").to_string(),
        uptime_seconds: app.metrics.uptime().as_secs_f64(),
        disk: disk.map(|d| DiskStatus {
            total: d.total,
            used: d.used,
            free: d.free_for_nonroot,
            avail: d.avail,
        }),
        reserved_space,
        accepting_immutable_shares: accepting,
        shares: ShareCount {
            uploads_in_progress,
            ..shares
        },
        feeds: FeedStatus {
            connections: feeds
                .connections
                .iter()
                .map(|(t, n)| ((*t).to_string(), *n))
                .collect(),
            subscriptions: feeds.subscriptions,
            deliveries: feeds.deliveries,
            coalesced: feeds.coalesced,
            slow_closes: feeds.slow_closes,
            queued_bytes: feeds.queued_bytes,
        },
        requests: RequestCounts {
            total: REQUEST_COUNTERS.iter().map(|c| counter(c)).sum(),
            client_errors: counter("client_errors"),
            server_errors: counter("server_errors"),
        },
        grid_management: certificates.enabled,
        certificates: certificates
            .statuses(now)
            .into_iter()
            .map(CertificateStatus::from)
            .collect(),
        certificates_ignored: certificates.ignored,
        lease_expiry: LeaseExpiryStatus {
            enabled: app.expiry.get().is_some(),
            running: sweep.running,
            prefixes_done: sweep.prefixes_done,
            prefixes_total: crate::tasks::expiry::PREFIX_COUNT,
            passes: sweep.passes,
            last_pass_end: sweep.last_pass_end,
            shares_examined: sweep.shares_examined,
            shares_deleted: sweep.shares_deleted,
        },
    })
    .into_response()
}

/// Counts storage indexes and shares under `shares/` (not `incoming/`), visiting at
/// most `max_buckets` storage indexes and stopping after `budget`.
pub fn count_shares(shares_dir: &Path, max_buckets: u64, budget: Duration) -> ShareCount {
    let deadline = Instant::now() + budget;
    let mut count = ShareCount {
        complete: true,
        ..ShareCount::default()
    };
    let Ok(prefixes) = std::fs::read_dir(shares_dir) else {
        return count;
    };
    let mut visited = 0u64;
    for prefix in prefixes.flatten() {
        if prefix.file_name() == "incoming" {
            continue;
        }
        let Ok(buckets) = std::fs::read_dir(prefix.path()) else {
            continue;
        };
        for bucket in buckets.flatten() {
            if visited >= max_buckets || Instant::now() >= deadline {
                count.complete = false;
                return count;
            }
            visited += 1;
            let held = layout::list_share_numbers(&bucket.path()).map_or(0, |s| s.len() as u64);
            if held > 0 {
                count.storage_indexes += 1;
                count.shares += held;
            }
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_counted_and_the_count_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let shares = dir.path();
        for (prefix, si, shnums) in [
            ("aa", "aaaa", &["0", "1", "2"][..]),
            ("aa", "aabb", &["7"][..]),
            ("bb", "bbcc", &[][..]),
            ("incoming", "aa", &["0"][..]),
        ] {
            let bucket = shares.join(prefix).join(si);
            std::fs::create_dir_all(&bucket).unwrap();
            for n in shnums {
                std::fs::write(bucket.join(n), b"x").unwrap();
            }
        }
        std::fs::write(shares.join("aa/aaaa/tmp-upload"), b"x").unwrap();
        let all = count_shares(shares, 100, Duration::from_secs(10));
        assert_eq!(
            all,
            ShareCount {
                storage_indexes: 2,
                shares: 4,
                complete: true,
                uploads_in_progress: 0
            }
        );
        let cut = count_shares(shares, 1, Duration::from_secs(10));
        assert!(!cut.complete);
        assert!(cut.shares <= 3);
        assert_eq!(
            count_shares(&shares.join("missing"), 1, Duration::from_secs(1)),
            ShareCount {
                complete: true,
                ..ShareCount::default()
            }
        );
    }
}
