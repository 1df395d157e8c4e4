//! The operator's dashboard in a real browser: headless Chromium loads `/dashboard` from
//! the operator listener, is refused with a wrong secret, logs in with the right one,
//! shows live figures while clients write, the node's grid-manager certificates and
//! its lease expiry sweep, and says so when the node goes away. The node is served
//! from a node directory with two certificates (`node_dir::certified_node`) and lease
//! expiry on.
//!
//! The page is the node's own, so the test reads it through Chromium's DevTools
//! protocol (`--remote-debugging-port=0`: Chromium prints the browser's WebSocket URL
//! on stderr; `Runtime.evaluate` reads the DOM, `Page.captureScreenshot` takes the
//! picture). With `SWAMP_DASHBOARD_SCREENSHOT=PATH` the test runs its load for longer
//! and writes a screenshot there (`docs/dashboard.png` is made so).
//!
//! Chromium comes from Debian's `chromium` package (`.ci/run` installs it). Without it
//! this test fails when `CI` is set, and is skipped with a notice otherwise.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use swamp_client::feed::{FeedOptions, FeedRequest, Transport};
use swamp_proto::ShareNumber;
use swamp_tests::{Secrets, mdmf_share, random_si, upload_share, write_slot};
use tokio_tungstenite::tungstenite::Message;

