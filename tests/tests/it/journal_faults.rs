//! The feed journal's fsync-failure policy over real TLS: an `EIO` injected into the
//! journal's sync (through the storage layer's fault seam) makes that read-test-write
//! and every later one a `503` that says why, even once the disk answers again; reads
//! go on; a restart replays the journal as it is on disk and serves writes again.

use http::StatusCode;
use swamp_proto::ShareNumber;
use swamp_proto::v1::ReadTestWriteRequest;
use swamp_tests::{Secrets, random_si, slot_write, start_with_faults};

#[tokio::test]
async fn a_failed_journal_sync_is_a_503_until_a_restart_replays_the_journal() {
    let (server, plan) = start_with_faults().await;
    let (si, s) = (random_si(), Secrets::random());
    let shnum = ShareNumber::new(0);
    let m = server.client.mutable();
    let requests: Vec<ReadTestWriteRequest> = [&b"old version"[..], b"NEW", b"later"]
        .into_iter()
        .map(|data| slot_write(0, 0, data))
        .collect();
    let rtw = |i: usize| m.read_test_write(&si, &s.we, &s.renew, &s.cancel, &requests[i]);
    rtw(0).await.unwrap();

    plan.fail_journal_syncs(5); // EIO
    for (i, healed) in [(1, false), (2, true)] {
        if healed {
            // The disk answers again; a sync after a failed one proves nothing.
            plan.heal();
        }
        let err = rtw(i).await.unwrap_err();
        assert_eq!(err.status(), Some(StatusCode::SERVICE_UNAVAILABLE), "{err}");
        assert!(
            err.to_string()
                .contains("storage needs a restart after a disk error"),
            "{err}"
        );
    }
    // Reads go on. The failed write's record is in the journal file, so it was
    // applied (its outcome was unknown to the client).
    let back = m.read_share_chunk(&si, shnum, 0, 100).await.unwrap();
    assert_eq!(&back[..], b"NEW version");

    let server = server.restart(|_| {}).await;
    let m = server.client.mutable();
    let back = m.read_share_chunk(&si, shnum, 0, 100).await.unwrap();
    assert_eq!(&back[..], b"NEW version", "replayed from the journal");
    m.read_test_write(&si, &s.we, &s.renew, &s.cancel, &slot_write(0, 0, b"after"))
        .await
        .unwrap();
    let back = m.read_share_chunk(&si, shnum, 0, 100).await.unwrap();
    assert_eq!(&back[..], b"afterersion");
    server.stop().await;
}
