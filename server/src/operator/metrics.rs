//! The node's metrics, rendered by the `metrics` crate's Prometheus exporter for
//! `GET /metrics` on the operator listener.
//!
//! Why this shape: each node owns its own recorder (not the process-wide one), so
//! several nodes in one process (the tests) never mix their figures. Work on the
//! request path records into handles registered once (a few atomic adds); everything
//! the node already counts (the activity counters, the feeds' figures, the disk) is
//! read when Prometheus scrapes, so it costs nothing between scrapes.
//!
//! Names: Tahoe's own where the meaning is the same (`tahoe_counters_storage_server_*`,
//! `tahoe_stats_storage_server_*`, `tahoe_stats_node_uptime`, as Tahoe 1.20's
//! `/statistics?t=openmetrics` exports them, so dashboards built on those read a Swamp
//! node), Swamp's own under `swamp_` with units in the name. Tahoe's latency
//! percentiles are summaries with the same `quantile` labels Tahoe writes. Tahoe
//! exports nothing of its grid-manager certificates or its lease checker (whose
//! progress is only on its `/storage` page), so those are Swamp's own names.
//!
//! Every gauge is set at scrape time, from what the node holds then, and a gauge not
//! set for [`GAUGE_IDLE`] is dropped from the output: so the series of a certificate
//! removed by a reload goes away instead of showing its last value forever. (The
//! exporter has no way to remove one series; its idle timeout is that way.)

use std::time::{Duration, Instant};

use metrics::{Counter, Gauge, Histogram, Key, Label, Metadata, Recorder};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use swamp_proto::v1::endpoint as e;

use crate::activity::{Counter as Activity, Reading};
use crate::backend::expiry::SweepReading;
use crate::feeds::FeedFigures;
use crate::node::grid_manager::{CertificateState, CertificateStatus};

/// Bucket bounds of Swamp's latency histograms, in seconds: 50 µs to 30 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Bucket bounds of the group-commit size histogram, in entries.
const GROUP_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// A gauge not set for this long is left out of the output. Gauges are set just
/// before each render, so only those nothing sets any more (a removed certificate's)
/// go; the margin covers two scrapes overlapping.
const GAUGE_IDLE: Duration = Duration::from_secs(2);

/// Tahoe's latency percentiles (its `01_0_percentile` ... `99_9_percentile`).
const TAHOE_QUANTILES: &[f64] = &[0.01, 0.1, 0.5, 0.9, 0.95, 0.99, 0.999];

static META: Metadata<'static> = Metadata::new(module_path!(), metrics::Level::INFO, None);

/// Tahoe's latency summary for an endpoint, where Tahoe has one.
fn tahoe_latency(endpoint: &str) -> Option<&'static str> {
    Some(match endpoint {
        n if n == e::ALLOCATE.name => "tahoe_stats_storage_server_latencies_allocate",
        n if n == e::WRITE_IMMUTABLE.name => "tahoe_stats_storage_server_latencies_write",
        n if n == e::READ_IMMUTABLE.name => "tahoe_stats_storage_server_latencies_read",
        n if n == e::LIST_IMMUTABLE.name => "tahoe_stats_storage_server_latencies_get",
        n if n == e::READ_MUTABLE.name => "tahoe_stats_storage_server_latencies_readv",
        n if n == e::READ_TEST_WRITE.name => "tahoe_stats_storage_server_latencies_writev",
        _ => return None,
    })
}

/// Tahoe's counter for an activity counter, where the meaning is the same.
fn tahoe_counter(counter: &str) -> Option<&'static str> {
    Some(match counter {
        n if n == Activity::Allocate.name() => "allocate",
        n if n == Activity::Write.name() => "write",
        n if n == Activity::UploadsCompleted.name() => "close",
        n if n == Activity::Abort.name() => "abort",
        n if n == Activity::ReadImmutable.name() => "read",
        n if n == Activity::ReadMutable.name() => "readv",
        n if n == Activity::ReadTestWrite.name() => "writev",
        n if n == Activity::LeaseRenewals.name() => "renew",
        _ => return None,
    })
}

/// What the node knows at scrape time, read by the operator listener.
pub struct Snapshot {
    /// The activity counters' totals.
    pub activity: Reading,
    /// Disk figures of the storage directory's file system.
    pub disk: Option<Disk>,
    /// `[storage] reserved_space`.
    pub reserved_space: u64,
    /// Whether immutable shares are accepted now (not read-only, room above the
    /// reserve).
    pub accepting_immutable_shares: bool,
    /// Immutable uploads in progress.
    pub uploads_in_progress: usize,
    /// Feed figures.
    pub feeds: FeedFigures,
    /// The grid-manager certificates' states now.
    pub certificates: Vec<CertificateStatus>,
    /// Whether a lease expiry policy is in force.
    pub lease_expiry_enabled: bool,
    /// The lease expiry sweep's progress.
    pub lease_expiry: SweepReading,
}

