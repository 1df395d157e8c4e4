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
pub(crate) async fn scrape(server: &TestServer) -> BTreeMap<String, f64> {
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

pub(crate) fn value(samples: &BTreeMap<String, f64>, name: &str) -> f64 {
    *samples
        .get(name)
        .unwrap_or_else(|| panic!("{name} is not in /metrics: {samples:#?}"))
}

/// Scrapes `/metrics` until `done` holds for its samples (at most a minute), and
/// returns them.
pub(crate) async fn scrape_until(
    server: &TestServer,
    what: &str,
    done: impl Fn(&BTreeMap<String, f64>) -> bool,
) -> BTreeMap<String, f64> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let samples = scrape(server).await;
        if done(&samples) {
            return samples;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/metrics never showed {what}: {samples:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `GET /status` with the operator secret.
pub(crate) async fn operator_status(server: &TestServer) -> serde_json::Value {
    let secret = server.identity.operator_secret.expose().to_string();
    let answer = server
        .raw_client()
        .get(format!("http://{}/status", server.operator_addr))
        .header("authorization", format!("Swamp-Operator {secret}"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    serde_json::from_slice(&answer.bytes().await.unwrap()).unwrap()
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
    // No certificates (counts by state still there, at zero) and no lease expiry.
    for state in ["valid", "expiring", "expired"] {
        let name = format!("swamp_grid_manager_certificates{{state=\"{state}\"}}");
        assert_eq!(value(&got, &name), 0.0);
    }
    assert_eq!(value(&got, "swamp_lease_expiry_enabled"), 0.0);
    assert_eq!(value(&got, "swamp_lease_expiry_passes_total"), 0.0);
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

#[tokio::test]
async fn the_dashboard_and_its_data_need_the_operator_secret_or_its_cookie() {
    let server = TestServer::start().await;
    let base = format!("http://{}", server.operator_addr);
    let http = server.raw_client();
    let secret = server.identity.operator_secret.expose().to_string();

    // The page itself holds no figures: it loads, with a policy that keeps it local.
    let page = http.get(format!("{base}/dashboard")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"));
    let html = page.text().await.unwrap();
    assert!(html.contains("Operator login"));
    for external in ["http://", "https://", "src=", "@import", "url("] {
        assert!(!html.contains(external), "the page refers to {external}");
    }

    // The data: 401 without the secret, 200 with it.
    for path in ["/status", "/activity"] {
        let anonymous = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED, "{path}");
        let wrong = http
            .get(format!("{base}{path}"))
            .header("authorization", "Swamp-Operator not-the-secret-at-all")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "{path}");
        let right = http
            .get(format!("{base}{path}"))
            .header("authorization", format!("Swamp-Operator {secret}"))
            .send()
            .await
            .unwrap();
        assert_eq!(right.status(), StatusCode::OK, "{path}");
    }
    // The swissnum opens nothing here, and the secret is not taken from the URL.
    let swissnum = http
        .get(format!("{base}/status"))
        .header("authorization", server.nurl.swissnum.authorization_header())
        .send()
        .await
        .unwrap();
    assert_eq!(swissnum.status(), StatusCode::UNAUTHORIZED);
    let in_url = http
        .get(format!("{base}/activity?key={secret}"))
        .send()
        .await
        .unwrap();
    assert_eq!(in_url.status(), StatusCode::UNAUTHORIZED);

    // Login: a wrong secret is refused and sets nothing.
    let refused = http
        .post(format!("{base}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("secret=wrong-wrong-wrong-wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(refused.headers().get("set-cookie").is_none());
    // The right one sets an HttpOnly, SameSite=Strict cookie that is not the secret.
    let login = http
        .post(format!("{base}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("secret={secret}"))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::NO_CONTENT);
    let set_cookie = login.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(set_cookie.starts_with("swamp_operator="), "{set_cookie}");
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"));
    assert!(!set_cookie.contains(&secret), "the cookie holds the secret");
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let status = http
        .get(format!("{base}/status"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), StatusCode::OK);
    let status: serde_json::Value = serde_json::from_slice(&status.bytes().await.unwrap()).unwrap();
    assert_eq!(status["certificates"], serde_json::json!([]));
    assert_eq!(status["grid_management"], false);
    assert_eq!(status["lease_expiry"]["enabled"], false);
    assert_eq!(status["lease_expiry"]["prefixes_total"], 1024);
    assert!(status["disk"]["total"].as_u64().unwrap() > 0);
    // A tampered cookie opens nothing.
    let tampered = format!("{}x", cookie.trim_end_matches(|c: char| c != '.'));
    let refused = http
        .get(format!("{base}/status"))
        .header("cookie", tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);

    // The activity stream, with the cookie: the storage port's format.
    let mut stream = http
        .get(format!("{base}/activity"))
        .header("cookie", &cookie)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let (si, s) = (random_si(), Secrets::random());
    server
        .client
        .mutable()
        .read_test_write(&si, &s.we, &s.renew, &s.cancel, &rtw(b"x"))
        .await
        .unwrap();
    let mut text = String::new();
    let event = loop {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
            .await
            .expect("an activity event within 10 s")
            .unwrap()
            .expect("the stream goes on");
        text.push_str(std::str::from_utf8(&chunk).unwrap());
        if let Some(data) = text
            .split("\n\n")
            .filter_map(|frame| frame.strip_prefix("event: activity\ndata: "))
            .map(|data| serde_json::from_str::<serde_json::Value>(data).unwrap())
            .find(|event| event["totals"]["read_test_write"] == 1)
        {
            break data;
        }
    };
    assert!(event["delta"].is_object() && event["feeds"]["connections"].is_number());
}
