//! The `upload` scenario: immutable uploads the way Tahoe's client makes them.
//!
//! Each storage index gets one `POST /storage/v1/immutable/:si` allocating `shares`
//! shares, then each share is written by sequential PATCHes of `chunk_size` bytes, the
//! shares of one storage index in parallel (Tahoe sends each to its own server; here they
//! all go to one). `concurrency / shares` storage indexes are in progress at once, so
//! about `concurrency` PATCHes are in flight. The upload ends after `total_bytes`, or at
//! the deadline: no new storage index starts after it, and those in progress finish.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use swamp_client::StorageClient;
use swamp_proto::secrets::{LeaseCancelSecret, LeaseRenewSecret, UploadSecret};
use swamp_proto::{ShareNumber, StorageIndex};
use tokio::task::JoinSet;

use crate::runner::{Budget, Tally, Target, merged, run_workers};

/// The bytes every uploaded share holds: one random chunk, repeated. Uploads send slices
/// of it without copying; downloads check what they read against it.
#[derive(Clone)]
pub struct Pattern {
    chunk: Bytes,
}

impl Pattern {
    /// `len` random bytes (at least one).
    pub fn random(len: usize) -> Self {
        let mut chunk = vec![0u8; len.max(1)];
        rand::fill(&mut chunk[..]);
        Self {
            chunk: Bytes::from(chunk),
        }
    }

    /// The length of the repeated chunk: the largest PATCH it can feed.
    pub fn len(&self) -> usize {
        self.chunk.len()
    }

    /// The first `len` bytes (what a PATCH at a multiple of the chunk length sends).
    fn head(&self, len: usize) -> Bytes {
        self.chunk.slice(..len)
    }

    /// Whether `data` is what a share holds at `offset`.
    pub fn matches(&self, offset: u64, data: &[u8]) -> bool {
        let n = self.chunk.len() as u64;
        let mut at = offset;
        let mut rest = data;
        while !rest.is_empty() {
            let start = (at % n) as usize;
            let take = rest.len().min(self.chunk.len() - start);
            if rest[..take] != self.chunk[start..start + take] {
                return false;
            }
            rest = &rest[take..];
            at += take as u64;
        }
        true
    }
}

/// Complete shares the server now holds, all `share_size` bytes of the pattern.
pub struct Uploaded {
    /// The content.
    pub pattern: Pattern,
    /// Every share's length.
    pub share_size: u64,
    /// Which shares.
    pub shares: Vec<(StorageIndex, ShareNumber)>,
}

/// How to upload.
#[derive(Clone, Copy, Debug)]
pub struct UploadPlan {
    /// Stop after this many bytes (rounded up to whole storage indexes).
    pub total_bytes: u64,
    /// The size of each share.
    pub share_size: u64,
    /// Shares per storage index, written in parallel.
    pub shares: u8,
    /// PATCH size; at most the pattern's length.
    pub chunk_size: usize,
    /// Requests in flight (rounded down to a multiple of `shares`, at least `shares`).
    pub concurrency: usize,
    /// No new storage index starts after this long.
    pub duration: Duration,
}

impl UploadPlan {
    /// Storage indexes uploaded at once.
    pub fn workers(&self) -> usize {
        (self.concurrency / usize::from(self.shares)).max(1)
    }

    /// PATCHes in flight.
    pub fn in_flight(&self) -> usize {
        self.workers() * usize::from(self.shares)
    }
}

/// Runs the timed phase of an upload. Returns the tally of the PATCHes (allocations
/// count their errors but not their latency) and the shares completed.
///
/// # Errors
/// If a worker panicked.
pub async fn run(
    target: &Target,
    plan: UploadPlan,
    pattern: &Pattern,
) -> anyhow::Result<(Tally, Vec<(StorageIndex, ShareNumber)>)> {
    let per_index = plan.share_size * u64::from(plan.shares);
    let indexes = plan.total_bytes.div_ceil(per_index).max(1);
    let budget = Arc::new(Budget::new(plan.duration, Some(indexes)));
    let results = run_workers(plan.workers(), |n| {
        let (client, budget, pattern, timeout) = (
            target.client(n),
            Arc::clone(&budget),
            pattern.clone(),
            target.timeout,
        );
        async move {
            let mut tally = Tally::default();
            let mut done = Vec::new();
            while budget.claim() {
                upload_one(&client, plan, &pattern, timeout, &mut tally, &mut done).await;
            }
            (tally, done)
        }
    })
    .await?;
    let mut shares = Vec::new();
    let tally = merged(results.into_iter().map(|(t, d)| {
        shares.extend(d);
        t
    }));
    Ok((tally, shares))
}

