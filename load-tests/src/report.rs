//! Measurements: how a timed phase becomes numbers, the human table, JSON lines, and the
//! side-by-side comparison of two servers.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::cpu::{CpuClock, MachineSeconds, Process};
use crate::runner::Tally;

const MIB: f64 = 1024.0 * 1024.0;
const GIB: f64 = 1024.0 * MIB;

/// The scenarios.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// Immutable upload: allocate, then sequential PATCHes per share, shares in parallel.
    Upload,
    /// Ranged reads of uploaded immutable shares.
    Download,
    /// Mutable read-test-write with small writes, one slot per writer.
    Rtw,
    /// `GET /storage/v1/version`.
    Version,
}

impl Scenario {
    /// The lowercase name, as on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Upload => "upload",
            Self::Download => "download",
            Self::Rtw => "rtw",
            Self::Version => "version",
        }
    }

    /// Whether the scenario is about bytes (MiB/s, CPU per GiB) rather than operations.
    pub const fn moves_bytes(self) -> bool {
        matches!(self, Self::Upload | Self::Download)
    }
}

/// Clocks read at the start of a timed phase.
pub struct Window {
    started: Instant,
    clock: CpuClock,
    server: Option<(Process, f64)>,
    client_start: f64,
    machine_start: MachineSeconds,
}

/// What the clocks say at its end.
pub struct Elapsed {
    /// Wall-clock seconds.
    pub seconds: f64,
    /// The server's CPU seconds, when its PID was given.
    pub server_cpu: Option<f64>,
    /// The load generator's own CPU seconds (it shares the machine with the server).
    pub client_cpu: f64,
    /// CPU seconds the rest of the machine used: other processes, and kernel threads
    /// (writeback, journaling, some network softirqs). Small on a quiet machine; large
    /// when something else competes for the cores.
    pub other_cpu: f64,
    /// CPU seconds the hypervisor took away from this machine.
    pub steal: f64,
}

impl Window {
    /// Reads the clocks.
    ///
    /// # Errors
    /// If a stat file cannot be read.
    pub fn open(clock: CpuClock, server: Option<&Process>) -> anyhow::Result<Self> {
        let server = match server {
            Some(p) => Some((p.clone(), clock.seconds(p)?)),
            None => None,
        };
        let client_start = clock.seconds(&Process::current())?;
        let machine_start = clock.machine()?;
        Ok(Self {
            started: Instant::now(),
            clock,
            server,
            client_start,
            machine_start,
        })
    }

    /// Reads the clocks again.
    ///
    /// # Errors
    /// If a stat file cannot be read (for the server: it has exited).
    pub fn close(self) -> anyhow::Result<Elapsed> {
        let seconds = self.started.elapsed().as_secs_f64();
        let server_cpu = match &self.server {
            Some((p, start)) => Some(self.clock.seconds(p)? - start),
            None => None,
        };
        let client_cpu = self.clock.seconds(&Process::current())? - self.client_start;
        let machine = self.clock.machine()?;
        let busy = machine.busy - self.machine_start.busy;
        Ok(Elapsed {
            seconds,
            server_cpu,
            client_cpu,
            other_cpu: (busy - client_cpu - server_cpu.unwrap_or(0.0)).max(0.0),
            steal: machine.steal - self.machine_start.steal,
        })
    }
}

