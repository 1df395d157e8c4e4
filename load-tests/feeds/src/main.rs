//! `swamp-feed-load`: the change-feed benchmark. It drives a Swamp server on this
//! machine, given its NURL, with WebSocket subscribers (JSON frames, TLS pinned by the
//! NURL's SPKI hash) and slot writers (read-test-write), and reports:
//!
//! - `idle`: server memory per idle WebSocket connection and per subscription;
//! - `latency`: write-to-delivery latency at a paced write rate, each write fanned out
//!   to a few subscribers;
//! - `fanout`, `fanout-single`: deliveries per second with many subscribers per slot
//!   (connections following many slots, or one each);
//! - `reconnect`: resumes per second (disconnect, reconnect with `since=`);
//! - `idle-h2`: server memory per idle WebSocket stream when many share one HTTP/2
//!   connection (RFC 8441), past the file-descriptor cap.
//!
//! Every scenario is bounded in time and count and stops by itself.
//! `load-tests/feeds/run.sh` builds, starts a throw-away node, runs them all and stops
//! it; see `docs/benchmarks.md` for results.
//!
//! # Layout
//! - `conn.rs`: connecting, reading events cheaply, the activity counters.
//! - `slots.rs`: slots, writes, send times.
//! - `subscribers.rs`: many reader tasks and what they count.
//! - `idle.rs`, `pubsub.rs` (latency and fanout), `reconnect.rs`, `h2.rs`: the scenarios.
//! - `stats.rs`: histogram, `/proc` readings; `report.rs`: table and JSON.

mod conn;
mod h2;
mod idle;
mod pubsub;
mod reconnect;
mod report;
mod slots;
mod stats;
mod subscribers;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use swamp_proto::Nurl;

use crate::conn::Target;
use crate::idle::IdlePlan;
use crate::pubsub::{Goals, PubSubPlan};
use crate::reconnect::ReconnectPlan;
use crate::report::Outcome;

/// The scenarios.
#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
enum Scenario {
    /// Server memory per idle connection and per subscription (needs --server-pid).
    Idle,
    /// Write-to-delivery latency at a paced write rate.
    Latency,
    /// Deliveries per second, many subscribers per slot, each connection following
    /// many slots.
    Fanout,
    /// The same with every connection following a single slot (one event per wake-up).
    FanoutSingle,
    /// Disconnect-and-resume rate.
    Reconnect,
    /// Server memory per idle WebSocket stream, many streams per HTTP/2 connection
    /// (needs --server-pid; not in the default list).
    IdleH2,
}

