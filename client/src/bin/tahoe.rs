//! `tahoe`: Tahoe-LAFS's command line, on Swamp's client library. It reads an existing
//! Tahoe client node directory and talks to the storage servers in its
//! `private/servers.yaml` directly (no web API node needed).
//!
//! Commands so far: `put` and `get` of immutable files.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use swamp_client::nodedir::load_grid;
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
    /// Download a file by cap (to stdout if no target is named).
    Get {
        /// The cap.
        cap: String,
        /// Where to write it.
        to: Option<PathBuf>,
    },
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
            let data = match &from {
                Some(path) => std::fs::read(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
                None => {
                    let mut buf = Vec::new();
                    std::io::stdin()
                        .read_to_end(&mut buf)
                        .map_err(|e| format!("cannot read stdin: {e}"))?;
                    buf
                }
            };
            let cap = grid
                .upload(&data)
                .await
                .map_err(|e| format!("upload failed: {e}"))?;
            println!("{cap}");
            Ok(())
        }
        Command::Get { cap, to } => {
            let parsed: Cap = cap.parse().map_err(|e| format!("{cap}: {e}"))?;
            let data = match &parsed {
                Cap::Lit(data) => data.clone(),
                Cap::Chk(chk) => grid
                    .download(chk)
                    .await
                    .map_err(|e| format!("{cap}: {e}"))?,
                _ => {
                    return Err(format!(
                        "{cap}: only immutable file caps are supported by `get` so far"
                    ));
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
