//! Change feeds over real sockets and TLS: WebSocket (JSON and CBOR), SSE and
//! long-poll; snapshot, resume, reset, slow consumers, limits, auth, shutdown.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use http::{Method, StatusCode};
use swamp_proto::ShareNumber;
use swamp_proto::feed::{Cursor, FeedEvent, ResetReason, RootHash};
use swamp_server::testing::FeedSettings;
use swamp_tests::feed::{poll, sse_connect, ws_connect, ws_next, ws_next_or_close, ws_send};
use swamp_tests::tap::StalledSse;
use swamp_tests::{Secrets, TestOptions, TestServer, mdmf_share, random_si, write_slot};

fn expect_changed(
    event: &FeedEvent,
    si: &swamp_proto::StorageIndex,
    shnum: u8,
    seqnum: u64,
    root_hash: [u8; 32],
) -> Cursor {
    swamp_tests::feed::expect_changed(event, si, shnum, seqnum, root_hash, "")
}

#[tokio::test]
async fn websocket_json_and_cbor_get_events_after_read_test_write() {
    let server = TestServer::start().await;
    let (si, s) = (random_si(), Secrets::random());
    for cbor in [false, true] {
        let mut ws = ws_connect(&server, &format!("si={si}"), cbor, None).await;
        assert!(
            matches!(ws_next(&mut ws).await, FeedEvent::Progress { .. }),
            "a starting checkpoint"
        );
        let seqnum = if cbor { 2 } else { 1 };
        write_slot(
            &server.client,
            &si,
            &s,
            0,
            &mdmf_share(seqnum, [seqnum as u8; 32], b"rest"),
        )
        .await;
        let cursor = expect_changed(&ws_next(&mut ws).await, &si, 0, seqnum, [seqnum as u8; 32]);
        assert_eq!(cursor, server.feeds.head());
    }
}

#[tokio::test]
async fn sse_event_ids_are_cursors() {
    let server = TestServer::start().await;
    let (si, s) = (random_si(), Secrets::random());
    let mut sse = sse_connect(&server, &format!("si={si}"), &[]).await;
    assert_eq!(sse.next().await.unwrap().event, "progress");
    write_slot(&server.client, &si, &s, 3, &mdmf_share(5, [9; 32], b"")).await;
    let frame = sse.next().await.unwrap();
    assert_eq!(frame.event, "slot_changed");
    let cursor = expect_changed(&frame.data, &si, 3, 5, [9; 32]);
    assert_eq!(frame.id, Some(cursor.to_string()));
}

#[tokio::test]
async fn long_poll_waits_for_the_next_change() {
    let server = TestServer::start().await;
    let (si, s) = (random_si(), Secrets::random());
    let empty = poll(&server, &format!("si={si}&wait=0")).await;
    assert!(empty.events.is_empty());
    let since = empty.cursor;
    let waiting = {
        let client_server = format!("si={si}&since={since}&wait=60");
        let server_ref = &server;
        async move { poll(server_ref, &client_server).await }
    };
    let write = async {
        write_slot(&server.client, &si, &s, 0, &mdmf_share(1, [1; 32], b"")).await;
    };
    let (batch, ()) = tokio::join!(waiting, write);
    assert_eq!(batch.events.len(), 1);
    let cursor = expect_changed(&batch.events[0], &si, 0, 1, [1; 32]);
    assert_eq!(batch.cursor, cursor);
    // JSON when asked for.
    let raw = server.raw_client();
    let response = raw
        .get(format!(
            "{}/storage/v1/feed?si={si}&since={since}",
            server.nurl.base_url()
        ))
        .header("authorization", server.nurl.swissnum.authorization_header())
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "application/json");
    let json: serde_json::Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(json["events"][0]["si"], si.to_string());
    assert_eq!(json["events"][0]["seqnum"], 1);
}