/// Change-feed benchmark for a Swamp server on this machine.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Scenarios, in this order (default: idle latency fanout fanout-single reconnect).
    #[arg(value_enum)]
    scenarios: Vec<Scenario>,
    /// The server's NURL (loopback only).
    #[arg(
        long,
        required_unless_present = "nurl_file",
        conflicts_with = "nurl_file"
    )]
    nurl: Option<String>,
    /// A file whose first line is the NURL.
    #[arg(long)]
    nurl_file: Option<PathBuf>,
    /// The server's process id, to read its memory (VmRSS) and CPU time.
    #[arg(long)]
    server_pid: Option<u32>,
    /// The node's operator secret file (`<node>/private/operator.secret`): lets the
    /// benchmark read the server's feed counters and wait for connections to close.
    #[arg(long)]
    operator_secret_file: Option<PathBuf>,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
    /// Also write the JSON here.
    #[arg(long)]
    json_out: Option<PathBuf>,
    /// Spread client sockets over 127.0.0.1 .. 127.0.0.N (against port exhaustion).
    #[arg(long, default_value_t = 1)]
    source_ips: u8,
    /// Connections being opened at once.
    #[arg(long, default_value_t = 128)]
    parallel: usize,
    /// Filler bytes after the 41-byte share header in every write.
    #[arg(long, default_value_t = 64)]
    tail: usize,
    /// HTTP/2 connections the writes are spread over.
    #[arg(long, default_value_t = 4)]
    http_clients: usize,

    /// idle: idle WebSocket connections, one storage index each.
    #[arg(long, default_value_t = 10_000)]
    idle_connections: usize,
    /// idle: storage indexes subscribed on one connection (WebSocket commands).
    #[arg(long, default_value_t = 10_000)]
    idle_subscriptions: usize,
    /// idle: storage indexes per subscribe command.
    #[arg(long, default_value_t = 1_000)]
    idle_chunk: usize,
    /// idle: seconds to wait before each memory reading.
    #[arg(long, default_value_t = 2.0)]
    settle_seconds: f64,

    /// idle-h2: HTTP/2 connections.
    #[arg(long, default_value_t = 100)]
    h2_connections: usize,
    /// idle-h2: WebSocket streams per HTTP/2 connection (the server allows 256).
    #[arg(long, default_value_t = 200)]
    h2_streams: usize,

    /// latency: writes per second (open loop).
    #[arg(long, default_value_t = 1_000.0)]
    latency_rate: f64,
    /// latency: seconds of writing.
    #[arg(long, default_value_t = 10.0)]
    latency_seconds: f64,
    /// latency: slots written (round-robin).
    #[arg(long, default_value_t = 100)]
    latency_slots: usize,
    /// latency: subscribers per slot (one connection each).
    #[arg(long, default_value_t = 10)]
    latency_fanout: usize,

    /// fanout: slots written.
    #[arg(long, default_value_t = 32)]
    fanout_slots: usize,
    /// fanout: subscriber connections.
    #[arg(long, default_value_t = 800)]
    fanout_connections: usize,
    /// fanout: slots each connection follows.
    #[arg(long, default_value_t = 32)]
    fanout_follow: usize,
    /// fanout: writes per second (open loop); 0 for closed-loop writers.
    #[arg(long, default_value_t = 0.0)]
    fanout_rate: f64,
    /// fanout: closed-loop writers.
    #[arg(long, default_value_t = 32)]
    fanout_writers: usize,
    /// fanout and fanout-single: seconds of writing.
    #[arg(long, default_value_t = 10.0)]
    fanout_seconds: f64,
    /// fanout-single: slots written.
    #[arg(long, default_value_t = 16)]
    fanout_single_slots: usize,
    /// fanout-single: subscriber connections (each follows one slot).
    #[arg(long, default_value_t = 1_600)]
    fanout_single_connections: usize,
    /// fanout-single: closed-loop writers.
    #[arg(long, default_value_t = 16)]
    fanout_single_writers: usize,

    /// reconnect: concurrent reconnecting subscribers.
    #[arg(long, default_value_t = 64)]
    reconnect_subscribers: usize,
    /// reconnect: slots they follow.
    #[arg(long, default_value_t = 64)]
    reconnect_slots: usize,
    /// reconnect: seconds.
    #[arg(long, default_value_t = 10.0)]
    reconnect_seconds: f64,
    /// reconnect: writes per second to those slots meanwhile.
    #[arg(long, default_value_t = 100.0)]
    reconnect_write_rate: f64,

    /// Open loop: writes in flight at most.
    #[arg(long, default_value_t = 512)]
    max_in_flight: usize,
    /// Longest wait for outstanding deliveries after the writes.
    #[arg(long, default_value_t = 10.0)]
    drain_seconds: f64,
}

