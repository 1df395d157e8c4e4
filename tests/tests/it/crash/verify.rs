//! After a restart: what the node holds, compared with what the clients were told.
//! Every check returns the failures it found (as sentences naming the share), so one
//! run reports all of them.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use swamp_client::StorageClient;
use swamp_proto::feed::{Cursor, FeedEvent, RootHash};
use swamp_proto::{ShareNumber, StorageIndex};
use swamp_tests::feed::poll_with;

use super::model::{SLOT_SHARES, Slot, SlotRound, Upload, Version};

/// A share: its storage index and number.
type ShareKey = (StorageIndex, ShareNumber);
/// What the feed says of a slot share's version: seqnum, root hash, data length.
type SlotState = (Option<u64>, Option<RootHash>, u64);

/// The feed's view of a version.
fn state_of(v: &Version) -> SlotState {
    (
        Some(v.seqnum),
        Some(RootHash(v.root_hash)),
        v.data.len() as u64,
    )
}

/// Requests in flight while verifying.
const PARALLEL: usize = 32;
/// Storage indexes per feed request (the query string stays well under 16 KiB).
const SIS_PER_POLL: usize = 400;

/// Which shares of each upload the node holds. An acknowledged (or earlier seen)
/// share must be there; any share there must read back byte-exact and whole, so a
/// partial upload is never visible. Complete unacknowledged shares are marked `seen`.
pub async fn uploads(
    client: &StorageClient,
    uploads: &mut [Upload],
) -> (Vec<BTreeSet<ShareNumber>>, Vec<String>) {
    let results: Vec<Result<BTreeSet<ShareNumber>, String>> =
        futures::stream::iter(uploads.iter().map(|u| upload_state(client, u)))
            .buffered(PARALLEL)
            .collect()
            .await;
    let mut failures = Vec::new();
    let mut present = Vec::with_capacity(uploads.len());
    for (upload, result) in uploads.iter_mut().zip(results) {
        match result {
            Ok(held) => {
                for share in &mut upload.shares {
                    share.seen |= held.contains(&share.shnum);
                }
                present.push(held);
            }
            Err(why) => {
                failures.push(why);
                present.push(BTreeSet::new());
            }
        }
    }
    (present, failures)
}

async fn upload_state(
    client: &StorageClient,
    upload: &Upload,
) -> Result<BTreeSet<ShareNumber>, String> {
    let imm = client.immutable();
    let si = &upload.si;
    let held = imm
        .list_shares(si)
        .await
        .map_err(|e| format!("{si}: listing shares: {e}"))?;
    for share in &upload.shares {
        let n = share.shnum;
        if !held.contains(&n) {
            if share.required() {
                return Err(format!(
                    "{si} share {n}: acknowledged ({}) or seen ({}), but missing",
                    share.acked, share.seen
                ));
            }
            continue;
        }
        let back = imm
            .read_share_chunk(si, n, 0, share.data.len() as u64 + 1)
            .await
            .map_err(|e| format!("{si} share {n}: reading: {e}"))?;
        if back != share.data {
            return Err(format!(
                "{si} share {n} (acknowledged: {}): {}",
                share.acked,
                difference(&back, &share.data)
            ));
        }
    }
    if let Some(stray) = held
        .iter()
        .find(|n| !upload.shares.iter().any(|s| s.shnum == **n))
    {
        return Err(format!("{si}: share {stray} was never uploaded"));
    }
    Ok(held)
}

/// How `got` differs from `want`, in a line.
fn difference(got: &[u8], want: &[u8]) -> String {
    let first = got.iter().zip(want).position(|(a, b)| a != b);
    let zeros = got.iter().filter(|b| **b == 0).count();
    format!(
        "read {} bytes, wrote {}; first difference at {first:?}; {zeros} zero bytes read",
        got.len(),
        want.len()
    )
}

