//! `tahoe`: Tahoe-LAFS's command line, on Swamp's client library. It reads an existing
//! Tahoe client node directory (`tahoe.cfg`, `private/servers.yaml`, secrets,
//! `private/aliases`) and talks to the storage servers directly: no running client
//! node, no web API in between. Arguments, output and exit codes follow Tahoe's
//! where Tahoe has the command. `tahoe run` is the other way round: it runs a client
//! node serving Tahoe's web API (`swamp-gateway`) for programs written for Tahoe's.

mod aliases;
mod backup;
mod backupdb;
mod check_cmd;
mod cp;
mod create;
mod direct;
mod edit;
mod exclude;
mod fail;
mod ls;
mod magic_folder_push;
mod manifest;
mod paths;
mod progress;
mod push_format;
mod put_cmd;
mod quote;
mod run;
mod status_cmd;
mod traces;
mod transfer;
mod watch_cmd;
mod watch_format;
mod web_log;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use swamp_client::grid::Grid;
use swamp_client::nodedir::load_grid;
use swamp_formats::cap::MutableFormat;
use tracing::Instrument;

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
    /// Run a client node: Tahoe's web API on the directory's `[node] web.port`.
    Run(run::RunArgs),
    /// Upload a file (stdin if FROM is omitted or `-`) and print its cap; with TO,
    /// link it there (or overwrite the mutable file there, or the mutable cap TO).
    Put(put_cmd::PutArgs),
    /// Create a directory (unlinked without PATH) and print its cap.
    Mkdir {
        /// SDMF or MDMF.
        #[arg(long, value_parser = edit::parse_format)]
        format: Option<edit::FileFormat>,
        /// Where to link it (intermediate directories are made).
        path: Option<String>,
    },
    /// Add a link to FROM's file or directory at TO (`TO/` keeps the name).
    Ln {
        /// The existing path.
        from: String,
        /// The new path.
        to: String,
    },
    /// Move FROM to TO (link, then unlink the old name).
    Mv {
        /// The existing path.
        from: String,
        /// The new path.
        to: String,
    },
    /// Unlink a file or directory on the grid.
    Unlink {
        /// The path to remove.
        path: String,
    },
    /// As `unlink`.
    #[command(hide = true)]
    Rm {
        /// The path to remove.
        path: String,
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
    /// Copy one or more files or directories.
    Cp(cp::CpArgs),
    /// Make target dir look like local dir.
    Backup(backup::BackupArgs),
    /// Check a single file or directory.
    Check(check_cmd::CheckArgs),
    /// Check all files/directories reachable from a starting point.
    DeepCheck(check_cmd::DeepCheckArgs),
    /// List all files/directories in a subtree.
    Manifest(manifest::ManifestArgs),
    /// Print statistics about all files/directories in a subtree.
    Stats(manifest::StatsArgs),
    /// Various status information (from the running node: `tahoe run`).
    Status(status_cmd::StatusArgs),
    /// List all alias caps.
    ListAliases(aliases::ListArgs),
    /// Create a new directory and add an alias for it.
    CreateAlias(aliases::AliasArgs),
    /// Add a new alias for an existing directory.
    AddAlias {
        #[command(flatten)]
        alias: aliases::AliasArgs,
        /// The directory's cap.
        cap: String,
    },
    /// Print a directory's (or mutable file's) changes as they happen, decrypted here.
    Watch(watch_cmd::WatchArgs),
    /// Run beside a magic-folder daemon: ask it to poll a folder as soon as another
    /// participant's directory changes (through the servers' change feeds).
    MagicFolderPush(magic_folder_push::PushArgs),
}

pub use swamp_proto::error::chain;

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
    aliases: aliases::Aliases,
}

fn open(dir: &std::path::Path) -> Result<Node, Failure> {
    let grid = load_grid(dir).map_err(|e| Failure::new(chain(&e)))?;
    let aliases = aliases::load(dir)?;
    Ok(Node { grid, aliases })
}

