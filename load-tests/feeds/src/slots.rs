//! Slots the benchmark writes, and when each version was sent.
//!
//! Each slot has its own write enabler and lease secrets. A write puts an MDMF-looking
//! share 0 (format byte 1, the 8-byte big-endian seqnum, a 32-byte root hash, then
//! filler) with one read-test-write and no test vector, so the feed reports the seqnum
//! and subscribers can match the delivery to the write that caused it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use swamp_client::StorageClient;
use swamp_proto::StorageIndex;
use swamp_proto::secrets::{LeaseCancelSecret, LeaseRenewSecret, WriteEnabler};
use swamp_proto::v1::{ReadTestWriteRequest, TestWriteVectors, WriteVector};

/// Send times kept per slot (by seqnum modulo this).
const RING: usize = 4096;

/// One slot.
pub struct Slot {
    /// Its storage index.
    pub si: StorageIndex,
    /// The same in base32, as events carry it.
    pub si_text: String,
    write_enabler: WriteEnabler,
    renew: LeaseRenewSecret,
    cancel: LeaseCancelSecret,
    next_seq: AtomicU64,
    /// Feed connections following this slot.
    pub followers: AtomicU64,
    sent_seq: Box<[AtomicU64]>,
    sent_at: Box<[AtomicU64]>,
}

impl Slot {
    fn new() -> Self {
        let si = StorageIndex::from_bytes(rand::random());
        Self {
            si_text: si.to_string(),
            si,
            write_enabler: WriteEnabler::from_bytes(rand::random()),
            renew: LeaseRenewSecret::from_bytes(rand::random()),
            cancel: LeaseCancelSecret::from_bytes(rand::random()),
            next_seq: AtomicU64::new(0),
            followers: AtomicU64::new(0),
            sent_seq: (0..RING).map(|_| AtomicU64::new(u64::MAX)).collect(),
            sent_at: (0..RING).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

/// The slots of one scenario and the clock their send times are kept in.
pub struct Slots {
    /// The slots.
    pub slots: Vec<Slot>,
    by_si: HashMap<String, usize>,
    /// Time zero.
    pub epoch: Instant,
    tail: Vec<u8>,
}

/// What a write did.
pub struct Written {
    /// Its slot.
    pub slot: usize,
    /// How long the read-test-write took.
    pub took: Duration,
}

impl Slots {
    /// `count` fresh slots whose shares carry `tail` filler bytes after the header.
    pub fn new(count: usize, tail: usize) -> Arc<Self> {
        let slots: Vec<Slot> = (0..count).map(|_| Slot::new()).collect();
        let by_si = slots
            .iter()
            .enumerate()
            .map(|(i, s)| (s.si_text.clone(), i))
            .collect();
        let mut filler = vec![0u8; tail];
        rand::fill(&mut filler[..]);
        Arc::new(Self {
            slots,
            by_si,
            epoch: Instant::now(),
            tail: filler,
        })
    }

    /// Nanoseconds since the epoch.
    pub fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// The slot named by a base32 storage index.
    pub fn find(&self, si: &str) -> Option<usize> {
        self.by_si.get(si).copied()
    }

    /// When version `seqnum` of `slot` was sent, if this run sent it and it is still
    /// remembered.
    pub fn sent_at(&self, slot: usize, seqnum: u64) -> Option<u64> {
        let s = &self.slots[slot];
        let i = (seqnum % RING as u64) as usize;
        let at = s.sent_at[i].load(Ordering::Acquire);
        (s.sent_seq[i].load(Ordering::Acquire) == seqnum && at != 0).then_some(at)
    }

    /// Writes the next version of `slot`, remembering when it was sent.
    ///
    /// # Errors
    /// A failed or refused read-test-write.
    pub async fn write(&self, client: &StorageClient, slot: usize) -> anyhow::Result<Written> {
        let s = &self.slots[slot];
        let seqnum = s.next_seq.fetch_add(1, Ordering::Relaxed) + 1;
        let mut data = Vec::with_capacity(41 + self.tail.len());
        data.push(1u8);
        data.extend_from_slice(&seqnum.to_be_bytes());
        data.extend_from_slice(&rand::random::<[u8; 32]>());
        data.extend_from_slice(&self.tail);
        let request = ReadTestWriteRequest {
            test_write_vectors: BTreeMap::from([(
                0,
                TestWriteVectors {
                    test: vec![],
                    write: vec![WriteVector { offset: 0, data }],
                    new_length: None,
                },
            )]),
            read_vector: vec![],
        };
        let i = (seqnum % RING as u64) as usize;
        // Just before sending: the latency clock starts here.
        let sent_ns = self.now_ns().max(1);
        s.sent_at[i].store(sent_ns, Ordering::Release);
        s.sent_seq[i].store(seqnum, Ordering::Release);
        let started = Instant::now();
        let answer = client
            .mutable()
            .read_test_write(&s.si, &s.write_enabler, &s.renew, &s.cancel, &request)
            .await
            .with_context(|| format!("read-test-write of slot {}", s.si_text))?;
        anyhow::ensure!(
            answer.success,
            "read-test-write of slot {} refused",
            s.si_text
        );
        Ok(Written {
            slot,
            took: started.elapsed(),
        })
    }

    /// Creates every slot (seqnum 1), `parallel` at a time, before anything is timed.
    ///
    /// # Errors
    /// The first failed creation.
    pub async fn create_all(
        &self,
        clients: &[StorageClient],
        parallel: usize,
    ) -> anyhow::Result<()> {
        use futures::StreamExt;
        let results: Vec<anyhow::Result<Written>> = futures::stream::iter(0..self.slots.len())
            .map(|i| self.write(&clients[i % clients.len()], i))
            .buffer_unordered(parallel.max(1))
            .collect()
            .await;
        for r in results {
            r?;
        }
        Ok(())
    }
}