#[tokio::test]
async fn snapshot_then_synced_then_live_in_order() {
    let server = TestServer::start().await;
    let (si, s) = (random_si(), Secrets::random());
    write_slot(&server.client, &si, &s, 0, &mdmf_share(4, [4; 32], b"x")).await;
    write_slot(&server.client, &si, &s, 1, &mdmf_share(4, [4; 32], b"x")).await;
    let mut ws = ws_connect(&server, &format!("si={si}&snapshot=true"), false, None).await;
    for shnum in [0, 1] {
        match ws_next(&mut ws).await {
            FeedEvent::Snapshot {
                si: got,
                shnum: n,
                seqnum,
                root_hash,
                kind,
                length,
                ..
            } => {
                assert_eq!(
                    (got, n.get(), seqnum, root_hash, kind.as_str(), length),
                    (si, shnum, Some(4), Some(RootHash([4; 32])), "mutable", 42)
                );
            }
            other => panic!("expected a snapshot entry, got {other:?}"),
        }
    }
    let synced = match ws_next(&mut ws).await {
        FeedEvent::Synced { cursor } => cursor,
        other => panic!("expected synced, got {other:?}"),
    };
    assert_eq!(synced, server.feeds.head());
    write_slot(&server.client, &si, &s, 1, &mdmf_share(5, [5; 32], b"x")).await;
    let live = expect_changed(&ws_next(&mut ws).await, &si, 1, 5, [5; 32]);
    assert_eq!(live.seq, synced.seq + 1, "no gap, no duplicate");
}

#[tokio::test]
async fn sse_resumes_after_a_dropped_connection_with_nothing_lost() {
    let server = TestServer::start().await;
    let (a, b, s) = (random_si(), random_si(), Secrets::random());
    let query = format!("si={a}&si={b}");
    let mut sse = sse_connect(&server, &query, &[]).await;
    sse.next().await.unwrap();
    write_slot(&server.client, &a, &s, 0, &mdmf_share(1, [1; 32], b"")).await;
    let last_id = sse.next().await.unwrap().id.unwrap();
    drop(sse);
    write_slot(&server.client, &a, &s, 0, &mdmf_share(2, [2; 32], b"")).await;
    write_slot(
        &server.client,
        &random_si(),
        &s,
        0,
        &mdmf_share(9, [9; 32], b""),
    )
    .await;
    write_slot(&server.client, &b, &s, 7, &mdmf_share(3, [3; 32], b"")).await;
    let mut sse = sse_connect(&server, &query, &[("last-event-id", &last_id)]).await;
    expect_changed(&sse.next().await.unwrap().data, &a, 0, 2, [2; 32]);
    expect_changed(&sse.next().await.unwrap().data, &b, 7, 3, [3; 32]);
    // And live again after the replay.
    write_slot(&server.client, &b, &s, 7, &mdmf_share(4, [4; 32], b"")).await;
    expect_changed(&sse.next().await.unwrap().data, &b, 7, 4, [4; 32]);
}

#[tokio::test]
async fn resume_across_a_restart_and_reset_after_an_epoch_change() {
    let server = TestServer::start().await;
    let (si, s) = (random_si(), Secrets::random());
    write_slot(&server.client, &si, &s, 0, &mdmf_share(1, [1; 32], b"")).await;
    let before = server.feeds.head();
    let (dir, storage_dir, identity) = server.stop().await;
    let _keep = dir;

    let server = TestServer::start_on(
        storage_dir.clone(),
        identity.clone(),
        TestOptions::default(),
    )
    .await;
    assert_eq!(
        server.feeds.head(),
        before,
        "the journal survives a restart"
    );
    write_slot(&server.client, &si, &s, 0, &mdmf_share(2, [2; 32], b"")).await;
    let batch = poll(&server, &format!("si={si}&since={before}&wait=0")).await;
    assert_eq!(batch.events.len(), 1);
    expect_changed(&batch.events[0], &si, 0, 2, [2; 32]);
    let (_, storage_dir, identity) = server.stop().await;

    std::fs::remove_file(storage_dir.join("swamp-feed/epoch")).unwrap();
    let server = TestServer::start_on(storage_dir, identity, TestOptions::default()).await;
    let batch = poll(&server, &format!("si={si}&since={before}&wait=0")).await;
    match batch.events.as_slice() {
        [
            FeedEvent::Reset {
                cursor,
                reason: ResetReason::EpochChanged,
            },
        ] => {
            assert_eq!(*cursor, server.feeds.head());
            assert_ne!(cursor.epoch, before.epoch);
        }
        other => panic!("expected one reset, got {other:?}"),
    }
}

