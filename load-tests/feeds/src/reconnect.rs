//! The `reconnect` scenario: subscribers that drop their connection and resume, over
//! and over, while a writer keeps changing the slots they follow.
//!
//! Each of `subscribers` tasks follows one of `slots` slots. It connects (TCP, TLS,
//! WebSocket upgrade) with `since=<its last cursor>`, asks for a checkpoint
//! (`{"op":"progress"}`), reads the replayed backlog up to that `progress`, keeps the
//! newest cursor, closes, and starts again. One such cycle is one resume; its time runs
//! from the start of the TCP connect to the receipt of the `progress`. The first
//! connection of each task (no cursor yet) is not counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use swamp_client::StorageClient;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

use crate::conn::{Kind, Target, parse};
use crate::report::Outcome;
use crate::slots::Slots;
use crate::stats::{CpuWindow, Histogram};

/// Parameters.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ReconnectPlan {
    /// Concurrent reconnecting subscribers.
    pub subscribers: usize,
    /// Slots they follow (one each, round-robin).
    pub slots: usize,
    /// Duration.
    pub seconds: f64,
    /// Writes per second to those slots meanwhile (so resumes replay a backlog).
    pub write_rate: f64,
}

#[derive(Default)]
struct Tally {
    resumes: AtomicU64,
    replayed: AtomicU64,
    resets: AtomicU64,
    tls_resumed: AtomicU64,
    failures: AtomicU64,
    writes: AtomicU64,
    took: Histogram,
    first_failure: std::sync::Mutex<Option<String>>,
}

impl Tally {
    fn fail(&self, text: String) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_failure.lock().unwrap_or_else(|p| p.into_inner());
        if first.is_none() {
            *first = Some(text);
        }
    }
}

