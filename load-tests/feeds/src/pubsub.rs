//! The `latency` and `fanout` scenarios: writers change slots, subscribers follow them,
//! and every delivery is matched to its write.
//!
//! `slots` slots are created first (untimed). `connections` WebSocket subscribers then
//! each follow `follow` of them (connection c follows slots c·follow, c·follow+1, …
//! modulo `slots`), so each write is delivered to connections·follow/slots subscribers.
//! Writes run for `seconds`:
//! - open loop when `rate` > 0: write i is due at start + i/rate, to slot i mod slots,
//!   whether or not earlier writes have been answered (at most `max_in_flight` at once;
//!   a write that would pass that is counted as skipped);
//! - closed loop otherwise: `writers` writers, each writing its own slots in turn, the
//!   next as soon as the previous is answered.
//!
//! Latency runs from just before a read-test-write is sent to the receipt of the
//! matching `slot_changed` (same storage index and seqnum) by each subscriber. After the
//! writes, the run waits for outstanding deliveries (at most `drain_seconds`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use swamp_client::StorageClient;
use tokio::task::JoinSet;

use crate::conn::Target;
use crate::report::Outcome;
use crate::slots::{Slots, Written};
use crate::stats::{CpuWindow, Histogram};
use crate::subscribers::{self, Counters};

/// Parameters.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PubSubPlan {
    /// Slots written.
    pub slots: usize,
    /// Subscriber connections.
    pub connections: usize,
    /// Slots each connection follows.
    pub follow: usize,
    /// Writes per second (open loop); 0 for closed loop.
    pub rate: f64,
    /// Closed-loop writers.
    pub writers: usize,
    /// Writing time.
    pub seconds: f64,
    /// Bytes after the 41-byte share header.
    pub tail: usize,
    /// HTTP/2 clients (connections) the writes are spread over.
    pub http_clients: usize,
    /// Open loop: writes in flight at most.
    pub max_in_flight: usize,
    /// Connections being opened at once.
    pub parallel: usize,
    /// Longest wait for outstanding deliveries after the writes.
    pub drain_seconds: f64,
}

/// Targets checked, if any.
#[derive(Clone, Copy, Debug)]
pub struct Goals {
    /// p99 write-to-delivery at most this (ms).
    pub p99_ms: Option<f64>,
    /// Deliveries per second at least this.
    pub deliveries_per_second: Option<f64>,
}

#[derive(Default)]
struct WriteStats {
    ok: AtomicU64,
    failed: AtomicU64,
    skipped: AtomicU64,
    expected: AtomicU64,
    max_lag_us: AtomicU64,
    took: Histogram,
    first_error: std::sync::Mutex<Option<String>>,
}