#[tokio::test]
async fn an_old_cursor_gets_the_latest_state_of_each_share() {
    let server = TestServer::start_with(TestOptions::short_history(2)).await;
    let (a, b, s) = (random_si(), random_si(), Secrets::random());
    let start = server.feeds.head();
    write_slot(&server.client, &b, &s, 0, &mdmf_share(1, [1; 32], b"")).await;
    for v in 1..=10 {
        write_slot(
            &server.client,
            &a,
            &s,
            0,
            &mdmf_share(v, [v as u8; 32], b""),
        )
        .await;
    }
    let batch = poll(&server, &format!("si={a}&si={b}&since={start}&wait=0")).await;
    assert_eq!(
        batch.events.len(),
        2,
        "intermediate versions are coalesced: {:?}",
        batch.events
    );
    expect_changed(&batch.events[0], &b, 0, 1, [1; 32]);
    expect_changed(&batch.events[1], &a, 0, 10, [10; 32]);
    assert_eq!(batch.cursor, server.feeds.head());
}

#[tokio::test]
async fn immutable_shares_added_and_corruption_advisories_are_events() {
    let server = TestServer::start().await;
    let (si, s) = (random_si(), Secrets::random());
    let mut ws = ws_connect(&server, &format!("si={si}"), false, None).await;
    ws_next(&mut ws).await;
    let imm = server.client.immutable();
    s.allocate(&server.client, &si, [ShareNumber::new(2)], 6)
        .await;
    imm.write_share_chunk(&si, ShareNumber::new(2), &s.upload, 0, b"abc".to_vec())
        .await
        .unwrap();
    imm.write_share_chunk(&si, ShareNumber::new(2), &s.upload, 3, b"def".to_vec())
        .await
        .unwrap();
    match ws_next(&mut ws).await {
        FeedEvent::ShareAdded {
            si: got,
            shnum,
            size,
            ..
        } => assert_eq!((got, shnum.get(), size), (si, 2, 6)),
        other => panic!("{other:?}"),
    }
    imm.advise_corrupt(&si, ShareNumber::new(2), "bad hash")
        .await
        .unwrap();
    match ws_next(&mut ws).await {
        FeedEvent::CorruptionAdvised { si: got, kind, .. } => {
            assert_eq!((got, kind.as_str()), (si, "immutable"))
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn websocket_commands_add_and_remove_subscriptions() {
    let server = TestServer::start().await;
    let (a, b, s) = (random_si(), random_si(), Secrets::random());
    let mut ws = ws_connect(&server, "", false, None).await;
    ws_send(
        &mut ws,
        serde_json::json!({"op": "subscribe", "si": [a.to_string(), b.to_string()]}),
    )
    .await;
    assert!(matches!(ws_next(&mut ws).await, FeedEvent::Progress { .. }));
    ws_send(
        &mut ws,
        serde_json::json!({"op": "unsubscribe", "si": [a.to_string()]}),
    )
    .await;
    ws_send(&mut ws, serde_json::json!({"op": "progress"})).await;
    assert!(
        matches!(ws_next(&mut ws).await, FeedEvent::Progress { .. }),
        "progress on request"
    );
    write_slot(&server.client, &a, &s, 0, &mdmf_share(1, [1; 32], b"")).await;
    write_slot(&server.client, &b, &s, 0, &mdmf_share(1, [2; 32], b"")).await;
    expect_changed(&ws_next(&mut ws).await, &b, 0, 1, [2; 32]);
    ws_send(
        &mut ws,
        serde_json::json!({"op": "subscribe", "si": ["not-a-storage-index"]}),
    )
    .await;
    match ws_next(&mut ws).await {
        FeedEvent::Error { message } => assert!(message.contains("bad command"), "{message}"),
        other => panic!("{other:?}"),
    }
    ws_send(&mut ws, serde_json::json!({"op": "launch"})).await;
    assert!(matches!(ws_next(&mut ws).await, FeedEvent::Error { .. }));
}

/// WebSocket over HTTP/2 (RFC 8441): several feeds share one connection, each opened
/// with an extended CONNECT, and each gets its own events.
#[tokio::test]
async fn websocket_streams_share_one_http2_connection() {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use tokio_tungstenite::tungstenite::protocol::Role;

    let server = TestServer::start().await;
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let config = swamp_client::tls::pinned_config(server.nurl.spki_hash, &[b"h2"]);
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, connection) = hyper::client::conn::http2::handshake::<
        _,
        _,
        http_body_util::Empty<bytes::Bytes>,
    >(TokioExecutor::new(), TokioIo::new(tls))
    .await
    .unwrap();
    tokio::spawn(connection);
    let base = server.nurl.base_url();
    let auth = server.nurl.swissnum.authorization_header();
    // An ordinary request first: its answer comes after the server's SETTINGS, which
    // allow extended CONNECT.
    let version = http::Request::get(format!("{base}/storage/v1/version"))
        .header("authorization", &auth)
        .body(http_body_util::Empty::new())
        .unwrap();
    assert_eq!(
        sender.send_request(version).await.unwrap().status(),
        StatusCode::OK
    );

    let (a, b, s) = (random_si(), random_si(), Secrets::random());
    let mut feeds = Vec::new();
    for si in [a, b] {
        let mut request = http::Request::builder()
            .method(Method::CONNECT)
            .uri(format!("{base}/storage/v1/feed?si={si}"))
            .header("authorization", &auth)
            .header("sec-websocket-version", "13")
            .header("sec-websocket-protocol", "swamp-feed.v1.json")
            .body(http_body_util::Empty::new())
            .unwrap();
        request
            .extensions_mut()
            .insert(hyper::ext::Protocol::from_static("websocket"));
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "extended CONNECT accepted"
        );
        assert_eq!(
            response.headers()["sec-websocket-protocol"],
            "swamp-feed.v1.json"
        );
        let upgraded = hyper::upgrade::on(response).await.unwrap();
        let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
            TokioIo::new(upgraded),
            Role::Client,
            None,
        )
        .await;
        feeds.push(ws);
    }
    async fn next_event<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
        ws: &mut tokio_tungstenite::WebSocketStream<S>,
    ) -> FeedEvent {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(20), ws.next())
                .await
                .expect("an event within 20 s")
                .expect("stream open")
                .expect("frame");
            if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
                return serde_json::from_str(text.as_str()).unwrap();
            }
        }
    }
    for ws in &mut feeds {
        assert!(matches!(next_event(ws).await, FeedEvent::Progress { .. }));
    }
    write_slot(&server.client, &a, &s, 0, &mdmf_share(1, [1; 32], b"")).await;
    write_slot(&server.client, &b, &s, 0, &mdmf_share(1, [2; 32], b"")).await;
    expect_changed(&next_event(&mut feeds[0]).await, &a, 0, 1, [1; 32]);
    expect_changed(&next_event(&mut feeds[1]).await, &b, 0, 1, [2; 32]);
}

