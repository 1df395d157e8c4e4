//! `swamp-load`: a load generator for Great Black Swamp storage servers, Swamp or the
//! Python Tahoe-LAFS storage server alike (it needs only the NURL).
//!
//! Run with
//! `cargo run --release -p swamp-load-tests -- run --nurl 'pb://…#v=1' upload download rtw version`
//! and compare two servers with
//! `swamp-load compare --candidate swamp.jsonl --baseline python.jsonl`;
//! `load-tests/run-benchmarks.sh` does the whole Swamp-versus-Python comparison.
//!
//! # Layout
//! - `main.rs`: the command line; runs the chosen scenarios in order.
//! - `runner.rs`: connections, warm-up, the budget that ends every loop, per-request
//!   timing ([`runner::Tally`]).
//! - `upload.rs`, `download.rs`, `rtw.rs`, `version.rs`: one scenario each.
//! - `cpu.rs`: a process's CPU seconds from `/proc/<pid>/stat`.
//! - `disk.rs`: `disk-sync`, the disk's own price of a 1 KiB write plus `fdatasync`.
//! - `report.rs`: measurements, the human table, JSON lines, the comparison table.

mod cpu;
mod disk;
mod download;
mod report;
mod rtw;
mod runner;
mod upload;
mod version;

use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use swamp_client::{ClientOptions, StorageClient};
use swamp_proto::Nurl;

use crate::cpu::{CpuClock, Process};
use crate::report::{Measurement, RunFacts, Scenario, Window};
use crate::runner::{Budget, Target};
use crate::upload::{Pattern, UploadPlan, Uploaded};

/// Load generator for GBS (HTTPS) storage servers: Swamp or Tahoe-LAFS.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run scenarios against one server and report throughput, latency and CPU.
    Run(Box<RunArgs>),
    /// Print a Markdown table comparing two `run --json` outputs.
    Compare(CompareArgs),
    /// Time small writes each followed by `fdatasync` in a directory: the floor under
    /// a read-test-write with one writer on that file system.
    DiskSync(DiskSyncArgs),
}