impl WriteStats {
    fn done(&self, slots: &Slots, result: anyhow::Result<Written>) {
        match result {
            Ok(w) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
                self.expected.fetch_add(
                    slots.slots[w.slot].followers.load(Ordering::Relaxed),
                    Ordering::Relaxed,
                );
                self.took.record(w.took.as_micros() as u64);
            }
            Err(e) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
                if first.is_none() {
                    *first = Some(format!("{e:#}"));
                }
            }
        }
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Runs one publish/subscribe measurement.
///
/// # Errors
/// If the slots cannot be created or too few subscribers connect.
pub async fn run(
    name: &str,
    target: &Arc<Target>,
    plan: &PubSubPlan,
    goals: Goals,
    server_pid: Option<u32>,
) -> anyhow::Result<Outcome> {
    let mut out = Outcome::new(name, serde_json::to_value(plan)?);
    let clients: Vec<StorageClient> = (0..plan.http_clients.max(1))
        .map(|_| StorageClient::new(&target.nurl))
        .collect::<Result<_, _>>()?;
    let slots = Slots::new(plan.slots.max(1), plan.tail);
    let n_slots = slots.slots.len();
    slots.create_all(&clients, 32).await?;

    let follow = plan.follow.clamp(1, n_slots);
    let queries: Vec<String> = (0..plan.connections)
        .map(|c| {
            let sis: Vec<&str> = (0..follow)
                .map(|j| {
                    let s = &slots.slots[(c * follow + j) % n_slots];
                    s.followers.fetch_add(1, Ordering::Relaxed);
                    s.si_text.as_str()
                })
                .collect();
            format!("si={}", sis.join(","))
        })
        .collect();
    let counters = Arc::new(Counters::default());
    eprintln!("{name}: opening {} subscribers", plan.connections);
    let mut fleet = subscribers::open(
        target,
        queries,
        plan.parallel,
        Some(Arc::clone(&slots)),
        &counters,
    )
    .await;
    let limit = Duration::from_secs(60 + plan.connections as u64 / 100);
    let ready = subscribers::wait_ready(&counters, fleet.len(), limit).await;
    anyhow::ensure!(
        ready == plan.connections,
        "only {ready} of {} subscribers ready; first error: {}",
        plan.connections,
        fleet
            .first_error
            .clone()
            .or_else(|| counters.first_problem())
            .unwrap_or_default()
    );
    // Deliveries of the slot creations, if any straggle, are not counted.
    tokio::time::sleep(Duration::from_millis(200)).await;
    counters.deliveries.store(0, Ordering::Relaxed);
    counters.unmatched.store(0, Ordering::Relaxed);
    let slow_before = counters.slow_closes.load(Ordering::Relaxed);

    eprintln!(
        "{name}: writing for {} s ({})",
        plan.seconds,
        if plan.rate > 0.0 {
            format!("{} writes/s, open loop", plan.rate)
        } else {
            format!("{} closed-loop writers", plan.writers)
        }
    );
    let stats = Arc::new(WriteStats::default());
    let cpu = CpuWindow::start(server_pid);
    let start = Instant::now();
    let start_ns = slots.now_ns();
    let end = start + Duration::from_secs_f64(plan.seconds);
    let mut writes = JoinSet::new();
    if plan.rate > 0.0 {
        let in_flight = Arc::new(AtomicU64::new(0));
        let mut i: u64 = 0;
        loop {
            let due = start + Duration::from_secs_f64(i as f64 / plan.rate);
            if due >= end {
                break;
            }
            tokio::time::sleep_until(due.into()).await;
            let lag = Instant::now().saturating_duration_since(due);
            stats
                .max_lag_us
                .fetch_max(lag.as_micros() as u64, Ordering::Relaxed);
            let slot = (i % n_slots as u64) as usize;
            let client = clients[(i % clients.len() as u64) as usize].clone();
            i += 1;
            if in_flight.load(Ordering::Relaxed) >= plan.max_in_flight as u64 {
                stats.skipped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            in_flight.fetch_add(1, Ordering::Relaxed);
            let (slots, stats, in_flight) = (
                Arc::clone(&slots),
                Arc::clone(&stats),
                Arc::clone(&in_flight),
            );
            writes.spawn(async move {
                let result = slots.write(&client, slot).await;
                stats.done(&slots, result);
                in_flight.fetch_sub(1, Ordering::Relaxed);
            });
            // Reap finished writes as we go.
            while writes.try_join_next().is_some() {}
        }
    } else {
        let writers = plan.writers.max(1);
        for w in 0..writers {
            let (slots, stats) = (Arc::clone(&slots), Arc::clone(&stats));
            let client = clients[w % clients.len()].clone();
            writes.spawn(async move {
                let mut k = 0usize;
                while Instant::now() < end {
                    let slot = (w + k * writers) % n_slots;
                    k += 1;
                    let result = slots.write(&client, slot).await;
                    stats.done(&slots, result);
                }
            });
        }
    }
    while writes.join_next().await.is_some() {}
    let write_seconds = start.elapsed().as_secs_f64();
    let delivered_during_writes = counters.deliveries.load(Ordering::Relaxed);

    // Drain: until everything expected arrived, nothing arrived for 2 s, or the limit.
    let expected = stats.expected.load(Ordering::Relaxed);
    let drain_end = Instant::now() + Duration::from_secs_f64(plan.drain_seconds);
    let mut last = (counters.deliveries.load(Ordering::Relaxed), Instant::now());
    loop {
        let got = counters.deliveries.load(Ordering::Relaxed);
        if got >= expected || Instant::now() >= drain_end {
            break;
        }
        if got != last.0 {
            last = (got, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let cpu = cpu.end();
    fleet.close();

    let ok = stats.ok.load(Ordering::Relaxed);
    let delivered = counters.deliveries.load(Ordering::Relaxed);
    let last_ns = counters.last_delivery_ns.load(Ordering::Relaxed);
    let delivery_seconds = (last_ns.saturating_sub(start_ns) as f64 / 1e9).max(write_seconds);
    let lat = &counters.latency;
    let fanout = expected as f64 / ok.max(1) as f64;
    out.add("subscriber connections", plan.connections as f64, "");
    out.add("subscribers per write (fan-out)", fanout, "");
    out.add("writes completed", ok as f64, "");
    out.add("write rate achieved", ok as f64 / write_seconds, "writes/s");
    if plan.rate > 0.0 {
        out.add("write rate planned", plan.rate, "writes/s");
    }
    out.add(
        "read-test-write round trip p50",
        ms(stats.took.quantile(0.5)),
        "ms",
    );
    out.add(
        "read-test-write round trip p99",
        ms(stats.took.quantile(0.99)),
        "ms",
    );
    out.add("deliveries", delivered as f64, "");
    out.add("deliveries expected", expected as f64, "");
    match goals.deliveries_per_second {
        Some(goal) => out.at_least(
            "deliveries per second",
            delivered as f64 / delivery_seconds,
            "deliveries/s",
            goal,
        ),
        None => out.add(
            "deliveries per second",
            delivered as f64 / delivery_seconds,
            "deliveries/s",
        ),
    }
    out.add(
        "deliveries per second while writing",
        delivered_during_writes as f64 / write_seconds,
        "deliveries/s",
    );
    out.add("write-to-delivery p50", ms(lat.quantile(0.5)), "ms");
    out.add("write-to-delivery p90", ms(lat.quantile(0.9)), "ms");
    match goals.p99_ms {
        Some(goal) => out.at_most("write-to-delivery p99", ms(lat.quantile(0.99)), "ms", goal),
        None => out.add("write-to-delivery p99", ms(lat.quantile(0.99)), "ms"),
    }
    out.add("write-to-delivery p99.9", ms(lat.quantile(0.999)), "ms");
    out.add("write-to-delivery max", ms(lat.max()), "ms");
    out.add("write-to-delivery mean", lat.mean() / 1000.0, "ms");
    crate::report::add_cpu(&mut out, &cpu);
    if let Some(server) = cpu.server {
        out.add(
            "server CPU per write (incl. its deliveries)",
            server * cpu.seconds * 1e6 / ok.max(1) as f64,
            "µs",
        );
    }
    let slow = counters.slow_closes.load(Ordering::Relaxed) - slow_before;
    out.add("streams closed as slow (4008)", slow as f64, "");
    let failed = stats.failed.load(Ordering::Relaxed);
    let skipped = stats.skipped.load(Ordering::Relaxed);
    if failed > 0 {
        out.note(format!(
            "{failed} writes failed; first: {}",
            stats
                .first_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
                .unwrap_or_default()
        ));
    }
    if skipped > 0 {
        out.note(format!(
            "{skipped} writes skipped: {} already in flight",
            plan.max_in_flight
        ));
    }
    if plan.rate > 0.0 {
        let lag = stats.max_lag_us.load(Ordering::Relaxed);
        out.add("generator: worst send lag behind schedule", ms(lag), "ms");
        if ok as f64 / write_seconds < plan.rate * 0.98 {
            out.note(format!(
                "the planned {} writes/s were not reached",
                plan.rate
            ));
        }
    }
    if delivered < expected {
        out.note(format!(
            "{} deliveries missing (coalesced in a full queue, or the stream was closed as slow)",
            expected - delivered
        ));
    }
    let unmatched = counters.unmatched.load(Ordering::Relaxed);
    if unmatched > 0 {
        out.note(format!(
            "{unmatched} slot_changed events matched no write of this run"
        ));
    }
    let ends = counters.other_ends.load(Ordering::Relaxed);
    if ends > 0 || counters.refusals.load(Ordering::Relaxed) > 0 {
        out.note(format!(
            "{ends} streams ended unexpectedly: {}",
            counters.first_problem().unwrap_or_default()
        ));
    }
    Ok(out)
}
