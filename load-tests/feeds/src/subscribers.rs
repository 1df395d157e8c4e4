//! Feed subscribers: many WebSocket connections opened a bounded number at a time, each
//! read by its own task that counts `progress` checkpoints and matches every
//! `slot_changed` to the write that caused it (by storage index and seqnum).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::conn::{Kind, Target, Ws, parse};
use crate::slots::Slots;
use crate::stats::Histogram;

/// What all subscribers of a scenario saw.
#[derive(Default)]
pub struct Counters {
    /// Connections that received their first `progress` event.
    pub ready: AtomicUsize,
    /// `progress` events received in all.
    pub progress: AtomicU64,
    /// `slot_changed` events matched to a write of this run.
    pub deliveries: AtomicU64,
    /// `slot_changed` events that matched no remembered write.
    pub unmatched: AtomicU64,
    /// When the last delivery arrived (ns since the slots' epoch).
    pub last_delivery_ns: AtomicU64,
    /// Streams the server closed as slow (4008).
    pub slow_closes: AtomicU64,
    /// Streams closed for another reason, or broken.
    pub other_ends: AtomicU64,
    /// `error` or `reset` events.
    pub refusals: AtomicU64,
    /// Write-to-delivery latency (µs).
    pub latency: Histogram,
    /// The first unexpected end or refusal, for the report.
    pub first_problem: Mutex<Option<String>>,
}

impl Counters {
    /// Remembers the first problem.
    pub fn problem(&self, text: String) {
        let mut first = self.first_problem.lock().unwrap_or_else(|p| p.into_inner());
        if first.is_none() {
            *first = Some(text);
        }
    }

    /// The first problem seen, if any.
    pub fn first_problem(&self) -> Option<String> {
        self.first_problem
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Reads one connection until it ends (or its task is aborted).
pub async fn follow(mut ws: Ws, slots: Option<Arc<Slots>>, counters: Arc<Counters>) {
    let mut ready = false;
    while let Some(message) = ws.next().await {
        let text = match message {
            Ok(Message::Text(text)) => text,
            Ok(Message::Close(frame)) => {
                let code = frame.as_ref().map(|f| u16::from(f.code)).unwrap_or(1005);
                if code == 4008 {
                    counters.slow_closes.fetch_add(1, Ordering::Relaxed);
                } else {
                    counters.other_ends.fetch_add(1, Ordering::Relaxed);
                    counters.problem(format!("stream closed by the server: {frame:?}"));
                }
                return;
            }
            Ok(_) => continue,
            Err(e) => {
                counters.other_ends.fetch_add(1, Ordering::Relaxed);
                counters.problem(format!("stream broke: {e}"));
                return;
            }
        };
        let event = parse(text.as_str());
        match event.kind {
            Kind::SlotChanged => {
                let Some(slots) = slots.as_deref() else {
                    continue;
                };
                let now = slots.now_ns();
                let sent = event
                    .si
                    .and_then(|si| slots.find(si))
                    .zip(event.seqnum)
                    .and_then(|(slot, seq)| slots.sent_at(slot, seq));
                match sent {
                    Some(sent) => {
                        counters.latency.record(now.saturating_sub(sent) / 1_000);
                        counters.deliveries.fetch_add(1, Ordering::Relaxed);
                        counters.last_delivery_ns.fetch_max(now, Ordering::Relaxed);
                    }
                    None => {
                        counters.unmatched.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Kind::Progress => {
                counters.progress.fetch_add(1, Ordering::Relaxed);
                if !ready {
                    ready = true;
                    counters.ready.fetch_add(1, Ordering::Relaxed);
                }
            }
            Kind::Reset | Kind::Error => {
                counters.refusals.fetch_add(1, Ordering::Relaxed);
                counters.problem(format!("server said: {}", text.as_str()));
            }
            Kind::Other => {}
        }
    }
    counters.other_ends.fetch_add(1, Ordering::Relaxed);
}

/// The reader tasks of a set of connections; dropping it aborts them (closing every
/// connection).
#[derive(Default)]
pub struct Fleet {
    tasks: Vec<JoinHandle<()>>,
    /// Connections that could not be opened.
    pub failed: usize,
    /// The first connection error.
    pub first_error: Option<String>,
}

impl Fleet {
    /// Open connections.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Aborts every reader (closes the connections).
    pub fn close(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.close();
    }
}

/// Opens one connection per query, `parallel` at a time, each read by [`follow`].
pub async fn open(
    target: &Arc<Target>,
    queries: Vec<String>,
    parallel: usize,
    slots: Option<Arc<Slots>>,
    counters: &Arc<Counters>,
) -> Fleet {
    let total = queries.len();
    let mut fleet = Fleet::default();
    let mut attempts = futures::stream::iter(queries)
        .map(|q| {
            let target = Arc::clone(target);
            async move { target.connect(&q).await }
        })
        .buffer_unordered(parallel.max(1));
    let mut done = 0usize;
    while let Some(result) = attempts.next().await {
        done += 1;
        match result {
            Ok(connected) => {
                fleet.tasks.push(tokio::spawn(follow(
                    connected.ws,
                    slots.clone(),
                    Arc::clone(counters),
                )));
            }
            Err(e) => {
                fleet.failed += 1;
                if fleet.first_error.is_none() {
                    fleet.first_error = Some(format!("{e:#}"));
                }
            }
        }
        if done.is_multiple_of(2000) {
            eprintln!("  {done}/{total} connections opened");
        }
    }
    fleet
}

/// Waits until `count` connections have had their first `progress`, at most `limit`;
/// returns how many had.
pub async fn wait_ready(counters: &Counters, count: usize, limit: Duration) -> usize {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let ready = counters.ready.load(Ordering::Relaxed);
        if ready >= count || tokio::time::Instant::now() >= deadline {
            return ready;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
