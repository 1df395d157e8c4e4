//! Crash safety, tried the way it fails in production: the real `swamp-server` binary,
//! SIGKILLed at a random moment under 200 concurrent uploads and read-test-writes from
//! several clients, again and again, sometimes a second time during its recovery, and
//! restarted on the same port. After each restart every acknowledged share and slot
//! version must be there byte-exact, no partial share may be visible, and the feed
//! journal must agree with the files (`docs/durability.md`).
//!
//! The run is seeded: the seed is printed, and `SWAMP_CRASH_SEED=<seed>` replays the
//! same data, sizes and kill delays (the interleaving itself is up to the machine).

mod load;
mod model;
mod verify;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use swamp_client::StorageClient;
use swamp_proto::StorageIndex;
use swamp_tests::child::NodeProcess;
use tokio::task::JoinSet;

use load::{Shared, Worked};
use model::{Slot, SlotRound, Upload};

const ROUNDS: u64 = 5;
/// Operations in flight at once: one per worker.
const WORKERS: usize = 200;
/// Of which write slots (one slot each, so its expected state is always known; the
/// second half of them also delete shares now and then).
const SLOT_WORKERS: usize = 40;
/// Of which add leases to the slots and to earlier rounds' shares.
const LEASE_WORKERS: usize = 10;
/// Of which write megabytes at a time in the checkpoint round (see `Slot::big`).
const BIG_SLOT_WORKERS: usize = 8;
/// From the restart that ends round `SMALL_HISTORY_FROM - 1` on, the node keeps 50
/// events of exact feed history: it compacts its journal as it runs, and answers a
/// round's cursor with latest states.
const SMALL_HISTORY_FROM: u64 = 3;
/// Storage clients (each with its own connections) the workers share.
const CLIENTS: usize = 4;
/// The kill comes once this many shares and slot writes were acknowledged in the
/// round (whatever the machine's speed, there is something to lose)...
const ACKED_BEFORE_KILL: (usize, usize) = (40, 80);
/// In this round, also once the node has checkpointed its redo while running (every
/// 64 MiB of slot writes, which the big slots provide)...
const CHECKPOINT_ROUND: u64 = ROUNDS - 1;
/// ... and then after this many milliseconds more (drawn per round).
const KILL_AFTER_MS: std::ops::Range<u64> = 0..1000;
/// A failure guard: the acknowledgements above come within this.
const ACKED_WITHIN: Duration = Duration::from_secs(60);
/// A failure guard: the workers end once their requests fail.
const WORKERS_END_WITHIN: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_repeated_sigkill() {
    let seed = std::env::var("SWAMP_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    println!("crash test seed {seed} (replay: SWAMP_CRASH_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut node = NodeProcess::create();
    node.start().await;
    let mut slots: Vec<Slot> = (0..SLOT_WORKERS)
        .map(|i| Slot::new(&mut rng, i >= SLOT_WORKERS / 2))
        .collect();
    let mut uploads: Vec<Upload> = Vec::new();
    let first = verify::head(&client(&node)).await;

    for round in 0..ROUNDS {
        let began = Instant::now();
        let since = verify::head(&client(&node)).await;
        let checkpoint_before = checkpoint(&node);
        let kill_after = Duration::from_millis(rng.random_range(KILL_AFTER_MS));
        let await_checkpoint = round == CHECKPOINT_ROUND;
        for (i, slot) in slots.iter_mut().enumerate() {
            slot.big = await_checkpoint && i < BIG_SLOT_WORKERS;
        }
        let mut lease_targets: Vec<StorageIndex> = slots.iter().map(|s| s.si).collect();
        lease_targets.extend(uploads.iter().map(|u| u.si));
        let mut load = load_then_kill(
            &mut node,
            &mut rng,
            round,
            slots,
            lease_targets,
            kill_after,
            await_checkpoint,
        )
        .await;
        assert_no_failures(&node, seed, round, "during the load", &load.failures);
        let checkpointed = load.checkpoint > checkpoint_before;
        let deletions: usize = load
            .slots
            .iter()
            .flat_map(|(_, r)| &r.acked)
            .map(|w| w.iter().filter(|v| v.is_none()).count())
            .sum();

        // From here on the node keeps little exact history, so it compacts its
        // journal as it goes; the feed then answers old cursors with latest states.
        let exact = round + 1 < SMALL_HISTORY_FROM;
        if !exact {
            node.set_env("SWAMP_FEED_HISTORY_EVENTS", "50");
            node.set_env("SWAMP_FEED_HISTORY_SECONDS", "0");
        }
        restart(&mut node, &mut rng).await;
        let client = client(&node);
        let (settled, events, failures) =
            check_round(&client, since, exact, &mut load.uploads, load.slots).await;
        slots = settled;
        assert_no_failures(&node, seed, round, "after the restart", &failures);

        let shares = load.uploads.iter().flat_map(|u| &u.shares);
        let acked = shares.clone().filter(|s| s.acked).count();
        let seen = shares.clone().filter(|s| s.seen && !s.acked).count();
        println!(
            "round {round}: killed {kill_after:?} after the first acknowledgements; {} uploads \
             ({acked} shares acknowledged, {seen} more complete, {} cut off), {} slot writes \
             acknowledged ({deletions} share deletions), {} leases added, {} events ({}), checkpoint while running: {checkpointed}; {:?}",
            load.uploads.len(),
            shares.count() - acked - seen,
            load.writes_acked,
            load.leases_added,
            events,
            if exact { "exact" } else { "latest states" },
            began.elapsed()
        );
        uploads.append(&mut load.uploads);
    }

    // Every share of every round is still there, and the journal's latest state of
    // each slot since the first round is what the slot holds.
    let client = client(&node);
    let (present, mut failures) = verify::uploads(&client, &mut uploads).await;
    let sis: Vec<StorageIndex> = slots.iter().map(|s| s.si).collect();
    let events = verify::events_since(&client, first, &sis).await;
    failures.extend(verify::feed_slots_latest(&events, &slots));
    let mut sis: Vec<StorageIndex> = uploads.iter().map(|u| u.si).collect();
    sis.extend(slots.iter().map(|s| s.si));
    let snapshot = verify::snapshot(&client, &sis).await;
    failures.extend(verify::snapshot_matches(
        &snapshot, &slots, &uploads, &present,
    ));
    assert_no_failures(&node, seed, ROUNDS, "at the end", &failures);
    node.kill().await;
}

/// Starts the node again after a kill; half the time kills it once more first, while
/// it replays its journal.
async fn restart(node: &mut NodeProcess, rng: &mut StdRng) {
    if rng.random_bool(0.5) {
        node.spawn();
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..100))).await;
        node.kill().await;
    }
    node.start().await;
}

