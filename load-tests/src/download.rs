//! The `download` scenario: ranged reads of complete immutable shares, as Tahoe's
//! downloader makes them (one block per `GET` with `Range`).
//!
//! Every worker loops: pick a random share and a random `read_size`-aligned offset in it,
//! read, and check the bytes against the upload pattern (a wrong byte counts as an
//! error). Before the timed phase every share is read once ([`warm`]), so the shares are
//! in the server's page cache whatever way its uploads were written (Swamp writes them
//! around the cache, Python through it): this measures the server's request path and
//! TLS, not the disk.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::runner::{Budget, Tally, Target, merged, run_workers};
use crate::upload::Uploaded;

/// Reads every share once, whole, in `read_size` pieces (not timed).
///
/// # Errors
/// The first failed read.
pub async fn warm(
    target: &Target,
    data: Arc<Uploaded>,
    read_size: u64,
    concurrency: usize,
) -> anyhow::Result<()> {
    let next = Arc::new(AtomicUsize::new(0));
    let results = run_workers(concurrency, |n| {
        let (client, data, next) = (target.client(n), Arc::clone(&data), Arc::clone(&next));
        async move {
            while let Some(&(si, shnum)) = data.shares.get(next.fetch_add(1, Ordering::Relaxed)) {
                let mut offset = 0;
                while offset < data.share_size {
                    client
                        .immutable()
                        .read_share_chunk(&si, shnum, offset, read_size)
                        .await
                        .map_err(|e| anyhow::anyhow!("{si} share {shnum} at {offset}: {e}"))?;
                    offset += read_size;
                }
            }
            anyhow::Ok(())
        }
    })
    .await?;
    results.into_iter().collect()
}

/// Runs the timed phase: `concurrency` workers reading until the budget is spent.
///
/// # Errors
/// If there is nothing to read, or a worker panicked.
pub async fn run(
    target: &Target,
    data: Arc<Uploaded>,
    read_size: u64,
    concurrency: usize,
    budget: Arc<Budget>,
) -> anyhow::Result<Tally> {
    anyhow::ensure!(!data.shares.is_empty(), "no uploaded shares to download");
    let slots = data.share_size.div_ceil(read_size);
    let tallies = run_workers(concurrency, |n| {
        let (client, data, budget, timeout) = (
            target.client(n),
            Arc::clone(&data),
            Arc::clone(&budget),
            target.timeout,
        );
        async move {
            let mut tally = Tally::default();
            while budget.claim() {
                let (si, shnum) = data.shares[rand::random_range(0..data.shares.len())];
                let offset = rand::random_range(0..slots) * read_size;
                let expected = read_size.min(data.share_size - offset);
                let immutable = client.immutable();
                let read = immutable.read_share_chunk(&si, shnum, offset, read_size);
                let Some(bytes) = tally.time(timeout, read).await else {
                    continue;
                };
                if bytes.len() as u64 != expected {
                    tally.reject(format!(
                        "{si} share {shnum} at {offset}: {} bytes, expected {expected}",
                        bytes.len()
                    ));
                } else if !data.pattern.matches(offset, &bytes) {
                    tally.reject(format!(
                        "{si} share {shnum} at {offset}: the bytes differ from those uploaded"
                    ));
                } else {
                    tally.bytes += expected;
                }
            }
            tally
        }
    })
    .await?;
    Ok(merged(tallies))
}
