//! Immutable downloads, streamed: k shares are picked (primary shares first, so
//! decoding is a copy), their metadata is fetched and checked against the cap, and
//! then their blocks are read a few MiB at a time from all k servers at once, several
//! reads ahead, each block checked and each segment decoded, checked and decrypted as
//! it arrives. A share that fails (its server, or a hash) is reported and replaced by
//! the next candidate, and the download goes on from the segment where it failed.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use futures::StreamExt;
use swamp_formats::cap::ChkCap;
use swamp_formats::chk::{self, Decoder, SegmentError, ShareMeta};
use swamp_proto::ShareNumber;
use tracing::Instrument;

use super::upload::FileError;
use super::{Grid, GridError, Server};
use crate::ClientError;

/// Bytes read per share per request (rounded down to whole blocks, at least one).
pub(crate) const READ_BYTES: u64 = 4 * 1024 * 1024;
/// Reads (of k shares each) in flight at once.
const AHEAD: usize = 3;

/// A share being read.
#[derive(Clone)]
struct Source<'a> {
    shnum: usize,
    server: &'a Server,
    meta: ShareMeta,
}

/// Why a share was dropped.
pub(crate) enum Failure {
    /// Its server failed (not the share's fault: no advisory).
    Server,
    /// It failed verification (reported to its server).
    Corrupt,
}

/// The bodies of one read: each chosen share's blocks of consecutive segments.
struct Read<'a> {
    decoder: &'a Decoder,
    /// (share number, metadata) of each body's share.
    shares: &'a [(usize, &'a ShareMeta)],
    bodies: &'a [Bytes],
    /// Where the bodies start in the shares' data.
    start: u64,
}

impl Read<'_> {
    /// Checks and decrypts `segments` into `out` (their plaintext, back to back), the
    /// two halves on two threads. On a failure, the segment that failed and why;
    /// every segment before it is in `out`.
    fn decode(&self, segments: Range<u64>, out: &mut [u8]) -> Result<(), (u64, SegmentError)> {
        let mid = segments.start + (segments.end - segments.start).div_ceil(2);
        let base = self.decoder.segment_range(segments.start).start;
        let split = (self.decoder.segment_range(mid).start - base) as usize;
        let (front, back) = out.split_at_mut(split.min(out.len()));
        std::thread::scope(|scope| {
            let other = scope.spawn(|| self.decode_run(mid..segments.end, back));
            let mine = self.decode_run(segments.start..mid, front);
            let other = other
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            mine.and(other)
        })
    }

    fn decode_run(&self, segments: Range<u64>, out: &mut [u8]) -> Result<(), (u64, SegmentError)> {
        let mut at = 0;
        for s in segments {
            let range = self.decoder.block_range(s);
            let (from, to) = (
                (range.start - self.start) as usize,
                (range.end - self.start) as usize,
            );
            let mut blocks = Vec::with_capacity(self.bodies.len());
            for (i, (body, (shnum, meta))) in self.bodies.iter().zip(self.shares).enumerate() {
                let block = body.get(from..to).ok_or((s, SegmentError::BadBlock(i)))?;
                blocks.push((*shnum, *meta, block));
            }
            let len = self.decoder.segment_range(s).end - self.decoder.segment_range(s).start;
            let out = &mut out[at..at + len as usize];
            at += len as usize;
            self.decoder
                .decode_segment_into(s, &blocks, out)
                .map_err(|why| (s, why))?;
        }
        Ok(())
    }
}

impl Grid {
    /// Downloads and verifies an immutable file. Shares that fail verification are
    /// reported to their server with a corruption advisory, as Tahoe does.
    ///
    /// # Errors
    /// [`GridError::NotEnoughShares`] if fewer than k good shares can be found.
    pub async fn download(&self, cap: &ChkCap) -> Result<Vec<u8>, GridError> {
        // Room for the whole file is made when the first plaintext comes, after a
        // share's UEB has confirmed the cap's size (so it is the uploader's, not just
        // what a cap string says), and only if the system grants it.
        let mut plaintext = Vec::new();
        let mut sink = |segment: &[u8]| {
            if plaintext.is_empty() {
                let size = usize::try_from(cap.size).unwrap_or(usize::MAX);
                // A failed reservation leaves the Vec to grow as segments come.
                let _ = plaintext.try_reserve_exact(size);
            }
            plaintext.extend_from_slice(segment);
            Ok(())
        };
        match self.download_into(cap, &mut sink).await {
            Ok(()) => Ok(plaintext),
            Err(FileError::Grid(e)) => Err(e),
            Err(FileError::Io(e)) => unreachable!("a Vec takes every write: {e}"),
        }
    }

