//! The `idle` scenario: what idle subscribers cost the server in memory.
//!
//! 1. One connection is opened and closed (first-use allocations are not counted).
//! 2. Baseline VmRSS of the server.
//! 3. One connection subscribes to `subscriptions` storage indexes with WebSocket
//!    `subscribe` commands; when every command has been answered (`progress`), VmRSS
//!    again: the difference over the count is the cost of one subscription.
//! 4. `connections` more connections, each with one distinct storage index in `?si=`;
//!    when every one has had its first `progress`, VmRSS again: the difference over the
//!    count is the cost of one idle connection (with its one subscription).
//! 5. Everything is closed, and VmRSS read once more (what the allocator kept).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use swamp_proto::StorageIndex;
use tokio_tungstenite::tungstenite::Message;

use crate::conn::{Kind, Target, parse};
use crate::report::Outcome;
use crate::stats::{Memory, memory};
use crate::subscribers::{self, Counters};

/// Parameters.
#[derive(Clone, Debug, serde::Serialize)]
pub struct IdlePlan {
    /// Idle connections, one storage index each.
    pub connections: usize,
    /// Storage indexes subscribed on the single many-subscription connection.
    pub subscriptions: usize,
    /// Storage indexes per `subscribe` command.
    pub chunk: usize,
    /// Connections being opened at once.
    pub parallel: usize,
    /// Pause before each memory reading.
    pub settle_seconds: f64,
}

const KIB: f64 = 1024.0;

fn random_si() -> String {
    StorageIndex::from_bytes(rand::random()).to_string()
}

