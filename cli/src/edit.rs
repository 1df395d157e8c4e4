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

type Aliases = std::collections::BTreeMap<String, String>;

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

/// `tahoe put FROM TO` where TO is a path or a mutable file cap: links (or, for an
/// existing mutable file, overwrites) and returns the file's cap.
pub async fn put_to(
    grid: &Grid,
    aliases: &Aliases,
    to: &str,
    data: &[u8],
    mutable: Option<MutableFormat>,
) -> Result<Cap, Failure> {
    let path = paths::parse(aliases, to)?;
    if path.names.is_empty() {
        return match &path.root {
            Cap::Mutable(file) => grid
                .overwrite_mutable(file, data, None)
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
        grid.overwrite_mutable(&file, data, None)
            .await
            .map_err(|e| failed(to, &e))?;
        return Ok(Cap::Mutable(file));
    }
    let cap = match mutable {
        Some(format) => Cap::Mutable(
            grid.create_mutable(data, format)
                .await
                .map_err(|e| failed(to, &e))?,
        ),
        None => grid.upload(data).await.map_err(|e| failed(to, &e))?,
    };
    grid.link(&parent, last, &cap, Replace::OnlyFiles)
        .await
        .map_err(|e| match e {
            GridError::ChildExists { is_dir: true, .. } => {
                Failure::new(format!("{to}: is a directory; not replaced by a file"))
            }
            other => failed(to, &other),
        })?;
    Ok(cap)
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

/// `tahoe unlink PATH` / `tahoe rm PATH`.
pub async fn unlink(grid: &Grid, aliases: &Aliases, where_: &str) -> Result<(), Failure> {
    let path = paths::parse(aliases, where_.trim_end_matches('/'))?;
    let (parent, last) = parent_of(grid, &path, false).await?;
    grid.unlink(&parent, last)
        .await
        .map(|_| ())
        .map_err(|e| failed(where_, &e))
}
