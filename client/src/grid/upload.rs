//! Immutable uploads, streamed: the file is encrypted and erasure-coded a batch of
//! segments at a time, and each share is written to its server as its blocks come
//! out, every share at once (one writer task per share, a few writes in flight each).
//!
//! Each batch is built where it is sent from: one pooled buffer per share ([`Pool`]),
//! the plaintext read straight into the primary shares' buffers, encrypted there,
//! and the parity computed into the other buffers, so no block is copied in user
//! space. Two threads encode the two halves of a batch while the calling thread
//! hashes the ciphertext of the previous one (the whole-file hash runs in order), and
//! the tokio workers encrypt and send what is queued.

use std::collections::BTreeSet;
use std::ops::Range;

use bytes::Bytes;
use futures::channel::mpsc;
use futures::{SinkExt, StreamExt, TryStreamExt};
use swamp_formats::cap::Cap;
use swamp_formats::chk::{self, Encoder, LIT_MAX};
use swamp_proto::secrets::UploadSecret;
use swamp_proto::{ShareNumber, StorageIndex};
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::pool::Pool;
use super::source::{Progress, Source, hash_file};
use super::{Grid, GridError, Server};
use crate::{ClientError, StorageClient};

/// Bytes per write request (whole blocks, at least one): each write is a round trip
/// through the server's blocking pool, so fewer, larger writes cost less.
const WRITE_BYTES: usize = 2 * 1024 * 1024;
/// Writes queued per share before encoding waits for the network.
const QUEUE: usize = 2;
/// Writes per share in flight at once (HTTP/1.1 connections to its server).
const IN_FLIGHT: usize = 2;
/// Write buffers an upload of 2-of-3 has in use at most: per share, the queued and
/// in-flight writes, the batch being encoded and the one being hashed.
const WRITE_BUFFERS: usize = 3 * (QUEUE + IN_FLIGHT + 2);

/// Room for one batch's write to a share, for a file of `size` bytes: whole blocks up
/// to [`WRITE_BYTES`] (at least one), plus the header or the tail that the first and
/// last batches carry (hash trees of 32-byte nodes, the share hash chain, the UEB).
fn batch_capacity(params: &chk::Params, size: u64) -> usize {
    let segment = params.segment_size(size);
    let block = (segment / u64::from(params.needed)) as usize;
    let blocks = (WRITE_BYTES / block.max(1)).max(1) * block;
    let leaves = size.div_ceil(segment).max(1) as usize;
    blocks + 3 * 64 * leaves.next_power_of_two() + 4096
}

fn server_name(server: &Server) -> String {
    format!("{}:{}", server.nurl.host, server.nurl.port)
}

/// A share being written: its queue, and the task that drains it into PATCHes.
struct Writer {
    shnum: usize,
    /// Index of its server in permuted order.
    server: usize,
    name: String,
    queue: Queue,
    task: WriteTask,
}

/// Writes for one share: where, and what.
type Queue = mpsc::Sender<(u64, Bytes)>;
/// The task that makes a share's writes.
type WriteTask = JoinHandle<Result<(), ClientError>>;

fn spawn_writer(
    client: StorageClient,
    si: StorageIndex,
    shnum: ShareNumber,
    secret: UploadSecret,
) -> (Queue, WriteTask) {
    let (tx, rx) = mpsc::channel::<(u64, Bytes)>(QUEUE);
    let task = tokio::spawn(
        async move {
            rx.map(|(offset, bytes)| {
                let (client, secret) = (client.clone(), secret.clone());
                async move {
                    client
                        .immutable()
                        .write_share_chunk(&si, shnum, &secret, offset, bytes)
                        .await
                }
            })
            .buffered(IN_FLIGHT)
            .try_for_each(|_| futures::future::ready(Ok(())))
            .await
        }
        // The writes' spans stay in the caller's trace (`trace.rs`).
        .in_current_span(),
    );
    (tx, task)
}

/// A transfer between the grid and a local file failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The grid part failed.
    #[error(transparent)]
    Grid(#[from] GridError),
    /// Reading or writing the local file failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl From<swamp_proto::DecodeError> for FileError {
    fn from(e: swamp_proto::DecodeError) -> Self {
        Self::Grid(GridError::Format(e))
    }
}

/// Consecutive segments, encoded into one write per share.
struct Batch {
    segments: Range<u64>,
    /// Where the batch starts in every share.
    offset: u64,
    /// Bytes before its first block: the share header, in the first batch.
    prefix: usize,
    /// Share `i`'s bytes from `offset` on: the prefix, then the batch's blocks.
    shares: Vec<Vec<u8>>,
    /// Each segment's block hashes, once encoded.
    block_hashes: Vec<Vec<[u8; 32]>>,
}

