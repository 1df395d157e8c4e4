//! `t=watch` on the client node's web API end to end: a gateway over three real
//! servers, its pushed changes read over SSE (as bytes, parsed here), over a
//! WebSocket (tungstenite), and by a real browser's `EventSource` (headless Chromium,
//! from a page on another origin). Changes are made through the gateway itself.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt, Stream, StreamExt};
use reqwest::StatusCode;
use serde_json::Value;
use swamp_gateway::{Limits, WatchLimits};
use swamp_tests::random_bytes;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::browser_kit::{Browser, REPORT_JS, chromium_present, serve_pages};
use crate::gateway::{Node, TOKEN, node_with, seg};

/// How long any one awaited event may take.
const PATIENCE: Duration = Duration::from_secs(60);

/// The API token as a query value.
fn token_arg() -> String {
    format!("token={}", TOKEN.replace('=', "%3D"))
}

/// A new directory's cap and its path segment.
async fn new_dir(node: &Node) -> (String, String) {
    let cap = node
        .ok_text(reqwest::Method::POST, "/uri?t=mkdir", "")
        .await;
    let r = seg(&cap);
    (cap, r)
}

async fn put(node: &Node, path: &str, size: usize) -> String {
    node.ok_text(reqwest::Method::PUT, path, random_bytes(size))
        .await
}

/// One SSE connection, parsed event by event.
struct Sse {
    body: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    buffer: String,
}

impl Sse {
    /// `GET path` with `headers`; asserts a 200 event stream open to any origin.
    async fn open(node: &Node, path: &str, headers: &[(&str, &str)]) -> Self {
        let mut request = node.http.get(format!("{}{path}", node.url));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        assert_eq!(response.headers()["access-control-allow-origin"], "*");
        Self {
            body: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        }
    }