async fn run(cli: Cli, command_name: &str) -> Result<(), Failure> {
    let dir = node_directory(&cli);
    match cli.command {
        Command::CreateClient(args) => create::run(args, cli.node_directory).await,
        Command::Run(args) => run::run(args, dir).await,
        Command::Put(args) => {
            let node = open(&dir)?;
            let cap = put_cmd::put(&node.grid, &node.aliases, &args).await?;
            println!("{cap}");
            Ok(())
        }
        Command::Mkdir { format, path } => {
            let node = open(&dir)?;
            let format = match format {
                Some(edit::FileFormat(None)) => {
                    return Err(Failure::new("--format=CHK: directories are SDMF or MDMF"));
                }
                Some(edit::FileFormat(Some(f))) => f,
                None => MutableFormat::Sdmf,
            };
            let cap = edit::mkdir(&node.grid, &node.aliases, path.as_deref(), format).await?;
            println!("{cap}");
            Ok(())
        }
        Command::Ln { from, to } => {
            let node = open(&dir)?;
            edit::link_or_move(&node.grid, &node.aliases, &from, &to, false).await?;
            println!("OK");
            Ok(())
        }
        Command::Mv { from, to } => {
            let node = open(&dir)?;
            edit::link_or_move(&node.grid, &node.aliases, &from, &to, true).await?;
            println!("OK");
            Ok(())
        }
        Command::Unlink { path } | Command::Rm { path } => {
            let node = open(&dir)?;
            edit::unlink(&node.grid, &node.aliases, &path, command_name).await?;
            println!("200 OK");
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
        Command::Cp(args) => {
            let node = open(&dir)?;
            cp::run(&node.grid, &node.aliases, &args).await
        }
        Command::Backup(args) => {
            let node = open(&dir)?;
            backup::run(&node.grid, &node.aliases, &dir, &args).await
        }
        Command::Check(args) => {
            let node = open(&dir)?;
            check_cmd::check(&node.grid, &node.aliases, &args).await
        }
        Command::DeepCheck(args) => {
            let node = open(&dir)?;
            check_cmd::deep_check(&node.grid, &node.aliases, &args).await
        }
        Command::Manifest(args) => {
            let node = open(&dir)?;
            manifest::manifest(&node.grid, &node.aliases, &args).await
        }
        Command::Stats(args) => {
            let node = open(&dir)?;
            manifest::stats(&node.grid, &node.aliases, &args).await
        }
        Command::Status(args) => status_cmd::run(&dir, &args).await,
        Command::ListAliases(args) => {
            print!("{}", aliases::list(&aliases::load(&dir)?, &args)?);
            Ok(())
        }
        Command::CreateAlias(args) => aliases::create(&open(&dir)?.grid, &dir, &args).await,
        Command::AddAlias { alias, cap } => aliases::add(&dir, &alias, &cap),
        Command::Watch(args) => {
            let node = open(&dir)?;
            watch_cmd::run(&node.grid, &node.aliases, args).await
        }
        Command::MagicFolderPush(args) => {
            let node = open(&dir)?;
            magic_folder_push::run_push(node.grid, args).await
        }
    }
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let traces = traces::start();
    let command_name = matches.subcommand_name().unwrap_or_default();
    let span = traces::command_span(command_name);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli, command_name).instrument(span));
    // Tasks still running hold spans: end them, then send what is queued.
    drop(runtime);
    traces::finish(traces);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if !failure.message.is_empty() {
                eprintln!("{}", failure.text());
            }
            ExitCode::from(failure.code)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
        for args in [
            &["tahoe", "put", "--format=mdmf", "f", "alias:x"][..],
            &["tahoe", "put", "-m", "f"],
            &["tahoe", "mkdir", "--format=MDMF", "alias:x"],
            &["tahoe", "unlink", "alias:x"],
            &["tahoe", "run", "--allow-stdin-close", "n"],
            &["tahoe", "-d", "n", "run"],
            &["tahoe", "ls", "-l", "-F", "--uri"],
            &["tahoe", "rm", "alias:x"],
            &["tahoe", "list-aliases", "--json", "--readonly-uri"],
            &["tahoe", "create-alias", "work:"],
            &["tahoe", "add-alias", "work", "URI:DIR2:a:b"],
            &["tahoe", "cp", "-r", "-v", "--caps-only", "a", "b", "work:"],
            &[
                "tahoe",
                "backup",
                "-v",
                "--exclude=*.o",
                "--exclude",
                "x",
                "--exclude-vcs",
                "--ignore-timestamps",
                "--no-backupdb",
                "src",
                "work:bk",
            ],
            &[
                "tahoe",
                "check",
                "--raw",
                "--verify",
                "--repair",
                "--add-lease",
                "a",
                "b",
            ],
            &["tahoe", "deep-check", "-v", "--repair"],
            &["tahoe", "manifest", "-s", "-r", "work:"],
            &["tahoe", "manifest", "--verify-cap", "--repair-cap"],
            &["tahoe", "stats", "-r", "work:"],
            &["tahoe", "status", "-v"],
            &["tahoe", "watch", "--json", "-r", "alias:"],
            &[
                "tahoe",
                "-d",
                "n",
                "magic-folder-push",
                "--config",
                "mf",
                "--json",
            ],
        ] {
            assert!(Cli::try_parse_from(args).is_ok(), "{args:?}");
        }
        assert!(Cli::try_parse_from(["tahoe", "put", "--format=ZIP", "f"]).is_err());
        assert!(Cli::try_parse_from(["tahoe", "cp", "only-one"]).is_err());
    }
}
