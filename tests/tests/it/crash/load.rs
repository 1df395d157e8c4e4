//! The load a crash interrupts: workers uploading immutable shares and writing slots
//! until told to stop, each recording what the node acknowledged.
//!
//! A request error is expected only once `stop` is set (the node is about to be, or
//! has been, killed); before that, and an HTTP error status at any time (an answer the
//! live node gave), it is a failure of the node.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use rand::RngExt;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use swamp_client::ClientError;
use swamp_client::StorageClient;
use swamp_proto::StorageIndex;
use swamp_proto::v1::{
    ReadTestWriteRequest, ReadVector, TestVector, TestWriteVectors, WriteVector,
};
use swamp_tests::Secrets;

use super::model::{DELETE_CHANCE, Slot, SlotRound, SlotShares, Upload, Version};

/// What the workers share: when to stop, and how much the node has acknowledged (so
/// the kill can wait until there is something to lose).
#[derive(Default)]
pub struct Shared {
    /// Set just before the node is killed: no new operations, errors expected.
    pub stop: AtomicBool,
    /// Immutable shares acknowledged (201).
    pub shares_acked: AtomicUsize,
    /// Read-test-writes acknowledged.
    pub writes_acked: AtomicUsize,
    /// Woken at each acknowledgement.
    pub acked: tokio::sync::Notify,
}

impl Shared {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn count(&self, counter: &AtomicUsize) {
        counter.fetch_add(1, Ordering::SeqCst);
        self.acked.notify_waiters();
    }

    /// Shares and slot writes acknowledged so far.
    pub fn acked(&self) -> (usize, usize) {
        (
            self.shares_acked.load(Ordering::SeqCst),
            self.writes_acked.load(Ordering::SeqCst),
        )
    }

    /// Waits until `ready` holds, trying it at each acknowledgement.
    pub async fn wait_until(&self, mut ready: impl FnMut(&Self) -> bool) {
        loop {
            let woken = self.acked.notified();
            if ready(self) {
                return;
            }
            woken.await;
        }
    }
}

/// How much of a slot share's known version each write tests.
const TESTED_PREFIX: usize = 64 << 10;

/// A worker's record and, if the node misbehaved, why.
pub struct Worked<T> {
    pub output: T,
    pub failure: Option<String>,
}

/// Why an operation did not complete.
enum OpError {
    /// The request failed: expected once the node is being killed.
    Client(ClientError),
    /// The node answered, but not as it should have.
    Wrong(String),
}

impl From<ClientError> for OpError {
    fn from(e: ClientError) -> Self {
        Self::Client(e)
    }
}

/// A failure to report, or `None` for a request cut off by the kill.
fn failure(what: &str, error: OpError, shared: &Shared) -> Option<String> {
    match error {
        OpError::Wrong(why) => Some(format!("{what}: {why}")),
        OpError::Client(e) if e.status().is_some() || !shared.stopped() => {
            Some(format!("{what}: {e} ({e:?})"))
        }
        OpError::Client(_) => None,
    }
}

/// Uploads new storage indexes until `stop`.
pub async fn uploads(
    client: StorageClient,
    mut rng: StdRng,
    shared: Arc<Shared>,
) -> Worked<Vec<Upload>> {
    let mut done: Vec<Upload> = Vec::new();
    while !shared.stopped() {
        let mut upload = Upload::random(&mut rng);
        let result = upload_one(&client, &mut rng, &shared, &mut upload).await;
        let what = format!("upload of {}", upload.si);
        done.push(upload);
        if let Err(e) = result {
            let failure = failure(&what, e, &shared);
            return Worked {
                output: done,
                failure,
            };
        }
    }
    Worked {
        output: done,
        failure: None,
    }
}

/// Allocates the upload's shares, then writes each in 1 to 4 pieces in random order.
async fn upload_one(
    client: &StorageClient,
    rng: &mut StdRng,
    shared: &Shared,
    upload: &mut Upload,
) -> Result<(), OpError> {
    let secrets = Secrets::random();
    let imm = client.immutable();
    let size = upload.shares[0].data.len();
    let allocated = imm
        .allocate(
            &upload.si,
            &secrets.upload,
            &secrets.renew,
            &secrets.cancel,
            upload.shares.iter().map(|s| s.shnum),
            size as u64,
        )
        .await?;
    if allocated.allocated.0.len() != upload.shares.len() || !allocated.already_have.0.is_empty() {
        return Err(OpError::Wrong(format!(
            "a fresh storage index allocated {:?}",
            allocated
        )));
    }
    for share in &mut upload.shares {
        let mut cuts: Vec<usize> = (0..rng.random_range(0..=3))
            .map(|_| rng.random_range(1..=size))
            .collect();
        cuts.extend([0, size]);
        cuts.sort_unstable();
        cuts.dedup();
        let mut pieces: Vec<(usize, usize)> = cuts.windows(2).map(|w| (w[0], w[1])).collect();
        pieces.shuffle(rng);
        for (i, &(from, to)) in pieces.iter().enumerate() {
            let written = imm
                .write_share_chunk(
                    &upload.si,
                    share.shnum,
                    &secrets.upload,
                    from as u64,
                    share.data.slice(from..to),
                )
                .await?;
            let last = i + 1 == pieces.len();
            if written.complete != last {
                return Err(OpError::Wrong(format!(
                    "share {} piece {i} of {}: complete = {}",
                    share.shnum,
                    pieces.len(),
                    written.complete
                )));
            }
        }
        share.acked = true;
        shared.count(&shared.shares_acked);
    }
    Ok(())
}