const CHROMIUM: &str = "/usr/bin/chromium";
/// How long any one step (a page state, a DevTools answer) may take.
const PATIENCE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn dashboard_refuses_a_wrong_secret_then_shows_live_load_and_a_dropped_node() {
    if !Path::new(CHROMIUM).exists() {
        if std::env::var_os("CI").is_some() {
            panic!(
                "{CHROMIUM} is missing: the dashboard test needs Debian's chromium package \
                 (apt-get install chromium; .ci/run installs it)"
            );
        }
        eprintln!("SKIPPED: {CHROMIUM} is missing (apt-get install chromium); CI would fail here");
        return;
    }
    let screenshot = std::env::var_os("SWAMP_DASHBOARD_SCREENSHOT");
    let (dir, node) = crate::node_dir::certified_node("expire.enabled = true\n");
    let clock = swamp_tests::TestClock::new(crate::node_dir::MADE);
    let server = crate::node_dir::serve_node(dir, &node, clock).await;
    let browser = Browser::launch().await;
    let mut page = browser
        .open(&format!("http://{}/dashboard", server.operator_addr))
        .await;

    // Not logged in: the form.
    page.wait_until("document.getElementById('state').dataset.state === 'login'")
        .await;
    // A wrong secret: refused, and the page says so.
    page.eval(
        "document.getElementById('secret').value = 'not-this-nodes-secret'; \
         document.getElementById('login').requestSubmit(); true",
    )
    .await;
    page.wait_until("document.getElementById('state').dataset.state === 'wrong-secret'")
        .await;
    let message = page
        .eval("document.getElementById('login-error').textContent")
        .await;
    assert!(
        message.as_str().unwrap().starts_with("Wrong secret"),
        "{message}"
    );
    assert_eq!(
        page.eval("document.getElementById('dash').hidden").await,
        true
    );

    // The right one: the dashboard, connected.
    let secret = server.identity.operator_secret.expose().to_string();
    page.eval(&format!(
        "document.getElementById('secret').value = {}; \
         document.getElementById('login').requestSubmit(); true",
        Value::from(secret.as_str())
    ))
    .await;
    page.wait_until("document.getElementById('state').dataset.state === 'live'")
        .await;
    // The session cookie is out of scripts' reach (HttpOnly).
    assert_eq!(page.eval("document.cookie").await, "");

    // Load: clients write and read slots and upload shares until told to stop, and a
    // feed follows the slots.
    let stop = Arc::new(AtomicBool::new(false));
    let slots: Vec<_> = (0..4).map(|_| random_si()).collect();
    let follower = tokio::spawn(follow(server.nurl.clone(), slots.clone()));
    let mut load = Vec::new();
    for (worker, si) in slots.into_iter().enumerate() {
        let (client, stop) = (server.client.clone(), Arc::clone(&stop));
        load.push(tokio::spawn(async move {
            let s = Secrets::random();
            let mut round = 0u64;
            while !stop.load(Ordering::Relaxed) {
                round += 1;
                let share = mdmf_share(round, [worker as u8; 32], &[7; 2000]);
                write_slot(&client, &si, &s, 0, &share).await;
                let read = client
                    .mutable()
                    .read_share_chunk(&si, ShareNumber::new(0), 0, 20_000)
                    .await
                    .unwrap();
                assert_eq!(read.len(), share.len());
                if worker == 0 && round.is_multiple_of(5) {
                    upload_share(&client, &random_si(), &Secrets::random(), 0, &[3; 50_000]).await;
                }
            }
        }));
    }

    // Live figures: a request rate, and counts that grow while the load runs.
    page.wait_until("Number(document.getElementById('req-rate').dataset.value) > 0")
        .await;
    let seen = page
        .eval("Number(document.getElementById('requests-total').dataset.value)")
        .await
        .as_f64()
        .unwrap();
    page.wait_until(&format!(
        "Number(document.getElementById('requests-total').dataset.value) > {seen}"
    ))
    .await;
    // Latency percentiles (from /metrics) and the disk are filled in.
    page.wait_until("document.getElementById('p99').textContent !== '–'")
        .await;
    assert_ne!(
        page.eval("document.getElementById('disk-used').textContent")
            .await,
        "–"
    );
    page.wait_until("document.querySelector('#kinds #kind-read_test_write') !== null")
        .await;
    // The certificates, in their states on the node's clock, and the sweep's pass
    // (which ran at start, on an empty node).
    page.wait_until(
        "document.querySelector('#cert-list li[data-name=\"soon\"]')?.dataset.state === 'expiring'",
    )
    .await;
    let certificates = page
        .eval(
            "[...document.querySelectorAll('#cert-list li')].map((li) => \
               [li.dataset.name, li.dataset.state, li.querySelector('.left').textContent, \
                getComputedStyle(li.querySelector('.pill')).color])",
        )
        .await;
    let row = |i: usize| Value::from(certificates[i].as_array().unwrap()[..3].to_vec());
    assert_eq!(row(0), json!(["main", "valid", "1,825 days left"]));
    assert_eq!(row(1), json!(["soon", "expiring", "1 day left"]));
    assert_ne!(
        certificates[0][3], certificates[1][3],
        "the states are told apart by colour too"
    );
    assert_eq!(
        page.eval("document.getElementById('certificates').textContent")
            .await,
        "1 valid · 1 expiring · announced to clients"
    );
    page.wait_until(
        "document.getElementById('expiry-state').dataset.state === 'idle' && \
         document.getElementById('expiry-state').textContent === 'idle · 1 pass done' && \
         document.getElementById('expiry-detail').textContent.startsWith('1,024 of 1,024 prefixes')",
    )
    .await;
    // The feed: its connection, and deliveries as the slots change.
    page.wait_until(
        "document.getElementById('feed-conns').textContent === '1' && \
         Number(document.getElementById('feed-rate').textContent.replace(/,/g, '')) > 0",
    )
    .await;
    let events = page
        .eval("document.getElementById('events').textContent")
        .await;
    assert!(
        events
            .as_str()
            .unwrap()
            .contains("requests: read_test_write"),
        "{events}"
    );

    if let Some(path) = &screenshot {
        // Long enough for the sparklines to fill.
        tokio::time::sleep(Duration::from_secs(45)).await;
        page.screenshot(Path::new(path)).await;
        eprintln!("screenshot written to {}", path.to_string_lossy());
    }
    stop.store(true, Ordering::Relaxed);
    for worker in load {
        worker.await.unwrap();
    }
    follower.abort();

    // The node goes away: the page says it is disconnected and retrying.
    let _ = server.stop().await;
    page.wait_until(
        "document.getElementById('state').dataset.state === 'retrying' && \
         !document.getElementById('banner').hidden && \
         document.getElementById('state').textContent === 'disconnected, retrying…'",
    )
    .await;
}

/// Follows `slots` over a WebSocket feed, reading every item, until aborted.
async fn follow(nurl: swamp_proto::Nurl, slots: Vec<swamp_proto::StorageIndex>) {
    let request = FeedRequest {
        storage_indexes: slots,
        since: None,
        snapshot: false,
    };
    let options = FeedOptions {
        transports: vec![Transport::WebSocket],
        ..FeedOptions::default()
    };
    let mut feed = Box::pin(swamp_client::feed::follow(&nurl, request, options));
    while feed.next().await.is_some() {}
}

