//! `tahoe`: Tahoe-LAFS's command line, on Swamp's client library. It reads an existing
//! Tahoe client node directory and talks to the storage servers in its
//! `private/servers.yaml` directly (no web API node needed).
//!
//! Commands so far: `put` (immutable), `get` (immutable and mutable files), `ls`
//! (mutable directories).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use swamp_client::dirs::split_path;
use swamp_client::grid::{FileError, Grid};
use swamp_client::nodedir::{load_aliases, load_grid};
use swamp_client::watch::{WatchEvent, WatchOptions, format_line, json_line, watch};
use swamp_proto::cap::Cap;

/// Tahoe-LAFS command line (Swamp).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// The client node directory.
    #[arg(short = 'd', long = "node-directory", global = true)]
    node_directory: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Upload a file (from stdin if none is named) and print its cap.
    Put {
        /// The file to upload.
        from: Option<PathBuf>,
    },
    /// List a directory (children's names; `-l` adds kind, size and cap).
    Ls {
        /// Long listing.
        #[arg(short = 'l', long)]
        long: bool,
        /// The directory cap.
        cap: String,
    },
    /// Print a directory's (or mutable file's) changes as they happen, decrypted here.
    Watch {
        /// The directory or mutable file: a cap or alias, optionally with `/path`.
        target: String,
        /// One JSON object per line, with full detail.
        #[arg(long)]
        json: bool,
        /// Print the current children first.
        #[arg(long)]
        snapshot: bool,
        /// Follow subdirectories as they appear and disappear.
        #[arg(short = 'r', long)]
        recursive: bool,
        /// Seconds between polls of servers that have no change feed.
        #[arg(long, default_value_t = 1.0)]
        poll_interval: f64,
    },
    /// Download a file by cap (to stdout if no target is named).
    Get {
        /// The cap.
        cap: String,
        /// Where to write it.
        to: Option<PathBuf>,
    },
}

/// Turns a CLI path argument (`CAP[/a/b]` or `ALIAS:[a/b]`) into the cap it names.
async fn resolve(
    grid: &Grid,
    aliases: &std::collections::BTreeMap<String, String>,
    arg: &str,
) -> Result<Cap, String> {
    let (root, names) = split_path(arg);
    let root_cap = if root.starts_with("URI:") {
        root.to_string()
    } else {
        let alias = root.trim_end_matches(':');
        let alias = if alias.is_empty() { "tahoe" } else { alias };
        aliases.get(alias).cloned().ok_or_else(|| {
            format!(
                "{arg}: no alias {alias:?} in private/aliases (use a cap, or `tahoe create-alias`)"
            )
        })?
    };
    let cap: Cap = root_cap.parse().map_err(|e| format!("{arg}: {e}"))?;
    grid.walk(&cap, &names)
        .await
        .map_err(|e| format!("{arg}: {e}"))
}

fn node_directory(cli: &Cli) -> PathBuf {
    cli.node_directory.clone().unwrap_or_else(|| {
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join(".tahoe")
    })
}