/// The storage file system's space, in bytes.
pub struct Disk {
    /// Size of the file system.
    pub total: u64,
    /// Used.
    pub used: u64,
    /// Free for unprivileged users.
    pub free_for_nonroot: u64,
    /// Free for root.
    pub free_for_root: u64,
    /// What a new share may use: free for unprivileged users less the reserve.
    pub avail: u64,
}

/// One node's metrics.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    started: Instant,
    bytes_in: Counter,
    bytes_out: Counter,
    /// The write-ahead log's group commits, handed to the storage.
    pub group: crate::wal::GroupMetrics,
    /// Time from a change's publication to its hand-over to a transport.
    pub feed_lag: Histogram,
    /// Whether requests, group commits and feed deliveries are recorded
    /// (`[storageserver.plugins.swamp] metrics`); scrape-time figures always are.
    recording: bool,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(true)
    }
}

impl Metrics {
    /// A recorder of its own, with Swamp's histograms as Prometheus histograms and
    /// Tahoe's latencies as summaries. With `recording` off, nothing is recorded on
    /// the request path (to measure what recording costs: `docs/benchmarks.md`).
    pub fn new(recording: bool) -> Self {
        let recorder = PrometheusBuilder::new()
            .set_quantiles(TAHOE_QUANTILES)
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
            })
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("swamp_wal_group_entries".into()),
                    GROUP_BUCKETS,
                )
            })
            .expect("invariant: the bucket and quantile lists are constant and valid")
            .idle_timeout(metrics_util::MetricKindMask::GAUGE, Some(GAUGE_IDLE))
            .build_recorder();
        let handle = recorder.handle();
        let counter =
            |name: &'static str| recorder.register_counter(&Key::from_static_name(name), &META);
        let histogram = |name: &'static str| {
            if recording {
                recorder.register_histogram(&Key::from_static_name(name), &META)
            } else {
                Histogram::noop()
            }
        };
        Self {
            bytes_in: counter("swamp_request_body_bytes_total"),
            bytes_out: counter("swamp_response_body_bytes_total"),
            group: crate::wal::GroupMetrics {
                sync_seconds: histogram("swamp_wal_sync_seconds"),
                entries: histogram("swamp_wal_group_entries"),
            },
            feed_lag: histogram("swamp_feed_delivery_lag_seconds"),
            recorder,
            handle,
            started: Instant::now(),
            recording,
        }
    }

    /// Folds the histogram samples recorded since the last call into their buckets
    /// and summaries. The exporter keeps each sample until then, so without this a
    /// node nobody scrapes would grow by a few words per request: it runs every few
    /// seconds (`tasks::metrics_upkeep`) and at each scrape.
    pub fn run_upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// Records one request: its endpoint (from the endpoint table, `other` for none),
    /// status, time and body sizes.
    pub fn request(&self, endpoint: &'static str, status: u16, took: Duration, bytes: (u64, u64)) {
        if !self.recording {
            return;
        }
        let labels = vec![
            Label::new("endpoint", endpoint),
            Label::new("status", status.to_string()),
        ];
        self.recorder
            .register_counter(&Key::from_parts("swamp_requests_total", labels), &META)
            .increment(1);
        let by_endpoint = || vec![Label::new("endpoint", endpoint)];
        self.recorder
            .register_histogram(
                &Key::from_parts("swamp_request_duration_seconds", by_endpoint()),
                &META,
            )
            .record(took.as_secs_f64());
        if let Some(name) = tahoe_latency(endpoint) {
            self.recorder
                .register_histogram(&Key::from_static_name(name), &META)
                .record(took.as_secs_f64());
        }
        self.bytes_in.increment(bytes.0);
        self.bytes_out.increment(bytes.1);
    }

    /// Time since the node started.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    fn gauge(&self, name: &'static str) -> Gauge {
        self.recorder
            .register_gauge(&Key::from_static_name(name), &META)
    }

    fn labelled_gauge(&self, name: &'static str, label: (&'static str, &str), value: f64) {
        self.recorder
            .register_gauge(
                &Key::from_parts(name, vec![Label::new(label.0, label.1.to_string())]),
                &META,
            )
            .set(value);
    }

    fn absolute(&self, name: impl Into<metrics::KeyName>, labels: Vec<Label>, value: u64) {
        self.recorder
            .register_counter(&Key::from_parts(name, labels), &META)
            .absolute(value);
    }

    /// The exposition text, with the figures read now.
    pub fn render(&self, now: &Snapshot) -> String {
        for (name, value) in &now.activity.0 {
            if let Some(tahoe) = tahoe_counter(name) {
                self.absolute(
                    format!("tahoe_counters_storage_server_{tahoe}"),
                    Vec::new(),
                    *value,
                );
            }
            self.absolute(
                "swamp_activity_total",
                vec![Label::new("counter", *name)],
                *value,
            );
        }
        if let Some(disk) = &now.disk {
            self.gauge("tahoe_stats_storage_server_disk_total")
                .set(disk.total as f64);
            self.gauge("tahoe_stats_storage_server_disk_used")
                .set(disk.used as f64);
            self.gauge("tahoe_stats_storage_server_disk_free_for_root")
                .set(disk.free_for_root as f64);
            self.gauge("tahoe_stats_storage_server_disk_free_for_nonroot")
                .set(disk.free_for_nonroot as f64);
            self.gauge("tahoe_stats_storage_server_disk_avail")
                .set(disk.avail as f64);
        }
        self.gauge("tahoe_stats_storage_server_reserved_space")
            .set(now.reserved_space as f64);
        self.gauge("tahoe_stats_storage_server_accepting_immutable_shares")
            .set(f64::from(u8::from(now.accepting_immutable_shares)));
        self.gauge("tahoe_stats_node_uptime")
            .set(self.started.elapsed().as_secs_f64());
        self.gauge("swamp_uploads_in_progress")
            .set(now.uploads_in_progress as f64);
        let feeds = &now.feeds;
        for (transport, open) in feeds.connections {
            self.recorder
                .register_gauge(
                    &Key::from_parts(
                        "swamp_feed_connections",
                        vec![Label::new("transport", transport)],
                    ),
                    &META,
                )
                .set(open as f64);
        }
        self.gauge("swamp_feed_subscriptions")
            .set(feeds.subscriptions as f64);
        self.gauge("swamp_feed_queued_bytes")
            .set(feeds.queued_bytes as f64);
        self.absolute("swamp_feed_deliveries_total", Vec::new(), feeds.deliveries);
        self.absolute("swamp_feed_coalesced_total", Vec::new(), feeds.coalesced);
        self.absolute(
            "swamp_feed_slow_closes_total",
            Vec::new(),
            feeds.slow_closes,
        );
        self.render_certificates(&now.certificates);
        self.render_lease_expiry(now.lease_expiry_enabled, &now.lease_expiry);
        self.handle.render()
    }

    fn render_certificates(&self, certificates: &[CertificateStatus]) {
        for c in certificates {
            self.labelled_gauge(
                "swamp_grid_manager_certificate_expiry_timestamp_seconds",
                ("name", &c.name),
                c.expires as f64,
            );
            self.labelled_gauge(
                "swamp_grid_manager_certificate_valid",
                ("name", &c.name),
                f64::from(u8::from(c.state.is_usable())),
            );
        }
        for state in CertificateState::ALL {
            let count = certificates.iter().filter(|c| c.state == state).count();
            self.labelled_gauge(
                "swamp_grid_manager_certificates",
                ("state", state.as_str()),
                count as f64,
            );
        }
    }

    fn render_lease_expiry(&self, enabled: bool, sweep: &SweepReading) {
        self.gauge("swamp_lease_expiry_enabled")
            .set(f64::from(u8::from(enabled)));
        self.gauge("swamp_lease_expiry_prefixes_done")
            .set(sweep.prefixes_done as f64);
        self.absolute("swamp_lease_expiry_passes_total", Vec::new(), sweep.passes);
        if let Some(end) = sweep.last_pass_end {
            self.gauge("swamp_lease_expiry_last_pass_end_timestamp_seconds")
                .set(end as f64);
        }
        self.absolute(
            "swamp_lease_expiry_shares_examined_total",
            Vec::new(),
            sweep.shares_examined,
        );
        self.absolute(
            "swamp_lease_expiry_shares_deleted_total",
            Vec::new(),
            sweep.shares_deleted,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_recorded_only_when_recording_is_on() {
        for recording in [true, false] {
            let metrics = Metrics::new(recording);
            metrics.request(e::VERSION.name, 200, Duration::from_millis(3), (0, 10));
            metrics.group.sync_seconds.record(0.001);
            metrics.run_upkeep();
            let text = metrics.handle.render();
            assert_eq!(
                text.contains("swamp_requests_total{endpoint=\"version\",status=\"200\"} 1"),
                recording,
                "{text}"
            );
            assert_eq!(
                text.contains("swamp_wal_sync_seconds_count 1"),
                recording,
                "{text}"
            );
        }
    }
}
