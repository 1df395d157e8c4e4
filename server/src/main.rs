//! `swamp-server`: create, run and describe a Tahoe-LAFS storage node.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use swamp_server::node::Config;
use swamp_server::node::config::env_name;
use swamp_server::node::create::{CreateOptions, create_node};
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
    /// Serve a node directory (created if it does not exist, with the port, location
    /// and nickname of the environment if set there).
    Run {
        /// The node directory.
        #[arg(default_value = "swamp-node", env = "SWAMP_NODE_DIR")]
        dir: PathBuf,
        /// Do not print the NURL(s) on stdout: they carry the swissnum, and in a
        /// container stdout goes to the log (`swamp-server nurl` prints them).
        #[arg(long, env = "SWAMP_QUIET", value_parser = clap::builder::BoolishValueParser::new())]
        quiet: bool,
    },
    /// Exit 0 if the node of this directory serves on its own port (a TLS handshake
    /// with its certificate, then GET /storage/v1/version answering 200), 1 if not: a
    /// container health check that needs no shell or curl.
    Healthcheck {
        /// The node directory.
        #[arg(default_value = "swamp-node", env = "SWAMP_NODE_DIR")]
        dir: PathBuf,
        /// Seconds each step (connect, handshake, answer) may take.
        #[arg(long, default_value_t = 5)]
        timeout: u64,
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
    /// Make a running node read its configuration again (tahoe.cfg, the files
    /// SWAMP_..._FILE variables name, the operator secret, grid-manager certificates)
    /// and apply what can change without a restart; prints what changed and what
    /// still needs a restart. Sending the node SIGHUP does the same, with the report in
    /// its log. Exit status 1 if the configuration is refused (the node keeps the one
    /// it has), 3 if the node is not running.
    Reload {
        /// The node directory.
        #[arg(default_value = "swamp-node", env = "SWAMP_NODE_DIR")]
        dir: PathBuf,
        /// Print the node's JSON answer instead.
        #[arg(long)]
        json: bool,
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
        Command::Run { dir, quiet } => run(&dir, quiet),
        Command::Healthcheck { dir, timeout } => {
            let addr = swamp_server::healthcheck::check(&dir, env, Duration::from_secs(timeout))
                .with_context(|| format!("the node in {} is not healthy", dir.display()))?;
            println!("healthy: the node answers on {addr}");
            Ok(())
        }
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
        Command::Status { dir, json } => status(&dir, json),
        Command::Reload { dir, json } => reload(&dir, json),
    }
}