#[derive(Args)]
struct DiskSyncArgs {
    /// A directory on the file system to measure (a scratch file is made and removed).
    #[arg(long)]
    dir: PathBuf,
    /// Writes to time.
    #[arg(long, default_value_t = 2000)]
    count: usize,
    /// Bytes per write.
    #[arg(long, value_parser = parse_size, default_value = "1KiB")]
    write_size: u64,
    /// Print the result as one JSON line on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct RunArgs {
    /// Scenarios, run in this order (default: upload download rtw version).
    #[arg(value_enum)]
    scenarios: Vec<Scenario>,
    /// The server's NURL, pb://<spki-hash>@<host>:<port>/<swissnum>#v=1 (loopback only).
    #[arg(
        long,
        required_unless_present = "nurl_file",
        conflicts_with = "nurl_file"
    )]
    nurl: Option<String>,
    /// A file whose first line is the NURL (keeps the swissnum off the command line).
    #[arg(long)]
    nurl_file: Option<PathBuf>,
    /// A name for the server in reports.
    #[arg(long, default_value = "server")]
    label: String,
    /// Speak HTTP/1.1 only (no h2 in ALPN), as Tahoe's Python client does.
    #[arg(long)]
    http1: bool,
    /// Requests in flight; a comma-separated list runs each scenario once per value.
    /// For rtw it is the number of writers (each on its own slot).
    #[arg(long, value_delimiter = ',', default_value = "8")]
    concurrency: Vec<usize>,
    /// Independent client connection pools; under HTTP/2 each is one TCP connection.
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// Seconds per scenario [default: 5, or 300 as a safety cap with --requests].
    #[arg(long)]
    duration: Option<f64>,
    /// A fixed number of timed requests per download, rtw and version run (upload is
    /// bounded by --upload-bytes).
    #[arg(long)]
    requests: Option<u64>,
    /// Seconds before a request without an answer counts as failed.
    #[arg(long, default_value_t = 60.0)]
    timeout: f64,
    /// upload: bytes to upload, at most (the duration also ends it).
    #[arg(long, value_parser = parse_size, default_value = "512MiB")]
    upload_bytes: u64,
    /// upload: the size of each share.
    #[arg(long, value_parser = parse_size, default_value = "8MiB")]
    share_size: u64,
    /// upload: shares per storage index, uploaded in parallel.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(1..))]
    shares: u8,
    /// upload: bytes per PATCH.
    #[arg(long, value_parser = parse_size, default_value = "1MiB")]
    chunk_size: u64,
    /// download: bytes per ranged read.
    #[arg(long, value_parser = parse_size, default_value = "512KiB")]
    read_size: u64,
    /// download: bytes to upload first (untimed) when no upload ran before it.
    #[arg(long, value_parser = parse_size, default_value = "64MiB")]
    download_set: u64,
    /// rtw: bytes per write (at least 8: the sequence number).
    #[arg(long, value_parser = parse_size, default_value = "1KiB")]
    write_size: u64,
    /// The server's PID, to report the CPU seconds it used (read from /proc).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Print one JSON object per measurement on stdout (the table goes to stderr).
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct CompareArgs {
    /// `run --json` output of the server being judged.
    #[arg(long)]
    candidate: PathBuf,
    /// `run --json` output of the server it is judged against.
    #[arg(long)]
    baseline: PathBuf,
    /// The candidate's name in the table.
    #[arg(long, default_value = "Swamp")]
    candidate_name: String,
    /// The baseline's name in the table.
    #[arg(long, default_value = "Python")]
    baseline_name: String,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run(args) => {
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(run(*args))
        }
        Command::Compare(args) => {
            let candidate = read_measurements(&args.candidate)?;
            let baseline = read_measurements(&args.baseline)?;
            print!(
                "{}",
                report::compare(
                    &candidate,
                    &baseline,
                    &args.candidate_name,
                    &args.baseline_name
                )
            );
            Ok(())
        }
        Command::DiskSync(args) => {
            let r = disk::measure(&args.dir, args.count, args.write_size)?;
            let line = format!(
                "disk-sync ({} B writes, {} times): p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms",
                r.write_size, r.count, r.p50_ms, r.p90_ms, r.p99_ms
            );
            if args.json {
                eprintln!("{line}");
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!("{line}");
            }
            Ok(())
        }
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let nurl = load_nurl(args.nurl.as_deref(), args.nurl_file.as_deref())?;
    let scenarios = if args.scenarios.is_empty() {
        vec![
            Scenario::Upload,
            Scenario::Download,
            Scenario::Rtw,
            Scenario::Version,
        ]
    } else {
        args.scenarios.clone()
    };
    anyhow::ensure!(
        args.concurrency.iter().all(|&c| c > 0),
        "--concurrency must be at least 1"
    );
    anyhow::ensure!(args.connections > 0, "--connections must be at least 1");
    anyhow::ensure!(
        args.chunk_size > 0 && args.share_size > 0 && args.read_size > 0,
        "sizes must be at least 1 byte"
    );
    anyhow::ensure!(
        args.write_size >= rtw::MIN_WRITE_SIZE as u64,
        "--write-size must be at least 8 bytes"
    );
    anyhow::ensure!(args.timeout > 0.0, "--timeout must be positive");
    let duration = Duration::from_secs_f64(args.duration.unwrap_or(if args.requests.is_some() {
        300.0
    } else {
        5.0
    }));

    let options = ClientOptions {
        http1_only: args.http1,
        ..ClientOptions::default()
    };
    let clients = (0..args.connections)
        .map(|_| StorageClient::with_options(&nurl, &options))
        .collect::<Result<Vec<_>, _>>()
        .context("building the HTTP client")?;
    let target = Target::new(clients, Duration::from_secs_f64(args.timeout))?;
    let protocol = target
        .protocol()
        .await
        .context("the server does not answer")?;
    let clock = CpuClock::detect();
    let server = args.server_pid.map(Process::pid);
    let pattern =
        Pattern::random(usize::try_from(args.chunk_size).context("--chunk-size is too large")?);
    let mut uploaded = Vec::new();
    let mut measurements = Vec::new();

    for &scenario in &scenarios {
        for &concurrency in &args.concurrency {
            target.warm_up(concurrency).await?;
            let upload_plan = |total_bytes, duration| UploadPlan {
                total_bytes,
                share_size: args.share_size,
                shares: args.shares,
                chunk_size: pattern.len(),
                concurrency,
                duration,
            };
            let facts = |concurrency, request_bytes| RunFacts {
                label: args.label.clone(),
                scenario,
                protocol: protocol.clone(),
                concurrency,
                connections: target.connections(),
                request_bytes,
            };
            let budget = || Arc::new(Budget::new(duration, args.requests));
            let measurement = match scenario {
                Scenario::Upload => {
                    let plan = upload_plan(args.upload_bytes, duration);
                    let window = Window::open(clock, server.as_ref())?;
                    let (tally, shares) = upload::run(&target, plan, &pattern).await?;
                    let elapsed = window.close()?;
                    uploaded.extend(shares);
                    Measurement::new(facts(plan.in_flight(), args.chunk_size), tally, &elapsed)
                }
                Scenario::Download => {
                    if uploaded.is_empty() {
                        eprintln!(
                            "{}: uploading {} to read back (not timed)",
                            args.label,
                            report::human_bytes(args.download_set)
                        );
                        let (tally, shares) = upload::run(
                            &target,
                            upload_plan(args.download_set, Duration::from_secs(300)),
                            &pattern,
                        )
                        .await?;
                        anyhow::ensure!(
                            tally.errors == 0,
                            "preparing the download failed: {}",
                            tally.first_error.unwrap_or_default()
                        );
                        uploaded.extend(shares);
                    }
                    let data = Arc::new(Uploaded {
                        pattern: pattern.clone(),
                        share_size: args.share_size,
                        shares: uploaded.clone(),
                    });
                    download::warm(&target, Arc::clone(&data), args.read_size, concurrency).await?;
                    let window = Window::open(clock, server.as_ref())?;
                    let tally =
                        download::run(&target, data, args.read_size, concurrency, budget()).await?;
                    let elapsed = window.close()?;
                    Measurement::new(facts(concurrency, args.read_size), tally, &elapsed)
                }
                Scenario::Rtw => {
                    let writers =
                        rtw::prepare(&target, concurrency, args.write_size as usize).await?;
                    let window = Window::open(clock, server.as_ref())?;
                    let (tally, _) = rtw::run(writers, budget(), target.timeout).await?;
                    let elapsed = window.close()?;
                    Measurement::new(facts(concurrency, args.write_size), tally, &elapsed)
                }
                Scenario::Version => {
                    let window = Window::open(clock, server.as_ref())?;
                    let tally = version::run(&target, concurrency, budget()).await?;
                    let elapsed = window.close()?;
                    Measurement::new(facts(concurrency, 0), tally, &elapsed)
                }
            };
            eprintln!(
                "{} {} ({} in flight): {}, p50 {:.2} ms, p99 {:.2} ms, {} errors",
                measurement.label,
                scenario.name(),
                measurement.concurrency,
                measurement.throughput(),
                measurement.p50_ms,
                measurement.p99_ms,
                measurement.errors
            );
            measurements.push(measurement);
        }
    }

    let table = report::table(&measurements);
    if args.json {
        let mut out = std::io::stdout().lock();
        for m in &measurements {
            writeln!(out, "{}", serde_json::to_string(m)?)?;
        }
        eprint!("{table}");
    } else {
        print!("{table}");
    }
    let failed: u64 = measurements.iter().map(|m| m.errors).sum();
    anyhow::ensure!(failed == 0, "{failed} requests failed");
    Ok(())
}