/// After the restart that ends a round: the round's uploads and slots on the node, and
/// the feed since the round began (`exact`: every change, else latest states) and a
/// snapshot against them. Returns the slots as they now are, the number of events,
/// and the failures.
async fn check_round(
    client: &StorageClient,
    since: swamp_proto::feed::Cursor,
    exact: bool,
    uploads: &mut [Upload],
    slot_rounds: Vec<(Slot, SlotRound)>,
) -> (Vec<Slot>, usize, Vec<String>) {
    let (present, mut failures) = verify::uploads(client, uploads).await;
    let mut settled = Vec::with_capacity(slot_rounds.len());
    for (mut slot, round) in slot_rounds {
        if let Err(why) = verify::settle_slot(client, &mut slot, &round).await {
            failures.push(why);
        }
        settled.push((slot, round));
    }
    let mut sis: Vec<StorageIndex> = settled.iter().map(|(s, _)| s.si).collect();
    sis.extend(uploads.iter().map(|u| u.si));
    let events = verify::events_since(client, since, &sis).await;
    failures.extend(verify::feed_uploads(&events, uploads, &present));
    failures.extend(verify::feed_slots(&events, &settled, exact));
    let slots: Vec<Slot> = settled.into_iter().map(|(slot, _)| slot).collect();
    let snapshot = verify::snapshot(client, &sis).await;
    failures.extend(verify::snapshot_matches(
        &snapshot, &slots, uploads, &present,
    ));
    (slots, events.len(), failures)
}