/// Runs the scenario against the server process `pid`.
///
/// # Errors
/// If the server's memory cannot be read or the many-subscription connection fails.
pub async fn run(target: &Arc<Target>, plan: &IdlePlan, pid: u32) -> anyhow::Result<Outcome> {
    let mut out = Outcome::new("idle", serde_json::to_value(plan)?);
    let settle = Duration::from_secs_f64(plan.settle_seconds);

    // 1. Warm-up.
    {
        let counters = Arc::new(Counters::default());
        let fleet = subscribers::open(
            target,
            vec![format!("si={}", random_si())],
            1,
            None,
            &counters,
        )
        .await;
        anyhow::ensure!(
            fleet.failed == 0,
            "warm-up connection failed: {}",
            fleet.first_error.clone().unwrap_or_default()
        );
        subscribers::wait_ready(&counters, 1, Duration::from_secs(10)).await;
    }
    target.settle(0, Duration::from_secs(10)).await;
    tokio::time::sleep(settle).await;
    let m0 = memory(pid)?;
    eprintln!("idle: server RSS at rest {} KiB", m0.rss_kib);

    // 3. One connection, many subscriptions.
    let mut many = target.connect("").await?.ws;
    let sis: Vec<String> = (0..plan.subscriptions).map(|_| random_si()).collect();
    let commands = sis.chunks(plan.chunk.max(1)).count();
    let started = Instant::now();
    for chunk in sis.chunks(plan.chunk.max(1)) {
        let command = serde_json::json!({"op": "subscribe", "si": chunk});
        many.send(Message::Text(command.to_string().into())).await?;
    }
    let mut answered = 0;
    while answered < commands {
        let message = tokio::time::timeout(Duration::from_secs(60), many.next())
            .await
            .map_err(|_| anyhow::anyhow!("subscribe commands unanswered after 60 s"))?
            .ok_or_else(|| anyhow::anyhow!("connection closed while subscribing"))??;
        if let Message::Text(text) = message {
            match parse(text.as_str()).kind {
                Kind::Progress => answered += 1,
                Kind::Error | Kind::Reset => {
                    anyhow::bail!("subscribe refused: {}", text.as_str())
                }
                _ => {}
            }
        }
    }
    let subscribe_seconds = started.elapsed().as_secs_f64();
    tokio::time::sleep(settle).await;
    let m1 = memory(pid)?;
    let counts_1 = target.feed_counts().await.ok();
    eprintln!(
        "idle: {} subscriptions on one connection, server RSS {} KiB",
        plan.subscriptions, m1.rss_kib
    );

    // 4. Many idle connections.
    let counters = Arc::new(Counters::default());
    let queries: Vec<String> = (0..plan.connections)
        .map(|_| format!("si={}", random_si()))
        .collect();
    let started = Instant::now();
    let mut fleet = subscribers::open(target, queries, plan.parallel, None, &counters).await;
    let limit = Duration::from_secs(60 + plan.connections as u64 / 100);
    let ready = subscribers::wait_ready(&counters, fleet.len(), limit).await;
    let open_seconds = started.elapsed().as_secs_f64();
    tokio::time::sleep(settle).await;
    let m2 = memory(pid)?;
    let counts_2 = target.feed_counts().await.ok();
    eprintln!(
        "idle: {ready} idle connections ready in {open_seconds:.1} s, server RSS {} KiB",
        m2.rss_kib
    );

    // 5. Close everything.
    fleet.close();
    drop(many);
    target.settle(0, Duration::from_secs(30)).await;
    tokio::time::sleep(settle).await;
    let m3 = memory(pid)?;

    let per = |a: Memory, b: Memory, n: usize, anon: bool| {
        let (x, y) = if anon {
            (a.anon_kib, b.anon_kib)
        } else {
            (a.rss_kib, b.rss_kib)
        };
        (y as f64 - x as f64) * KIB / n.max(1) as f64
    };
    let per_sub = per(m0, m1, plan.subscriptions, false);
    let per_conn = per(m1, m2, ready.max(1), false);
    out.add("server RSS at rest", m0.rss_kib as f64 / KIB, "MiB");
    out.add(
        &format!(
            "server RSS with {} subscriptions on 1 connection",
            plan.subscriptions
        ),
        m1.rss_kib as f64 / KIB,
        "MiB",
    );
    out.add(
        &format!("server RSS with {ready} more idle connections"),
        m2.rss_kib as f64 / KIB,
        "MiB",
    );
    out.add(
        "server RSS after all closed",
        m3.rss_kib as f64 / KIB,
        "MiB",
    );
    out.at_most(
        "server memory per idle WebSocket connection (incl. its 1 subscription)",
        per_conn / KIB,
        "KiB",
        12.0,
    );
    out.add(
        "  of which anonymous (heap)",
        per(m1, m2, ready.max(1), true) / KIB,
        "KiB",
    );
    out.at_most(
        "server memory per extra subscription on one connection (anchor goal)",
        per_sub,
        "B",
        1024.0,
    );
    out.add("idle connections ready", ready as f64, "");
    out.add("connections failed", fleet.failed as f64, "");
    out.add(
        "connection set-up rate (TCP+TLS+upgrade+first progress)",
        ready as f64 / open_seconds.max(1e-9),
        "conn/s",
    );
    out.add(
        "subscription rate (subscribe commands on 1 connection)",
        plan.subscriptions as f64 / subscribe_seconds.max(1e-9),
        "subs/s",
    );
    if let (Some(c1), Some(c2)) = (counts_1, counts_2) {
        out.add(
            "server-reported feed connections",
            c2.connections as f64,
            "",
        );
        out.add("server-reported subscriptions", c2.subscriptions as f64, "");
        if c1.subscriptions < plan.subscriptions as u64 {
            out.note(format!(
                "the server reported only {} subscriptions after the subscribe commands",
                c1.subscriptions
            ));
        }
    }
    if ready < plan.connections {
        out.note(format!(
            "only {ready} of {} connections became ready; first error: {}",
            plan.connections,
            fleet
                .first_error
                .clone()
                .or_else(|| counters.first_problem())
                .unwrap_or_default()
        ));
    }
    let ends = counters.other_ends.load(Ordering::Relaxed);
    if ends > 0 {
        out.note(format!(
            "{ends} idle streams ended early: {}",
            counters.first_problem().unwrap_or_default()
        ));
    }
    out.note("VmRSS of the server process (user space); kernel socket buffers are not included");
    Ok(out)
}
