//! Resuming a feed across a restart after the journal was compacted.
//!
//! Compaction keeps the records whose redo is not yet checkpointed even when they are
//! older than the exact-history ring, so the compacted journal can hold
//! `[old slot write] [gap] [ring]`. If every record went back into the ring at start,
//! the exact replay, which counts its way into the ring by sequence number, would skip
//! events a cursor after the gap must get (it did, before the ring was rebuilt from
//! the consecutive run at the journal's end only).

use swamp_proto::ShareNumber;
use swamp_tests::feed::poll;
use swamp_tests::{Secrets, TestOptions, TestServer, mdmf_share, random_si, write_slot};

#[tokio::test]
async fn a_cursor_resumes_exactly_after_compaction_and_a_restart_with_more_history() {
    let server = TestServer::start_with(TestOptions::short_history(2)).await;
    let (a, b, s) = (random_si(), random_si(), Secrets::random());
    // A slot write: its redo stays in the journal until a checkpoint.
    write_slot(&server.client, &a, &s, 0, &mdmf_share(1, [1; 32], b"")).await;
    // Enough records without redo (advisories) for a compaction past the ring's 2.
    let m = server.client.mutable();
    for _ in 0..1100 {
        m.advise_corrupt(&a, ShareNumber::new(0), "test")
            .await
            .unwrap();
    }
    let before = server.feeds.head();
    write_slot(&server.client, &b, &s, 0, &mdmf_share(7, [7; 32], b"")).await;
    let (dir, storage_dir, identity) = server.stop().await;
    let _keep = dir;

    // The operator raises the history kept (the default), and restarts.
    let server = TestServer::start_on(storage_dir, identity, TestOptions::default()).await;
    let batch = poll(&server, &format!("si={b}&since={before}&wait=0")).await;
    assert_eq!(
        batch.events.len(),
        1,
        "the write to {b} after the cursor: {:?}",
        batch.events
    );
    swamp_tests::feed::expect_changed(&batch.events[0], &b, 0, 7, [7; 32], "after restart");
}