/// The node's redo checkpoint (a sequence number; 0 before the first).
fn checkpoint(node: &NodeProcess) -> u64 {
    std::fs::read_to_string(node.storage_dir().join("swamp-feed/checkpoint"))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

/// A client of the node as it runs now.
fn client(node: &NodeProcess) -> StorageClient {
    StorageClient::new(node.nurl()).expect("client")
}

/// What one round of load did.
struct Load {
    uploads: Vec<Upload>,
    /// Each slot with its round.
    slots: Vec<(Slot, SlotRound)>,
    writes_acked: usize,
    leases_added: usize,
    /// The redo checkpoint just before the kill.
    checkpoint: u64,
    failures: Vec<String>,
}

/// Runs the workers against the node, kills it after `kill_after`, and returns what
/// they did.
async fn load_then_kill(
    node: &mut NodeProcess,
    rng: &mut StdRng,
    round: u64,
    slots: Vec<Slot>,
    lease_targets: Vec<StorageIndex>,
    kill_after: Duration,
    await_checkpoint: bool,
) -> Load {
    let clients: Vec<StorageClient> = (0..CLIENTS).map(|_| client(node)).collect();
    let shared = Arc::new(Shared::default());
    let mut upload_tasks = JoinSet::new();
    let mut slot_tasks = JoinSet::new();
    let mut lease_tasks = JoinSet::new();
    let lease_targets = Arc::new(lease_targets);
    for (i, slot) in slots.into_iter().enumerate() {
        let worker_rng = StdRng::seed_from_u64(rng.random());
        let task = load::slot_writes(
            clients[i % CLIENTS].clone(),
            worker_rng,
            shared.clone(),
            slot,
        );
        slot_tasks.spawn(task);
    }
    for i in SLOT_WORKERS..SLOT_WORKERS + LEASE_WORKERS {
        let worker_rng = StdRng::seed_from_u64(rng.random());
        lease_tasks.spawn(load::leases(
            clients[i % CLIENTS].clone(),
            worker_rng,
            shared.clone(),
            lease_targets.clone(),
        ));
    }
    for i in SLOT_WORKERS + LEASE_WORKERS..WORKERS {
        let worker_rng = StdRng::seed_from_u64(rng.random());
        upload_tasks.spawn(load::uploads(
            clients[i % CLIENTS].clone(),
            worker_rng,
            shared.clone(),
        ));
    }
    let (shares, writes) = ACKED_BEFORE_KILL;
    let before = checkpoint(node);
    let ready = |shared: &Shared| {
        let (s, w) = shared.acked();
        s >= shares && w >= writes && (!await_checkpoint || checkpoint(node) > before)
    };
    let ready = tokio::time::timeout(ACKED_WITHIN, shared.wait_until(ready)).await;
    assert!(
        ready.is_ok(),
        "round {round}: not {shares} shares and {writes} slot writes acknowledged (and a \
         checkpoint: {await_checkpoint}) within {ACKED_WITHIN:?}; got {:?}; {}",
        shared.acked(),
        node.log_tail(20)
    );
    tokio::time::sleep(kill_after).await;
    shared.stop.store(true, Ordering::SeqCst);
    let checkpoint = checkpoint(node);
    node.kill().await;

    let mut failures = Vec::new();
    let mut note = |failure: Option<String>| failures.extend(failure);
    let mut uploads = Vec::new();
    let mut slot_rounds = Vec::new();
    let mut leases_added = 0;
    let ended = tokio::time::timeout(WORKERS_END_WITHIN, async {
        while let Some(worked) = upload_tasks.join_next().await {
            let Worked { output, failure } = worked.expect("upload worker");
            uploads.extend(output);
            note(failure);
        }
        while let Some(worked) = slot_tasks.join_next().await {
            let Worked { output, failure } = worked.expect("slot worker");
            slot_rounds.push(output);
            note(failure);
        }
        while let Some(worked) = lease_tasks.join_next().await {
            let Worked { output, failure } = worked.expect("lease worker");
            leases_added += output;
            note(failure);
        }
    })
    .await;
    slot_rounds.sort_by_key(|(slot, _): &(Slot, SlotRound)| slot.si);
    assert!(
        ended.is_ok(),
        "round {round}: workers still busy {WORKERS_END_WITHIN:?} after the kill"
    );
    Load {
        uploads,
        slots: slot_rounds,
        writes_acked: shared.writes_acked.load(Ordering::SeqCst),
        leases_added,
        checkpoint,
        failures,
    }
}

fn assert_no_failures(node: &NodeProcess, seed: u64, round: u64, when: &str, failures: &[String]) {
    if failures.is_empty() {
        return;
    }
    let shown: Vec<&String> = failures.iter().take(20).collect();
    panic!(
        "seed {seed}, round {round}, {when}: {} failures (node started {} times), first ones:\n{}\n{}",
        failures.len(),
        node.starts(),
        shown
            .iter()
            .map(|s| format!("- {s}"))
            .collect::<Vec<_>>()
            .join("\n"),
        node.log_tail(40)
    );
}