/// One scenario's result against one server.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Measurement {
    /// Which server (free text from `--label`).
    pub label: String,
    /// The scenario.
    pub scenario: Scenario,
    /// The HTTP version negotiated.
    pub protocol: String,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Independent client connections (pools).
    pub connections: usize,
    /// Bytes per request: PATCH chunk, read size, or write size (0 for version).
    pub request_bytes: u64,
    /// Successful timed requests.
    pub requests: u64,
    /// Failed requests.
    pub errors: u64,
    /// Payload bytes moved.
    pub bytes: u64,
    /// Wall-clock length of the timed phase.
    pub seconds: f64,
    /// Successful requests per second.
    pub ops_per_s: f64,
    /// Payload MiB per second.
    pub mib_per_s: f64,
    /// Median request latency in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile request latency in milliseconds.
    pub p99_ms: f64,
    /// Slowest request in milliseconds.
    pub max_ms: f64,
    /// The server's CPU seconds during the phase.
    pub server_cpu_s: Option<f64>,
    /// The server's CPU seconds per GiB of payload (upload and download only).
    pub server_cpu_s_per_gib: Option<f64>,
    /// The load generator's CPU seconds during the phase.
    pub client_cpu_s: f64,
    /// The rest of the machine's CPU seconds during the phase (see [`Elapsed::other_cpu`]).
    #[serde(default)]
    pub other_cpu_s: f64,
    /// CPU seconds stolen by the hypervisor during the phase.
    #[serde(default)]
    pub steal_s: f64,
    /// The first error seen, if any.
    pub first_error: Option<String>,
}

/// The fixed facts of a run, known before it starts.
pub struct RunFacts {
    /// `--label`.
    pub label: String,
    /// The scenario.
    pub scenario: Scenario,
    /// The negotiated HTTP version.
    pub protocol: String,
    /// Requests in flight.
    pub concurrency: usize,
    /// Client connections.
    pub connections: usize,
    /// Bytes per request.
    pub request_bytes: u64,
}

impl Measurement {
    /// Summarizes a timed phase.
    pub fn new(facts: RunFacts, mut tally: Tally, elapsed: &Elapsed) -> Self {
        tally.latencies.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let requests = tally.latencies.len() as u64;
        let seconds = elapsed.seconds.max(f64::MIN_POSITIVE);
        let gib = tally.bytes as f64 / GIB;
        let per_gib = match elapsed.server_cpu {
            Some(cpu) if facts.scenario.moves_bytes() && tally.bytes > 0 => Some(cpu / gib),
            _ => None,
        };
        Self {
            label: facts.label,
            scenario: facts.scenario,
            protocol: facts.protocol,
            concurrency: facts.concurrency,
            connections: facts.connections,
            request_bytes: facts.request_bytes,
            requests,
            errors: tally.errors,
            bytes: tally.bytes,
            seconds: elapsed.seconds,
            ops_per_s: requests as f64 / seconds,
            mib_per_s: tally.bytes as f64 / MIB / seconds,
            p50_ms: percentile(&tally.latencies, 50.0).map_or(0.0, ms),
            p99_ms: percentile(&tally.latencies, 99.0).map_or(0.0, ms),
            max_ms: tally.latencies.last().copied().map_or(0.0, ms),
            server_cpu_s: elapsed.server_cpu,
            server_cpu_s_per_gib: per_gib,
            client_cpu_s: elapsed.client_cpu,
            other_cpu_s: elapsed.other_cpu,
            steal_s: elapsed.steal,
            first_error: tally.first_error,
        }
    }

    /// Throughput in the scenario's own unit.
    pub fn throughput(&self) -> String {
        if self.scenario.moves_bytes() {
            format!("{:.1} MiB/s", self.mib_per_s)
        } else {
            format!("{:.0} ops/s", self.ops_per_s)
        }
    }
}

/// The nearest-rank percentile of sorted samples.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Byte counts the way people write them: 1 MiB, 512 KiB, 1000 B.
pub fn human_bytes(n: u64) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} B")
    }
}

fn opt(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "-".to_string(), |v| format!("{v:.decimals$}"))
}

