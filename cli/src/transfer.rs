//! `tahoe put` and `tahoe get`: files between the local disk (or stdin/stdout) and
//! the grid.

use std::io::{Read, Write};
use std::path::PathBuf;

use swamp_client::grid::{FileError, Grid};
use swamp_formats::cap::Cap;

use crate::fail::Failure;
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
use crate::paths;

/// Reads a local file, or stdin for `None` or `-`.
pub fn read_local(from: Option<&PathBuf>) -> Result<Vec<u8>, Failure> {
    match from {
        Some(path) if path.as_os_str() != "-" => std::fs::read(path)
            .map_err(|e| Failure::new(format!("cannot read {}: {e}", path.display()))),
        _ => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .map_err(|e| Failure::new(format!("cannot read stdin: {e}")))?;
            Ok(buf)
        }
    }
}

/// Uploads `data` as an immutable file and returns its cap.
pub async fn put_immutable(grid: &Grid, data: &[u8]) -> Result<Cap, Failure> {
    grid.upload(data)
        .await
        .map_err(|e| Failure::new(format!("upload failed: {}", crate::chain(&e))))
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
    aliases: &std::collections::BTreeMap<String, String>,
    from: &str,
    to: Option<&PathBuf>,
) -> Result<(), Failure> {
    let path = paths::parse(aliases, from)?;
    let cap = paths::resolve(grid, &path).await?;
    let fail = |e: &dyn std::error::Error| Failure::new(format!("{from}: {}", crate::chain(e)));
    if let (Cap::Chk(chk), Some(path)) = (&cap, to.filter(|p| p.as_os_str() != "-")) {
        // Streamed straight into the file, a segment at a time.
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
                e => fail(&e),
            });
        bar.finish();
        if result.is_err() {
            // No half-written file is left behind as if it were the download.
            let _ = std::fs::remove_file(path);
        }
        return result;
    }
    let data = match &cap {
        Cap::Lit(data) => data.clone(),
        Cap::Chk(chk) => grid.download(chk).await.map_err(|e| fail(&e))?,
        Cap::Mutable(m) => grid.read_mutable(m).await.map_err(|e| fail(&e))?.data,
        Cap::Dir(_) => {
            return Err(Failure::new(format!(
                "{from}: is a directory; `get` reads files"
            )));
        }
        _ => {
            return Err(Failure::new(format!(
                "{from}: not a file cap this client can read"
            )));
        }
    };
    match to {
        Some(path) if path.as_os_str() != "-" => std::fs::write(path, &data)
            .map_err(|e| Failure::new(format!("cannot write {}: {e}", path.display()))),
        _ => {
            let mut out = std::io::stdout().lock();
            out.write_all(&data)
                .and_then(|()| out.flush())
                .map_err(|e| Failure::new(format!("cannot write stdout: {e}")))
        }
    }
}
