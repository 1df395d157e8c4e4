//! Request bodies: small ones read into memory under a bound, file uploads spooled
//! to a temporary file under the node directory.
//!
//! An immutable upload cannot start before its whole plaintext is known (the
//! convergent key hashes all of it), so a `PUT` body goes to disk first and is then
//! read a segment at a time: memory stays bounded whatever the size, as Tahoe's own
//! node spools to its `tmp/` directory.

use std::path::Path;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;

use crate::error::WebError;

/// Reads a whole body of at most `limit` bytes.
pub(crate) async fn read_bounded(body: Body, limit: usize) -> Result<Bytes, WebError> {
    let mut stream = body.into_data_stream();
    let mut out = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| WebError::bad(format!("reading the request body: {e}")))?;
        if out.len() + chunk.len() > limit {
            return Err(WebError::TooLarge {
                limit: limit as u64,
            });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

/// Writes a body of at most `limit` bytes to a new temporary file in `dir` (made if
/// missing), removed when the returned handle is dropped.
pub(crate) async fn spool(
    body: Body,
    dir: &Path,
    limit: u64,
) -> Result<tempfile::NamedTempFile, WebError> {
    let stream = body
        .into_data_stream()
        .map(|chunk| chunk.map_err(|e| WebError::bad(format!("reading the request body: {e}"))));
    spool_stream(stream, dir, limit).await
}

/// [`spool`] for any stream of pieces (an HTML form's file part).
pub(crate) async fn spool_stream<S>(
    mut stream: S,
    dir: &Path,
    limit: u64,
) -> Result<tempfile::NamedTempFile, WebError>
where
    S: Stream<Item = Result<Bytes, WebError>> + Unpin,
{
    let local =
        |e: std::io::Error| WebError::Internal(format!("spool file in {}: {e}", dir.display()));
    tokio::fs::create_dir_all(dir).await.map_err(local)?;
    let dir = dir.to_path_buf();
    let temp = tokio::task::spawn_blocking(move || tempfile::NamedTempFile::new_in(dir))
        .await
        .map_err(|e| WebError::Internal(format!("spool task: {e}")))?
        .map_err(local)?;
    let mut file = tokio::fs::File::from_std(temp.reopen().map_err(local)?);
    let mut written: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        written += chunk.len() as u64;
        if written > limit {
            return Err(WebError::TooLarge { limit });
        }
        file.write_all(&chunk).await.map_err(local)?;
    }
    file.flush().await.map_err(local)?;
    Ok(temp)
}
