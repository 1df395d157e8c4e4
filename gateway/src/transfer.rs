//! Uploads and downloads of immutable files, each on a thread of its own.
//!
//! The client library's transfers hash, encode and decode on the calling thread
//! (and a scoped helper), and hand plaintext to a synchronous sink: run on the
//! runtime's workers they would stall every other request for the length of a file.
//! So each transfer gets a thread that drives it with the runtime's handle, and a
//! download's sink passes segments to the response body through a small bounded
//! channel: the thread waits while the client is slow, so memory stays a few
//! segments per download whatever the file's size. A semaphore bounds the threads.

use std::io::Write;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use swamp_formats::cap::{Cap, ChkCap};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use crate::Gateway;
use crate::error::WebError;
use crate::statistics::Counter;

/// Reads (a few MiB of plaintext each) queued between a download and its client.
const QUEUED_READS: usize = 2;
/// How long a download waits for its client to take the next part.
const STALL_TIMEOUT: Duration = Duration::from_secs(120);
/// How often a waiting download looks again.
const SEND_POLL: Duration = Duration::from_millis(5);

/// One of the gateway's transfer places, waited for.
async fn transfer_permit(gateway: &Gateway) -> Result<tokio::sync::OwnedSemaphorePermit, WebError> {
    gateway
        .transfers
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| WebError::Internal("transfer limit closed".into()))
}

/// Starts `job` on a new thread named `name`, with the runtime's handle, holding
/// one of the gateway's transfer permits until it ends; returns once it started.
pub(crate) async fn start(
    gateway: &Arc<Gateway>,
    name: &str,
    job: impl FnOnce(&tokio::runtime::Handle) + Send + 'static,
) -> Result<(), WebError> {
    let permit = transfer_permit(gateway).await?;
    let handle = tokio::runtime::Handle::current();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let _permit = permit;
            job(&handle);
        })
        .map_err(|e| WebError::Internal(format!("cannot start a transfer thread: {e}")))?;
    Ok(())
}

/// Runs `job` as [`start`] does, and waits for its answer.
async fn on_own_thread<T: Send + 'static>(
    gateway: &Arc<Gateway>,
    job: impl FnOnce(&tokio::runtime::Handle) -> T + Send + 'static,
) -> Result<T, WebError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    start(gateway, "gateway-transfer", move |handle| {
        // The receiver may be gone (the client hung up): nothing to tell.
        let _ = tx.send(job(handle));
    })
    .await?;
    rx.await
        .map_err(|_| WebError::Internal("a transfer thread ended without an answer".into()))
}

/// Uploads the spooled file at `path` as an immutable file; returns its cap.
pub(crate) async fn upload_file(gateway: &Arc<Gateway>, path: PathBuf) -> Result<Cap, WebError> {
    let grid = gateway.grid.clone();
    let cap = on_own_thread(gateway, move |handle| {
        handle.block_on(grid.upload_file(&path))
    })
    .await??;
    if let Some(size) = crate::listing::cap_size(&cap) {
        gateway
            .statistics
            .count_file(Counter::FilesUploaded, Counter::BytesUploaded, size);
    }
    crate::status::uploaded(&cap);
    Ok(cap)
}

/// Uploads `data` (small: directory contents) as an immutable file.
pub(crate) async fn upload_bytes(gateway: &Arc<Gateway>, data: Vec<u8>) -> Result<Cap, WebError> {
    let grid = gateway.grid.clone();
    on_own_thread(gateway, move |handle| handle.block_on(grid.upload(&data)))
        .await?
        .map_err(WebError::from)
}

/// What a download's thread sends: plaintext, or why it stopped.
pub(crate) type Chunk = Result<Bytes, WebError>;

/// Starts downloading `range` of `cap`; the receiver yields its plaintext in order
/// and ends when the range is done (or with an error when the download failed).
pub(crate) async fn download(
    gateway: &Arc<Gateway>,
    cap: ChkCap,
    range: Range<u64>,
) -> Result<mpsc::Receiver<Chunk>, WebError> {
    gateway.statistics.count_file(
        Counter::FilesDownloaded,
        Counter::BytesDownloaded,
        range.end.saturating_sub(range.start),
    );
    let (tx, rx) = mpsc::channel(QUEUED_READS);
    let grid = gateway.grid.clone();
    start(gateway, "gateway-download", move |handle| {
        let mut sink = RangeSink { tx, at: 0, range };
        let result = handle.block_on(grid.download_to(&cap, &mut sink));
        if sink.at >= sink.range.end {
            crate::status::downloaded(&cap, sink.range.end - sink.range.start);
        }
        if let Err(e) = result
            && !sink.done()
        {
            // The client may be gone; then nobody is left to tell.
            let _ = sink.send(Err(WebError::from(e)));
        }
    })
    .await?;
    Ok(rx)
}

/// Passes on the part of the plaintext inside `range`; stops the download (with an
/// error the thread ignores) once the range is sent or the client is gone.
struct RangeSink {
    tx: mpsc::Sender<Chunk>,
    /// Plaintext offset of the next byte written.
    at: u64,
    range: Range<u64>,
}

impl RangeSink {
    fn done(&self) -> bool {
        self.at >= self.range.end || self.tx.is_closed()
    }

    /// Queues `item` for the client, waiting while the queue is full: that wait is
    /// what bounds the memory. The sink runs on plain threads, inside and outside
    /// the runtime's context, so it polls rather than blocks on the channel; a
    /// client that takes nothing for [`STALL_TIMEOUT`] loses its download (and the
    /// transfer permit it holds).
    fn send(&self, mut item: Chunk) -> std::io::Result<()> {
        let deadline = Instant::now() + STALL_TIMEOUT;
        loop {
            match self.tx.try_send(item) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Closed(_)) => {
                    return Err(std::io::Error::other("the client went away"));
                }
                Err(TrySendError::Full(back)) => {
                    if Instant::now() >= deadline {
                        return Err(std::io::Error::other("the client stopped reading"));
                    }
                    item = back;
                    std::thread::sleep(SEND_POLL);
                }
            }
        }
    }
}

impl Write for RangeSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let start = self.at;
        let end = start + buf.len() as u64;
        self.at = end;
        let from = self.range.start.max(start);
        let to = self.range.end.min(end);
        if from < to {
            let part = Bytes::copy_from_slice(&buf[(from - start) as usize..(to - start) as usize]);
            self.send(Ok(part))?;
        }
        if self.done() {
            return Err(std::io::Error::other("range sent"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Checks `cap` (with `repair`, checks and repairs it) on a transfer thread: a verify
/// reads and hashes every share, a repair downloads and uploads; returns Tahoe's JSON.
pub(crate) async fn check(
    gateway: &Arc<Gateway>,
    cap: Cap,
    options: swamp_client::check::CheckOptions,
    repair: bool,
) -> Result<serde_json::Value, WebError> {
    let grid = gateway.grid.clone();
    on_own_thread(gateway, move |handle| {
        handle.block_on(async {
            if repair {
                grid.check_and_repair(&cap, options)
                    .await
                    .map(|r| r.to_json())
            } else {
                grid.check(&cap, options).await.map(|r| r.to_json())
            }
        })
    })
    .await?
    .map_err(WebError::from)
}
