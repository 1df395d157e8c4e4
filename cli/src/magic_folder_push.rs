//! `tahoe magic-folder-push`: runs beside a magic-folder daemon and asks it to poll a
//! folder as soon as another participant's directory changes. Poll lines go to
//! stdout, info lines to stderr; with `--json`, everything is one JSON object per
//! line on stdout.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use swamp_client::grid::Grid;
use swamp_client::magic_folder::{BridgeEvent, BridgeOptions, DaemonApi, run};

use crate::fail::Failure;
use crate::push_format::{format_line, json_line};

/// `magic-folder-push` flags.
#[derive(clap::Args)]
pub struct PushArgs {
    /// The magic-folder daemon's config directory (its `--config`).
    #[arg(long = "config", value_name = "MFCONFIGDIR")]
    pub config: PathBuf,
    /// One JSON object per line on stdout.
    #[arg(long)]
    pub json: bool,
    /// Seconds between polls of storage servers that have no change feed.
    #[arg(long, default_value_t = 10.0)]
    pub poll_interval: f64,
}

fn print(event: &BridgeEvent, json: bool) -> std::io::Result<()> {
    if json {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", json_line(event))?;
        return out.flush();
    }
    match event {
        BridgeEvent::PollRequested { .. } => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", format_line(event))?;
            out.flush()
        }
        _ => writeln!(std::io::stderr().lock(), "{}", format_line(event)),
    }
}

/// Runs until interrupted (or stdout closes).
pub async fn run_push(grid: Grid, args: PushArgs) -> Result<(), Failure> {
    if !(args.poll_interval.is_finite() && args.poll_interval > 0.0) {
        return Err(Failure::new(format!(
            "--poll-interval {}: must be a positive number of seconds",
            args.poll_interval
        )));
    }
    if !args.config.is_dir() {
        return Err(Failure::new(format!(
            "--config {}: not a directory (give the magic-folder daemon's --config)",
            args.config.display()
        )));
    }
    let api = DaemonApi::new(args.config.clone(), Duration::from_secs(300))
        .map_err(|e| Failure::new(crate::chain(&e)))?;
    let options = BridgeOptions {
        poll_interval: Duration::from_secs_f64(args.poll_interval),
        ..BridgeOptions::default()
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(256);
    let json = args.json;
    let printer = tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            if print(&event, json).is_err() {
                return;
            }
        }
    });
    tokio::select! {
        () = run(Arc::new(grid), api, options, tx) => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    let _ = printer.await;
    Ok(())
}
