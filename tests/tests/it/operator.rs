//! The operator listener: `/metrics` counts what clients did, under Tahoe's names and
//! Swamp's own; `/healthz` and `/readyz` answer; nothing storage clients use is there.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use swamp_client::feed::{FeedItem, FeedOptions, FeedRequest, Transport, follow};
use swamp_proto::feed::FeedEvent;

use http::StatusCode;
use swamp_proto::ShareNumber;
use swamp_proto::v1::{ReadTestWriteRequest, TestWriteVectors, WriteVector};
use swamp_tests::{Secrets, TestServer, random_si};

/// Every sample of `/metrics`: name with labels, and value.
async fn scrape(server: &TestServer) -> BTreeMap<String, f64> {
    let text = server
        .raw_client()
        .get(format!("http://{}/metrics", server.operator_addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').expect("a sample line");
            (name.to_string(), value.parse().expect("a number"))
        })
        .collect()
}

fn value(samples: &BTreeMap<String, f64>, name: &str) -> f64 {
    *samples
        .get(name)
        .unwrap_or_else(|| panic!("{name} is not in /metrics: {samples:#?}"))
}

fn rtw(data: &[u8]) -> ReadTestWriteRequest {
    ReadTestWriteRequest {
        test_write_vectors: BTreeMap::from([(
            0,
            TestWriteVectors {
                test: Vec::new(),
                write: vec![WriteVector {
                    offset: 0,
                    data: data.to_vec(),
                }],
                new_length: None,
            },
        )]),
        read_vector: Vec::new(),
    }
}

