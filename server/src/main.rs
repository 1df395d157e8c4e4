//! `swamp-server`: create, run and describe a Tahoe-LAFS storage node.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};
use swamp_server::node::create::{CreateOptions, create_node};
use swamp_server::node::{Config, LogFormat};
use swamp_server::start::{announcement, describe_node, load_node};
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
            print!("{}", announcement(&dir, env)?);
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
    init_tracing(config.log_format);
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
        tokio::spawn(swamp_server::node::grid_manager::watch_expiry(
            node.certificates.clone(),
            system_clock(),
            shutdown.clone(),
        ));
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

/// Logs go to stderr; colour codes only when it is a terminal, so that a file, a pipe
/// or a container's log collector gets plain text.
fn init_tracing(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("SWAMP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("swamp_server=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