/// The NURL from `--nurl` or the first non-empty line of `--nurl-file`; refuses hosts
/// other than loopback, so a benchmark cannot be pointed at someone else's server.
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
    let nurl: Nurl = text.trim().parse().context("not a NURL")?;
    let loopback =
        nurl.host == "localhost" || nurl.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    anyhow::ensure!(
        loopback,
        "{} is not a loopback address: swamp-load only loads servers on this machine",
        nurl.host
    );
    Ok(nurl)
}

fn read_measurements(path: &Path) -> anyhow::Result<Vec<Measurement>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).with_context(|| format!("{} line {}", path.display(), i + 1))
        })
        .collect()
}

/// Parses a byte count: a number with an optional unit, B, K/KiB, M/MiB or G/GiB (all
/// powers of 1024), e.g. `512KiB`, `1M`, `1048576`.
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} does not start with a number"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        other => return Err(format!("unknown unit {other:?} (use B, KiB, MiB or GiB)")),
    };
    number
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512KiB"), Ok(512 * 1024));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert_eq!(parse_size("8 MiB"), Ok(8 << 20));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("1 TB").is_err());
    }

    #[test]
    fn only_loopback() {
        let hash = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        assert!(load_nurl(Some(&format!("pb://{hash}@127.0.0.1:1/s#v=1")), None).is_ok());
        assert!(load_nurl(Some(&format!("pb://{hash}@[::1]:1/s#v=1")), None).is_ok());
        assert!(load_nurl(Some(&format!("pb://{hash}@192.0.2.1:1/s#v=1")), None).is_err());
    }
}