/// A quiet stream gets a `progress` checkpoint every progress interval, and events
/// postpone it (the stream's one timer is moved lazily, when it fires).
#[tokio::test]
async fn quiet_streams_get_progress_checkpoints_and_events_postpone_them() {
    let interval = Duration::from_millis(400);
    let server = TestServer::start_with(TestOptions {
        feeds: FeedSettings {
            progress_interval: interval,
            ..FeedSettings::default()
        },
        ..TestOptions::default()
    })
    .await;
    let (si, s) = (random_si(), Secrets::random());
    let mut ws = ws_connect(&server, &format!("si={si}"), false, None).await;
    assert!(matches!(ws_next(&mut ws).await, FeedEvent::Progress { .. }));
    let quiet = std::time::Instant::now();
    assert!(matches!(ws_next(&mut ws).await, FeedEvent::Progress { .. }));
    assert!(quiet.elapsed() >= interval / 2, "not before the interval");
    let mut changed = std::time::Instant::now();
    for seqnum in 1..=3 {
        write_slot(
            &server.client,
            &si,
            &s,
            0,
            &mdmf_share(seqnum, [1; 32], b""),
        )
        .await;
        let event = loop {
            // A slow write may let a checkpoint come first.
            match ws_next(&mut ws).await {
                FeedEvent::Progress { .. } => continue,
                event => break event,
            }
        };
        changed = std::time::Instant::now();
        expect_changed(&event, &si, 0, seqnum, [1; 32]);
    }
    assert!(matches!(ws_next(&mut ws).await, FeedEvent::Progress { .. }));
    assert!(
        changed.elapsed() >= interval * 3 / 4,
        "the checkpoint waits a whole interval after the last event: {:?}",
        changed.elapsed()
    );
}