    /// [`Grid::download`] into `out`, a segment at a time (never whole). On an error,
    /// `out` holds the segments that came before it.
    ///
    /// # Errors
    /// [`FileError`].
    pub async fn download_to(
        &self,
        cap: &ChkCap,
        out: &mut (impl std::io::Write + Send),
    ) -> Result<(), FileError> {
        self.download_into(cap, &mut |segment| out.write_all(segment))
            .await?;
        out.flush()?;
        Ok(())
    }

    async fn download_into(
        &self,
        cap: &ChkCap,
        sink: &mut (dyn FnMut(&[u8]) -> std::io::Result<()> + Send),
    ) -> Result<(), FileError> {
        let si = cap.storage_index();
        let k = usize::from(cap.needed);
        // A cap is data too (a directory's child, a pasted string): its k and N are
        // checked before anything is asked or sized by them.
        if k == 0 || cap.needed > cap.total || cap.total > 256 {
            return Err(GridError::Format(swamp_proto::DecodeError::Invalid(format!(
                "a CHK cap needs 1 <= k <= N <= 256, not k={} N={}",
                cap.needed, cap.total
            )))
            .into());
        }
        let permuted = self.permuted(&si);
        let lists = futures::future::join_all(
            permuted
                .iter()
                .map(|server| async move { server.client.immutable().list_shares(&si).await }),
        )
        .await;
        // (share, server rank): primary shares first, then in permuted order.
        let mut candidates: Vec<(usize, usize)> = lists
            .into_iter()
            .enumerate()
            .filter_map(|(rank, list)| Some((rank, list.ok()?)))
            .flat_map(|(rank, list)| list.into_iter().map(move |n| (usize::from(n.get()), rank)))
            .collect();
        candidates.sort_by_key(|&(shnum, rank)| (shnum >= k, rank, shnum));
        let mut candidates: VecDeque<(usize, usize)> = candidates.into();

        let mut chosen: Vec<Source<'_>> = Vec::with_capacity(k);
        // Shares blamed (and reported) so far, for the error if too few remain.
        let corrupt = AtomicUsize::new(0);
        let not_enough = |found: usize| GridError::NotEnoughShares {
            si,
            found,
            needed: k,
            corrupt: corrupt.load(Ordering::Relaxed),
        };
        self.fill(cap, &permuted, &mut candidates, &mut chosen, &corrupt)
            .await;
        let mut decoder = None;
        while decoder.is_none() {
            if chosen.len() < k {
                return Err(not_enough(chosen.len()).into());
            }
            match Decoder::new(cap, chosen[0].shnum, &chosen[0].meta) {
                Ok(d) => decoder = Some(d),
                Err(_) => {
                    blame(&corrupt, &si, &chosen[0]).await;
                    self.drop_share(cap, &permuted, &mut candidates, &mut chosen, 0, &corrupt)
                        .await;
                }
            }
        }
        let decoder = decoder.expect("invariant: loop ends with a decoder");
        let ueb = decoder.ueb().clone();
        let block_size = ueb.segment_size / k as u64;
        let per_read = (READ_BYTES / block_size.max(1)).max(1);

        let mut seg = 0u64;
        // Decoded plaintext not written yet, and a buffer to decode the next read into.
        let mut pending: Option<Vec<u8>> = None;
        let mut spare = Vec::new();
        'restart: while seg < ueb.num_segments {
            if chosen.len() < k {
                return Err(not_enough(chosen.len()).into());
            }
            let sources: Vec<(usize, crate::StorageClient, u64)> = chosen
                .iter()
                .map(|s| (s.shnum, s.server.client.clone(), s.meta.offsets.data))
                .collect();
            let firsts: Vec<u64> = (seg..ueb.num_segments).step_by(per_read as usize).collect();
            let mut reads = futures::stream::iter(firsts.into_iter().map(|first| {
                let last = (first + per_read).min(ueb.num_segments);
                let start = decoder.block_range(first).start;
                let end = decoder.block_range(last - 1).end;
                let sources = sources.clone();
                let task = tokio::spawn(
                    async move {
                        futures::future::join_all(sources.iter().map(
                            |(shnum, client, data)| async move {
                                client
                                    .immutable()
                                    .read_share_chunk(
                                        &si,
                                        ShareNumber::new(*shnum as u8),
                                        data + start,
                                        end - start,
                                    )
                                    .await
                            },
                        ))
                        .await
                    }
                    // The reads' spans stay in the caller's trace (`trace.rs`).
                    .in_current_span(),
                );
                async move { (first, last, start, task.await) }
            }))
            .buffered(AHEAD);
            while let Some((first, last, start, bodies)) = reads.next().await {
                let bodies: Vec<Result<Bytes, ClientError>> = match bodies {
                    Ok(b) => b,
                    Err(e) => match e.try_into_panic() {
                        Ok(panic) => std::panic::resume_unwind(panic),
                        Err(_) => return Err(not_enough(0).into()),
                    },
                };
                if let Some(i) = bodies.iter().position(Result::is_err) {
                    self.drop_share(cap, &permuted, &mut candidates, &mut chosen, i, &corrupt)
                        .await;
                    seg = first;
                    continue 'restart;
                }
                let bodies: Vec<Bytes> = bodies.into_iter().map(|b| b.expect("checked")).collect();
                let shares: Vec<(usize, &ShareMeta)> =
                    chosen.iter().map(|c| (c.shnum, &c.meta)).collect();
                let plain_start = decoder.segment_range(first).start;
                let mut out = std::mem::take(&mut spare);
                out.resize(
                    (decoder.segment_range(last - 1).end - plain_start) as usize,
                    0,
                );
                // Decode this read while the previous one is written out.
                let (decoded, written) = std::thread::scope(|scope| {
                    let writer = pending.as_deref().map(|plain| scope.spawn(|| sink(plain)));
                    let read = Read {
                        decoder: &decoder,
                        shares: &shares,
                        bodies: &bodies,
                        start,
                    };
                    let decoded = read.decode(first..last, &mut out);
                    let written = writer.map(|w| {
                        w.join()
                            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                    });
                    (decoded, written)
                });
                written.transpose()?;
                if let Some(plain) = pending.take() {
                    spare = plain;
                }
                match decoded {
                    Ok(()) => {
                        pending = Some(out);
                        seg = last;
                    }
                    Err((s, why)) => {
                        // What came before the failed segment is good.
                        sink(&out[..(decoder.segment_range(s).start - plain_start) as usize])?;
                        spare = out;
                        let i = match why {
                            SegmentError::BadBlock(i) => i,
                            SegmentError::Invalid(e) => return Err(GridError::Format(e).into()),
                        };
                        blame(&corrupt, &si, &chosen[i]).await;
                        self.drop_share(cap, &permuted, &mut candidates, &mut chosen, i, &corrupt)
                            .await;
                        seg = s;
                        continue 'restart;
                    }
                }
            }
        }
        if let Some(plain) = pending {
            sink(&plain)?;
        }
        Ok(())
    }

    /// Drops `chosen[i]` (after [`blame`] if it is corrupt) and finds another.
    async fn drop_share<'a>(
        &'a self,
        cap: &ChkCap,
        permuted: &[&'a Server],
        candidates: &mut VecDeque<(usize, usize)>,
        chosen: &mut Vec<Source<'a>>,
        i: usize,
        corrupt: &AtomicUsize,
    ) {
        chosen.remove(i);
        self.fill(cap, permuted, candidates, chosen, corrupt).await;
    }

    /// Adds candidates to `chosen` until it has k shares whose metadata checks out
    /// (fetched a batch at a time, concurrently), or the candidates run out. Shares
    /// with bad metadata are reported.
    async fn fill<'a>(
        &'a self,
        cap: &ChkCap,
        permuted: &[&'a Server],
        candidates: &mut VecDeque<(usize, usize)>,
        chosen: &mut Vec<Source<'a>>,
        corrupt: &AtomicUsize,
    ) {
        let si = cap.storage_index();
        let k = usize::from(cap.needed);
        while chosen.len() < k {
            let mut batch: Vec<(usize, &Server)> = Vec::new();
            // Other copies of shares already in hand stay candidates (as spares).
            let mut deferred = Vec::new();
            while batch.len() < k - chosen.len() {
                let Some((shnum, rank)) = candidates.pop_front() else {
                    break;
                };
                if chosen.iter().any(|c| c.shnum == shnum) || batch.iter().any(|b| b.0 == shnum) {
                    deferred.push((shnum, rank));
                } else {
                    batch.push((shnum, permuted[rank]));
                }
            }
            for c in deferred.into_iter().rev() {
                candidates.push_front(c);
            }
            if batch.is_empty() {
                return;
            }
            let metas = futures::future::join_all(
                batch
                    .iter()
                    .map(|&(shnum, server)| fetch_meta(cap, server, shnum)),
            )
            .await;
            for ((shnum, server), meta) in batch.into_iter().zip(metas) {
                match meta {
                    Ok(meta) => chosen.push(Source {
                        shnum,
                        server,
                        meta,
                    }),
                    Err(Failure::Corrupt) => {
                        corrupt.fetch_add(1, Ordering::Relaxed);
                        advise_corrupt(server, &si, shnum, DOWNLOAD_ADVICE).await;
                    }
                    Err(Failure::Server) => {}
                }
            }
        }
    }
}

