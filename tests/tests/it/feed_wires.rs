//! Every feed behaviour the protocol promises, on every transport (WebSocket with JSON
//! and with CBOR frames, SSE, long-poll): a live event after a read-test-write;
//! snapshot, synced, then live, with no gap and no duplicate; resume after a dropped
//! connection with nothing lost; resume across a server restart; reset after an epoch
//! change, then live again; shutdown ends the feed properly.

use std::time::Duration;

use swamp_proto::StorageIndex;
use swamp_proto::feed::{Cursor, FeedEvent, ResetReason};
use swamp_tests::feed::expect_changed;
use swamp_tests::tap::{Ending, Tap, Wire, refusal, waiting_poll_ends};
use swamp_tests::{Secrets, TestOptions, TestServer, mdmf_share, random_si, write_slot};

/// Asserts `event` is `slot_changed` for (si, shnum, seqnum) with a root hash of
/// `[seqnum; 32]`, and returns its cursor.
fn changed(wire: Wire, event: &FeedEvent, si: &StorageIndex, shnum: u8, seqnum: u64) -> Cursor {
    expect_changed(event, si, shnum, seqnum, [seqnum as u8; 32], wire)
}

/// Writes version `seqnum` (root hash `[seqnum; 32]`) to share `shnum` of `si`.
async fn write(server: &TestServer, si: &StorageIndex, s: &Secrets, shnum: u64, seqnum: u64) {
    let share = mdmf_share(seqnum, [seqnum as u8; 32], b"payload");
    write_slot(&server.client, si, s, shnum, &share).await;
}

#[tokio::test]
async fn every_wire_delivers_a_read_test_write() {
    let server = TestServer::start().await;
    let s = Secrets::random();
    for wire in Wire::ALL {
        let si = random_si();
        let mut tap = Tap::open(&server, wire, &[si], "").await;
        write(&server, &si, &s, 2, 7).await;
        let cursor = changed(wire, &tap.next().await, &si, 2, 7);
        assert_eq!(cursor, server.feeds.head(), "{wire:?}");
    }
}

#[tokio::test]
async fn every_wire_sends_snapshot_then_synced_then_live() {
    let server = TestServer::start().await;
    let s = Secrets::random();
    for wire in Wire::ALL {
        let si = random_si();
        write(&server, &si, &s, 0, 3).await;
        write(&server, &si, &s, 4, 3).await;
        let mut tap = Tap::open(&server, wire, &[si], "snapshot=true").await;
        for shnum in [0, 4] {
            match tap.next().await {
                FeedEvent::Snapshot {
                    si: got,
                    shnum: n,
                    seqnum,
                    kind,
                    ..
                } => assert_eq!(
                    (got, n.get(), seqnum, kind.as_str()),
                    (si, shnum, Some(3), "mutable"),
                    "{wire:?}"
                ),
                other => panic!("{wire:?}: expected a snapshot entry, got {other:?}"),
            }
        }
        let synced = match tap.next().await {
            FeedEvent::Synced { cursor } => cursor,
            other => panic!("{wire:?}: expected synced, got {other:?}"),
        };
        assert_eq!(synced, server.feeds.head(), "{wire:?}");
        write(&server, &si, &s, 4, 4).await;
        let live = changed(wire, &tap.next().await, &si, 4, 4);
        assert_eq!(live.seq, synced.seq + 1, "{wire:?}: no gap, no duplicate");
    }
}

#[tokio::test]
async fn every_wire_resumes_after_a_dropped_connection_with_nothing_lost() {
    let server = TestServer::start().await;
    let s = Secrets::random();
    for wire in Wire::ALL {
        let (a, b) = (random_si(), random_si());
        let mut tap = Tap::open(&server, wire, &[a, b], "").await;
        write(&server, &a, &s, 0, 1).await;
        changed(wire, &tap.next().await, &a, 0, 1);
        let cursor = tap.cursor().expect("a cursor after an event");
        drop(tap);

        // While away: two changes followed, one not.
        write(&server, &a, &s, 0, 2).await;
        write(&server, &random_si(), &s, 0, 9).await;
        write(&server, &b, &s, 5, 3).await;

        let mut tap = Tap::open(&server, wire, &[a, b], &format!("since={cursor}")).await;
        changed(wire, &tap.next().await, &a, 0, 2);
        changed(wire, &tap.next().await, &b, 5, 3);
        write(&server, &b, &s, 5, 4).await;
        changed(wire, &tap.next().await, &b, 5, 4);
    }
}

#[tokio::test]
async fn every_wire_resumes_across_a_server_restart() {
    let mut server = TestServer::start().await;
    let s = Secrets::random();
    for wire in Wire::ALL {
        let si = random_si();
        let mut tap = Tap::open(&server, wire, &[si], "").await;
        write(&server, &si, &s, 1, 1).await;
        changed(wire, &tap.next().await, &si, 1, 1);
        let cursor = tap.cursor().expect("a cursor after an event");
        drop(tap);

        server = server.restart(|_| {}).await;
        write(&server, &si, &s, 1, 2).await;

        let mut tap = Tap::open(&server, wire, &[si], &format!("since={cursor}")).await;
        let resumed = changed(wire, &tap.next().await, &si, 1, 2);
        assert_eq!(resumed.epoch, cursor.epoch, "{wire:?}: same epoch");
        assert_eq!(resumed.seq, cursor.seq + 1, "{wire:?}: nothing lost");
    }
}

