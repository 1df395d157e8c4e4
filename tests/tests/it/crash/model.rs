//! What the clients did: every immutable share and every slot version they sent, and
//! whether the node acknowledged it. After each crash the node is compared with this.

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, RngExt};
use swamp_proto::{ShareNumber, StorageIndex};
use swamp_tests::{Secrets, mdmf_share};

/// Shares per slot; each read-test-write writes all of them.
pub const SLOT_SHARES: u8 = 2;

/// One storage index's upload.
pub struct Upload {
    pub si: StorageIndex,
    pub shares: Vec<UploadedShare>,
}

/// One share of an upload.
pub struct UploadedShare {
    pub shnum: ShareNumber,
    pub data: Bytes,
    /// The node answered 201 to its last write.
    pub acked: bool,
    /// Seen complete after a restart (its 201 was lost with the node): from then on
    /// it must stay.
    pub seen: bool,
}

impl UploadedShare {
    /// Whether the node must hold it.
    pub fn required(&self) -> bool {
        self.acked || self.seen
    }
}

impl Upload {
    /// A new upload of 1 to 3 shares of one random size (log-uniform, 1 B to 128 KiB).
    pub fn random(rng: &mut StdRng) -> Self {
        let size = log_uniform(rng, 1, 17);
        let count = rng.random_range(1..=3u8);
        let first = rng.random_range(0..=10u8);
        let shares = (first..first + count)
            .map(|n| UploadedShare {
                shnum: ShareNumber::new(n),
                data: random_bytes(rng, size),
                acked: false,
                seen: false,
            })
            .collect();
        Self {
            si: StorageIndex::from_bytes(rng.random()),
            shares,
        }
    }
}

/// One version of one slot share: an MDMF header (seqnum, root hash) and a tail.
#[derive(Clone, PartialEq, Eq)]
pub struct Version {
    pub seqnum: u64,
    pub root_hash: [u8; 32],
    pub data: Bytes,
}

impl Version {
    /// A version with a random root hash and a tail of 0 B to 64 KiB (log-uniform),
    /// or for a big slot 256 KiB to 2 MiB.
    pub fn random(rng: &mut StdRng, seqnum: u64, big: bool) -> Self {
        let root_hash = rng.random();
        let len = if big {
            rng.random_range(256 << 10..=2 << 20)
        } else {
            log_uniform(rng, 0, 16)
        };
        let tail = random_bytes(rng, len);
        Self {
            seqnum,
            root_hash,
            data: Bytes::from(mdmf_share(seqnum, root_hash, &tail)),
        }
    }
}

/// What each share of a slot holds (`None`: absent, or deleted).
pub type SlotShares = Vec<Option<Version>>;

/// Of the shares a write could delete, the part it deletes (`new_length` 0).
pub const DELETE_CHANCE: f64 = 0.15;

/// A slot, written by one worker at a time, so its expected state is always known.
pub struct Slot {
    pub si: StorageIndex,
    pub secrets: Secrets,
    /// What each share holds as far as the clients know.
    pub held: SlotShares,
    pub next_seqnum: u64,
    /// Deletes a share now and then (`DELETE_CHANCE`).
    pub deletes: bool,
    /// Writes megabytes at a time: enough redo for the node to checkpoint while it
    /// runs (every 64 MiB).
    pub big: bool,
}

impl Slot {
    /// A slot none of whose shares exist yet.
    pub fn new(rng: &mut StdRng, deletes: bool) -> Self {
        Self {
            si: StorageIndex::from_bytes(rng.random()),
            secrets: Secrets::random(),
            held: vec![None; usize::from(SLOT_SHARES)],
            next_seqnum: 1,
            deletes,
            big: false,
        }
    }
}

/// One round of writes to a slot.
pub struct SlotRound {
    /// What the shares held when the round began.
    pub start: SlotShares,
    /// Acknowledged writes (`success: true`), in order: what each share then holds.
    pub acked: Vec<SlotShares>,
    /// The write in flight when the node was killed: it may or may not have happened.
    pub pending: Option<SlotShares>,
}

/// `len` random bytes.
pub fn random_bytes(rng: &mut StdRng, len: usize) -> Bytes {
    let mut out = vec![0u8; len];
    rng.fill_bytes(&mut out);
    Bytes::from(out)
}

/// A length from `min` to `2^max_bits`, with each power of two as likely as the next
/// (small shares are frequent, large ones present).
fn log_uniform(rng: &mut StdRng, min: usize, max_bits: u32) -> usize {
    let bits = rng.random_range(0..=max_bits);
    rng.random_range(min..=(1usize << bits).max(min))
}
