//! `tahoe run [NODEDIR]`: a client node. It serves the web API (`swamp-gateway`) on
//! the directory's `[node] web.port`, over the servers in `private/servers.yaml`,
//! so programs written for a Python client node (Tahoe's CLI, magic-folder,
//! GridSync) can use this one.
//!
//! It does what those programs look for, where Tahoe does it: `node.url` holds the
//! API's URL, `private/api_auth_token` a fresh token (made anew at every start), and
//! once serving it prints "client running" (GridSync waits for that line). Like
//! Tahoe's, it exits when its standard input closes unless `--allow-stdin-close`
//! (GridSync ends its node that way), and on SIGINT or SIGTERM.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use swamp_client::nodedir::{load_grid, load_server_names};
use swamp_gateway::{Gateway, Limits, LogFeed, serve};
use swamp_proto::ini::Ini;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;

use crate::chain;
use crate::fail::Failure;
use crate::web_log::WebLog;

/// `run` flags.
#[derive(clap::Args)]
pub struct RunArgs {
    /// The client node directory (default: the -d directory, else ~/.tahoe).
    pub dir: Option<PathBuf>,
    /// Keep running when standard input closes (Tahoe's flag).
    #[arg(long = "allow-stdin-close")]
    pub allow_stdin_close: bool,
}

/// Parses a Twisted endpoint string as Tahoe's `web.port` takes it: `3456`,
/// `tcp:3456`, `tcp:3456:interface=127.0.0.1` (all interfaces when none is named).
pub fn parse_web_port(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    let rest = text.strip_prefix("tcp:").unwrap_or(text);
    let mut fields = rest.split(':');
    let port: u16 = fields
        .next()
        .and_then(|p| p.trim().parse().ok())
        .ok_or_else(|| format!("web.port {text:?}: expected tcp:PORT[:interface=ADDRESS]"))?;
    let mut ip = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    for field in fields {
        match field.split_once('=') {
            Some(("interface", address)) => {
                ip = address
                    .parse()
                    .map_err(|_| format!("web.port {text:?}: bad interface {address:?}"))?;
            }
            Some(("backlog", _)) => {}
            _ => return Err(format!("web.port {text:?}: unsupported field {field:?}")),
        }
    }
    Ok(SocketAddr::new(ip, port))
}

/// Writes `path` whole or not at all (a reader never sees half a URL or token).
fn write_atomically(path: &Path, content: &str) -> Result<(), Failure> {
    let fail = |e: std::io::Error| Failure::new(format!("cannot write {}: {e}", path.display()));
    let temp = path.with_extension("tmp");
    std::fs::write(&temp, content).map_err(fail)?;
    std::fs::rename(&temp, path).map_err(fail)
}

/// Makes `private/secret` (the lease secret) and `private/convergence` when they
/// are missing, as Tahoe's node does at its first start: `tahoe create-client`
/// leaves them to it.
fn create_missing_secrets(dir: &Path) -> Result<(), Failure> {
    for name in ["secret", "convergence"] {
        let path = dir.join("private").join(name);
        if !path.exists() {
            let secret = swamp_proto::base32::encode(&rand::random::<[u8; 32]>());
            write_atomically(&path, &format!("{secret}\n"))?;
        }
    }
    Ok(())
}

/// Runs the node until it is told to stop.
pub async fn run(args: RunArgs, global_dir: PathBuf) -> Result<(), Failure> {
    let dir = args.dir.unwrap_or(global_dir);
    let cfg_path = dir.join("tahoe.cfg");
    let cfg_text = std::fs::read_to_string(&cfg_path)
        .map_err(|e| Failure::new(format!("cannot read {}: {e}", cfg_path.display())))?;
    let cfg =
        Ini::parse(&cfg_text).map_err(|e| Failure::new(format!("{}: {e}", cfg_path.display())))?;
    let web_port = cfg
        .get("node", "web.port")
        .filter(|p| !p.trim().is_empty())
        .ok_or_else(|| {
            Failure::new(format!(
                "{}: no [node] web.port to serve on",
                cfg_path.display()
            ))
        })?;
    let address = parse_web_port(web_port).map_err(Failure::new)?;
    let spool = dir.join(cfg.get("node", "tempdir").unwrap_or("tmp"));

    println!("running node in {}", dir.display());
    create_missing_secrets(&dir)?;
    let grid = load_grid(&dir).map_err(|e| Failure::new(chain(&e)))?;
    let names = load_server_names(&dir).map_err(|e| Failure::new(chain(&e)))?;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| Failure::new(format!("cannot listen on {address}: {e}")))?;
    let port = listener
        .local_addr()
        .map_err(|e| Failure::new(format!("cannot read the listening address: {e}")))?
        .port();

    let token = data_encoding::BASE64URL.encode(&rand::random::<[u8; 32]>());
    let private = dir.join("private");
    write_atomically(&private.join("api_auth_token"), &format!("{token}\n"))?;
    // Tahoe names 127.0.0.1 whatever the interface.
    write_atomically(
        &dir.join("node.url"),
        &format!("http://127.0.0.1:{port}/\n"),
    )?;

    // Failures go to stderr (SWAMP_LOG picks what, as an env filter; warnings by
    // default); information and up also to /private/logs/v1 followers. Unless
    // traces are being exported, which installed their own subscriber.
    let stderr_filter = tracing_subscriber::EnvFilter::try_from_env("SWAMP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let logs = LogFeed::default();
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(stderr_filter),
        )
        .with(WebLog::new(logs.clone()).with_filter(LevelFilter::INFO))
        .try_init();
    let shutdown = CancellationToken::new();
    stop_on_signals(shutdown.clone());
    if !args.allow_stdin_close {
        stop_on_stdin_close(shutdown.clone());
    }
    let gateway = Arc::new(
        Gateway::new(grid, names, spool, Limits::default())
            .with_api_token(token)
            .with_log_feed(logs),
    );
    let served = tokio::spawn(serve(listener, gateway, shutdown));
    println!("client running");
    // Whoever reads our output (GridSync) may wait for that line.
    let _ = std::io::stdout().flush();
    match served.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Failure::new(format!("web API: {e}"))),
        Err(e) => Err(Failure::new(format!("web API task: {e}"))),
    }
}

fn stop_on_signals(shutdown: CancellationToken) {
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        shutdown.cancel();
    });
}

/// Tahoe's `tahoe run` ends when its standard input closes; so does this one.
fn stop_on_stdin_close(shutdown: CancellationToken) {
    std::thread::spawn(move || {
        let mut sink = [0u8; 1024];
        let mut stdin = std::io::stdin();
        loop {
            match std::io::Read::read(&mut stdin, &mut sink) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        shutdown.cancel();
    });
}

#[cfg(test)]
mod tests {
    use super::parse_web_port;

    #[test]
    fn web_ports_are_read_as_tahoe_writes_them() {
        assert_eq!(
            parse_web_port("tcp:3456:interface=127.0.0.1").expect("parses"),
            "127.0.0.1:3456".parse().expect("address")
        );
        assert_eq!(
            parse_web_port("3456").expect("parses"),
            "0.0.0.0:3456".parse().expect("address")
        );
        assert_eq!(
            parse_web_port("tcp:0:interface=127.0.0.1")
                .expect("parses")
                .port(),
            0
        );
        assert!(parse_web_port("ssl:443").is_err());
        assert!(parse_web_port("tcp:1:interface=nowhere").is_err());
    }
}