/// One connect-replay-checkpoint cycle; returns the new cursor.
async fn cycle(
    target: &Target,
    si: &str,
    cursor: Option<&str>,
    tally: &Tally,
) -> anyhow::Result<String> {
    let query = match cursor {
        Some(c) => format!("si={si}&since={c}"),
        None => format!("si={si}"),
    };
    let connected = target.connect(&query).await?;
    let mut ws = connected.ws;
    if cursor.is_some() {
        if connected.tls_resumed {
            tally.tls_resumed.fetch_add(1, Ordering::Relaxed);
        }
        ws.send(Message::Text(r#"{"op":"progress"}"#.into()))
            .await?;
    }
    let mut newest = cursor.map(str::to_string);
    let mut replayed = 0u64;
    loop {
        let message = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .map_err(|_| anyhow::anyhow!("no checkpoint within 30 s"))?
            .ok_or_else(|| anyhow::anyhow!("connection closed before the checkpoint"))??;
        let text = match message {
            Message::Text(text) => text,
            Message::Close(frame) => anyhow::bail!("closed by the server: {frame:?}"),
            _ => continue,
        };
        let event = parse(text.as_str());
        if let Some(c) = event.cursor {
            newest = Some(c.to_string());
        }
        match event.kind {
            Kind::SlotChanged => replayed += 1,
            Kind::Reset => {
                tally.resets.fetch_add(1, Ordering::Relaxed);
            }
            Kind::Error => anyhow::bail!("server said: {}", text.as_str()),
            Kind::Progress => break,
            Kind::Other => {}
        }
    }
    if cursor.is_some() {
        tally.replayed.fetch_add(replayed, Ordering::Relaxed);
    }
    // Say goodbye without waiting for the answer.
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.send(Message::Close(None))).await;
    newest.ok_or_else(|| anyhow::anyhow!("no cursor received"))
}

/// Runs the scenario.
///
/// # Errors
/// If the slots cannot be created.
pub async fn run(
    target: &Arc<Target>,
    plan: &ReconnectPlan,
    server_pid: Option<u32>,
) -> anyhow::Result<Outcome> {
    let mut out = Outcome::new("reconnect", serde_json::to_value(plan)?);
    let client = StorageClient::new(&target.nurl)?;
    let slots = Slots::new(plan.slots.max(1), 64);
    slots.create_all(std::slice::from_ref(&client), 32).await?;
    let tally = Arc::new(Tally::default());
    eprintln!(
        "reconnect: {} subscribers reconnecting for {} s",
        plan.subscribers, plan.seconds
    );
    let cpu = CpuWindow::start(server_pid);
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(plan.seconds);
    let mut tasks = JoinSet::new();
    for r in 0..plan.subscribers {
        let (target, tally, slots) = (Arc::clone(target), Arc::clone(&tally), Arc::clone(&slots));
        tasks.spawn(async move {
            let si = slots.slots[r % slots.slots.len()].si_text.clone();
            let mut cursor: Option<String> = None;
            while Instant::now() < end {
                let began = Instant::now();
                match cycle(&target, &si, cursor.as_deref(), &tally).await {
                    Ok(next) => {
                        if cursor.is_some() {
                            tally.resumes.fetch_add(1, Ordering::Relaxed);
                            tally.took.record(began.elapsed().as_micros() as u64);
                        }
                        cursor = Some(next);
                    }
                    Err(e) => {
                        tally.fail(format!("{e:#}"));
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        });
    }
    if plan.write_rate > 0.0 {
        let (slots, tally) = (Arc::clone(&slots), Arc::clone(&tally));
        let rate = plan.write_rate;
        tasks.spawn(async move {
            let mut i: u64 = 0;
            let mut pending = JoinSet::new();
            loop {
                let due = start + Duration::from_secs_f64(i as f64 / rate);
                if due >= end {
                    break;
                }
                tokio::time::sleep_until(due.into()).await;
                let slot = (i % slots.slots.len() as u64) as usize;
                i += 1;
                let (slots, tally, client) =
                    (Arc::clone(&slots), Arc::clone(&tally), client.clone());
                pending.spawn(async move {
                    if slots.write(&client, slot).await.is_ok() {
                        tally.writes.fetch_add(1, Ordering::Relaxed);
                    }
                });
                while pending.try_join_next().is_some() {}
            }
            while pending.join_next().await.is_some() {}
        });
    }
    while tasks.join_next().await.is_some() {}
    let cpu = cpu.end();

    let resumes = tally.resumes.load(Ordering::Relaxed);
    out.add("resumes", resumes as f64, "");
    out.add(
        "resumes per second",
        resumes as f64 / plan.seconds,
        "resumes/s",
    );
    out.add(
        "resume time p50 (connect to checkpoint)",
        tally.took.quantile(0.5) as f64 / 1000.0,
        "ms",
    );
    out.add(
        "resume time p99",
        tally.took.quantile(0.99) as f64 / 1000.0,
        "ms",
    );
    out.add("resume time max", tally.took.max() as f64 / 1000.0, "ms");
    out.add(
        "events replayed per resume",
        tally.replayed.load(Ordering::Relaxed) as f64 / resumes.max(1) as f64,
        "",
    );
    out.add(
        "TLS sessions resumed",
        tally.tls_resumed.load(Ordering::Relaxed) as f64 * 100.0 / resumes.max(1) as f64,
        "%",
    );
    out.add("resets", tally.resets.load(Ordering::Relaxed) as f64, "");
    out.add(
        "failed cycles",
        tally.failures.load(Ordering::Relaxed) as f64,
        "",
    );
    out.add(
        "background writes",
        tally.writes.load(Ordering::Relaxed) as f64 / plan.seconds,
        "writes/s",
    );
    crate::report::add_cpu(&mut out, &cpu);
    if let Some(server) = cpu.server
        && resumes > 0
    {
        out.add(
            "server CPU per resume",
            server * cpu.seconds * 1e6 / resumes as f64,
            "µs",
        );
    }
    if let Some(first) = tally
        .first_failure
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
    {
        out.note(format!("first failure: {first}"));
    }
    Ok(out)
}
