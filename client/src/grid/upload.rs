//! Immutable uploads, streamed: the file is encrypted and erasure-coded one segment
//! at a time, and each share is written to its server as its blocks come out, every
//! share at once (one writer task per share, a few writes in flight each). Nothing
//! but a few segments' blocks is held besides the caller's plaintext.

use std::collections::BTreeSet;

use bytes::Bytes;
use futures::channel::mpsc;
use futures::{SinkExt, StreamExt, TryStreamExt};
use swamp_proto::cap::Cap;
use swamp_proto::chk::{self, EncodedSegment, Encoder, LIT_MAX};
use swamp_proto::secrets::UploadSecret;
use swamp_proto::{ShareNumber, StorageIndex};
use tokio::task::JoinHandle;

use super::{Grid, GridError, Server};
use crate::{ClientError, StorageClient};

/// Bytes per write request (whole blocks, so a little more): each write is a round
/// trip through the server's blocking pool, so fewer, larger writes cost less.
const WRITE_BYTES: usize = 2 * 1024 * 1024;
/// Writes queued per share before encoding waits for the network.
const QUEUE: usize = 4;
/// Writes per share in flight at once (HTTP/2 streams on the server's connection).
const IN_FLIGHT: usize = 2;
/// Segments encoded at once, one per thread, when the file has that many.
const PARALLEL_SEGMENTS: usize = 2;

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
    /// Blocks not sent yet, and where they start.
    pending: Vec<u8>,
    pending_at: u64,
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
    let task = tokio::spawn(async move {
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
    });
    (tx, task)
}

/// Told how many more bytes of a local file were read (an upload reads its file
/// twice: once for the convergent key, once to encode), for progress displays.
pub type Progress<'a> = &'a (dyn Fn(u64) + Sync);

/// Where the plaintext comes from.
#[derive(Clone, Copy)]
enum Source<'a> {
    Memory(&'a [u8]),
    /// A file of the given length, read with positioned reads (from any thread).
    File(&'a std::fs::File, u64, Option<Progress<'a>>),
}

impl Source<'_> {
    fn len(&self) -> u64 {
        match self {
            Self::Memory(data) => data.len() as u64,
            Self::File(_, len, _) => *len,
        }
    }

    /// Calls `f` with the bytes of `range`, read into `buf` if they are not in memory.
    fn with<T>(
        &self,
        range: std::ops::Range<u64>,
        buf: &mut Vec<u8>,
        f: impl FnOnce(&[u8]) -> T,
    ) -> std::io::Result<T> {
        use std::os::unix::fs::FileExt;
        match self {
            Self::Memory(data) => Ok(f(&data[range.start as usize..range.end as usize])),
            Self::File(file, _, progress) => {
                buf.resize((range.end - range.start) as usize, 0);
                file.read_exact_at(buf, range.start)?;
                if let Some(progress) = progress {
                    progress(buf.len() as u64);
                }
                Ok(f(buf))
            }
        }
    }
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

/// Encodes segments `first..first + count` (at most [`PARALLEL_SEGMENTS`]) with
/// `coder`, each on its own thread, while this thread has `absorb` take in the
/// `previous` segments (the whole-ciphertext hash runs in order, alongside).
fn encode_segments(
    coder: &Encoder,
    absorb: &mut Encoder,
    previous: &[EncodedSegment],
    data: Source<'_>,
    first: u64,
    count: u64,
) -> Result<Vec<EncodedSegment>, FileError> {
    let one = |index: u64| -> Result<EncodedSegment, FileError> {
        let range = coder.segment_range(index);
        Ok(data.with(range, &mut Vec::new(), |plain| {
            coder.encode_segment(index, plain)
        })??)
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = (first..first + count)
            .map(|index| scope.spawn(move || one(index)))
            .collect();
        let absorbed = previous.iter().try_for_each(|s| absorb.absorb(s));
        let results: Vec<_> = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect();
        absorbed?;
        results.into_iter().collect()
    })
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
        self.upload_from(Source::Memory(data), key)
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
        let mut buf = vec![0u8; 1 << 20];
        let mut seen = 0u64;
        loop {
            let got = file.read(&mut buf)?;
            if got == 0 {
                break;
            }
            hasher.update(&buf[..got]);
            seen += got as u64;
            if let Some(progress) = progress {
                progress(got as u64);
            }
        }
        if seen != len {
            return Err(FileError::Io(std::io::Error::other(format!(
                "{} changed size while being read",
                path.display()
            ))));
        }
        self.upload_from(Source::File(&file, len, progress), hasher.key())
            .await
    }

    async fn upload_from(&self, data: Source<'_>, key: [u8; 16]) -> Result<Cap, FileError> {
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
                    pending: Vec::new(),
                    pending_at: 0,
                    task,
                }
            })
            .collect();

        // Encode and hand each block to its share's writer; a writer that stopped
        // (its server failed) gets nothing more, and the upload goes on as long as
        // the shares that do arrive still make the file happy (checked at the end).
        let header = encoder.header();
        // The encoder's immutable half, for the encoding threads.
        let coder = encoder.clone();
        let mut previous: Vec<EncodedSegment> = Vec::new();
        let mut next = 0;
        loop {
            let count = (encoder.num_segments() - next).min(PARALLEL_SEGMENTS as u64);
            let segments = encode_segments(&coder, &mut encoder, &previous, data, next, count)?;
            next += count;
            for segment in previous.drain(..) {
                let offset = encoder.block_offset(segment.index);
                let mut blocks: Vec<Option<Vec<u8>>> =
                    segment.blocks.into_iter().map(Some).collect();
                let last = segment.index + 1 == encoder.num_segments();
                for writer in &mut writers {
                    let block = blocks[writer.shnum].take().unwrap_or_default();
                    if segment.index == 0 {
                        writer.pending.extend_from_slice(&header);
                        writer.pending_at = 0;
                    } else if writer.pending.is_empty() {
                        writer.pending_at = offset;
                    }
                    writer.pending.extend_from_slice(&block);
                    if writer.pending.len() >= WRITE_BYTES || last {
                        let write = (
                            writer.pending_at,
                            Bytes::from(std::mem::replace(
                                &mut writer.pending,
                                Vec::with_capacity(WRITE_BYTES + block.len()),
                            )),
                        );
                        // A stopped writer's error comes out of `finish`.
                        let _ = writer.queue.send(write).await;
                    }
                }
            }
            if segments.is_empty() {
                break;
            }
            previous = segments;
        }
        let tail_offset = encoder.tail_offset();
        let mut finished = encoder.finish()?;
        for writer in &mut writers {
            let tail = Bytes::from(std::mem::take(&mut finished.tails[writer.shnum]));
            let _ = writer.queue.send((tail_offset, tail)).await;
        }
        let cap = finished.cap;
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
        Ok(Cap::Chk(cap))
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
