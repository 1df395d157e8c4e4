//! The commands that change directories: `mkdir`, `ln`, `mv`, `rm`/`unlink`, and
//! `put` to a path. Each is a read-modify-write of one directory (two for `mv`),
//! retried if another writer got there first; Tahoe's rules for intermediate
//! directories, replacing and output are kept.

use swamp_client::dir_edit::Replace;
use swamp_client::grid::{Grid, GridError};
use swamp_formats::cap::{Cap, MutableFormat};

use crate::fail::Failure;
use crate::paths::{self, Path};

/// A `--format` value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FileFormat(
    /// `None` for CHK (immutable).
    pub Option<MutableFormat>,
);

/// `--format`: CHK, SDMF or MDMF, in any letter case as Tahoe accepts it.
pub fn parse_format(text: &str) -> Result<FileFormat, String> {
    match text.to_ascii_uppercase().as_str() {
        "CHK" => Ok(FileFormat(None)),
        "SDMF" => Ok(FileFormat(Some(MutableFormat::Sdmf))),
        "MDMF" => Ok(FileFormat(Some(MutableFormat::Mdmf))),
        _ => Err(format!("unknown format {text}: use CHK, SDMF or MDMF")),
    }
}

use crate::aliases::Aliases;

fn failed(arg: &str, e: &GridError) -> Failure {
    Failure::new(format!("{arg}: {}", crate::chain(e)))
}

/// The directory a path's last name lives in (intermediate directories created
/// when `create`), and that name.
async fn parent_of<'a>(
    grid: &Grid,
    path: &Path<'a>,
    create: bool,
) -> Result<(Cap, &'a str), Failure> {
    let Some((last, parents)) = path.names.split_last() else {
        return Err(Failure::new(format!(
            "{}: a path inside a directory is needed here",
            path.arg
        )));
    };
    let parent = if create {
        grid.make_dirs(&path.root, parents, MutableFormat::Sdmf)
            .await
    } else {
        grid.walk(&path.root, parents).await
    }
    .map_err(|e| failed(path.arg, &e))?;
    Ok((parent, last))
}

/// `tahoe mkdir [PATH]`: prints the new (or existing) directory's cap.
pub async fn mkdir(
    grid: &Grid,
    aliases: &Aliases,
    where_: Option<&str>,
    format: MutableFormat,
) -> Result<Cap, Failure> {
    let path = match where_ {
        Some(arg) => Some(paths::parse(aliases, arg.trim_end_matches('/'))?),
        None => None,
    };
    match path {
        Some(path) if !path.names.is_empty() => {
            let (parent, last) = parent_of(grid, &path, true).await?;
            grid.make_dirs(&parent, &[last], format)
                .await
                .map_err(|e| failed(path.arg, &e))
        }
        _ => grid
            .create_dir(format)
            .await
            .map_err(|e| Failure::new(format!("mkdir: {}", crate::chain(&e)))),
    }
}

/// What `put_to` writes: bytes in memory, or a local file (an immutable file is
/// uploaded from it streaming; a mutable one is read whole, as it is written whole).
#[derive(Clone, Copy)]
pub enum Content<'a> {
    /// These bytes.
    Bytes(&'a [u8]),
    /// This local file's.
    File(&'a std::path::Path),
}

impl Content<'_> {
    fn bytes(&self) -> Result<std::borrow::Cow<'_, [u8]>, Failure> {
        match self {
            Content::Bytes(data) => Ok(std::borrow::Cow::Borrowed(data)),
            Content::File(path) => std::fs::read(path)
                .map(std::borrow::Cow::Owned)
                .map_err(|e| Failure::new(format!("cannot read {}: {e}", path.display()))),
        }
    }

    /// Uploads as a new immutable file.
    pub async fn upload(&self, grid: &Grid, what: &str) -> Result<Cap, Failure> {
        match self {
            Content::File(path) => crate::transfer::put_file(grid, path).await,
            Content::Bytes(data) => grid.upload(data).await.map_err(|e| failed(what, &e)),
        }
    }
}

