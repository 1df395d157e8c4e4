//! The operator's activity stream: its own secret, aggregate counters, SSE.

use http::{Method, StatusCode};
use swamp_proto::ShareNumber;
use swamp_tests::{Secrets, TestServer, random_si};

#[tokio::test]
async fn only_the_operator_secret_opens_it() {
    let server = TestServer::start().await;
    let url = format!("{}/storage/v1/activity", server.nurl.base_url());
    let c = server.raw_client();
    assert_eq!(
        c.get(&url).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let with_swissnum = server
        .client
        .request(Method::GET, "/storage/v1/activity")
        .send()
        .await
        .unwrap();
    assert_eq!(
        with_swissnum.status(),
        StatusCode::UNAUTHORIZED,
        "clients' swissnum is not the operator's"
    );
    let secret = server.identity.operator_secret.expose().to_string();
    let ok = c
        .get(&url)
        .header("authorization", format!("Swamp-Operator {secret}"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let ok = c.get(format!("{url}?key={secret}")).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
}

#[tokio::test]
async fn counts_requests_bytes_and_uploads_without_naming_anything() {
    let server = TestServer::start().await;
    let secret = server.identity.operator_secret.expose().to_string();
    let c = server.raw_client();
    let mut stream = c
        .get(format!(
            "{}/storage/v1/activity?key={secret}&interval=1",
            server.nurl.base_url()
        ))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let (si, s) = (random_si(), Secrets::random());
    let imm = server.client.immutable();
    s.allocate(
        &server.client,
        &si,
        [ShareNumber::new(0), ShareNumber::new(1)],
        1000,
    )
    .await;
    imm.write_share_chunk(&si, ShareNumber::new(0), &s.upload, 0, vec![1u8; 1000])
        .await
        .unwrap();
    imm.abort(&si, ShareNumber::new(1), &s.upload)
        .await
        .unwrap();
    server
        .client
        .general()
        .add_or_renew_lease(&si, &s.renew, &s.cancel)
        .await
        .unwrap();
    // Sum the deltas of the first events until the writes show up (bounded).
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut totals = serde_json::Value::Null;
    while tokio::time::Instant::now() < deadline {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
        if let Some(line) = text.lines().rev().find(|l| l.starts_with("data: ")) {
            let event: serde_json::Value = serde_json::from_str(&line[6..]).unwrap();
            totals = event["totals"].clone();
            if totals["uploads_completed"] == 1 && totals["lease_renewals"] == 1 {
                break;
            }
        }
    }
    assert_eq!(totals["allocate"], 1, "{totals}");
    assert_eq!(totals["write"], 1);
    assert_eq!(totals["uploads_started"], 2);
    assert_eq!(totals["uploads_completed"], 1);
    assert_eq!(totals["uploads_aborted"], 1);
    assert_eq!(totals["lease_renewals"], 1);
    assert!(totals["bytes_in"].as_u64().unwrap() >= 1000);
    assert!(text.contains("event: activity"));
    assert!(
        !text.contains(&si.to_string()),
        "no storage index appears in the activity stream"
    );
}