impl Batch {
    fn new(encoder: &Encoder, pool: &Pool, segments: Range<u64>) -> Self {
        let first = segments.start == 0;
        let header = if first { encoder.header() } else { Vec::new() };
        let blocks: usize = segments.clone().map(|s| encoder.block_len(s)).sum();
        let last = segments.end == encoder.num_segments();
        // The last batch carries the shares' tails too.
        let spare = if last {
            (encoder.share_size() - encoder.tail_offset()) as usize
        } else {
            0
        };
        let shares = (0..usize::from(encoder.params().total))
            .map(|_| {
                let mut buf = pool.take(header.len() + blocks, spare);
                buf[..header.len()].copy_from_slice(&header);
                buf
            })
            .collect();
        Self {
            offset: if first {
                0
            } else {
                encoder.block_offset(segments.start)
            },
            prefix: header.len(),
            segments,
            shares,
            block_hashes: Vec::new(),
        }
    }

    /// Reads and encodes every segment, the two halves of the batch on two threads.
    fn encode(&mut self, coder: &Encoder, data: Source<'_>) -> Result<(), FileError> {
        let mid = self.segments.start + (self.segments.end - self.segments.start).div_ceil(2);
        let split = self.prefix
            + (self.segments.start..mid)
                .map(|s| coder.block_len(s))
                .sum::<usize>();
        let (mut front, mut back): (Vec<&mut [u8]>, Vec<&mut [u8]>) = self
            .shares
            .iter_mut()
            .map(|share| share[self.prefix..].split_at_mut(split - self.prefix))
            .unzip();
        let (first, second) = (self.segments.start..mid, mid..self.segments.end);
        let hashes = std::thread::scope(|scope| {
            let other = scope.spawn(|| encode_segments(coder, data, second, &mut back));
            let mine = encode_segments(coder, data, first, &mut front);
            let other = other
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            mine.and_then(|mut mine| {
                mine.extend(other?);
                Ok(mine)
            })
        })?;
        self.block_hashes = hashes;
        Ok(())
    }

    /// Has `encoder` take in every segment's hashes and ciphertext, in order.
    fn absorb(&mut self, encoder: &mut Encoder) -> Result<(), FileError> {
        let k = usize::from(encoder.params().needed);
        let mut at = self.prefix;
        for (segment, hashes) in self.segments.clone().zip(self.block_hashes.drain(..)) {
            let len = encoder.block_len(segment);
            let primary: Vec<&[u8]> = self.shares[..k]
                .iter()
                .map(|share| &share[at..at + len])
                .collect();
            encoder.absorb_blocks(segment, hashes, &primary)?;
            at += len;
        }
        Ok(())
    }
}

/// Reads and encodes `segments` into `shares` (each share's blocks of those segments,
/// back to back); returns each segment's block hashes.
fn encode_segments(
    coder: &Encoder,
    data: Source<'_>,
    segments: Range<u64>,
    shares: &mut [&mut [u8]],
) -> Result<Vec<Vec<[u8; 32]>>, FileError> {
    let mut at = 0;
    segments
        .map(|segment| {
            let len = coder.block_len(segment);
            let mut blocks: Vec<&mut [u8]> =
                shares.iter_mut().map(|s| &mut s[at..at + len]).collect();
            at += len;
            let start = coder.segment_range(segment).start;
            for (p, (block, file)) in blocks.iter_mut().zip(coder.piece_lens(segment)).enumerate() {
                data.read_at(start + (p * len) as u64, &mut block[..file])?;
            }
            Ok(coder.encode_in_place(segment, &mut blocks)?)
        })
        .collect()
}

impl Grid {
    /// Uploads an immutable file (convergently) and returns its cap; files of at most
    /// 55 bytes become `URI:LIT` caps and touch no server.
    ///
    /// Share `i` goes to the `i`-th server in permuted order (wrapping), as before;
    /// the shares are written concurrently while the file is still being encoded.
    ///
    /// # Errors
    /// [`GridError`].
    pub async fn upload(&self, data: &[u8]) -> Result<Cap, GridError> {
        if data.len() <= LIT_MAX {
            return Ok(Cap::Lit(data.to_vec()));
        }
        let key = chk::convergent_key(data, &self.params, &self.convergence_secret);
        self.upload_from(Source::Memory(data), key, Pool::default())
            .await
            .map_err(|e| match e {
                FileError::Grid(e) => e,
                FileError::Io(e) => unreachable!("memory is not read with I/O: {e}"),
            })
    }

    /// [`Grid::upload`] of a local file, read a segment at a time (twice: once for
    /// the convergent key, once to encode), never whole.
    ///
    /// # Errors
    /// [`FileError`].
    pub async fn upload_file(&self, path: &std::path::Path) -> Result<Cap, FileError> {
        self.upload_file_with_progress(path, None).await
    }