fn reload(dir: &Path, json: bool) -> anyhow::Result<()> {
    use swamp_server::operator::status_cli;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match runtime.block_on(status_cli::reload(dir, env)) {
        Ok(report) if json => {
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Ok(report) => {
            print!("{}", render_reload(&report));
            Ok(())
        }
        Err(e) if e.not_running() => {
            eprintln!("swamp-server reload: {e}");
            std::process::exit(3);
        }
        Err(e) => Err(e.into()),
    }
}

/// The reload report for a person.
fn render_reload(report: &swamp_server::reload::ReloadReport) -> String {
    let mut out = String::new();
    if report.applied.is_empty() && report.needs_restart.is_empty() {
        out.push_str("Reloaded: nothing changed.\n");
    }
    let lists = [
        ("Reloaded; now in force:", &report.applied),
        (
            "Changed, but only a restart applies (the node runs on with the old value):",
            &report.needs_restart,
        ),
    ];
    for (heading, changes) in lists {
        if changes.is_empty() {
            continue;
        }
        out.push_str(heading);
        out.push('\n');
        for c in changes {
            let value = |v: &Option<String>| v.as_deref().unwrap_or("(default)").to_string();
            out.push_str(&format!(
                "  {}: {} -> {}\n",
                c.setting,
                value(&c.from),
                value(&c.to)
            ));
        }
    }
    out
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

fn run(dir: &Path, quiet: bool) -> anyhow::Result<()> {
    if !dir.join("tahoe.cfg").exists() {
        // A container's first start: what its environment says is recorded in
        // tahoe.cfg, so the directory serves the same way on its own.
        let options = CreateOptions {
            port: env(&env_name("node", "tub.port")),
            location: env(&env_name("node", "tub.location")),
            hostname: None,
            nickname: env(&env_name("node", "nickname")),
        };
        create_node(dir, &options).with_context(|| format!("creating {}", dir.display()))?;
        eprintln!("Created a new node directory in {}", dir.display());
    }
    let config = Config::load(dir, env)?;
    let traces = swamp_telemetry::Traces::from_env("swamp-server", env!("CARGO_PKG_VERSION"))
        .context("OpenTelemetry traces (the OTEL_* environment variables)")?;
    let logs = swamp_server::logging::init(
        config.log_format,
        &config.log_filter,
        traces
            .as_ref()
            .map(|t| tracing_subscriber::Layer::boxed(t.layer(&["swamp_server"]))),
    )
    .map_err(|e| anyhow::anyhow!("starting the log: {e}"))?;
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
    let served = serve_node(dir, quiet, logs);
    // After the graceful shutdown (or a failed start): send the spans still queued.
    if let Some(traces) = traces
        && let Err(e) = traces.shutdown()
    {
        tracing::warn!(error = %e, "the last traces were not sent");
    }
    served
}

fn serve_node(dir: &Path, quiet: bool, logs: swamp_server::logging::Logs) -> anyhow::Result<()> {
    let node = load_node(dir, env, system_clock())?;
    let reloader = std::sync::Arc::clone(&node.reloader);
    reloader.control_logs(logs);
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(node.config.listen)
            .await
            .with_context(|| format!("listening on {}", node.config.listen))?;
        let shutdown = CancellationToken::new();
        tokio::spawn(stop_on_signal(shutdown.clone()));
        tokio::spawn(reload_on_signal(reloader, shutdown.clone()));
        if let Some(at) = node.config.operator {
            let operator = tokio::net::TcpListener::bind(at)
                .await
                .with_context(|| format!("listening on {at} for the operator ([storageserver.plugins.swamp] operator_port)"))?;
            let bound = operator.local_addr()?;
            write_operator_url(dir, bound)?;
            tracing::info!(listen = %bound, "operator listener serving /metrics, /healthz, /readyz, /dashboard, /status");
            tokio::spawn(swamp_server::serve_operator(
                operator,
                node.server.app.clone(),
                shutdown.clone(),
            ));
        }
        tokio::spawn(swamp_server::node::grid_manager::watch_expiry(
            node.server.app.certificates.clone(),
            system_clock(),
            shutdown.clone(),
        ));
        // Printed once both listeners are up (and operator.url written): tools and
        // tests take the NURL line as "serving".
        if !quiet {
            for nurl in node.identity.nurls(&node.config.location) {
                // The NURL carries the swissnum: it goes to the operator's terminal, not
                // the log.
                println!("{nurl}");
            }
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

/// Reloads the configuration at each SIGHUP until `shutdown`; the report (or why the
/// configuration was refused) goes to the log.
async fn reload_on_signal(
    reloader: std::sync::Arc<swamp_server::reload::Reloader>,
    shutdown: CancellationToken,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangup) = signal(SignalKind::hangup()) else {
        tracing::error!("cannot install the SIGHUP handler; reload with `swamp-server reload`");
        return;
    };
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = hangup.recv() => {}
        }
        tracing::info!("SIGHUP: reloading the configuration");
        let reloader = std::sync::Arc::clone(&reloader);
        match tokio::task::spawn_blocking(move || reloader.reload()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(
                error = %swamp_proto::error::chain(&e),
                "reload refused; the node keeps its configuration"
            ),
            Err(e) => tracing::error!(error = %e, "the reload failed"),
        }
    }
}
