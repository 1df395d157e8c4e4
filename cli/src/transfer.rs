//! Files between the local disk (or stdout) and the grid, streamed: what `tahoe
//! put`, `get`, `cp` and `backup` move files with.

use std::io::Write;
use std::path::PathBuf;

use swamp_client::grid::{FileError, Grid};
use swamp_formats::cap::Cap;

use crate::aliases::Aliases;
use crate::fail::Failure;
use crate::paths;
use crate::progress::Bar;

/// A writer that tells a progress bar what went through it.
struct Counted<'a, W> {
    inner: W,
    bar: &'a Bar,
}

impl<W: Write> Write for Counted<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bar.add(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Uploads a local file as an immutable file, streaming it.
pub async fn put_file(grid: &Grid, path: &std::path::Path) -> Result<Cap, Failure> {
    // The file is read twice (convergent key, then encoding).
    let len = std::fs::metadata(path).map_or(0, |m| m.len());
    let bar = Bar::with_passes("put", len, 2);
    let progress = |n: u64| bar.add(n);
    let result = grid.upload_file_with_progress(path, Some(&progress)).await;
    bar.finish();
    result.map_err(|e| match e {
        FileError::Io(e) => Failure::new(format!("cannot read {}: {e}", path.display())),
        e => Failure::new(format!("upload failed: {}", crate::chain(&e))),
    })
}

/// `tahoe get FROM [TO]`.
pub async fn get(
    grid: &Grid,
    aliases: &Aliases,
    from: &str,
    to: Option<&PathBuf>,
) -> Result<(), Failure> {
    let path = paths::parse(aliases, from)?;
    let cap = paths::resolve(grid, &path).await?;
    match to.filter(|p| p.as_os_str() != "-") {
        Some(path) => fetch_to_path(grid, &cap, path, from).await,
        None => {
            let data = read_file(grid, &cap, from).await?;
            let mut out = std::io::stdout().lock();
            out.write_all(&data)
                .and_then(|()| out.flush())
                .map_err(|e| Failure::new(format!("cannot write stdout: {e}")))
        }
    }
}

/// Writes the file `cap` (named `what` in messages) to the local file `path`; a CHK
/// file is streamed into it, a segment at a time, and no half-written file is left
/// behind when that fails.
pub async fn fetch_to_path(
    grid: &Grid,
    cap: &Cap,
    path: &std::path::Path,
    what: &str,
) -> Result<(), Failure> {
    let Cap::Chk(chk) = cap else {
        let data = read_file(grid, cap, what).await?;
        return std::fs::write(path, &data)
            .map_err(|e| Failure::new(format!("cannot write {}: {e}", path.display())));
    };
    let file = crate::direct::OutFile::create(path, chk.size)
        .map_err(|e| Failure::new(format!("cannot write {}: {e}", path.display())))?;
    let bar = Bar::new("get", chk.size);
    let mut counted = Counted {
        inner: file,
        bar: &bar,
    };
    let result = grid
        .download_to(chk, &mut counted)
        .await
        .map_err(|e| match e {
            FileError::Io(e) => Failure::new(format!("cannot write {}: {e}", path.display())),
            e => Failure::new(format!("{what}: {}", crate::chain(&e))),
        });
    bar.finish();
    if result.is_err() {
        let _ = std::fs::remove_file(path);
    }
    result
}

/// The whole contents of the file `cap` (named `what` in messages), in memory: for
/// LIT and mutable files, which are read whole anyway, and for stdout.
pub async fn read_file(grid: &Grid, cap: &Cap, what: &str) -> Result<Vec<u8>, Failure> {
    let fail = |e: &dyn std::error::Error| Failure::new(format!("{what}: {}", crate::chain(e)));
    match cap {
        Cap::Lit(data) => Ok(data.clone()),
        Cap::Chk(chk) => grid.download(chk).await.map_err(|e| fail(&e)),
        Cap::Mutable(m) => Ok(grid.read_mutable(m).await.map_err(|e| fail(&e))?.data),
        Cap::Dir(_) => Err(Failure::new(format!(
            "{what}: is a directory; `get` reads files"
        ))),
        _ => Err(Failure::new(format!(
            "{what}: not a file cap this client can read"
        ))),
    }
}