fn load_nurl(text: Option<&str>, file: Option<&Path>) -> anyhow::Result<Nurl> {
    let text = match (text, file) {
        (Some(text), _) => text.to_string(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .with_context(|| format!("reading {}", path.display()))?
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .with_context(|| format!("{} holds no NURL", path.display()))?
            .to_string(),
        (None, None) => anyhow::bail!("give --nurl or --nurl-file"),
    };
    text.trim().parse().context("not a NURL")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let nurl = load_nurl(cli.nurl.as_deref(), cli.nurl_file.as_deref())?;
    let secret = match &cli.operator_secret_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?
                .trim()
                .to_string(),
        ),
        None => None,
    };
    let target = Target::new(nurl, cli.source_ips, secret)?;
    if target.has_activity() {
        let counts = target
            .feed_counts()
            .await
            .context("reading the activity counters")?;
        eprintln!("server feed counters at start: {counts:?}");
    }
    let scenarios = if cli.scenarios.is_empty() {
        vec![
            Scenario::Idle,
            Scenario::Latency,
            Scenario::Fanout,
            Scenario::FanoutSingle,
            Scenario::Reconnect,
        ]
    } else {
        cli.scenarios.clone()
    };
    let mut outcomes: Vec<Outcome> = Vec::new();
    for scenario in scenarios {
        let result = match scenario {
            Scenario::Idle => {
                let pid = cli
                    .server_pid
                    .context("the idle scenario needs --server-pid")?;
                let plan = IdlePlan {
                    connections: cli.idle_connections,
                    subscriptions: cli.idle_subscriptions,
                    chunk: cli.idle_chunk,
                    parallel: cli.parallel,
                    settle_seconds: cli.settle_seconds,
                };
                idle::run(&target, &plan, pid).await
            }
            Scenario::Latency => {
                let plan = PubSubPlan {
                    slots: cli.latency_slots,
                    connections: cli.latency_slots * cli.latency_fanout,
                    follow: 1,
                    rate: cli.latency_rate,
                    writers: 0,
                    seconds: cli.latency_seconds,
                    tail: cli.tail,
                    http_clients: cli.http_clients,
                    max_in_flight: cli.max_in_flight,
                    parallel: cli.parallel,
                    drain_seconds: cli.drain_seconds,
                };
                let goals = Goals {
                    p99_ms: Some(10.0),
                    deliveries_per_second: None,
                };
                pubsub::run("latency", &target, &plan, goals, cli.server_pid).await
            }
            Scenario::Fanout => {
                let plan = PubSubPlan {
                    slots: cli.fanout_slots,
                    connections: cli.fanout_connections,
                    follow: cli.fanout_follow,
                    rate: cli.fanout_rate,
                    writers: cli.fanout_writers,
                    seconds: cli.fanout_seconds,
                    tail: cli.tail,
                    http_clients: cli.http_clients,
                    max_in_flight: cli.max_in_flight,
                    parallel: cli.parallel,
                    drain_seconds: cli.drain_seconds,
                };
                let goals = Goals {
                    p99_ms: None,
                    deliveries_per_second: Some(100_000.0),
                };
                pubsub::run("fanout", &target, &plan, goals, cli.server_pid).await
            }
            Scenario::FanoutSingle => {
                let plan = PubSubPlan {
                    slots: cli.fanout_single_slots,
                    connections: cli.fanout_single_connections,
                    follow: 1,
                    rate: 0.0,
                    writers: cli.fanout_single_writers,
                    seconds: cli.fanout_seconds,
                    tail: cli.tail,
                    http_clients: cli.http_clients,
                    max_in_flight: cli.max_in_flight,
                    parallel: cli.parallel,
                    drain_seconds: cli.drain_seconds,
                };
                let goals = Goals {
                    p99_ms: None,
                    deliveries_per_second: Some(100_000.0),
                };
                pubsub::run("fanout-single", &target, &plan, goals, cli.server_pid).await
            }
            Scenario::IdleH2 => {
                let pid = cli
                    .server_pid
                    .context("the idle-h2 scenario needs --server-pid")?;
                let plan = h2::H2Plan {
                    connections: cli.h2_connections,
                    streams: cli.h2_streams,
                    settle_seconds: cli.settle_seconds,
                };
                h2::run(&target, &plan, pid).await
            }
            Scenario::Reconnect => {
                let plan = ReconnectPlan {
                    subscribers: cli.reconnect_subscribers,
                    slots: cli.reconnect_slots,
                    seconds: cli.reconnect_seconds,
                    write_rate: cli.reconnect_write_rate,
                };
                reconnect::run(&target, &plan, cli.server_pid).await
            }
        };
        match result {
            Ok(outcome) => {
                if !cli.json {
                    print!("{}", report::table(std::slice::from_ref(&outcome)));
                }
                outcomes.push(outcome);
            }
            Err(e) => {
                eprintln!("{scenario:?} failed: {e:#}");
                let name = scenario
                    .to_possible_value()
                    .map_or_else(|| format!("{scenario:?}"), |v| v.get_name().to_string());
                let mut failed = Outcome::new(&name, serde_json::Value::Null);
                failed.note(format!("failed: {e:#}"));
                if !cli.json {
                    print!("{}", report::table(std::slice::from_ref(&failed)));
                }
                outcomes.push(failed);
            }
        }
        // Let the server close everything before the next scenario.
        if let Some(counts) = target.settle(0, Duration::from_secs(30)).await {
            eprintln!("server feed counters after {scenario:?}: {counts:?}");
        }
    }
    let json = serde_json::to_string_pretty(&outcomes)?;
    if cli.json {
        println!("{json}");
    }
    if let Some(path) = &cli.json_out {
        std::fs::write(path, format!("{json}\n"))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