#[tokio::test]
async fn every_wire_gets_a_reset_after_an_epoch_change_then_live_events() {
    let mut server = TestServer::start().await;
    let s = Secrets::random();
    for wire in Wire::ALL {
        let si = random_si();
        write(&server, &si, &s, 0, 1).await;
        let old = server.feeds.head();

        server = server
            .restart(|storage| std::fs::remove_file(storage.join("swamp-feed/epoch")).unwrap())
            .await;

        let mut tap = Tap::open(&server, wire, &[si], &format!("since={old}")).await;
        match tap.next().await {
            FeedEvent::Reset {
                cursor,
                reason: ResetReason::EpochChanged,
            } => {
                assert_eq!(cursor, server.feeds.head(), "{wire:?}");
                assert_ne!(cursor.epoch, old.epoch, "{wire:?}");
            }
            other => panic!("{wire:?}: expected a reset, got {other:?}"),
        }
        write(&server, &si, &s, 0, 2).await;
        let live = changed(wire, &tap.next().await, &si, 0, 2);
        assert_eq!(live.epoch, server.feeds.head().epoch, "{wire:?}");
    }
}

#[tokio::test]
async fn every_wire_ends_properly_when_the_server_stops() {
    for wire in Wire::ALL {
        let server = TestServer::start().await;
        let si = random_si();
        let ending = if wire == Wire::LongPoll {
            let feeds = std::sync::Arc::clone(&server.feeds);
            let client = server.client.clone();
            let stop = async move {
                tokio::time::timeout(Duration::from_secs(8), server.stop())
                    .await
                    .expect("shutdown does not wait out a long poll");
            };
            waiting_poll_ends(
                &client,
                &format!("si={si}&wait=300"),
                || feeds.counts().1 == 1,
                stop,
            )
            .await
        } else {
            let mut tap = Tap::open(&server, wire, &[si], "").await;
            let s = Secrets::random();
            // An event first, so the stream is known to be live.
            write(&server, &si, &s, 0, 1).await;
            changed(wire, &tap.next().await, &si, 0, 1);
            let stopping = tokio::spawn(server.stop());
            let ending = tap.ending().await;
            tokio::time::timeout(Duration::from_secs(8), stopping)
                .await
                .expect("shutdown does not hang on feeds")
                .unwrap();
            ending
        };
        let expected = match wire {
            Wire::WsJson | Wire::WsCbor => Ending::WsClose(1001, "shutdown".into()),
            Wire::Sse => Ending::SseClose("shutdown".into()),
            Wire::LongPoll => Ending::PollAnswered,
        };
        assert_eq!(ending, expected, "{wire:?}");
    }
}

#[tokio::test]
async fn every_wire_refuses_malformed_subscriptions_with_a_clear_400() {
    let server = TestServer::start().await;
    let auth = server.nurl.swissnum.authorization_header();
    let si = random_si();
    for wire in Wire::ALL {
        for (query, needle) in [
            ("si=nonsense".to_string(), "storage index"),
            (format!("si={si}&since=yesterday"), "cursor"),
            (format!("si={si}&snapshot=maybe"), "true or false"),
            (format!("si={si}&colour=blue"), "unknown query parameter"),
        ] {
            let (status, body) = refusal(&server, wire, &query, Some(&auth)).await;
            assert_eq!(status, 400, "{wire:?} {query}: {body}");
            assert!(body.contains(needle), "{wire:?} {query}: {body}");
        }
    }
}

#[tokio::test]
async fn every_wire_refuses_missing_and_wrong_authorization() {
    let server = TestServer::start().await;
    let query = format!("si={}", random_si());
    for wire in Wire::ALL {
        for auth in [None, Some("Tahoe-LAFS d3Jvbmc="), Some("Bearer x")] {
            let (status, body) = refusal(&server, wire, &query, auth).await;
            assert_eq!(status, 401, "{wire:?} {auth:?}: {body}");
        }
    }
}

#[tokio::test]
async fn every_wire_enforces_the_subscription_and_connection_limits() {
    let server = TestServer::start_with(TestOptions {
        feeds: swamp_server::testing::FeedSettings {
            max_subscriptions_per_connection: 2,
            max_connections: 1,
            ..Default::default()
        },
        ..TestOptions::default()
    })
    .await;
    let auth = server.nurl.swissnum.authorization_header();
    let (a, b, c) = (random_si(), random_si(), random_si());
    // A WebSocket is refused after the upgrade, with close code 4029 (a browser cannot
    // read the body of a refused upgrade); the others with an HTTP status.
    let status = |wire: Wire, http: u16| match wire {
        Wire::WsJson | Wire::WsCbor => 4029,
        Wire::Sse | Wire::LongPoll => http,
    };
    for wire in Wire::ALL {
        let query = format!("si={a}&si={b}&si={c}");
        let (code, text) = refusal(&server, wire, &query, Some(&auth)).await;
        assert_eq!(code, status(wire, 429), "{wire:?}: {text}");
        assert!(text.contains("too many subscriptions"), "{wire:?}: {text}");
    }
    // One connection open: the next is refused on every transport.
    let _held = Tap::open(&server, Wire::Sse, &[a], "").await;
    for wire in Wire::ALL {
        let (code, text) = refusal(&server, wire, &format!("si={a}&wait=0"), Some(&auth)).await;
        assert_eq!(code, status(wire, 503), "{wire:?}: {text}");
        assert!(
            text.contains("too many feed connections"),
            "{wire:?}: {text}"
        );
    }
}