/// Allocates a fresh storage index and writes all its shares in parallel.
async fn upload_one(
    client: &StorageClient,
    plan: UploadPlan,
    pattern: &Pattern,
    timeout: Duration,
    tally: &mut Tally,
    done: &mut Vec<(StorageIndex, ShareNumber)>,
) {
    let si = StorageIndex::from_bytes(rand::random());
    let secret = UploadSecret::new(rand::random::<[u8; 20]>().to_vec())
        .expect("invariant: 20 bytes are not empty");
    let renew = LeaseRenewSecret::from_bytes(rand::random());
    let cancel = LeaseCancelSecret::from_bytes(rand::random());
    let numbers: Vec<ShareNumber> = (0..plan.shares).map(ShareNumber::new).collect();
    let immutable = client.immutable();
    let allocation = immutable.allocate(
        &si,
        &secret,
        &renew,
        &cancel,
        numbers.iter().copied(),
        plan.share_size,
    );
    let Some(allocation) = tally.attempt(timeout, allocation).await else {
        return;
    };
    if allocation.allocated.0.len() != numbers.len() {
        tally.error(format!(
            "{si}: asked for {} shares, {} allocated",
            numbers.len(),
            allocation.allocated.0.len()
        ));
        return;
    }
    let mut set = JoinSet::new();
    for shnum in numbers {
        let (client, secret, pattern) = (client.clone(), secret.clone(), pattern.clone());
        set.spawn(async move {
            let mut tally = Tally::default();
            let complete = write_share(
                &client, si, shnum, &secret, &pattern, plan, timeout, &mut tally,
            )
            .await;
            (tally, complete.then_some((si, shnum)))
        });
    }
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((share_tally, complete)) => {
                tally.merge(share_tally);
                done.extend(complete);
            }
            Err(e) => tally.error(format!("a share writer failed: {e}")),
        }
    }
}

/// Writes one share front to back; stops at the first error. True when the server
/// said the share is complete exactly on the last chunk.
#[allow(clippy::too_many_arguments)]
async fn write_share(
    client: &StorageClient,
    si: StorageIndex,
    shnum: ShareNumber,
    secret: &UploadSecret,
    pattern: &Pattern,
    plan: UploadPlan,
    timeout: Duration,
    tally: &mut Tally,
) -> bool {
    let mut offset = 0u64;
    while offset < plan.share_size {
        let len = plan.chunk_size.min((plan.share_size - offset) as usize);
        let immutable = client.immutable();
        let write = immutable.write_share_chunk(&si, shnum, secret, offset, pattern.head(len));
        let Some(answer) = tally.time(timeout, write).await else {
            return false;
        };
        offset += len as u64;
        let last = offset == plan.share_size;
        if answer.complete != last {
            tally.reject(format!(
                "{si} share {shnum}: after {offset} of {} bytes the server says complete = {}",
                plan.share_size, answer.complete
            ));
            return false;
        }
        tally.bytes += len as u64;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_matches_across_chunk_boundaries() {
        let p = Pattern::random(10);
        let share: Vec<u8> = (0..35).map(|i| p.chunk[i % 10]).collect();
        assert!(p.matches(0, &share));
        assert!(p.matches(7, &share[7..23]));
        let mut bad = share[7..23].to_vec();
        bad[5] ^= 1;
        assert!(!p.matches(7, &bad));
    }

    #[test]
    fn concurrency_is_whole_storage_indexes() {
        let plan = UploadPlan {
            total_bytes: 1,
            share_size: 1,
            shares: 4,
            chunk_size: 1,
            concurrency: 10,
            duration: Duration::from_secs(1),
        };
        assert_eq!((plan.workers(), plan.in_flight()), (2, 8));
        assert_eq!(
            UploadPlan {
                concurrency: 1,
                ..plan
            }
            .in_flight(),
            4
        );
    }
}
