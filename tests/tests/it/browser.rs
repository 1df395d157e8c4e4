//! A real browser on the change feed: headless Chromium opens a page that follows a
//! slot over `EventSource` (SSE) or `WebSocket` (JSON frames) with a feed token in the
//! URL, across origins, against the server's self-signed certificate.
//!
//! The pages come from `browser_kit`'s page server and report what they receive to
//! it. Chromium trusts the server's certificate the way Tahoe's clients do, by its key
//! alone:
//! `--ignore-certificate-errors-spki-list` names the base64 SHA-256 of the certificate's
//! SubjectPublicKeyInfo (the NURL's pin); Chromium honours that flag only together with
//! `--user-data-dir`.
//!
//! Without Chromium these tests fail when `CI` is set, and are skipped otherwise.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::Method;
use serde_json::Value;
use swamp_proto::StorageIndex;
use swamp_tests::{Secrets, TestServer, mdmf_share, random_si, write_slot};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::browser_kit::{Browser, REPORT_JS, chromium_present, serve_pages};

/// How long the page may take to connect, and then to see the change.
const PATIENCE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn eventsource_in_a_browser_gets_slot_changed() {
    browser_follows_a_slot(Transport::EventSource).await;
}

#[tokio::test]
async fn websocket_in_a_browser_gets_slot_changed() {
    browser_follows_a_slot(Transport::WebSocket).await;
}

#[derive(Clone, Copy, Debug)]
enum Transport {
    EventSource,
    WebSocket,
}

async fn browser_follows_a_slot(transport: Transport) {
    if !chromium_present() {
        return;
    }
    let started = Instant::now();
    let server = TestServer::start().await;
    let si = random_si();
    let token = issue_token(&server, &si).await;

    let (tx, mut reports) = mpsc::unbounded_channel();
    let pages_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let pages_addr = pages_listener.local_addr().unwrap();
    let feed_path = format!(
        "127.0.0.1:{}/storage/v1/feed?si={si}&token={token}",
        server.addr.port()
    );
    let pages = HashMap::from([
        ("/sse.html", sse_page(&format!("https://{feed_path}"))),
        ("/ws.html", ws_page(&format!("wss://{feed_path}"))),
    ]);
    tokio::spawn(serve_pages(pages_listener, Arc::new(pages), tx));

    let page = match transport {
        Transport::EventSource => "sse.html",
        Transport::WebSocket => "ws.html",
    };
    let mut browser = Browser::launch(
        Some(&server.nurl.spki_hash),
        &format!("http://{pages_addr}/{page}"),
    );
    let mut seen = Vec::new();

    let deadline = Instant::now() + PATIENCE;
    browser
        .wait_for(&mut reports, &mut seen, deadline, |r| {
            r["kind"] == "event" && r["data"]["type"] == "progress"
        })
        .await;
    let connected = started.elapsed();

    write_slot(
        &server.client,
        &si,
        &Secrets::random(),
        0,
        &mdmf_share(7, [7; 32], b""),
    )
    .await;
    let deadline = Instant::now() + PATIENCE;
    let changed = browser
        .wait_for(&mut reports, &mut seen, deadline, |r| {
            r["kind"] == "event" && r["data"]["type"] == "slot_changed"
        })
        .await;
    assert_eq!(changed["data"]["si"], si.to_string(), "{changed}");
    assert_eq!(changed["data"]["seqnum"], 7, "{changed}");
    assert_eq!(changed["data"]["shnum"], 0, "{changed}");
    eprintln!(
        "{transport:?}: the page was connected after {connected:?}, saw the change after {:?}",
        started.elapsed()
    );
}

/// `POST /storage/v1/feed/token` for one storage index, ten minutes.
async fn issue_token(server: &TestServer, si: &StorageIndex) -> String {
    let response = server
        .client
        .request(
            Method::POST,
            &format!("/storage/v1/feed/token?si={si}&ttl=600"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let issued: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    issued["token"].as_str().unwrap().to_string()
}

fn sse_page(url: &str) -> String {
    format!(
        r#"<!doctype html>
<meta charset="utf-8"><title>swamp feed over EventSource</title>
<script>
{REPORT_JS}
const source = new EventSource({url});
source.onopen = () => report({{ kind: "open" }});
for (const type of ["progress", "slot_changed", "slot_deleted", "share_added",
                    "corruption_advised", "snapshot", "synced", "reset", "close", "message"]) {{
  source.addEventListener(type, (e) => report({{ kind: "event", data: JSON.parse(e.data) }}));
}}
source.onerror = (e) => report(e.data === undefined
  ? {{ kind: "transport_error", readyState: source.readyState }}
  : {{ kind: "event", data: JSON.parse(e.data) }});
</script>
"#,
        url = Value::from(url),
    )
}

fn ws_page(url: &str) -> String {
    format!(
        r#"<!doctype html>
<meta charset="utf-8"><title>swamp feed over WebSocket</title>
<script>
{REPORT_JS}
const socket = new WebSocket({url}, "swamp-feed.v1.json");
socket.onopen = () => report({{ kind: "open", protocol: socket.protocol }});
socket.onmessage = (e) => report({{ kind: "event", data: JSON.parse(e.data) }});
socket.onerror = () => report({{ kind: "transport_error", readyState: socket.readyState }});
socket.onclose = (e) => report({{ kind: "closed", code: e.code, reason: e.reason }});
</script>
"#,
        url = Value::from(url),
    )
}