async fn run(cli: Cli) -> Result<(), String> {
    let dir = node_directory(&cli);
    let grid = load_grid(&dir).map_err(|e| e.to_string())?;
    match cli.command {
        Command::Put { from } => {
            let cap = match &from {
                Some(path) => grid.upload_file(path).await.map_err(|e| match e {
                    FileError::Io(e) => format!("cannot read {}: {e}", path.display()),
                    e => format!("upload failed: {e}"),
                })?,
                None => {
                    let mut buf = Vec::new();
                    std::io::stdin()
                        .read_to_end(&mut buf)
                        .map_err(|e| format!("cannot read stdin: {e}"))?;
                    grid.upload(&buf)
                        .await
                        .map_err(|e| format!("upload failed: {e}"))?
                }
            };
            println!("{cap}");
            Ok(())
        }
        Command::Ls { long, cap } => {
            let aliases = load_aliases(&dir).map_err(|e| e.to_string())?;
            let dircap = resolve(&grid, &aliases, &cap).await?;
            let entries = grid
                .read_dir(&dircap)
                .await
                .map_err(|e| format!("{cap}: {e}"))?
                .entries;
            let mut out = std::io::stdout().lock();
            for e in entries {
                let line = if long {
                    let child = e.rw_uri.as_deref().or(e.ro_uri.as_deref()).unwrap_or("");
                    let kind = match Cap::parse_lenient(child) {
                        Ok(Cap::Dir(_)) => "dir",
                        Ok(Cap::Unknown(_)) | Err(_) => "?",
                        Ok(_) => "file",
                    };
                    format!("{kind:4} {} {child}", e.name)
                } else {
                    e.name
                };
                writeln!(out, "{line}").map_err(|e| format!("cannot write stdout: {e}"))?;
            }
            Ok(())
        }
        Command::Watch {
            target,
            json,
            snapshot,
            recursive,
            poll_interval,
        } => {
            let aliases = load_aliases(&dir).map_err(|e| e.to_string())?;
            let cap = resolve(&grid, &aliases, &target).await?;
            if !(poll_interval.is_finite() && poll_interval > 0.0) {
                return Err(format!(
                    "--poll-interval {poll_interval}: must be a positive number of seconds"
                ));
            }
            let options = WatchOptions {
                snapshot,
                recursive,
                poll_interval: std::time::Duration::from_secs_f64(poll_interval),
                ..WatchOptions::default()
            };
            let (tx, mut rx) = tokio::sync::mpsc::channel(256);
            let printer = tokio::spawn(async move {
                while let Some(event) = rx.recv().await {
                    let mut out = std::io::stdout().lock();
                    let notice = matches!(event, WatchEvent::Notice(_));
                    let written = if json {
                        writeln!(out, "{}", json_line(&event))
                    } else if notice {
                        eprintln!("{}", format_line(&event));
                        Ok(())
                    } else if matches!(event, WatchEvent::Ready) {
                        eprintln!("watching {target} (Ctrl-C to stop)");
                        Ok(())
                    } else {
                        writeln!(out, "{}", format_line(&event))
                    };
                    if written.and_then(|()| out.flush()).is_err() {
                        return;
                    }
                }
            });
            let watched = tokio::select! {
                r = watch(&grid, cap, options, tx) => r.map_err(|e| e.to_string()),
                _ = tokio::signal::ctrl_c() => Ok(()),
            };
            let _ = printer.await;
            watched
        }
        Command::Get { cap, to } => {
            let aliases = load_aliases(&dir).map_err(|e| e.to_string())?;
            let parsed = resolve(&grid, &aliases, &cap).await?;
            if let (Cap::Chk(chk), Some(path)) = (&parsed, &to) {
                // Streamed straight into the file, a segment at a time.
                let mut file = std::fs::File::create(path)
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                return grid.download_to(chk, &mut file).await.map_err(|e| match e {
                    FileError::Io(e) => format!("cannot write {}: {e}", path.display()),
                    e => format!("{cap}: {e}"),
                });
            }
            let data = match &parsed {
                Cap::Lit(data) => data.clone(),
                Cap::Chk(chk) => grid
                    .download(chk)
                    .await
                    .map_err(|e| format!("{cap}: {e}"))?,
                Cap::Mutable(m) => {
                    grid.read_mutable(m)
                        .await
                        .map_err(|e| format!("{cap}: {e}"))?
                        .data
                }
                _ => {
                    return Err(format!("{cap}: `get` reads files; this is not a file cap"));
                }
            };
            match to {
                Some(path) => std::fs::write(&path, &data)
                    .map_err(|e| format!("cannot write {}: {e}", path.display())),
                None => std::io::stdout()
                    .write_all(&data)
                    .map_err(|e| format!("cannot write stdout: {e}")),
            }
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
