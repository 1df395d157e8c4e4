//! `tahoe watch`: prints a directory's (or mutable file's) changes as they happen.
//! Changes go to stdout (one line each, or JSON lines); notices to stderr (or, with
//! `--json`, as `notice` objects on stdout so one stream tells the whole story).

use std::io::Write;
use std::time::Duration;

use swamp_client::grid::Grid;
use swamp_client::watch::{WatchEvent, WatchOptions, watch};

use crate::fail::Failure;
use crate::paths;
use crate::watch_format::format_line;

/// `watch` flags.
#[derive(clap::Args)]
pub struct WatchArgs {
    /// The directory or mutable file: a cap or alias, optionally with `/path`.
    pub target: String,
    /// One JSON object per line, with full detail.
    #[arg(long)]
    pub json: bool,
    /// Print the current children first.
    #[arg(long)]
    pub snapshot: bool,
    /// Follow subdirectories as they appear and disappear.
    #[arg(short = 'r', long)]
    pub recursive: bool,
    /// Seconds between polls of servers that have no change feed.
    #[arg(long, default_value_t = 1.0)]
    pub poll_interval: f64,
}

fn print(event: &WatchEvent, json: bool, target: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", event.to_json())?;
    } else {
        match event {
            WatchEvent::Notice(_) | WatchEvent::Resync(_) => eprintln!("{}", format_line(event)),
            WatchEvent::Ready => eprintln!("watching {target} (Ctrl-C to stop)"),
            _ => writeln!(out, "{}", format_line(event))?,
        }
    }
    out.flush()
}

/// Runs until interrupted (or stdout closes).
pub async fn run(
    grid: &Grid,
    aliases: &std::collections::BTreeMap<String, String>,
    args: WatchArgs,
) -> Result<(), Failure> {
    if !(args.poll_interval.is_finite() && args.poll_interval > 0.0) {
        return Err(Failure::new(format!(
            "--poll-interval {}: must be a positive number of seconds",
            args.poll_interval
        )));
    }
    let path = paths::parse(aliases, &args.target)?;
    let cap = paths::resolve(grid, &path).await?;
    let options = WatchOptions {
        snapshot: args.snapshot,
        recursive: args.recursive,
        poll_interval: Duration::from_secs_f64(args.poll_interval),
        ..WatchOptions::default()
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(256);
    let (json, target) = (args.json, args.target.clone());
    let printer = tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            if print(&event, json, &target).is_err() {
                return;
            }
        }
    });
    let watched = tokio::select! {
        r = watch(grid, cap, options, tx) => {
            r.map_err(|e| Failure::new(format!("{}: {}", args.target, crate::chain(&e))))
        }
        _ = tokio::signal::ctrl_c() => Ok(()),
    };
    let _ = printer.await;
    watched
}