/// A headless Chromium with its DevTools endpoint open, killed (by its PID) when
/// dropped.
struct Browser {
    child: Child,
    ws_url: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn launch() -> Self {
        let profile = tempfile::tempdir().unwrap();
        let log_path = profile.path().join("chromium.log");
        let mut child = Command::new(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--window-size=1280,900",
                "--remote-debugging-port=0",
                "--remote-debugging-address=127.0.0.1",
            ])
            .arg(format!(
                "--user-data-dir={}",
                profile.path().join("profile").display()
            ))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMIUM}: {e}"));
        // Chromium says where DevTools listens on stderr; the rest goes to a log file.
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut log = std::fs::File::create(log_path).unwrap();
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(url.trim().to_string());
                }
                let _ = writeln!(log, "{line}");
            }
        });
        let ws_url = tokio::time::timeout(PATIENCE, rx)
            .await
            .expect("Chromium's DevTools endpoint within a minute")
            .expect("Chromium exited before opening DevTools");
        Self {
            child,
            ws_url,
            _profile: profile,
        }
    }

    /// A new tab on `url`, attached for commands.
    async fn open(&self, url: &str) -> Page {
        let (ws, _) = tokio_tungstenite::connect_async(&self.ws_url)
            .await
            .expect("connecting to Chromium's DevTools");
        let mut page = Page {
            ws,
            next_id: 0,
            session: None,
        };
        let target = page
            .call("Target.createTarget", json!({ "url": "about:blank" }))
            .await;
        let attached = page
            .call(
                "Target.attachToTarget",
                json!({ "targetId": target["targetId"], "flatten": true }),
            )
            .await;
        page.session = Some(attached["sessionId"].as_str().unwrap().to_string());
        page.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false }),
        )
        .await;
        page.call("Page.navigate", json!({ "url": url })).await;
        page
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One tab, driven over the DevTools protocol.
struct Page {
    ws: Ws,
    next_id: u64,
    session: Option<String>,
}

impl Page {
    /// Sends a command and returns its result (events in between are skipped).
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = &self.session {
            message["sessionId"] = Value::from(session.as_str());
        }
        self.ws
            .send(Message::text(message.to_string()))
            .await
            .expect("sending to DevTools");
        loop {
            let frame = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no answer to {method} within {PATIENCE:?}"))
                .expect("DevTools closed")
                .expect("reading from DevTools");
            let Message::Text(text) = frame else {
                continue;
            };
            let answer: Value = serde_json::from_str(&text).unwrap();
            if answer["id"] == id {
                assert!(answer["error"].is_null(), "{method}: {answer}");
                return answer["result"].clone();
            }
        }
    }

    /// The value of a JavaScript expression in the page.
    async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
            )
            .await;
        assert!(
            result["exceptionDetails"].is_null(),
            "{expression}: {result}"
        );
        result["result"]["value"].clone()
    }

    /// Waits (in the page, checking every 100 ms) until `condition` holds; fails with
    /// the page's state after [`PATIENCE`].
    async fn wait_until(&mut self, condition: &str) {
        let waited = self
            .eval(&format!(
                "new Promise((done) => {{ const start = Date.now(); const t = setInterval(() => {{ \
                   let ok = false; try {{ ok = Boolean({condition}); }} catch (_) {{}} \
                   if (ok || Date.now() - start > {ms}) {{ clearInterval(t); done(ok); }} \
                 }}, 100); }})",
                ms = PATIENCE.as_millis() - 5000,
            ))
            .await;
        if waited != true {
            let state = self
                .eval(
                    "JSON.stringify({ state: document.getElementById('state')?.textContent, \
                     login: document.getElementById('login-error')?.textContent, \
                     events: document.getElementById('events')?.innerText })",
                )
                .await;
            panic!("the page never showed `{condition}`; it shows {state}");
        }
    }

    /// A PNG of the whole page.
    async fn screenshot(&mut self, path: &Path) {
        let height = self
            .eval("Math.ceil(document.documentElement.scrollHeight)")
            .await
            .as_u64()
            .unwrap();
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": 1280, "height": height, "deviceScaleFactor": 1, "mobile": false }),
        )
        .await;
        let shot = self
            .call("Page.captureScreenshot", json!({ "format": "png" }))
            .await;
        let png = data_encoding::BASE64
            .decode(shot["data"].as_str().unwrap().as_bytes())
            .unwrap();
        std::fs::write(path, png).unwrap();
    }
}