/// The human table.
pub fn table(measurements: &[Measurement]) -> String {
    let header = [
        "server",
        "scenario",
        "http",
        "conc",
        "conns",
        "req size",
        "requests",
        "errors",
        "seconds",
        "throughput",
        "p50 ms",
        "p99 ms",
        "srv CPU s",
        "srv CPU s/GiB",
        "cli CPU s",
        "other CPU s",
        "steal s",
    ];
    let rows: Vec<Vec<String>> = measurements
        .iter()
        .map(|m| {
            vec![
                m.label.clone(),
                m.scenario.name().to_string(),
                m.protocol.clone(),
                m.concurrency.to_string(),
                m.connections.to_string(),
                if m.request_bytes == 0 {
                    "-".to_string()
                } else {
                    human_bytes(m.request_bytes)
                },
                m.requests.to_string(),
                m.errors.to_string(),
                format!("{:.2}", m.seconds),
                m.throughput(),
                format!("{:.2}", m.p50_ms),
                format!("{:.2}", m.p99_ms),
                opt(m.server_cpu_s, 2),
                opt(m.server_cpu_s_per_gib, 2),
                format!("{:.2}", m.client_cpu_s),
                format!("{:.2}", m.other_cpu_s),
                format!("{:.2}", m.steal_s),
            ]
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let text: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            // Text columns left-aligned, numbers right-aligned.
            .map(|(i, (c, w))| {
                if i < 3 {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect();
        let _ = writeln!(out, "{}", text.join("  ").trim_end());
    };
    line(&header.map(str::to_string));
    for row in &rows {
        line(row);
    }
    for m in measurements.iter().filter(|m| m.errors > 0) {
        let _ = writeln!(
            out,
            "{} {}: {} errors, the first: {}",
            m.label,
            m.scenario.name(),
            m.errors,
            m.first_error.as_deref().unwrap_or("?")
        );
    }
    out
}

/// Targets a candidate must meet against the baseline.
#[derive(Clone, Copy, Debug)]
enum Target {
    /// candidate ÷ baseline at least this.
    AtLeast(f64),
    /// candidate ÷ baseline at most this.
    AtMost(f64),
}

impl Target {
    fn describe(self) -> String {
        match self {
            Self::AtLeast(x) => format!("≥ {x}×"),
            Self::AtMost(x) => format!("≤ {x}× (1/{:.0})", 1.0 / x),
        }
    }

    fn met(self, ratio: f64) -> bool {
        match self {
            Self::AtLeast(x) => ratio >= x,
            Self::AtMost(x) => ratio <= x,
        }
    }
}

/// The targets of the issue: upload and download at least 5× the Python server,
/// read-test-write at least 20×, server CPU per GiB at most a fifth.
fn throughput_target(scenario: Scenario) -> Option<Target> {
    match scenario {
        Scenario::Upload | Scenario::Download => Some(Target::AtLeast(5.0)),
        Scenario::Rtw => Some(Target::AtLeast(20.0)),
        Scenario::Version => None,
    }
}

const CPU_TARGET: Target = Target::AtMost(0.2);

/// A Markdown table comparing `candidate` with `baseline`, one row per scenario (rows
/// are matched on scenario, concurrency and request size): throughput, latency and
/// server CPU of both, the ratios, and whether the targets are met. CPU is per GiB for
/// upload and download (the target), per operation otherwise (for information).
pub fn compare(
    candidate: &[Measurement],
    baseline: &[Measurement],
    candidate_name: &str,
    baseline_name: &str,
) -> String {
    let (c, b) = (candidate_name, baseline_name);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| scenario | {c} | {b} | {c} ÷ {b} | target | met? | {c} p50 / p99 ms | {b} p50 / p99 ms \
         | {c} server CPU | {b} server CPU | {c} ÷ {b} | target | met? |"
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---|---|"
    );
    for cm in candidate {
        let bm = baseline.iter().find(|b| {
            b.scenario == cm.scenario
                && b.concurrency == cm.concurrency
                && b.request_bytes == cm.request_bytes
        });
        let what = match cm.scenario {
            Scenario::Upload => format!(
                "upload, {} PATCHes, {} in flight",
                human_bytes(cm.request_bytes),
                cm.concurrency
            ),
            Scenario::Download => format!(
                "download, {} reads, {} in flight",
                human_bytes(cm.request_bytes),
                cm.concurrency
            ),
            Scenario::Rtw => format!(
                "read-test-write, {} writes, {} writer(s)",
                human_bytes(cm.request_bytes),
                cm.concurrency
            ),
            Scenario::Version => format!("version, {} in flight", cm.concurrency),
        };
        let rate = |m: &Measurement| {
            if m.scenario.moves_bytes() {
                m.mib_per_s
            } else {
                m.ops_per_s
            }
        };
        let latency = |m: &Measurement| format!("{:.2} / {:.2}", m.p50_ms, m.p99_ms);
        let cpu = |m: &Measurement| {
            if m.scenario.moves_bytes() {
                m.server_cpu_s_per_gib
            } else {
                m.server_cpu_s.map(|s| s * 1e6 / m.requests.max(1) as f64)
            }
        };
        let cpu_text = |m: &Measurement| match cpu(m) {
            Some(v) if m.scenario.moves_bytes() => format!("{v:.2} s/GiB"),
            Some(v) => format!("{v:.0} µs/op"),
            None => "-".to_string(),
        };
        let judge = |ratio: Option<f64>, target: Option<Target>| match (target, ratio) {
            (Some(t), Some(r)) => (t.describe(), if t.met(r) { "**yes**" } else { "no" }),
            (Some(t), None) => (t.describe(), "?"),
            (None, _) => (String::new(), ""),
        };
        let ratio = |x: Option<f64>, y: Option<f64>| match (x, y) {
            (Some(x), Some(y)) if y > 0.0 => Some(x / y),
            _ => None,
        };
        let ratio_text = |r: Option<f64>| r.map_or_else(|| "-".to_string(), |r| format!("{r:.2}×"));
        let rate_ratio = ratio(Some(rate(cm)), bm.map(rate));
        let (rate_target, rate_met) = judge(rate_ratio, throughput_target(cm.scenario));
        let cpu_ratio = ratio(cpu(cm), bm.and_then(cpu));
        let (cpu_target, cpu_met) =
            judge(cpu_ratio, cm.scenario.moves_bytes().then_some(CPU_TARGET));
        let _ = writeln!(
            out,
            "| {what} | {} | {} | {} | {rate_target} | {rate_met} | {} | {} | {} | {} | {} | {cpu_target} | {cpu_met} |",
            cm.throughput(),
            bm.map_or_else(|| "-".to_string(), Measurement::throughput),
            ratio_text(rate_ratio),
            latency(cm),
            bm.map_or_else(|| "-".to_string(), latency),
            cpu_text(cm),
            bm.map_or_else(|| "-".to_string(), cpu_text),
            ratio_text(cpu_ratio),
        );
    }
    // How quiet the machine was: the rest of the machine's CPU per second of wall time
    // (kernel writeback and journaling included), and hypervisor steal.
    let noise = |ms: &[Measurement]| {
        let worst = ms
            .iter()
            .map(|m| m.other_cpu_s / m.seconds.max(f64::MIN_POSITIVE))
            .fold(0.0, f64::max);
        let steal: f64 = ms.iter().map(|m| m.steal_s).sum();
        format!("other CPU at most {worst:.2} cores, {steal:.2} s stolen")
    };
    let _ = writeln!(
        out,
        "\nMachine noise during the {c} runs: {}; during the {b} runs: {}.",
        noise(candidate),
        noise(baseline)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&samples, 50.0), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&samples, 99.0), Some(Duration::from_millis(99)));
        assert_eq!(
            percentile(&samples[..1], 99.0),
            Some(Duration::from_millis(1))
        );
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn byte_counts() {
        assert_eq!(human_bytes(1 << 20), "1 MiB");
        assert_eq!(human_bytes(512 << 10), "512 KiB");
        assert_eq!(human_bytes(1000), "1000 B");
    }

    #[test]
    fn targets() {
        assert!(Target::AtLeast(5.0).met(5.0));
        assert!(!Target::AtLeast(5.0).met(4.9));
        assert!(Target::AtMost(0.2).met(0.1));
        assert!(!Target::AtMost(0.2).met(0.3));
    }
}