/// The server reads WebSocket frames in small chunks (so an idle subscriber holds
/// little): a command many times that size still arrives whole, and a frame over the
/// 1 MiB limit still ends the stream instead of being buffered.
#[tokio::test]
async fn long_websocket_commands_arrive_whole_and_oversized_frames_end_the_stream() {
    let server = TestServer::start().await;
    let s = Secrets::random();
    let sis: Vec<_> = (0..400).map(|_| random_si()).collect();
    let mut ws = ws_connect(&server, "", false, None).await;
    let command = serde_json::json!({"op": "subscribe", "si": sis.iter().map(ToString::to_string).collect::<Vec<_>>()});
    assert!(command.to_string().len() > 10_000, "many read chunks long");
    ws_send(&mut ws, command).await;
    assert!(matches!(ws_next(&mut ws).await, FeedEvent::Progress { .. }));
    let last = sis.last().unwrap();
    write_slot(&server.client, last, &s, 0, &mdmf_share(1, [3; 32], b"")).await;
    expect_changed(&ws_next(&mut ws).await, last, 0, 1, [3; 32]);

    let oversized = "x".repeat(1024 * 1024 + 1);
    // The server may stop reading before the whole frame is sent.
    let _ = ws
        .send(tokio_tungstenite::tungstenite::Message::Text(
            oversized.into(),
        ))
        .await;
    let end = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) => return None,
                Some(Ok(tokio_tungstenite::tungstenite::Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await
    .expect("the stream ends within 20 s");
    if let Some(frame) = end {
        assert_eq!(u16::from(frame.code), 1009, "message too big: {frame:?}");
    }
}

/// A subscriber that stops reading, on a streaming transport.
enum Stalled {
    Ws(Box<swamp_tests::feed::Ws>),
    Sse(Box<StalledSse>),
}

impl Stalled {
    /// Reads what it had buffered and returns the close reason.
    async fn close_reason(self) -> String {
        match self {
            Stalled::Ws(mut ws) => loop {
                match ws_next_or_close(&mut ws).await {
                    Ok(_) => continue,
                    Err((code, reason)) => {
                        assert_eq!(code, 4008, "the close code for a slow subscriber");
                        break reason;
                    }
                }
            },
            Stalled::Sse(sse) => sse.close_reason().await,
        }
    }
}

#[tokio::test]
async fn a_slow_websocket_consumer_is_closed_while_a_fast_one_and_the_writer_go_on() {
    slow_consumer_is_closed(false).await;
}

#[tokio::test]
async fn a_slow_sse_consumer_is_closed_while_a_fast_one_and_the_writer_go_on() {
    slow_consumer_is_closed(true).await;
}

// (Long-poll has no standing queue to overflow: each poll is answered from the journal.)
async fn slow_consumer_is_closed(sse: bool) {
    let server = TestServer::start().await;
    let s = Secrets::random();
    // Sixteen slots, eight written in parallel per round, alternating halves: more
    // distinct shares than the slow subscriber's outbox can coalesce into its budget.
    let slots: Vec<_> = (0..16).map(|_| random_si()).collect();
    let query = slots
        .iter()
        .map(|si| format!("si={si}"))
        .collect::<Vec<_>>()
        .join("&");
    // The slow subscriber never reads until the end. Loopback TCP buffers absorb a few
    // MiB first; then its outbox (64 KiB by default) overflows.
    let slow = if sse {
        Stalled::Sse(Box::new(StalledSse::open(&server, &query, 4096).await))
    } else {
        Stalled::Ws(Box::new(
            ws_connect(&server, &query, false, Some(4096)).await,
        ))
    };
    let mut fast = ws_connect(&server, &query, false, None).await;
    ws_next(&mut fast).await;
    let (count_tx, mut count_rx) = tokio::sync::watch::channel(0u64);
    let reader = tokio::spawn(async move {
        let mut seen = 0u64;
        loop {
            match ws_next_or_close(&mut fast).await {
                Ok(FeedEvent::SlotChanged { .. }) => {
                    seen += 1;
                    let _ = count_tx.send(seen);
                }
                Ok(_) => {}
                Err(close) => return (seen, close),
            }
        }
    });
    // Rounds of 25 shares per slot (a round, 200 events, fits the budget), until the server
    // reports a slow close; bounded so the test ends either way.
    const SHARES: u64 = 25;
    let payload = vec![7u8; 16];
    let mut written = 0u64;
    for v in 0..400u64 {
        let half = &slots[(v as usize % 2) * 8..][..8];
        let writes = half.iter().map(|si| {
            let mut tw = std::collections::BTreeMap::new();
            for shnum in 0..SHARES {
                tw.insert(
                    shnum,
                    swamp_proto::v1::TestWriteVectors {
                        test: vec![],
                        write: vec![swamp_proto::v1::WriteVector {
                            offset: 0,
                            data: mdmf_share(v, [v as u8; 32], &payload),
                        }],
                        new_length: None,
                    },
                );
            }
            let req = swamp_proto::v1::ReadTestWriteRequest {
                test_write_vectors: tw,
                read_vector: vec![],
            };
            let client = server.client.clone();
            let (si, s) = (*si, &s);
            async move {
                client
                    .mutable()
                    .read_test_write(&si, &s.we, &s.renew, &s.cancel, &req)
                    .await
                    .unwrap()
                    .success
            }
        });
        assert!(
            futures::future::join_all(writes)
                .await
                .into_iter()
                .all(|ok| ok),
            "the writer is never refused"
        );
        written += SHARES * half.len() as u64;
        // Keep pace with the fast reader, as a healthy client would.
        count_rx.wait_for(|seen| *seen == written).await.unwrap();
        if server.feeds.slow_closes() > 0 {
            break;
        }
    }
    assert_eq!(
        server.feeds.slow_closes(),
        1,
        "the slow subscriber overflowed after {written} events"
    );
    // The slow one now reads: what it had buffered, then the close.
    assert_eq!(slow.close_reason().await, "slow");
    // The fast one is still open and still gets events.
    write_slot(
        &server.client,
        &slots[0],
        &s,
        0,
        &mdmf_share(999, [1; 32], b""),
    )
    .await;
    count_rx
        .wait_for(|seen| *seen == written + 1)
        .await
        .unwrap();
    drop(server);
    let (seen, _) = reader.await.unwrap();
    assert_eq!(seen, written + 1, "the fast subscriber got every event");
}

#[tokio::test]
async fn limits_are_enforced_with_clear_errors() {
    let feeds = FeedSettings {
        max_subscriptions_per_connection: 2,
        max_connections: 1,
        ..FeedSettings::default()
    };
    let server = TestServer::start_with(TestOptions {
        feeds,
        ..TestOptions::default()
    })
    .await;
    let (a, b, c) = (random_si(), random_si(), random_si());
    let response = server
        .client
        .request(
            Method::GET,
            &format!("/storage/v1/feed?si={a}&si={b}&si={c}&wait=0"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("too many subscriptions")
    );
    let _sse = sse_connect(&server, &format!("si={a}"), &[]).await;
    let response = server
        .client
        .request(Method::GET, &format!("/storage/v1/feed?si={a}&wait=0"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "one feed connection at most"
    );
}

#[tokio::test]
async fn bad_expired_and_out_of_scope_auth_are_refused() {
    let server = TestServer::start().await;
    let (a, b, s) = (random_si(), random_si(), Secrets::random());
    let url = format!("{}/storage/v1/feed?si={a}&wait=0", server.nurl.base_url());
    let raw = server.raw_client();
    assert_eq!(
        raw.get(&url).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        raw.get(&url)
            .header("authorization", "Tahoe-LAFS d3Jvbmc=")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );

    let issued = server
        .client
        .request(
            Method::POST,
            &format!("/storage/v1/feed/token?si={a}&ttl=2"),
        )
        .send()
        .await
        .unwrap();
    let issued: serde_json::Value = serde_json::from_slice(&issued.bytes().await.unwrap()).unwrap();
    let token = issued["token"].as_str().unwrap().to_string();
    let ok = raw
        .get(format!("{url}&token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        ok.status(),
        StatusCode::OK,
        "a token opens the feed for its storage index"
    );
    let other = raw
        .get(format!(
            "{}/storage/v1/feed?si={b}&wait=0&token={token}",
            server.nurl.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::FORBIDDEN);
    let forged = raw
        .get(format!("{url}&token={}x", token))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    let storage = raw
        .get(format!(
            "{}/storage/v1/version?token={token}",
            server.nurl.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        storage.status(),
        StatusCode::UNAUTHORIZED,
        "tokens open feeds only"
    );

    // The token's expiry is enforced during the stream.
    let response = raw
        .get(format!(
            "{}/storage/v1/feed?si={a}&token={token}",
            server.nurl.base_url()
        ))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let text = tokio::time::timeout(Duration::from_secs(20), response.text())
        .await
        .expect("stream ends at expiry")
        .unwrap();
    assert!(
        text.contains("event: close") && text.contains("token_expired"),
        "{text}"
    );
    write_slot(&server.client, &a, &s, 0, b"still writable").await;
    server.clock.advance(10);
    let late = raw
        .get(format!("{url}&token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(late.status(), StatusCode::UNAUTHORIZED, "expired");
}

#[tokio::test]
async fn malformed_subscription_requests_get_clear_errors() {
    let server = TestServer::start().await;
    for (query, needle) in [
        ("si=nonsense", "storage index"),
        ("si=aaaaaaaaaaaaaaaaaaaaaaaaaa&since=yesterday", "cursor"),
        (
            "si=aaaaaaaaaaaaaaaaaaaaaaaaaa&snapshot=maybe",
            "true or false",
        ),
        (
            "si=aaaaaaaaaaaaaaaaaaaaaaaaaa&colour=blue",
            "unknown query parameter",
        ),
        ("", "at least one storage index"),
    ] {
        let response = server
            .client
            .request(Method::GET, &format!("/storage/v1/feed?{query}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        let text = response.text().await.unwrap();
        assert!(text.contains(needle), "{query}: {text}");
    }
}

#[tokio::test]
async fn shutdown_ends_open_feeds_properly() {
    let server = TestServer::start().await;
    let si = random_si();
    let mut sse = sse_connect(&server, &format!("si={si}"), &[]).await;
    sse.next().await.unwrap();
    let mut ws = ws_connect(&server, &format!("si={si}"), false, None).await;
    ws_next(&mut ws).await;
    let stopping = tokio::spawn(server.stop());
    let last = sse.next().await.unwrap();
    assert_eq!(
        last.data,
        FeedEvent::Close {
            reason: "shutdown".into()
        }
    );
    assert!(sse.next().await.is_none(), "the SSE stream ends");
    assert_eq!(
        ws_next_or_close(&mut ws).await,
        Err((1001, "shutdown".to_string()))
    );
    tokio::time::timeout(Duration::from_secs(8), stopping)
        .await
        .expect("shutdown does not hang on feeds")
        .unwrap();
}