/// Reads each share of a slot and decides which version it holds: the last one
/// acknowledged, or the one in flight at the kill. Anything else (an older version,
/// a torn mix, a missing share) is a failure. On success `slot.held` is what it holds.
pub async fn settle_slot(
    client: &StorageClient,
    slot: &mut Slot,
    round: &SlotRound,
) -> Result<(), String> {
    let m = client.mutable();
    let si = slot.si;
    let listed = m
        .list_shares(&si)
        .await
        .map_err(|e| format!("slot {si}: listing shares: {e}"))?;
    for shnum in 0..SLOT_SHARES {
        let k = usize::from(shnum);
        let n = ShareNumber::new(shnum);
        let acked = slot.held[k].clone();
        // `Some(None)`: the write in flight deletes the share.
        let pending = round.pending.as_ref().map(|p| p[k].clone());
        let found = if listed.contains(&n) {
            let longest = [acked.as_ref(), pending.as_ref().and_then(Option::as_ref)]
                .iter()
                .flatten()
                .map(|v| v.data.len())
                .max()
                .unwrap_or(0);
            let bytes = m
                .read_share_chunk(&si, n, 0, longest as u64 + 1)
                .await
                .map_err(|e| format!("slot {si} share {n}: reading: {e}"))?;
            Some(bytes)
        } else {
            None
        };
        let holds = |v: &Option<Version>| v.as_ref().map(|v| &v.data) == found.as_ref();
        if holds(&acked) {
            continue;
        }
        if let Some(pending) = pending.as_ref().filter(|p| holds(p)) {
            slot.held[k] = pending.clone();
            continue;
        }
        let seqnum = |v: &Option<Version>| v.as_ref().map(|v| v.seqnum);
        return Err(format!(
            "slot {si} share {n}: {} (acknowledged: seqnum {:?}; in flight: {:?}; None is deleted)",
            describe_slot_share(found.as_ref(), round, k),
            seqnum(&acked),
            pending.as_ref().map(seqnum),
        ));
    }
    Ok(())
}

/// What a slot share that matches neither allowed version holds instead.
fn describe_slot_share(found: Option<&Bytes>, round: &SlotRound, k: usize) -> String {
    let Some(bytes) = found else {
        return "missing".into();
    };
    let older = std::iter::once(&round.start[k])
        .chain(round.acked.iter().map(|w| &w[k]))
        .flatten()
        .find(|v| v.data == *bytes);
    match older {
        Some(v) => format!("holds the older version {} (a lost write)", v.seqnum),
        None => {
            let header: Vec<u8> = bytes.iter().take(9).copied().collect();
            format!(
                "holds {} bytes matching no version written (torn), starting {header:02x?}",
                bytes.len()
            )
        }
    }
}

/// The feed's head now (a poll that finds nothing and returns at once).
pub async fn head(client: &StorageClient) -> Cursor {
    let nobody = StorageIndex::from_bytes([0; 16]);
    poll_with(client, &format!("si={nobody}&wait=0"))
        .await
        .cursor
}

/// Every event after `since` for these storage indexes.
pub async fn events_since(
    client: &StorageClient,
    since: Cursor,
    sis: &[StorageIndex],
) -> Vec<FeedEvent> {
    poll_all(client, sis, &format!("since={since}&wait=0")).await
}

/// A snapshot of these storage indexes (`snapshot` events, then `synced`).
pub async fn snapshot(client: &StorageClient, sis: &[StorageIndex]) -> Vec<FeedEvent> {
    poll_all(client, sis, "snapshot=true&wait=0").await
}

async fn poll_all(client: &StorageClient, sis: &[StorageIndex], query: &str) -> Vec<FeedEvent> {
    let batches: Vec<Vec<FeedEvent>> = futures::stream::iter(sis.chunks(SIS_PER_POLL))
        .map(|chunk| async move {
            let list: Vec<String> = chunk.iter().map(ToString::to_string).collect();
            let batch = poll_with(client, &format!("si={}&{query}", list.join(","))).await;
            Ok::<_, ()>(batch.events)
        })
        .buffered(4)
        .try_collect()
        .await
        .expect("polls do not fail");
    batches.into_iter().flatten().collect()
}