#[tokio::test]
async fn metrics_count_what_clients_did() {
    let server = TestServer::start().await;
    let (si, s) = (random_si(), Secrets::random());
    let m = server.client.mutable();
    let writes = 7;
    for i in 0..writes {
        m.read_test_write(&si, &s.we, &s.renew, &s.cancel, &rtw(&[i; 100]))
            .await
            .unwrap();
    }
    let imm = server.client.immutable();
    let isi = random_si();
    s.allocate(&server.client, &isi, [ShareNumber::new(0)], 1000)
        .await;
    imm.write_share_chunk(&isi, ShareNumber::new(0), &s.upload, 0, vec![5; 1000])
        .await
        .unwrap();
    // A request that fails: a share that is not there.
    assert!(
        imm.read_share_chunk(&random_si(), ShareNumber::new(3), 0, 10)
            .await
            .is_err()
    );

    let got = scrape(&server).await;
    let rtw_ok = r#"swamp_requests_total{endpoint="read_test_write",status="200"}"#;
    assert_eq!(value(&got, rtw_ok), f64::from(writes));
    assert_eq!(
        value(
            &got,
            r#"swamp_request_duration_seconds_count{endpoint="read_test_write"}"#
        ),
        f64::from(writes)
    );
    assert!(
        got.keys()
            .any(|k| k.starts_with("swamp_requests_total{endpoint=\"read_immutable\",status=\"4")),
        "the failed read is counted with its 4xx status"
    );
    // Tahoe's names, as its `/statistics?t=openmetrics` has them.
    assert_eq!(
        value(&got, "tahoe_counters_storage_server_writev"),
        f64::from(writes)
    );
    assert_eq!(value(&got, "tahoe_counters_storage_server_allocate"), 1.0);
    assert_eq!(value(&got, "tahoe_counters_storage_server_write"), 1.0);
    assert_eq!(value(&got, "tahoe_counters_storage_server_close"), 1.0);
    assert_eq!(
        value(&got, "tahoe_stats_storage_server_latencies_writev_count"),
        f64::from(writes)
    );
    assert!(got.contains_key(r#"tahoe_stats_storage_server_latencies_writev{quantile="0.999"}"#));
    assert!(value(&got, "tahoe_stats_storage_server_disk_total") > 0.0);
    assert_eq!(
        value(
            &got,
            "tahoe_stats_storage_server_accepting_immutable_shares"
        ),
        1.0
    );
    // The write-ahead log synced every acknowledged write, at least one per sync.
    let syncs = value(&got, "swamp_wal_sync_seconds_count");
    let entries = value(&got, "swamp_wal_group_entries_sum");
    assert!(
        syncs >= 1.0 && entries >= f64::from(writes) + 1.0,
        "{syncs} syncs, {entries} entries"
    );
    assert!(value(&got, "swamp_request_body_bytes_total") >= 1000.0 + 700.0);
    assert_eq!(value(&got, "swamp_uploads_in_progress"), 0.0);
}

#[tokio::test]
async fn feed_figures_show_connections_and_deliveries() {
    let server = TestServer::start().await;
    let (si, s) = (random_si(), Secrets::random());
    let m = server.client.mutable();
    m.read_test_write(&si, &s.we, &s.renew, &s.cancel, &rtw(b"first"))
        .await
        .unwrap();
    let request = FeedRequest {
        storage_indexes: vec![si],
        since: None,
        snapshot: false,
    };
    let options = FeedOptions {
        transports: vec![Transport::WebSocket],
        ..FeedOptions::default()
    };
    let mut feed = Box::pin(follow(&server.nurl, request, options));
    // Connected and subscribed (the first checkpoint says so), then a live change.
    let mut written = false;
    loop {
        let item = tokio::time::timeout(Duration::from_secs(20), feed.next())
            .await
            .expect("an item within 20 s")
            .expect("the feed ends");
        match item {
            FeedItem::Event(FeedEvent::Progress { .. }) if !written => {
                m.read_test_write(&si, &s.we, &s.renew, &s.cancel, &rtw(b"second"))
                    .await
                    .unwrap();
                written = true;
            }
            FeedItem::Event(FeedEvent::SlotChanged { .. }) => break,
            _ => {}
        }
    }
    let got = scrape(&server).await;
    assert_eq!(
        value(&got, r#"swamp_feed_connections{transport="websocket"}"#),
        1.0
    );
    assert_eq!(value(&got, "swamp_feed_subscriptions"), 1.0);
    assert!(value(&got, "swamp_feed_deliveries_total") >= 1.0);
    assert!(value(&got, "swamp_feed_delivery_lag_seconds_count") >= 1.0);
    assert_eq!(value(&got, "swamp_feed_slow_closes_total"), 0.0);
    drop(feed);
}

#[tokio::test]
async fn health_and_readiness_answer_and_nothing_else_is_served() {
    let server = TestServer::start().await;
    let base = format!("http://{}", server.operator_addr);
    let http = server.raw_client();
    let healthz = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(healthz.status(), StatusCode::OK);
    let readyz = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(readyz.status(), StatusCode::OK);
    let checks: serde_json::Value = serde_json::from_slice(&readyz.bytes().await.unwrap()).unwrap();
    assert_eq!(checks["storage_writable"], true);
    assert_eq!(checks["log_open"], true);
    assert_eq!(checks["accepting"], true);
    // No storage API here, even with the swissnum.
    let version = http
        .get(format!("{base}/storage/v1/version"))
        .header("authorization", server.nurl.swissnum.authorization_header())
        .send()
        .await
        .unwrap();
    assert_eq!(version.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn readiness_fails_when_the_storage_directory_takes_no_files() {
    let server = TestServer::start().await;
    let base = format!("http://{}", server.operator_addr);
    let http = server.raw_client();
    // A directory where the probe file would go makes the write fail.
    let probe = server.storage_dir.join(".swamp-ready-probe");
    std::fs::create_dir(&probe).unwrap();
    std::fs::write(probe.join("blocker"), b"x").unwrap();
    let readyz = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(readyz.status(), StatusCode::SERVICE_UNAVAILABLE);
    let checks: serde_json::Value = serde_json::from_slice(&readyz.bytes().await.unwrap()).unwrap();
    assert_eq!(checks["storage_writable"], false);
    assert_eq!(checks["log_open"], true);
}