    /// [`Grid::upload_file`], telling `progress` of every read of the file (which
    /// adds up to twice its length).
    ///
    /// # Errors
    /// [`FileError`].
    pub async fn upload_file_with_progress(
        &self,
        path: &std::path::Path,
        progress: Option<Progress<'_>>,
    ) -> Result<Cap, FileError> {
        use std::io::Read;
        let mut file = std::fs::File::open(path)?;
        let len = file.metadata()?.len();
        if len <= LIT_MAX as u64 {
            let mut data = Vec::new();
            file.read_to_end(&mut data)?;
            return Ok(self.upload(&data).await?);
        }
        let mut hasher = chk::convergent_key_hasher(len, &self.params, &self.convergence_secret);
        // The key pass keeps one core busy; the other fills the write buffers meanwhile,
        // so that encoding, which keeps both busy, finds them already in memory.
        let pool = Pool::default();
        std::thread::scope(|scope| {
            scope.spawn(|| pool.fill(WRITE_BUFFERS, batch_capacity(&self.params, len)));
            hash_file(&mut file, len, &mut hasher, progress)
        })
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        self.upload_from(Source::File(&file, len, progress), hasher.key(), pool)
            .await
    }

    async fn upload_from(
        &self,
        data: Source<'_>,
        key: [u8; 16],
        pool: Pool,
    ) -> Result<Cap, FileError> {
        let mut encoder = Encoder::new(data.len(), key, &self.params)?;
        let si = encoder.storage_index();
        let servers = self.permuted(&si);
        let total = usize::from(self.params.total);
        let size = encoder.share_size();

        // Reserve space, spreading the shares over enough servers (or give up now).
        let placed = self.place(&si, &servers, total, size).await?;
        let mut holders: BTreeSet<usize> = placed
            .iter()
            .filter(|p| p.already)
            .map(|p| p.server)
            .collect();
        let mut writers: Vec<Writer> = placed
            .iter()
            .filter(|p| !p.already)
            .map(|p| {
                let server = servers[p.server];
                let n = ShareNumber::new(p.shnum as u8);
                let (queue, task) = spawn_writer(server.client.clone(), si, n, p.secret.clone());
                Writer {
                    shnum: p.shnum,
                    server: p.server,
                    name: server_name(server),
                    queue,
                    task,
                }
            })
            .collect();

        // Encode a batch while the previous one is hashed in order and handed to its
        // share's writer; a writer that stopped (its server failed) gets nothing more,
        // and the upload goes on as long as the shares that do arrive still make the
        // file happy (checked at the end).
        let per_batch = (WRITE_BYTES / encoder.block_len(0)).max(1) as u64;
        let num_segments = encoder.num_segments();
        // The encoder's immutable half, for the encoding threads.
        let coder = encoder.clone();
        let mut previous: Option<Batch> = None;
        let mut next = 0;
        let mut last = loop {
            let mut current = (next < num_segments).then(|| {
                let end = (next + per_batch).min(num_segments);
                Batch::new(&coder, &pool, std::mem::replace(&mut next, end)..end)
            });
            let coder = &coder;
            std::thread::scope(|scope| -> Result<(), FileError> {
                let encoding = current
                    .as_mut()
                    .map(|batch| scope.spawn(move || batch.encode(coder, data)));
                let absorbed = previous.as_mut().map(|b| b.absorb(&mut encoder));
                if let Some(encoding) = encoding {
                    encoding
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
                }
                absorbed.transpose().map(drop)
            })?;
            match std::mem::replace(&mut previous, current) {
                None => {}
                // The last batch carries the shares' tails as well.
                Some(batch) if previous.is_none() => break batch,
                Some(batch) => send(&mut writers, &pool, batch).await,
            }
        };
        let finished = encoder.finish()?;
        for (share, tail) in last.shares.iter_mut().zip(&finished.tails) {
            share.extend_from_slice(tail);
        }
        send(&mut writers, &pool, last).await;
        for writer in &mut writers {
            writer.queue.close_channel();
        }
        let failed = finish(writers, &mut holders).await;
        if holders.len() < self.happy.min(self.servers.len()) {
            return Err(match failed {
                Err(e) => e,
                Ok(()) => GridError::NotHappy {
                    placed: holders.len(),
                    happy: self.happy,
                },
            }
            .into());
        }
        Ok(Cap::Chk(finished.cap))
    }
}

/// Hands each share's bytes of `batch` to its writer (and the others back to `pool`).
async fn send(writers: &mut [Writer], pool: &Pool, mut batch: Batch) {
    for writer in writers.iter_mut() {
        let bytes = pool.bytes(std::mem::take(&mut batch.shares[writer.shnum]));
        // A stopped writer's error comes out of `finish`.
        let _ = writer.queue.send((batch.offset, bytes)).await;
    }
    for share in batch.shares {
        if share.capacity() > 0 {
            pool.give(share);
        }
    }
}

/// Waits for every writer; the first failure is the error.
async fn finish(writers: Vec<Writer>, holders: &mut BTreeSet<usize>) -> Result<(), GridError> {
    let mut first_error = None;
    for writer in writers {
        match writer.task.await {
            Ok(Ok(())) => {
                holders.insert(writer.server);
            }
            Ok(Err(source)) => {
                first_error.get_or_insert(GridError::Server {
                    server: writer.name,
                    source,
                });
            }
            Err(e) => match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(e) => {
                    first_error.get_or_insert(GridError::Server {
                        server: writer.name,
                        source: ClientError::Protocol(format!("upload task ended: {e}")),
                    });
                }
            },
        }
    }
    first_error.map_or(Ok(()), Err)
}