/// The feed after `since` against the uploads of that round: every acknowledged
/// share has its `share_added`, and every `share_added` names a share the node holds
/// whole (a complete share whose 201 was lost may lack its event: the node had not
/// synced the record, and the writer was not answered).
pub fn feed_uploads(
    events: &[FeedEvent],
    uploads: &[Upload],
    present: &[BTreeSet<ShareNumber>],
) -> Vec<String> {
    let mut added: BTreeMap<ShareKey, u64> = BTreeMap::new();
    let mut failures = Vec::new();
    for event in events {
        match event {
            FeedEvent::ShareAdded {
                si, shnum, size, ..
            } if added.insert((*si, *shnum), *size).is_some() => {
                failures.push(format!("{si} share {shnum}: two share_added events"));
            }
            FeedEvent::Reset { .. } => failures.push(format!("unexpected {event:?}")),
            _ => {}
        }
    }
    for (upload, held) in uploads.iter().zip(present) {
        for share in &upload.shares {
            let key = (upload.si, share.shnum);
            let event = added.remove(&key);
            let size = share.data.len() as u64;
            match event {
                Some(s) if s != size => failures.push(format!(
                    "{} share {}: share_added says {s} bytes, the share has {size}",
                    upload.si, share.shnum
                )),
                Some(_) if !held.contains(&share.shnum) => failures.push(format!(
                    "{} share {}: share_added, but the node does not hold it",
                    upload.si, share.shnum
                )),
                None if share.acked => failures.push(format!(
                    "{} share {}: acknowledged, but no share_added event",
                    upload.si, share.shnum
                )),
                _ => {}
            }
        }
    }
    failures.extend(
        added
            .keys()
            .map(|(si, n)| format!("{si} share {n}: share_added for an upload never made")),
    );
    failures
}

/// The feed after the round's start against each slot's writes: the `slot_changed`
/// events of a share name versions written this round, in order, include every
/// acknowledged one (if the node still had the `exact` history; else only the
/// latest), and the last of them is what the share holds now (no events: it holds
/// what it held at the start).
pub fn feed_slots(events: &[FeedEvent], slots: &[(Slot, SlotRound)], exact: bool) -> Vec<String> {
    let mut changes = slot_changes(events);
    let mut failures = Vec::new();
    for (slot, round) in slots {
        for shnum in 0..SLOT_SHARES {
            let k = usize::from(shnum);
            let seen = changes
                .remove(&(slot.si, ShareNumber::new(shnum)))
                .unwrap_or_default();
            let written: Vec<Option<SlotState>> = round
                .acked
                .iter()
                .chain(&round.pending)
                .map(|w| w[k].as_ref().map(state_of))
                .collect();
            // Each event matches the next write it can (versions are unique, and a
            // share is deleted only when it exists).
            let mut matched = BTreeSet::new();
            let mut next = 0;
            for event in &seen {
                match written[next..].iter().position(|w| w == event) {
                    Some(at) => {
                        matched.insert(next + at);
                        next += at + 1;
                    }
                    None => failures.push(format!(
                        "slot {} share {shnum}: event {event:?} matches no later write",
                        slot.si
                    )),
                }
            }
            if exact && let Some(missed) = (0..round.acked.len()).find(|i| !matched.contains(i)) {
                failures.push(format!(
                    "slot {} share {shnum}: acknowledged write {missed} of the round ({:?}) has no event",
                    slot.si, written[missed]
                ));
            }
            let latest = match seen.last() {
                Some(event) => *event,
                None => round.start[k].as_ref().map(state_of),
            };
            let holds = slot.held[k].as_ref().map(state_of);
            if latest != holds {
                failures.push(format!(
                    "slot {} share {shnum}: the feed's latest is {latest:?}, the share holds {holds:?}",
                    slot.si
                ));
            }
        }
    }
    failures
}

