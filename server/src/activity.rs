//! The operator's activity stream: what the server is doing, in aggregate.
//!
//! Counters are plain atomics bumped on the request path (no allocation, no lock);
//! `GET /storage/v1/activity` reads them. As SSE it sends one `activity` event per
//! interval with the deltas since the last one and the totals, so it aggregates by
//! construction and cannot fall behind; as JSON it answers the totals once.
//!
//! It is guarded by its own secret, `private/operator.secret` in the node directory
//! (not the swissnum: clients hold that), and reports no storage index and no secret.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use swamp_proto::v1::endpoint::{self as e, Endpoint};

/// What is counted.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Counter {
    /// `GET /storage/v1/version`
    Version,
    /// Allocate requests.
    Allocate,
    /// Immutable writes (PATCH).
    Write,
    /// Immutable reads.
    ReadImmutable,
    /// Mutable reads.
    ReadMutable,
    /// Read-test-write requests.
    ReadTestWrite,
    /// Share list requests.
    List,
    /// Lease requests.
    Lease,
    /// Abort requests.
    Abort,
    /// Corruption advisories.
    Corrupt,
    /// Feed requests (connections and polls).
    Feed,
    /// Anything else.
    Other,
    /// Request body bytes.
    BytesIn,
    /// Response body bytes.
    BytesOut,
    /// Shares allocated for upload.
    UploadsStarted,
    /// Uploads completed.
    UploadsCompleted,
    /// Uploads aborted (by the client or for idleness).
    UploadsAborted,
    /// Leases added or renewed (lease endpoint).
    LeaseRenewals,
    /// Responses with a 4xx status.
    ClientErrors,
    /// Responses with a 5xx status.
    ServerErrors,
}

const ALL: [Counter; 20] = [
    Counter::Version,
    Counter::Allocate,
    Counter::Write,
    Counter::ReadImmutable,
    Counter::ReadMutable,
    Counter::ReadTestWrite,
    Counter::List,
    Counter::Lease,
    Counter::Abort,
    Counter::Corrupt,
    Counter::Feed,
    Counter::Other,
    Counter::BytesIn,
    Counter::BytesOut,
    Counter::UploadsStarted,
    Counter::UploadsCompleted,
    Counter::UploadsAborted,
    Counter::LeaseRenewals,
    Counter::ClientErrors,
    Counter::ServerErrors,
];

impl Counter {
    /// The counter's name in the stream.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Version => "version",
            Self::Allocate => "allocate",
            Self::Write => "write",
            Self::ReadImmutable => "read_immutable",
            Self::ReadMutable => "read_mutable",
            Self::ReadTestWrite => "read_test_write",
            Self::List => "list",
            Self::Lease => "lease",
            Self::Abort => "abort",
            Self::Corrupt => "corrupt",
            Self::Feed => "feed",
            Self::Other => "other",
            Self::BytesIn => "bytes_in",
            Self::BytesOut => "bytes_out",
            Self::UploadsStarted => "uploads_started",
            Self::UploadsCompleted => "uploads_completed",
            Self::UploadsAborted => "uploads_aborted",
            Self::LeaseRenewals => "lease_renewals",
            Self::ClientErrors => "client_errors",
            Self::ServerErrors => "server_errors",
        }
    }

    /// The counter of a request to `endpoint` (`None`: no endpoint's).
    pub fn for_endpoint(endpoint: Option<&Endpoint>) -> Self {
        let Some(endpoint) = endpoint else {
            return Self::Other;
        };
        match endpoint.name {
            n if n == e::VERSION.name => Self::Version,
            n if n == e::FEED.name || n == e::FEED_TOKEN.name => Self::Feed,
            n if n == e::LEASE.name => Self::Lease,
            n if n == e::ALLOCATE.name => Self::Allocate,
            n if n == e::WRITE_IMMUTABLE.name => Self::Write,
            n if n == e::LIST_IMMUTABLE.name || n == e::LIST_MUTABLE.name => Self::List,
            n if n == e::READ_IMMUTABLE.name => Self::ReadImmutable,
            n if n == e::READ_MUTABLE.name => Self::ReadMutable,
            n if n == e::ABORT.name => Self::Abort,
            n if n == e::CORRUPT_IMMUTABLE.name || n == e::CORRUPT_MUTABLE.name => Self::Corrupt,
            n if n == e::READ_TEST_WRITE.name => Self::ReadTestWrite,
            _ => Self::Other,
        }
    }
}

/// The counters.
pub struct Activity {
    values: [AtomicU64; ALL.len()],
}

impl Default for Activity {
    fn default() -> Self {
        Self {
            values: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// A reading of every counter, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Reading(pub std::collections::BTreeMap<&'static str, u64>);

impl Activity {
    /// Adds `n` to a counter.
    pub fn add(&self, counter: Counter, n: u64) {
        self.values[ALL.iter().position(|c| *c == counter).unwrap_or(0)]
            .fetch_add(n, Ordering::Relaxed);
    }

    /// Reads every counter.
    pub fn read(&self) -> Reading {
        Reading(
            ALL.iter()
                .zip(&self.values)
                .map(|(c, v)| (c.name(), v.load(Ordering::Relaxed)))
                .collect(),
        )
    }
}

impl Reading {
    /// The change from `earlier` to `self`.
    pub fn since(&self, earlier: &Reading) -> Reading {
        Reading(
            self.0
                .iter()
                .map(|(k, v)| (*k, v.saturating_sub(earlier.0.get(k).copied().unwrap_or(0))))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_has_its_counter() {
        let counter = |method: &str, path: String| {
            Counter::for_endpoint(e::find(method, &path).map(|m| m.endpoint))
        };
        let si = "aaaaaaaaaaaaaaaaaaaaaaaaaa";
        assert_eq!(
            counter("PATCH", format!("/storage/v1/immutable/{si}/3")),
            Counter::Write
        );
        assert_eq!(
            counter("GET", format!("/storage/v1/mutable/{si}/shares")),
            Counter::List
        );
        assert_eq!(
            counter("POST", format!("/storage/v1/mutable/{si}/read-test-write")),
            Counter::ReadTestWrite
        );
        assert_eq!(counter("GET", "/storage/v1/feed".into()), Counter::Feed);
        assert_eq!(counter("GET", "/nope".into()), Counter::Other);
        // Only the activity stream itself counts as other.
        for endpoint in e::ALL {
            let other = Counter::for_endpoint(Some(endpoint)) == Counter::Other;
            assert_eq!(
                other,
                endpoint.name == e::ACTIVITY.name,
                "{}",
                endpoint.name
            );
        }
    }

    #[test]
    fn deltas() {
        let a = Activity::default();
        a.add(Counter::Write, 2);
        let first = a.read();
        a.add(Counter::Write, 3);
        a.add(Counter::BytesIn, 10);
        let delta = a.read().since(&first);
        assert_eq!(delta.0["write"], 3);
        assert_eq!(delta.0["bytes_in"], 10);
        assert_eq!(delta.0["read_mutable"], 0);
    }
}
