//! The client library's feed client against the real server: each transport, resume
//! across a restart, and reset. (Following several servers is the watcher's job:
//! `dirs.rs`.)

use std::time::Duration;

use futures::{Stream, StreamExt};
use swamp_client::feed::{FeedItem, FeedOptions, FeedRequest, Transport, follow};
use swamp_proto::feed::{Cursor, FeedEvent, ResetReason};
use swamp_tests::{Secrets, TestOptions, TestServer, mdmf_share, random_si, write_slot};

fn quick(transports: Vec<Transport>) -> FeedOptions {
    FeedOptions {
        transports,
        min_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(400),
        poll_wait: Duration::from_secs(5),
        ..FeedOptions::default()
    }
}

async fn next_item(stream: &mut (impl Stream<Item = FeedItem> + Unpin)) -> FeedItem {
    tokio::time::timeout(Duration::from_secs(20), stream.next())
        .await
        .expect("an item within 20 s")
        .expect("stream open")
}

/// The next event, skipping status items and progress checkpoints.
async fn next_event(stream: &mut (impl Stream<Item = FeedItem> + Unpin)) -> FeedEvent {
    loop {
        if let FeedItem::Event(event) = next_item(stream).await
            && !matches!(event, FeedEvent::Progress { .. })
        {
            return event;
        }
    }
}

fn seqnum_of(event: &FeedEvent) -> Option<u64> {
    match event {
        FeedEvent::SlotChanged { seqnum, .. } | FeedEvent::Snapshot { seqnum, .. } => *seqnum,
        _ => None,
    }
}

#[tokio::test]
async fn every_transport_delivers_events() {
    let server = TestServer::start().await;
    let s = Secrets::random();
    for transport in [Transport::WebSocket, Transport::Sse, Transport::LongPoll] {
        let si = random_si();
        let request = FeedRequest {
            storage_indexes: vec![si],
            since: None,
            snapshot: true,
        };
        let mut stream = Box::pin(follow(&server.nurl, request, quick(vec![transport])));
        assert_eq!(next_item(&mut stream).await, FeedItem::Connected(transport));
        assert!(
            matches!(next_event(&mut stream).await, FeedEvent::Synced { .. }),
            "{transport:?}: empty snapshot, then synced"
        );
        write_slot(&server.client, &si, &s, 0, &mdmf_share(3, [3; 32], b"")).await;
        assert_eq!(
            seqnum_of(&next_event(&mut stream).await),
            Some(3),
            "{transport:?}"
        );
    }
}

/// A quiet WebSocket feed is pinged and the server's pongs keep it: several idle
/// timeouts pass with no reconnect, and the next change still arrives on the same
/// connection.
#[tokio::test]
async fn a_quiet_websocket_feed_is_kept_alive_by_pings() {
    let server = TestServer::start().await;
    let s = Secrets::random();
    let si = random_si();
    let request = FeedRequest {
        storage_indexes: vec![si],
        since: None,
        snapshot: true,
    };
    let options = FeedOptions {
        idle_timeout: Duration::from_secs(2),
        ..quick(vec![Transport::WebSocket])
    };
    let mut stream = Box::pin(follow(&server.nurl, request, options));
    assert_eq!(
        next_item(&mut stream).await,
        FeedItem::Connected(Transport::WebSocket)
    );
    assert!(matches!(
        next_event(&mut stream).await,
        FeedEvent::Synced { .. }
    ));
    // Three and a half idle timeouts of silence from the server's side.
    let quiet = tokio::time::timeout(Duration::from_secs(7), stream.next()).await;
    assert!(
        quiet.is_err(),
        "nothing happened, not even a reconnect: {quiet:?}"
    );
    write_slot(&server.client, &si, &s, 0, &mdmf_share(4, [4; 32], b"")).await;
    match next_item(&mut stream).await {
        FeedItem::Event(event) => assert_eq!(seqnum_of(&event), Some(4)),
        other => panic!("expected the change on the same connection, got {other:?}"),
    }
}

#[tokio::test]
async fn resumes_across_a_server_restart_without_losing_a_change() {
    let server = TestServer::start().await;
    let (si, s) = (random_si(), Secrets::random());
    let request = FeedRequest {
        storage_indexes: vec![si],
        since: None,
        snapshot: false,
    };
    let mut stream = Box::pin(follow(
        &server.nurl,
        request,
        quick(vec![Transport::WebSocket]),
    ));
    assert_eq!(
        next_item(&mut stream).await,
        FeedItem::Connected(Transport::WebSocket)
    );
    write_slot(&server.client, &si, &s, 0, &mdmf_share(1, [1; 32], b"")).await;
    assert_eq!(seqnum_of(&next_event(&mut stream).await), Some(1));

    let addr = server.addr;
    let (dir, storage_dir, identity) = server.stop().await;
    let _keep = dir;
    // The client notices, and keeps retrying while the server is down.
    assert!(matches!(
        next_item(&mut stream).await,
        FeedItem::Disconnected { .. }
    ));
    let server = TestServer::start_at(storage_dir, identity, TestOptions::default(), addr).await;
    // Written before the client is back: it must come from the journal.
    write_slot(&server.client, &si, &s, 0, &mdmf_share(2, [2; 32], b"")).await;
    write_slot(&server.client, &si, &s, 0, &mdmf_share(3, [3; 32], b"")).await;
    let mut seen = Vec::new();
    while seen.last() != Some(&3) {
        if let Some(n) = seqnum_of(&next_event(&mut stream).await) {
            seen.push(n);
        }
    }
    assert_eq!(seen, vec![2, 3], "nothing lost, in order");
}

#[tokio::test]
async fn a_reset_is_passed_on_and_the_feed_continues() {
    let server = TestServer::start().await;
    let (si, s) = (random_si(), Secrets::random());
    let foreign = Cursor {
        epoch: server.feeds.head().epoch ^ 0xffff,
        seq: 5,
    };
    let request = FeedRequest {
        storage_indexes: vec![si],
        since: Some(foreign),
        snapshot: false,
    };
    let mut stream = Box::pin(follow(&server.nurl, request, quick(vec![Transport::Sse])));
    match next_event(&mut stream).await {
        FeedEvent::Reset { reason, cursor } => {
            assert_eq!(reason, ResetReason::EpochChanged);
            assert_eq!(cursor, server.feeds.head());
        }
        other => panic!("expected a reset, got {other:?}"),
    }
    write_slot(&server.client, &si, &s, 0, &mdmf_share(8, [8; 32], b"")).await;
    assert_eq!(seqnum_of(&next_event(&mut stream).await), Some(8));
}