/// `tahoe put FROM TO` where TO is a path or a mutable file cap: links (or, for an
/// existing mutable file, overwrites) and returns the file's cap.
pub async fn put_to(
    grid: &Grid,
    aliases: &Aliases,
    to: &str,
    content: Content<'_>,
    mutable: Option<MutableFormat>,
) -> Result<Cap, Failure> {
    let path = paths::parse(aliases, to)?;
    if path.names.is_empty() {
        return match &path.root {
            Cap::Mutable(file) => grid
                .overwrite_mutable(file, &content.bytes()?, None)
                .await
                .map(|_| path.root.clone())
                .map_err(|e| failed(to, &e)),
            Cap::Dir(_) => Err(Failure::new(format!(
                "{to}: is a directory; give a name inside it (DIR/name)"
            ))),
            _ => Err(Failure::new(format!(
                "{to}: only a mutable file cap can be overwritten"
            ))),
        };
    }
    let (parent, last) = parent_of(grid, &path, true).await?;
    // An existing mutable file is overwritten in place (its cap stays the same).
    if let Ok(Cap::Mutable(file)) = grid.walk(&parent, &[last]).await
        && file.writekey().is_some()
    {
        grid.overwrite_mutable(&file, &content.bytes()?, None)
            .await
            .map_err(|e| failed(to, &e))?;
        return Ok(Cap::Mutable(file));
    }
    let cap = match mutable {
        Some(format) => Cap::Mutable(
            grid.create_mutable(&content.bytes()?, format)
                .await
                .map_err(|e| failed(to, &e))?,
        ),
        None => content.upload(grid, to).await?,
    };
    link_file(grid, &parent, last, &cap, to).await?;
    Ok(cap)
}

/// Links the file `cap` as `name` in `dir`, replacing a file there but not a
/// directory (`what` names the path in messages).
pub async fn link_file(
    grid: &Grid,
    dir: &Cap,
    name: &str,
    cap: &Cap,
    what: &str,
) -> Result<(), Failure> {
    grid.link(dir, name, cap, Replace::OnlyFiles)
        .await
        .map_err(|e| match e {
            GridError::ChildExists { is_dir: true, .. } => {
                Failure::new(format!("{what}: is a directory; not replaced by a file"))
            }
            other => failed(what, &other),
        })
}

/// `tahoe ln FROM TO` and `tahoe mv FROM TO` (`TO/` keeps FROM's name).
pub async fn link_or_move(
    grid: &Grid,
    aliases: &Aliases,
    from: &str,
    to: &str,
    moving: bool,
) -> Result<(), Failure> {
    let source = paths::parse(aliases, from)?;
    let cap = paths::resolve(grid, &source).await?;
    let target_arg = if to.ends_with('/') {
        let name = source
            .names
            .last()
            .ok_or_else(|| Failure::new(format!("{from}: has no name to keep; give TO a name")))?;
        format!("{to}{name}")
    } else {
        to.to_string()
    };
    let target = paths::parse(aliases, &target_arg)?;
    let (parent, last) = parent_of(grid, &target, false).await?;
    grid.link(&parent, last, &cap, Replace::OnlyFiles)
        .await
        .map_err(|e| match e {
            GridError::ChildExists { is_dir: true, .. } => {
                Failure::new("You can't overwrite a directory with a file".to_string())
            }
            other => {
                let mut f = failed(&target_arg, &other);
                if moving {
                    f.message.push_str("; NOT removing the original");
                }
                f
            }
        })?;
    if moving {
        let (from_parent, from_last) = parent_of(grid, &source, false).await?;
        grid.unlink(&from_parent, from_last).await.map_err(|e| {
            Failure::new(format!(
                "error deleting original after move: {from}: {}",
                crate::chain(&e)
            ))
            .with_code(2)
        })?;
    }
    Ok(())
}

/// `tahoe unlink PATH` / `tahoe rm PATH` (`command` is which, for Tahoe's message).
pub async fn unlink(
    grid: &Grid,
    aliases: &Aliases,
    where_: &str,
    command: &str,
) -> Result<(), Failure> {
    let path = paths::parse(aliases, where_.trim_end_matches('/'))?;
    if path.names.is_empty() {
        return Err(Failure::said(format!(
            "\n'tahoe {command}' can only unlink directory entries, so a path must be given."
        )));
    }
    let (parent, last) = parent_of(grid, &path, false).await?;
    grid.unlink(&parent, last)
        .await
        .map(|_| ())
        .map_err(|e| failed(where_, &e))
}