/// Share metadata of at most this many bytes (hash trees, chain, UEB) is fetched in
/// one read, bounded by what the share's own header says; larger metadata (files of
/// several GiB) is fetched only after the UEB, checked against the cap, has said how
/// large it can be.
const ONE_READ_META: u64 = 1024 * 1024;

/// Reads a share's header and everything after its blocks, and checks them. Nothing
/// the server says sizes a read beyond a bound: the header's offsets (unchecked) are
/// trusted only up to [`ONE_READ_META`]; past that, the UEB is read first (at most
/// [`chk::MAX_UEB_LEN`]), checked against the cap, and the hash sections must fit
/// what its segment count allows.
pub(crate) async fn fetch_meta(
    cap: &ChkCap,
    server: &Server,
    shnum: usize,
) -> Result<ShareMeta, Failure> {
    let si = cap.storage_index();
    let n = ShareNumber::new(shnum as u8);
    let immutable = &server.client.immutable();
    let si = &si;
    let read = |offset: u64, length: u64| async move {
        immutable
            .read_share_chunk(si, n, offset, length)
            .await
            .map_err(|_| Failure::Server)
    };
    let header = read(0, chk::HEADER_LEN).await?;
    let offsets = chk::parse_offsets(&header).map_err(|_| Failure::Corrupt)?;
    let length_field = offsets.length_field();
    let sections = offsets
        .uri_extension
        .checked_sub(offsets.crypttext_hash_tree)
        .ok_or(Failure::Corrupt)?;
    let ueb_part = length_field + chk::MAX_UEB_LEN;
    let whole = sections.checked_add(ueb_part).ok_or(Failure::Corrupt)?;
    let tail = if whole <= ONE_READ_META {
        read(offsets.crypttext_hash_tree, whole).await?
    } else {
        let ueb_bytes = read(offsets.uri_extension, ueb_part).await?;
        let ueb = ueb_bytes
            .get(..length_field as usize)
            .map(|f| f.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b)))
            .and_then(|len| ueb_bytes.get(length_field as usize..)?.get(..len as usize))
            .ok_or(Failure::Corrupt)?;
        let ueb = chk::check_ueb(cap, ueb).map_err(|_| Failure::Corrupt)?;
        if chk::max_hash_sections_len(&ueb).is_none_or(|max| sections > max) {
            return Err(Failure::Corrupt);
        }
        let hashes = read(offsets.crypttext_hash_tree, sections).await?;
        if hashes.len() as u64 != sections {
            return Err(Failure::Corrupt);
        }
        let mut tail = Vec::with_capacity(hashes.len() + ueb_bytes.len());
        tail.extend_from_slice(&hashes);
        tail.extend_from_slice(&ueb_bytes);
        Bytes::from(tail)
    };
    let meta = chk::parse_share_meta(offsets, &tail).map_err(|_| Failure::Corrupt)?;
    Decoder::check_share(cap, shnum, &meta).map_err(|_| Failure::Corrupt)?;
    Ok(meta)
}

/// What a download tells a server of a share that failed its hashes.
const DOWNLOAD_ADVICE: &str = "share failed hash verification (swamp client)";

/// Counts `bad` as corrupt and reports it to its server.
async fn blame(corrupt: &AtomicUsize, si: &swamp_proto::StorageIndex, bad: &Source<'_>) {
    corrupt.fetch_add(1, Ordering::Relaxed);
    advise_corrupt(bad.server, si, bad.shnum, DOWNLOAD_ADVICE).await;
}

/// Tells `server` that its immutable share `shnum` of `si` is corrupt (Tahoe's
/// corruption advisory). Best effort: a server that does not take it changes
/// nothing for the reader.
pub(crate) async fn advise_corrupt(
    server: &Server,
    si: &swamp_proto::StorageIndex,
    shnum: usize,
    reason: &str,
) {
    let _ = server
        .client
        .immutable()
        .advise_corrupt(si, ShareNumber::new(shnum as u8), reason)
        .await;
}
