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
    /// Ask a running node (its operator listener) for its state: NURL, uptime, disk,
    /// shares, feeds, certificates. Exit status 3 if it is not running.
    Status {
        /// The node directory.
        #[arg(default_value = "swamp-node", env = "SWAMP_NODE_DIR")]
        dir: PathBuf,
        /// Print the node's JSON answer instead.
        #[arg(long)]
        json: bool,
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
        Command::Status { dir, json } => status(&dir, json),
    }
}

fn status(dir: &Path, json: bool) -> anyhow::Result<()> {
    use swamp_server::operator::status_cli;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match runtime.block_on(status_cli::ask(dir, env)) {
        Ok(report) if json => {
            println!("{}", serde_json::to_string_pretty(&report.status)?);
            Ok(())
        }
        Ok(report) => {
            print!("{}", status_cli::render(&report));
            Ok(())
        }
        Err(e) if e.not_running() => {
            eprintln!("swamp-server status: {e}");
            std::process::exit(3);
        }
        Err(e) => Err(e.into()),
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
        let shutdown = CancellationToken::new();
        tokio::spawn(stop_on_signal(shutdown.clone()));
        if let Some(at) = node.config.operator {
            let operator = tokio::net::TcpListener::bind(at)
                .await
                .with_context(|| format!("listening on {at} for the operator ([swamp] operator_port)"))?;
            let bound = operator.local_addr()?;
            write_operator_url(dir, bound)?;
            tracing::info!(listen = %bound, "operator listener serving /metrics, /healthz, /readyz, /dashboard, /status");
            tokio::spawn(swamp_server::serve_operator(
                operator,
                node.server.app.clone(),
                shutdown.clone(),
            ));
        }
        // Printed once both listeners are up (and operator.url written): tools and
        // tests take the NURL line as "serving".
        for nurl in node.identity.nurls(&node.config.location) {
            // The NURL carries the swissnum: it goes to the operator's terminal, not the log.
            println!("{nurl}");
        }
        tracing::info!(listen = %node.config.listen, server_id = %node.identity.server_id, "storage node serving");
        swamp_server::serve(listener, node.server, shutdown).await?;
        tracing::info!("stopped");
        Ok(())
    })
}

/// Writes `<node>/operator.url` (as Tahoe writes `node.url` for its web port), so
/// tools find a port chosen at start; replaced atomically.
fn write_operator_url(dir: &Path, at: std::net::SocketAddr) -> anyhow::Result<()> {
    let host = if at.ip().is_unspecified() {
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        at.ip()
    };
    let url = format!("http://{}/\n", std::net::SocketAddr::new(host, at.port()));
    let path = dir.join("operator.url");
    let staged = dir.join("operator.url.tmp");
    std::fs::write(&staged, url)
        .and_then(|()| std::fs::rename(&staged, &path))
        .with_context(|| format!("writing {}", path.display()))
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

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SWAMP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("swamp_server=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
