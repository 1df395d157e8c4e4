//! `tahoe`: Tahoe-LAFS's command line, on Swamp's client library. It reads an existing
//! Tahoe client node directory and talks to the storage servers in its
//! `private/servers.yaml` directly (no web API node needed).
//!
//! Commands so far: `put` (immutable, new mutable, or overwriting a mutable), `get` (immutable and mutable files), `ls`
//! (mutable directories).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use swamp_client::nodedir::load_grid;
use swamp_proto::cap::{Cap, MutableFormat};

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
    /// Upload a file (from stdin if none is named, or `-`) and print its cap; with a
    /// mutable write cap as TO, overwrite that file instead.
    Put {
        /// Make a mutable file (SDMF unless `--format` says otherwise).
        #[arg(short = 'm', long)]
        mutable: bool,
        /// CHK (immutable), SDMF or MDMF (both mutable).
        #[arg(long, value_parser = parse_format)]
        format: Option<Format>,
        /// The file to upload.
        from: Option<PathBuf>,
        /// A mutable file's write cap, to overwrite.
        to: Option<String>,
    },
    /// List a directory (children's names; `-l` adds kind, size and cap).
    Ls {
        /// Long listing.
        #[arg(short = 'l', long)]
        long: bool,
        /// The directory cap.
        cap: String,
    },
    /// Download a file by cap (to stdout if no target is named).
    Get {
        /// The cap.
        cap: String,
        /// Where to write it.
        to: Option<PathBuf>,
    },
}

/// `--format` of `put`, in any letter case as Tahoe accepts it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Chk,
    Mutable(MutableFormat),
}

fn parse_format(text: &str) -> Result<Format, String> {
    match text.to_ascii_uppercase().as_str() {
        "CHK" => Ok(Format::Chk),
        "SDMF" => Ok(Format::Mutable(MutableFormat::Sdmf)),
        "MDMF" => Ok(Format::Mutable(MutableFormat::Mdmf)),
        _ => Err(format!("unknown format {text}: use CHK, SDMF or MDMF")),
    }
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
        Command::Put {
            mutable,
            format,
            from,
            to,
        } => {
            let data = match from.as_deref().filter(|p| p.as_os_str() != "-") {
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
            let cap = match (to, format) {
                (Some(to), _) => {
                    let target = match to.parse::<Cap>() {
                        Ok(Cap::Mutable(m)) if m.writekey().is_some() => m,
                        _ => {
                            return Err(format!(
                                "{to}: `put FROM TO` needs TO to be a mutable file's write cap"
                            ));
                        }
                    };
                    grid.overwrite_mutable(&target, &data, None)
                        .await
                        .map_err(|e| format!("{to}: {e}"))?;
                    Cap::Mutable(target)
                }
                (None, Some(Format::Mutable(f))) => Cap::Mutable(
                    grid.create_mutable(&data, f)
                        .await
                        .map_err(|e| format!("upload failed: {e}"))?,
                ),
                (None, None) if mutable => Cap::Mutable(
                    grid.create_mutable(&data, MutableFormat::Sdmf)
                        .await
                        .map_err(|e| format!("upload failed: {e}"))?,
                ),
                (None, Some(Format::Chk)) if mutable => {
                    return Err("--mutable contradicts --format=CHK".into());
                }
                (None, _) => grid
                    .upload(&data)
                    .await
                    .map_err(|e| format!("upload failed: {e}"))?,
            };
            println!("{cap}");
            Ok(())
        }
        Command::Ls { long, cap } => {
            let parsed: Cap = cap.parse().map_err(|e| format!("{cap}: {e}"))?;
            let Cap::Dir(inner) = &parsed else {
                return Err(format!("{cap}: not a directory cap"));
            };
            let Cap::Mutable(file) = inner.as_ref() else {
                return Err(format!(
                    "{cap}: only mutable directories are supported by `ls` so far"
                ));
            };
            let version = grid
                .read_mutable(file)
                .await
                .map_err(|e| format!("{cap}: {e}"))?;
            let entries = swamp_proto::dirnode::parse(&version.data, file.writekey().as_ref())
                .map_err(|e| format!("{cap}: {e}"))?;
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
        Command::Get { cap, to } => {
            let parsed: Cap = cap.parse().map_err(|e| format!("{cap}: {e}"))?;
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
