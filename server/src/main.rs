//! `swamp-server`: create, run and describe a Tahoe-LAFS storage node.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};
use swamp_server::node::create::{CreateOptions, create_node};
use swamp_server::node::{Config, LogFormat};
use swamp_server::start::{describe_node, load_node};
use swamp_server::system_clock;
use tokio_util::sync::CancellationToken;

/// A Tahoe-LAFS storage node (Great Black Swamp over HTTPS) with live change feeds.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make a new node directory (tahoe.cfg, identity, storage/).
    CreateNode {
        /// The node directory.
        #[arg(default_value = "swamp-node")]
        dir: PathBuf,
        /// Listening endpoint, e.g. tcp:3457:interface=127.0.0.1 (default: a free
        /// loopback port).
        #[arg(long)]
        port: Option<String>,
        /// Where clients connect, e.g. tcp:example.org:3457.
        #[arg(long)]
        location: Option<String>,
        /// Host name clients use (default 127.0.0.1).
        #[arg(long)]
        hostname: Option<String>,
        /// A name for this node.
        #[arg(long)]
        nickname: Option<String>,
    },
    /// Serve a node directory (created with defaults if it does not exist).
    Run {
        /// The node directory.
        #[arg(default_value = "swamp-node", env = "SWAMP_NODE_DIR")]
        dir: PathBuf,
    },
    /// Print the node's NURL(s).
    Nurl {
        /// The node directory.
        #[arg(default_value = "swamp-node", env = "SWAMP_NODE_DIR")]
        dir: PathBuf,
    },
    /// Print a servers.yaml stanza for Tahoe clients.
    Announcement {
        /// The node directory.
        #[arg(default_value = "swamp-node", env = "SWAMP_NODE_DIR")]
        dir: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::CreateNode {
            dir,
            port,
            location,
            hostname,
            nickname,
        } => {
            let identity = create_node(
                &dir,
                &CreateOptions {
                    port,
                    location,
                    hostname,
                    nickname,
                },
            )
            .with_context(|| format!("creating {}", dir.display()))?;
            println!(
                "Node created in {}; its server id is {}.",
                dir.display(),
                identity.server_id
            );
            println!("Start it with: swamp-server run {}", dir.display());
            Ok(())
        }
        Command::Run { dir } => run(&dir),
        Command::Nurl { dir } => {
            let (config, identity) = describe_node(&dir, env)?;
            for nurl in identity.nurls(&config.location) {
                println!("{nurl}");
            }
            Ok(())
        }
        Command::Announcement { dir } => {
            let (config, identity) = describe_node(&dir, env)?;
            print!(
                "{}",
                identity.announcement_yaml(&config.nickname, &config.location)
            );
            Ok(())
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn run(dir: &Path) -> anyhow::Result<()> {
    if !dir.join("tahoe.cfg").exists() {
        create_node(dir, &CreateOptions::default())
            .with_context(|| format!("creating {}", dir.display()))?;
        eprintln!("Created a new node directory in {}", dir.display());
    }
    let config = Config::load(dir, env)?;
    let traces = swamp_telemetry::Traces::from_env("swamp-server", env!("CARGO_PKG_VERSION"))
        .context("OpenTelemetry traces (the OTEL_* environment variables)")?;
    init_tracing(config.log_format, traces.as_ref());
    if let Some(traces) = &traces {
        tracing::info!(
            endpoint = traces.endpoint(),
            "OpenTelemetry traces on (OTLP/HTTP)"
        );
    }
    match swamp_server::start::raise_open_file_limit() {
        Ok(limit) => tracing::info!(
            soft = limit
                .soft
                .map_or_else(|| "unlimited".to_string(), |n| n.to_string()),
            hard = limit
                .hard
                .map_or_else(|| "unlimited".to_string(), |n| n.to_string()),
            "open file limit"
        ),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open file limit to the hard limit"),
    }
    let served = serve_node(dir);
    // After the graceful shutdown (or a failed start): send the spans still queued.
    if let Some(traces) = traces
        && let Err(e) = traces.shutdown()
    {
        tracing::warn!(error = %e, "the last traces were not sent");
    }
    served
}

fn serve_node(dir: &Path) -> anyhow::Result<()> {
    let node = load_node(dir, env, system_clock())?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(node.config.listen)
            .await
            .with_context(|| format!("listening on {}", node.config.listen))?;
        for nurl in node.identity.nurls(&node.config.location) {
            // The NURL carries the swissnum: it goes to the operator's terminal, not the log.
            println!("{nurl}");
        }
        tracing::info!(listen = %node.config.listen, server_id = %node.identity.server_id, "storage node serving");
        let shutdown = CancellationToken::new();
        tokio::spawn(stop_on_signal(shutdown.clone()));
        swamp_server::serve(listener, node.server, shutdown).await?;
        tracing::info!("stopped");
        Ok(())
    })
}

async fn stop_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
    shutdown.cancel();
}

/// Logs to stderr, filtered by `SWAMP_LOG`; with `traces`, request spans are exported
/// too, filtered on their own (the log filter does not turn traces off, nor the
/// reverse).
fn init_tracing(format: LogFormat, traces: Option<&swamp_telemetry::Traces>) {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_env("SWAMP_LOG").unwrap_or_else(|_| {
        // The exporter's own warnings (a collector that cannot be reached) are logged.
        tracing_subscriber::EnvFilter::new("swamp_server=info,opentelemetry=warn")
    });
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = match format {
        LogFormat::Json => logs.json().boxed(),
        LogFormat::Text => logs.boxed(),
    };
    let registry = tracing_subscriber::registry().with(logs.with_filter(filter));
    match traces {
        Some(traces) => registry.with(traces.layer(&["swamp_server"])).init(),
        None => registry.init(),
    }
}