/// Adds leases (fresh secrets each time) to slots and to shares of earlier rounds
/// until `stop`: lease changes are not logged, so replay must work around them.
/// A slot not written yet has no shares to lease (404).
pub async fn leases(
    client: StorageClient,
    mut rng: StdRng,
    shared: Arc<Shared>,
    targets: Arc<Vec<StorageIndex>>,
) -> Worked<usize> {
    let mut added = 0;
    while !shared.stopped() {
        let Some(si) = targets.get(rng.random_range(0..targets.len().max(1))) else {
            break;
        };
        let s = Secrets::random();
        match client
            .general()
            .add_or_renew_lease(si, &s.renew, &s.cancel)
            .await
        {
            Ok(()) => added += 1,
            Err(e) if e.status() == Some(http::StatusCode::NOT_FOUND) => {}
            Err(e) => {
                let failure = failure(&format!("lease on {si}"), e.into(), &shared);
                return Worked {
                    output: added,
                    failure,
                };
            }
        }
    }
    Worked {
        output: added,
        failure: None,
    }
}

/// Writes new versions of one slot until `stop`, each tested against the version
/// before it; now and then (if the slot `deletes`) a share is deleted instead, and
/// written again later.
pub async fn slot_writes(
    client: StorageClient,
    mut rng: StdRng,
    shared: Arc<Shared>,
    mut slot: Slot,
) -> Worked<(Slot, SlotRound)> {
    let mut round = SlotRound {
        start: slot.held.clone(),
        acked: Vec::new(),
        pending: None,
    };
    let mut failed = None;
    while !shared.stopped() {
        let seqnum = slot.next_seqnum;
        slot.next_seqnum += 1;
        let versions: SlotShares = slot
            .held
            .iter()
            .map(|held| {
                let delete = slot.deletes && held.is_some() && rng.random_bool(DELETE_CHANCE);
                (!delete).then(|| Version::random(&mut rng, seqnum, slot.big))
            })
            .collect();
        match write_versions(&client, &slot, &versions).await {
            Ok(()) => {
                slot.held = versions.clone();
                round.acked.push(versions);
                shared.count(&shared.writes_acked);
            }
            Err(e) => {
                failed = failure(&format!("slot {} seqnum {seqnum}", slot.si), e, &shared);
                round.pending = Some(versions);
                break;
            }
        }
    }
    Worked {
        output: (slot, round),
        failure: failed,
    }
}

/// One read-test-write: each share must hold the version the clients know (its
/// first 64 KiB, and nothing after its end), and gets the new version whole (with
/// `new_length`, so a shorter version shrinks it), or is deleted (`new_length` 0).
/// A read vector checks that reads see the state before the writes.
async fn write_versions(
    client: &StorageClient,
    slot: &Slot,
    versions: &[Option<Version>],
) -> Result<(), OpError> {
    let mut test_write_vectors = BTreeMap::new();
    for (shnum, (held, version)) in slot.held.iter().zip(versions).enumerate() {
        let held_bytes = held.as_ref().map(|v| v.data.clone()).unwrap_or_default();
        let end = held_bytes.len() as u64;
        let prefix = held_bytes.slice(..held_bytes.len().min(TESTED_PREFIX));
        let test = vec![
            TestVector {
                offset: 0,
                size: (prefix.len() as u64).max(1),
                specimen: prefix.to_vec(),
            },
            TestVector {
                offset: end,
                size: 1,
                specimen: Vec::new(),
            },
        ];
        let (write, new_length) = match version {
            Some(v) => (
                vec![WriteVector {
                    offset: 0,
                    data: v.data.to_vec(),
                }],
                v.data.len() as u64,
            ),
            None => (Vec::new(), 0),
        };
        test_write_vectors.insert(
            shnum as u64,
            TestWriteVectors {
                test,
                write,
                new_length: Some(new_length),
            },
        );
    }
    let request = ReadTestWriteRequest {
        test_write_vectors,
        read_vector: vec![ReadVector {
            offset: 0,
            size: 41,
        }],
    };
    let s = &slot.secrets;
    let answer = client
        .mutable()
        .read_test_write(&slot.si, &s.we, &s.renew, &s.cancel, &request)
        .await?;
    if !answer.success {
        return Err(OpError::Wrong(
            "the test vectors on the acknowledged version failed".into(),
        ));
    }
    for (shnum, held) in slot.held.iter().enumerate() {
        let got = answer
            .data
            .get(&(shnum as u64))
            .map(|reads| reads.first().map(|r| r.to_vec()));
        let want = held.as_ref().map(|v| Some(v.data[..41].to_vec()));
        if got != want {
            return Err(OpError::Wrong(format!(
                "share {shnum}: the read vector saw {got:?}, not the header it tested"
            )));
        }
    }
    Ok(())
}