    /// The next event: its `id` (if any) and its data as JSON.
    async fn event(&mut self) -> (Option<String>, Value) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut data) = (None, String::new());
                for line in block.lines() {
                    let (field, value) = line.split_once(':').unwrap_or((line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value);
                    match field {
                        "id" => id = Some(value.to_string()),
                        "data" => data.push_str(value),
                        _ => {} // comments (keep-alive), or nothing
                    }
                }
                if !data.is_empty() {
                    return (id, serde_json::from_str(&data).expect("JSON data"));
                }
                continue;
            }
            let chunk = tokio::time::timeout(PATIENCE, self.body.next())
                .await
                .expect("an event in time")
                .expect("the stream goes on")
                .expect("the stream reads");
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }

    /// The next event that is not a notice; checks that its `id` is its cursor.
    async fn change(&mut self) -> Value {
        loop {
            let (id, event) = self.event().await;
            assert_eq!(id.as_deref(), event["cursor"].as_str(), "{event}");
            if event["event"] != "notice" {
                return event;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_pushes_snapshot_then_children_added_modified_and_removed() {
    let node = node_with(Limits::default()).await;
    let (_, r) = new_dir(&node).await;
    let old_cap = put(&node, &format!("/uri/{r}/old.txt"), 10).await;
    let auth = format!("tahoe-lafs {TOKEN}");
    let mut sse = Sse::open(
        &node,
        &format!("/uri/{r}?t=watch&snapshot=true"),
        &[("authorization", &auth)],
    )
    .await;
    let exists = sse.change().await;
    assert_eq!(exists["event"], "exists", "{exists}");
    assert_eq!(exists["path"], "old.txt");
    assert_eq!(exists["kind"], "file");
    assert_eq!(exists["size"], 10);
    assert_eq!(exists["ro_uri"], old_cap.as_str());
    assert_eq!(sse.change().await["event"], "ready");

    let new_cap = put(&node, &format!("/uri/{r}/new.txt"), 20).await;
    let added = sse.change().await;
    assert_eq!(added["event"], "added", "{added}");
    assert_eq!(added["path"], "new.txt");
    assert_eq!(added["name"], "new.txt");
    assert_eq!(added["size"], 20);
    assert_eq!(added["ro_uri"], new_cap.as_str());
    let seqnum = added["dir_seqnum"].as_u64().expect("dir_seqnum");

    put(&node, &format!("/uri/{r}/new.txt"), 30).await;
    let modified = sse.change().await;
    assert_eq!(modified["event"], "modified", "{modified}");
    assert_eq!(modified["size"], 30);
    assert_eq!(modified["old"]["size"], 20);
    assert!(modified["dir_seqnum"].as_u64().expect("seqnum") > seqnum);

    node.ok_text(reqwest::Method::DELETE, &format!("/uri/{r}/old.txt"), "")
        .await;
    let removed = sse.change().await;
    assert_eq!(removed["event"], "removed", "{removed}");
    assert_eq!(removed["path"], "old.txt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recursive_watch_reports_changes_in_subdirectories_by_path() {
    let node = node_with(Limits::default()).await;
    let (_, r) = new_dir(&node).await;
    node.ok_text(reqwest::Method::POST, &format!("/uri/{r}/sub?t=mkdir"), "")
        .await;
    let mut sse = Sse::open(
        &node,
        &format!("/uri/{r}?t=watch&recursive=true&{}", token_arg()),
        &[],
    )
    .await;
    assert_eq!(sse.change().await["event"], "ready");
    put(&node, &format!("/uri/{r}/sub/deep.txt"), 5).await;
    let added = sse.change().await;
    assert_eq!(added["event"], "added", "{added}");
    assert_eq!(added["path"], "sub/deep.txt");
    assert_eq!(added["name"], "deep.txt");

    // Watching the subdirectory by its path works too.
    let mut sub = Sse::open(
        &node,
        &format!("/uri/{r}/sub?t=watch&snapshot=true&{}", token_arg()),
        &[],
    )
    .await;
    assert_eq!(sub.change().await["path"], "deep.txt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mutable_file_is_watched_by_version() {
    let node = node_with(Limits::default()).await;
    let cap = node
        .ok_text(reqwest::Method::PUT, "/uri?format=MDMF", "first")
        .await;
    let f = seg(&cap);
    let mut sse = Sse::open(
        &node,
        &format!("/uri/{f}?t=watch&snapshot=true&{}", token_arg()),
        &[],
    )
    .await;
    let first = sse.change().await;
    assert_eq!(first["event"], "version", "{first}");
    assert_eq!(first["size"], 5);
    assert_eq!(sse.change().await["event"], "ready");
    node.ok_text(reqwest::Method::PUT, &format!("/uri/{f}"), "second!")
        .await;
    let second = sse.change().await;
    assert_eq!(second["event"], "version", "{second}");
    assert_eq!(second["size"], 7);
    assert!(second["seqnum"].as_u64() > first["seqnum"].as_u64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_needs_the_token_and_a_directory_that_can_change() {
    let node = node_with(Limits::default()).await;
    let (_, r) = new_dir(&node).await;
    let file = put(&node, &format!("/uri/{r}/f.txt"), 100).await;
    let get = |path: String, auth: Option<&'static str>| {
        let mut request = node.http.get(format!("{}{path}", node.url));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        async move {
            let response = request.send().await.expect("request");
            let status = response.status();
            let cors = response
                .headers()
                .get("access-control-allow-origin")
                .cloned();
            let body = response.text().await.expect("body");
            assert_eq!(cors.as_ref().map(|v| v.as_bytes()), Some(&b"*"[..]));
            (status, body)
        }
    };
    let (status, _) = get(format!("/uri/{r}?t=watch"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = get(
        format!("/uri/{r}?t=watch"),
        Some("tahoe-lafs not-the-token"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = get(format!("/uri/{r}?t=watch&token=nope"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, body) = get(format!("/uri/{}?t=watch&{}", seg(&file), token_arg()), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("mutable directory"), "{body}");
    let (status, body) = get(format!("/uri/{r}/f.txt?t=watch&{}", token_arg()), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = get(format!("/uri/{r}/nope?t=watch&{}", token_arg()), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A directory nobody wrote (another write key): the first read's 410, no stream.
    let (_, missing) = new_dir(&node).await;
    let key_at = missing.find("DIR2%3A").expect("a DIR2 cap") + "DIR2%3A".len();
    let other = if &missing[key_at..=key_at] == "a" {
        "b"
    } else {
        "a"
    };
    let missing = format!("{}{other}{}", &missing[..key_at], &missing[key_at + 1..]);
    let (status, body) = get(format!("/uri/{missing}?t=watch&{}", token_arg()), None).await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    // Also when it comes with a cursor this node does not know.
    let (status, _) = get(
        format!(
            "/uri/{missing}?t=watch&cursor=0123456789abcdef-1&{}",
            token_arg()
        ),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::GONE);
    let (status, _) = get(format!("/uri/{r}?t=watch&depth=0&{}", token_arg()), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = get(
        format!("/uri/{r}?t=watch&recursive=maybe&{}", token_arg()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A preflight from a page on another origin that sends the header.
    let response = node
        .http
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/uri/{r}?t=watch", node.url),
        )
        .header("origin", "http://elsewhere.example")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .expect("preflight");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let headers = response.headers();
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert!(
        headers["access-control-allow-headers"]
            .to_str()
            .expect("text")
            .contains("authorization")
    );
    let (status, _, _) = node
        .send(
            reqwest::Method::POST,
            &format!("/uri/{r}?t=watch&{}", token_arg()),
            "",
        )
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(node.gateway.active_watches(), 0, "refusals start no watch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_event_id_resumes_with_the_change_made_while_away() {
    let node = node_with(Limits::default()).await;
    let (_, r) = new_dir(&node).await;
    let path = format!("/uri/{r}?t=watch&{}", token_arg());
    let mut sse = Sse::open(&node, &path, &[]).await;
    let ready = sse.change().await;
    assert_eq!(ready["event"], "ready");
    let cursor = ready["cursor"].as_str().expect("cursor").to_string();
    drop(sse);

    put(&node, &format!("/uri/{r}/while-away.txt"), 7).await;
    let mut resumed = Sse::open(&node, &path, &[("last-event-id", &cursor)]).await;
    let (_, first) = resumed.event().await;
    assert_eq!(first["event"], "added", "the missed change, first: {first}");
    assert_eq!(first["path"], "while-away.txt");
    // Live again after the replay.
    put(&node, &format!("/uri/{r}/after.txt"), 8).await;
    assert_eq!(resumed.change().await["path"], "after.txt");
    drop(resumed);

    // A cursor this node does not know: a resync notice, the whole state, ready.
    let mut unknown = Sse::open(&node, &path, &[("last-event-id", "0123456789abcdef-5")]).await;
    let (_, notice) = unknown.event().await;
    assert_eq!(notice["event"], "notice", "{notice}");
    assert_eq!(notice["resync"], true);
    let mut seen = Vec::new();
    loop {
        let event = unknown.change().await;
        if event["event"] == "ready" {
            break;
        }
        assert_eq!(event["event"], "exists", "{event}");
        seen.push(event["path"].as_str().expect("path").to_string());
    }
    seen.sort();
    assert_eq!(seen, ["after.txt", "while-away.txt"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrade_sends_the_same_objects_and_resumes_by_cursor() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let node = node_with(Limits::default()).await;
    let (_, r) = new_dir(&node).await;
    let url = format!(
        "{}/uri/{r}?t=watch&{}",
        node.url.replace("http://", "ws://"),
        token_arg()
    );
    let (mut ws, response) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .expect("upgrades");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    async fn next_change(
        ws: &mut tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
    ) -> Value {
        loop {
            let message = tokio::time::timeout(PATIENCE, ws.next())
                .await
                .expect("a frame in time")
                .expect("open")
                .expect("reads");
            if let Message::Text(text) = message {
                let event: Value = serde_json::from_str(&text).expect("JSON");
                if event["event"] != "notice" {
                    return event;
                }
            }
        }
    }
    assert_eq!(next_change(&mut ws).await["event"], "ready");
    put(&node, &format!("/uri/{r}/ws.txt"), 3).await;
    let added = next_change(&mut ws).await;
    assert_eq!(added["event"], "added", "{added}");
    assert_eq!(added["path"], "ws.txt");
    let cursor = added["cursor"].as_str().expect("cursor").to_string();
    ws.send(Message::Close(None)).await.expect("close");
    drop(ws);

    put(&node, &format!("/uri/{r}/ws2.txt"), 4).await;
    let request = format!("{url}&cursor={cursor}")
        .into_client_request()
        .expect("request");
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("upgrades again");
    let missed = next_change(&mut ws).await;
    assert_eq!(missed["event"], "added", "{missed}");
    assert_eq!(missed["path"], "ws2.txt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_ends_its_watch_and_watches_are_bounded() {
    let limits = Limits {
        watch: WatchLimits {
            watches: 1,
            linger: Duration::from_millis(50),
            keep_alive: Duration::from_millis(100),
            ..WatchLimits::default()
        },
        ..Limits::default()
    };
    let node = node_with(limits).await;
    let (_, r) = new_dir(&node).await;
    let path = format!("/uri/{r}?t=watch&{}", token_arg());
    let mut sse = Sse::open(&node, &path, &[]).await;
    assert_eq!(sse.change().await["event"], "ready");
    assert_eq!(node.gateway.active_watches(), 1);
    let (status, _, body) = node.send(reqwest::Method::GET, &path, "").await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        String::from_utf8_lossy(&body)
    );
    drop(sse);
    // The keep-alive finds the connection gone; the session lingers 50 ms, then ends.
    let deadline = Instant::now() + PATIENCE;
    while node.gateway.active_watches() != 0 {
        assert!(Instant::now() < deadline, "the watch outlived its client");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut again = Sse::open(&node, &path, &[]).await;
    assert_eq!(again.change().await["event"], "ready");

    // Shutting the node down ends the stream (the watch does not hold the shutdown).
    node.stop.cancel();
    let end = tokio::time::timeout(PATIENCE, async {
        loop {
            match again.body.next().await {
                Some(Ok(_)) => {}
                other => return other.is_none(),
            }
        }
    })
    .await
    .expect("the stream ended in time");
    assert!(end, "ended cleanly, not cut off");
    assert_eq!(node.gateway.active_watches(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eventsource_in_a_browser_shows_a_change() {
    if !chromium_present() {
        return;
    }
    let node = node_with(Limits::default()).await;
    let (_, r) = new_dir(&node).await;
    let (tx, mut reports) = mpsc::unbounded_channel();
    let pages_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let pages_addr = pages_listener.local_addr().expect("address");
    // The page is on another origin (another port) than the node.
    let url = format!("{}/uri/{r}?t=watch&{}", node.url, token_arg());
    let pages = HashMap::from([("/watch.html", watch_page(&url))]);
    tokio::spawn(serve_pages(pages_listener, Arc::new(pages), tx));
    let mut browser = Browser::launch(None, &format!("http://{pages_addr}/watch.html"));
    let mut seen = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    browser
        .wait_for(&mut reports, &mut seen, deadline, |r| {
            r["kind"] == "event" && r["data"]["event"] == "ready"
        })
        .await;
    put(&node, &format!("/uri/{r}/from-the-browser.txt"), 9).await;
    let deadline = Instant::now() + PATIENCE;
    let added = browser
        .wait_for(&mut reports, &mut seen, deadline, |r| {
            r["kind"] == "event" && r["data"]["event"] == "added"
        })
        .await;
    assert_eq!(added["data"]["path"], "from-the-browser.txt", "{added}");
    assert_eq!(added["id"], added["data"]["cursor"], "{added}");
}

/// A page that follows `url` with an `EventSource` and reports every message (with
/// its `lastEventId`).
fn watch_page(url: &str) -> String {
    format!(
        r#"<!doctype html>
<meta charset="utf-8"><title>swamp t=watch over EventSource</title>
<script>
{REPORT_JS}
const source = new EventSource({url});
source.onopen = () => report({{ kind: "open" }});
source.onmessage = (e) => report({{ kind: "event", id: e.lastEventId, data: JSON.parse(e.data) }});
source.onerror = () => report({{ kind: "transport_error", readyState: source.readyState }});
</script>
"#,
        url = Value::from(url),
    )
}
