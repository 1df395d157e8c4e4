//! `tahoe`: Tahoe-LAFS's command line, on Swamp's client library. It reads an existing
//! Tahoe client node directory (`tahoe.cfg`, `private/servers.yaml`, secrets,
//! `private/aliases`) and talks to the storage servers directly: no running client
//! node, no web API in between. Arguments, output and exit codes follow Tahoe's
//! where Tahoe has the command.

mod create;
mod fail;
mod ls;
mod paths;
mod transfer;
mod watch_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use swamp_client::grid::Grid;
use swamp_client::nodedir::{load_aliases, load_grid};

use crate::fail::Failure;

/// Tahoe-LAFS command line (Swamp).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// The client node directory (default: ~/.tahoe, as Tahoe's).
    #[arg(short = 'd', long = "node-directory", global = true)]
    node_directory: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a client node directory; add storage servers with --nurl/--announcement.
    CreateClient(create::CreateArgs),
    /// Upload a file (stdin if FROM is omitted or `-`) and print its cap.
    Put {
        /// The local file.
        from: Option<PathBuf>,
    },
    /// Download a file (to stdout if TO is omitted or `-`).
    Get {
        /// The file: a cap or alias, optionally with `/path`.
        from: String,
        /// The local file to write.
        to: Option<PathBuf>,
    },
    /// List a directory.
    Ls(ls::LsArgs),
    /// Print a directory's (or mutable file's) changes as they happen, decrypted here.
    Watch(watch_cmd::WatchArgs),
}

/// An error and its causes, on one line.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

fn node_directory(cli: &Cli) -> PathBuf {
    cli.node_directory.clone().unwrap_or_else(|| {
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join(".tahoe")
    })
}

struct Node {
    grid: Grid,
    aliases: std::collections::BTreeMap<String, String>,
}

fn open(dir: &std::path::Path) -> Result<Node, Failure> {
    let grid = load_grid(dir).map_err(|e| Failure::new(chain(&e)))?;
    let aliases = load_aliases(dir).map_err(|e| Failure::new(chain(&e)))?;
    Ok(Node { grid, aliases })
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let dir = node_directory(&cli);
    match cli.command {
        Command::CreateClient(args) => create::run(args, cli.node_directory).await,
        Command::Put { from } => {
            let node = open(&dir)?;
            let data = transfer::read_local(from.as_ref())?;
            let cap = transfer::put_immutable(&node.grid, &data).await?;
            println!("{cap}");
            Ok(())
        }
        Command::Get { from, to } => {
            let node = open(&dir)?;
            transfer::get(&node.grid, &node.aliases, &from, to.as_ref()).await
        }
        Command::Ls(args) => {
            let node = open(&dir)?;
            let listing = ls::run(&node.grid, &node.aliases, &args).await?;
            print!("{listing}");
            Ok(())
        }
        Command::Watch(args) => {
            let node = open(&dir)?;
            watch_cmd::run(&node.grid, &node.aliases, args).await
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
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
