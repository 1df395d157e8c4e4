//! The `rtw` scenario: mutable read-test-write, small writes, one slot per writer.
//!
//! Each writer owns a fresh storage index with its own write enabler and lease secrets,
//! created before the timed phase. Each timed operation is what an overwrite of a small
//! mutable file does to one server: test the slot's current sequence number (first 8
//! bytes of share 0), write the next one plus `write_size - 8` filler bytes at offset
//! 0, and read the old sequence number back. The answer must say `success` and return
//! the old sequence number, or the operation counts as an error.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use swamp_client::StorageClient;
use swamp_proto::StorageIndex;
use swamp_proto::secrets::{LeaseCancelSecret, LeaseRenewSecret, WriteEnabler};
use swamp_proto::v1::{
    ReadTestWriteRequest, ReadVector, TestVector, TestWriteVectors, WriteVector,
};

use crate::runner::{Budget, Tally, Target, merged, run_workers};

/// The smallest write: the 8-byte sequence number.
pub const MIN_WRITE_SIZE: usize = 8;

/// One writer's slot and secrets.
pub struct Writer {
    client: StorageClient,
    si: StorageIndex,
    write_enabler: WriteEnabler,
    renew: LeaseRenewSecret,
    cancel: LeaseCancelSecret,
    /// The sequence number the slot holds now.
    seq: u64,
    filler: Vec<u8>,
}

impl Writer {
    fn request(&self, test: Option<u64>, new_seq: u64) -> ReadTestWriteRequest {
        let mut data = new_seq.to_be_bytes().to_vec();
        data.extend_from_slice(&self.filler);
        let test = test
            .map(|seq| {
                vec![TestVector {
                    offset: 0,
                    size: 8,
                    specimen: seq.to_be_bytes().to_vec(),
                }]
            })
            .unwrap_or_default();
        let vectors = TestWriteVectors {
            test,
            write: vec![WriteVector { offset: 0, data }],
            new_length: None,
        };
        ReadTestWriteRequest {
            test_write_vectors: BTreeMap::from([(0, vectors)]),
            read_vector: vec![ReadVector { offset: 0, size: 8 }],
        }
    }
}

/// Creates one slot per writer (not timed).
///
/// # Errors
/// The first failed creation.
pub async fn prepare(
    target: &Target,
    writers: usize,
    write_size: usize,
) -> anyhow::Result<Vec<Writer>> {
    let results = run_workers(writers, |n| {
        let (client, timeout) = (target.client(n), target.timeout);
        async move {
            let mut filler = vec![0u8; write_size.saturating_sub(MIN_WRITE_SIZE)];
            rand::fill(&mut filler[..]);
            let writer = Writer {
                client,
                si: StorageIndex::from_bytes(rand::random()),
                write_enabler: WriteEnabler::from_bytes(rand::random()),
                renew: LeaseRenewSecret::from_bytes(rand::random()),
                cancel: LeaseCancelSecret::from_bytes(rand::random()),
                seq: 1,
                filler,
            };
            let request = writer.request(None, writer.seq);
            let mutable = writer.client.mutable();
            let create = mutable.read_test_write(
                &writer.si,
                &writer.write_enabler,
                &writer.renew,
                &writer.cancel,
                &request,
            );
            match tokio::time::timeout(timeout, create).await {
                Ok(Ok(answer)) if answer.success => Ok(writer),
                Ok(Ok(_)) => Err(anyhow::anyhow!(
                    "creating slot {}: the server says the tests failed",
                    writer.si
                )),
                Ok(Err(e)) => {
                    Err(anyhow::Error::new(e).context(format!("creating slot {}", writer.si)))
                }
                Err(_) => Err(anyhow::anyhow!(
                    "creating slot {}: no answer within {timeout:?}",
                    writer.si
                )),
            }
        }
    })
    .await?;
    results.into_iter().collect()
}

/// Runs the timed phase: every writer overwrites its own slot until the budget is spent.
/// Hands the writers back (with their sequence numbers) so they can run again.
///
/// # Errors
/// If a worker panicked.
pub async fn run(
    writers: Vec<Writer>,
    budget: Arc<Budget>,
    timeout: Duration,
) -> anyhow::Result<(Tally, Vec<Writer>)> {
    let mut slots: Vec<Option<Writer>> = writers.into_iter().map(Some).collect();
    let results = run_workers(slots.len(), |n| {
        let mut writer = slots[n]
            .take()
            .expect("invariant: each writer is taken once");
        let budget = Arc::clone(&budget);
        async move {
            let mut tally = Tally::default();
            while budget.claim() {
                let (old, new) = (writer.seq, writer.seq + 1);
                let request = writer.request(Some(old), new);
                let mutable = writer.client.mutable();
                let rtw = mutable.read_test_write(
                    &writer.si,
                    &writer.write_enabler,
                    &writer.renew,
                    &writer.cancel,
                    &request,
                );
                let Some(answer) = tally.time(timeout, rtw).await else {
                    // The write may or may not have happened; stop rather than guess.
                    break;
                };
                let read_back = answer
                    .data
                    .get(&0)
                    .and_then(|reads| reads.first())
                    .map(|b| b.to_vec());
                if !answer.success {
                    tally.reject(format!(
                        "{}: the test of sequence number {old} failed",
                        writer.si
                    ));
                    break;
                }
                if read_back.as_deref() != Some(&old.to_be_bytes()[..]) {
                    tally.reject(format!(
                        "{}: read back {read_back:?}, expected sequence number {old}",
                        writer.si
                    ));
                }
                writer.seq = new;
                tally.bytes += (MIN_WRITE_SIZE + writer.filler.len()) as u64;
            }
            (tally, writer)
        }
    })
    .await?;
    let mut writers = Vec::with_capacity(results.len());
    let tally = merged(results.into_iter().map(|(t, w)| {
        writers.push(w);
        t
    }));
    Ok((tally, writers))
}
