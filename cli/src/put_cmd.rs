//! `tahoe put [FROM [TO]]`: a local file (or stdin) to the grid, as a new immutable
//! or mutable file, linked at a path or overwriting a mutable file.

use std::io::Read;
use std::path::PathBuf;

use swamp_client::grid::Grid;
use swamp_formats::cap::{Cap, MutableFormat};

use crate::aliases::Aliases;
use crate::edit::{self, Content};
use crate::fail::Failure;

/// `put` arguments.
#[derive(clap::Args)]
pub struct PutArgs {
    /// Make a mutable file (SDMF unless `--format` says otherwise).
    #[arg(short = 'm', long)]
    pub mutable: bool,
    /// CHK (immutable), SDMF or MDMF (mutable).
    #[arg(long, value_parser = edit::parse_format)]
    pub format: Option<edit::FileFormat>,
    /// The local file.
    pub from: Option<PathBuf>,
    /// Where to link it: a path, or a mutable file's write cap.
    pub to: Option<String>,
}

/// `tahoe put [FROM [TO]]`: returns the file's cap.
pub async fn put(grid: &Grid, aliases: &Aliases, args: &PutArgs) -> Result<Cap, Failure> {
    let mutable = match (args.mutable, args.format) {
        (true, Some(edit::FileFormat(None))) => {
            return Err(Failure::new("--mutable contradicts --format=CHK"));
        }
        (_, Some(edit::FileFormat(f))) => f,
        (true, None) => Some(MutableFormat::Sdmf),
        (false, None) => None,
    };
    let local = args.from.as_deref().filter(|p| p.as_os_str() != "-");
    let stdin;
    let content = match local {
        Some(path) => Content::File(path),
        None => {
            stdin = read_stdin()?;
            Content::Bytes(&stdin)
        }
    };
    match (&args.to, mutable) {
        (Some(to), _) => edit::put_to(grid, aliases, to, content, mutable).await,
        (None, Some(format)) => {
            let data = match content {
                Content::File(path) => std::fs::read(path)
                    .map_err(|e| Failure::new(format!("cannot read {}: {e}", path.display())))?,
                Content::Bytes(data) => data.to_vec(),
            };
            Ok(Cap::Mutable(
                grid.create_mutable(&data, format)
                    .await
                    .map_err(|e| Failure::new(format!("upload failed: {}", crate::chain(&e))))?,
            ))
        }
        (None, None) => content.upload(grid, "upload failed").await,
    }
}

/// Reads stdin whole.
fn read_stdin() -> Result<Vec<u8>, Failure> {
    let mut buf = Vec::new();
    std::io::stdin()
        .read_to_end(&mut buf)
        .map_err(|e| Failure::new(format!("cannot read stdin: {e}")))?;
    Ok(buf)
}