/// Each slot share's `slot_changed` (`Some`) and `slot_deleted` (`None`) events, in order.
fn slot_changes(events: &[FeedEvent]) -> BTreeMap<ShareKey, Vec<Option<SlotState>>> {
    let mut changes: BTreeMap<ShareKey, Vec<Option<SlotState>>> = BTreeMap::new();
    for event in events {
        match event {
            FeedEvent::SlotChanged {
                si,
                shnum,
                seqnum,
                root_hash,
                length,
                ..
            } => changes
                .entry((*si, *shnum))
                .or_default()
                .push(Some((*seqnum, *root_hash, *length))),
            FeedEvent::SlotDeleted { si, shnum, .. } => {
                changes.entry((*si, *shnum)).or_default().push(None);
            }
            _ => {}
        }
    }
    changes
}

/// A snapshot against the node's shares: one `snapshot` entry per share held (slots
/// with the seqnum, root hash and length of the version held; immutable shares with
/// their size), and nothing else.
pub fn snapshot_matches(
    events: &[FeedEvent],
    slots: &[Slot],
    uploads: &[Upload],
    present: &[BTreeSet<ShareNumber>],
) -> Vec<String> {
    let mut expected: BTreeMap<ShareKey, (String, SlotState)> = BTreeMap::new();
    for slot in slots {
        for (k, held) in slot.held.iter().enumerate() {
            if let Some(v) = held {
                let n = ShareNumber::new(k as u8);
                expected.insert((slot.si, n), ("mutable".into(), state_of(v)));
            }
        }
    }
    for (upload, held) in uploads.iter().zip(present) {
        for share in upload.shares.iter().filter(|s| held.contains(&s.shnum)) {
            expected.insert(
                (upload.si, share.shnum),
                ("immutable".into(), (None, None, share.data.len() as u64)),
            );
        }
    }
    let mut got = BTreeMap::new();
    let mut failures = Vec::new();
    for event in events {
        match event {
            FeedEvent::Snapshot {
                si,
                shnum,
                seqnum,
                root_hash,
                length,
                kind,
                ..
            } => {
                got.insert(
                    (*si, *shnum),
                    (kind.clone(), (*seqnum, *root_hash, *length)),
                );
            }
            FeedEvent::Synced { .. } => {}
            other => failures.push(format!("unexpected event in a snapshot: {other:?}")),
        }
    }
    for (key, want) in &expected {
        match got.remove(key) {
            Some(entry) if entry == *want => {}
            entry => failures.push(format!(
                "{} share {}: snapshot says {entry:?}, the node holds {want:?}",
                key.0, key.1
            )),
        }
    }
    failures.extend(
        got.keys()
            .map(|(si, n)| format!("{si} share {n}: in the snapshot, not on the node")),
    );
    failures
}

/// The feed since the first round against the slots now: for each share, the
/// `slot_changed` seqnums rise, and the last event is the version the share holds.
pub fn feed_slots_latest(events: &[FeedEvent], slots: &[Slot]) -> Vec<String> {
    let mut changes = slot_changes(events);
    let mut failures = Vec::new();
    for slot in slots {
        for (k, held) in slot.held.iter().enumerate() {
            let seen = changes
                .remove(&(slot.si, ShareNumber::new(k as u8)))
                .unwrap_or_default();
            let seqnums: Vec<u64> = seen.iter().flatten().filter_map(|s| s.0).collect();
            if seqnums.windows(2).any(|w| w[0] >= w[1]) {
                failures.push(format!(
                    "slot {} share {k}: seqnums out of order: {seqnums:?}",
                    slot.si
                ));
            }
            let latest = seen.last().copied().flatten();
            let holds = held.as_ref().map(state_of);
            if latest != holds {
                failures.push(format!(
                    "slot {} share {k}: the feed's latest since the start is {latest:?}, the share holds {holds:?}",
                    slot.si
                ));
            }
        }
    }
    failures
}
