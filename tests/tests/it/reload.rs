//! Reload without restart: a node started from its directory reads `tahoe.cfg`, its
//! operator secret and its certificates again, applies each setting that can change
//! live, names those that need a restart, and keeps running as it was when the new
//! configuration is wrong. Grid-manager certificates at a reload are in `node_dir.rs`
//! (beside their fixtures); SIGHUP, `swamp-server reload` and the log settings, which
//! need a process of their own, are at the end.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use swamp_client::{ClientError, StorageClient};
use swamp_proto::ShareNumber;
use swamp_server::reload::ReloadReport;
use swamp_tests::child::{NodeProcess, server_binary};
use swamp_tests::{Secrets, TestClock, TestServer, random_si, upload_share};

/// A node started from a fresh node directory (`load_node`), served in this process.
struct DirNode {
    server: TestServer,
    node: PathBuf,
    secret: String,
    /// For the operator listener (plain HTTP).
    http: reqwest::Client,
}

impl std::ops::Deref for DirNode {
    type Target = TestServer;

    fn deref(&self) -> &TestServer {
        &self.server
    }
}

impl DirNode {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let node = dir.path().join("node");
        swamp_server::node::create::create_node(&node, &Default::default()).unwrap();
        let clock = TestClock::new(swamp_server::system_clock()());
        let loaded = swamp_server::start::load_node(&node, |_| None, clock.as_clock()).unwrap();
        let secret = loaded.identity.operator_secret.expose().to_string();
        let server = TestServer::from_node(loaded, clock, Some(dir)).await;
        Self {
            http: server.raw_client(),
            server,
            node,
            secret,
        }
    }

    /// Sets `key` in `[section]` of `tahoe.cfg` (`None` removes it).
    fn set(&self, section: &str, key: &str, value: Option<&str>) {
        set_in_cfg(&self.node, section, key, value);
    }

    async fn status(&self) -> serde_json::Value {
        self.http
            .get(format!("http://{}/status", self.operator_addr))
            .header("authorization", format!("Swamp-Operator {}", self.secret))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .map(|b| serde_json::from_slice(&b).expect("a status document"))
            .unwrap()
    }
}

/// Sets `key` in `[section]` of `<node>/tahoe.cfg`, adding the section if missing
/// (`None` removes the key).
pub(crate) fn set_in_cfg(node: &Path, section: &str, key: &str, value: Option<&str>) {
    let path = node.join("tahoe.cfg");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut out = Vec::new();
    let mut in_section = false;
    let mut done = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            if in_section && !done {
                if let Some(v) = value {
                    out.push(format!("{key} = {v}"));
                }
                done = true;
            }
            in_section = trimmed == format!("[{section}]");
        } else if in_section
            && trimmed
                .split_once(['=', ':'])
                .is_some_and(|(k, _)| k.trim() == key)
        {
            if let Some(v) = value {
                out.push(format!("{key} = {v}"));
            }
            done = true;
            continue;
        }
        out.push(line.to_string());
    }
    if !done && let Some(v) = value {
        if !in_section {
            out.push(format!("[{section}]"));
        }
        out.push(format!("{key} = {v}"));
    }
    std::fs::write(path, out.join("\n") + "\n").unwrap();
}

const SWAMP: &str = "storageserver.plugins.swamp";

fn changed(report: &ReloadReport, setting: &str) -> bool {
    report.applied.iter().any(|c| c.setting == setting)
}

#[tokio::test]
async fn reserved_space_and_readonly_change_at_a_reload() {
    let node = DirNode::start().await;
    let before = node.status().await;
    let secrets = Secrets::random();
    let si = random_si();
    upload_share(&node.client, &si, &secrets, 0, b"before the reload").await;

    node.set("storage", "reserved_space", Some("1P"));
    node.set("storage", "readonly", Some("true"));
    let report = node.reload().await.unwrap();
    assert!(changed(&report, "[storage] reserved_space"), "{report:?}");
    assert!(changed(&report, "[storage] readonly"), "{report:?}");
    assert!(report.needs_restart.is_empty(), "{report:?}");
    let after = node.status().await;
    assert_eq!(after["reserved_space"], 1_000_000_000_000_000u64);
    assert_eq!(after["accepting_immutable_shares"], false);
    let version = node.client.general().version().await.unwrap();
    assert_eq!(version.storage.available_space, 0);
    let refused = Secrets::random()
        .allocate(&node.client, &random_si(), [ShareNumber::new(0)], 100)
        .await;
    assert!(
        refused.allocated.0.is_empty(),
        "a read-only node takes no share"
    );
    // What it held is still read.
    let read = node
        .client
        .immutable()
        .read_share_chunk(&si, ShareNumber::new(0), 0, 6)
        .await
        .unwrap();
    assert_eq!(&read[..], b"before");

    node.set("storage", "readonly", None);
    node.set("storage", "reserved_space", Some("0"));
    node.reload().await.unwrap();
    let back = node.status().await;
    assert_eq!(back["accepting_immutable_shares"], true);
    assert_eq!(back["reserved_space"], 0);
    assert_ne!(before["reserved_space"], back["reserved_space"]);
    upload_share(&node.client, &random_si(), &Secrets::random(), 0, b"after").await;
}

#[tokio::test]
async fn request_limits_change_for_the_next_request() {
    let node = DirNode::start().await;
    let secrets = Secrets::random();
    let si = random_si();
    let share = ShareNumber::new(0);
    secrets.allocate(&node.client, &si, [share], 4000).await;
    let imm = node.client.immutable();
    imm.write_share_chunk(&si, share, &secrets.upload, 0, vec![1; 1000])
        .await
        .unwrap();

    node.set(SWAMP, "max_patch_size", Some("1000"));
    let report = node.reload().await.unwrap();
    assert!(changed(&report, &format!("[{SWAMP}] max_patch_size")));
    let refused = imm
        .write_share_chunk(&si, share, &secrets.upload, 1000, vec![2; 2000])
        .await;
    assert!(
        matches!(
            refused,
            Err(ClientError::Http {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                ..
            })
        ),
        "{refused:?}"
    );
    imm.write_share_chunk(&si, share, &secrets.upload, 1000, vec![2; 1000])
        .await
        .unwrap();

    node.set(SWAMP, "max_patch_size", None);
    node.reload().await.unwrap();
    let done = imm
        .write_share_chunk(&si, share, &secrets.upload, 2000, vec![3; 2000])
        .await
        .unwrap();
    assert!(done.complete);
}

#[tokio::test]
async fn a_lower_connection_limit_holds_new_connections_until_one_closes() {
    let node = DirNode::start().await;
    node.set(SWAMP, "max_connections", Some("1"));
    node.reload().await.unwrap();
    // Served: the accept loop took its place before the reload, or the one place.
    let first = tls_connection(&node).await;
    let second = tokio::time::timeout(Duration::from_millis(500), tls_connection(&node)).await;
    assert!(
        second.is_err(),
        "a second connection is served while the only place is taken"
    );
    drop(first);
    tokio::time::timeout(Duration::from_secs(30), tls_connection(&node))
        .await
        .expect("served once the place is free");

    node.set(SWAMP, "max_connections", None);
    node.reload().await.unwrap();
    let a = tls_connection(&node).await;
    let b = tokio::time::timeout(Duration::from_secs(30), tls_connection(&node))
        .await
        .expect("two at once after the limit is raised");
    drop((a, b));
}

/// A TLS connection to the node that has finished one request (`GET /` answers 404
/// without the swissnum: the node is serving it).
async fn tls_connection(node: &DirNode) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let config = swamp_client::tls::pinned_config(node.nurl.spki_hash, &[b"http/1.1"]);
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(node.addr).await.unwrap();
    let mut tls = connector
        .connect("127.0.0.1".try_into().unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 12];
    tls.read_exact(&mut head).await.unwrap();
    assert!(head.starts_with(b"HTTP/1.1 "), "{head:?}");
    tls
}

#[tokio::test]
async fn a_shorter_handshake_timeout_applies_to_the_next_connection() {
    use tokio::io::AsyncReadExt;
    let node = DirNode::start().await;
    node.set(SWAMP, "handshake_timeout", Some("1"));
    node.reload().await.unwrap();
    // A client that connects and says nothing: the default (15 s) would keep it
    // longer than this test waits.
    let mut silent = tokio::net::TcpStream::connect(node.addr).await.unwrap();
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(10), silent.read(&mut buf))
        .await
        .expect("closed by the new handshake timeout");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

#[tokio::test]
async fn feed_limits_change_at_a_reload() {
    let node = DirNode::start().await;
    let si = random_si();
    let poll = || async {
        node.client
            .request(
                http::Method::GET,
                &format!("/storage/v1/feed?si={si}&wait=0"),
            )
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(poll().await, StatusCode::OK);
    node.set(SWAMP, "feed_max_connections", Some("0"));
    let report = node.reload().await.unwrap();
    assert!(changed(&report, &format!("[{SWAMP}] feed_max_connections")));
    assert_eq!(poll().await, StatusCode::SERVICE_UNAVAILABLE);
    node.set(SWAMP, "feed_max_connections", Some("5"));
    node.reload().await.unwrap();
    assert_eq!(poll().await, StatusCode::OK);
}

#[tokio::test]
async fn lease_expiry_turned_on_at_a_reload_removes_expired_shares() {
    let node = DirNode::start().await;
    let si = random_si();
    upload_share(
        &node.client,
        &si,
        &Secrets::random(),
        3,
        b"lease runs a month",
    )
    .await;
    // Every lease was renewed before this date: all are expired by it.
    node.set("storage", "expire.enabled", Some("true"));
    node.set("storage", "expire.mode", Some("cutoff-date"));
    node.set("storage", "expire.cutoff_date", Some("2999-01-01"));
    let report = node.reload().await.unwrap();
    assert!(changed(&report, "[storage] expire.enabled"), "{report:?}");
    // One pass visits the 1,024 prefixes 20 ms apart.
    let gone = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            let shares = node.client.immutable().list_shares(&si).await.unwrap();
            if shares.is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "the share with an expired lease was removed");
}

#[tokio::test]
async fn the_operator_secret_changes_at_a_reload_asked_with_the_new_one() {
    let node = DirNode::start().await;
    let http = node.http.clone();
    let url = |path: &str| format!("http://{}{path}", node.operator_addr);
    let with = |path: &str, secret: &str| {
        http.post(url(path))
            .header("authorization", format!("Swamp-Operator {secret}"))
    };
    let status_with = |secret: String| {
        let request = http
            .get(url("/status"))
            .header("authorization", format!("Swamp-Operator {secret}"));
        async move { request.send().await.unwrap().status() }
    };
    // A stranger cannot reload.
    let refused = with("/reload", "not-the-secret-of-this-node")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    // The dashboard's cookie does not reload either (a page elsewhere can make a
    // browser POST with it).
    let login = http
        .post(url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("secret={}", node.secret))
        .send()
        .await
        .unwrap();
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_string();
    let by_cookie = http
        .post(url("/reload"))
        .header("cookie", cookie.split(';').next().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(by_cookie.status(), StatusCode::UNAUTHORIZED);

    let new_secret = "a-new-operator-secret-0123456789";
    std::fs::write(
        node.node.join("private/operator.secret"),
        format!("{new_secret}\n"),
    )
    .unwrap();
    let answer = with("/reload", new_secret).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let report: ReloadReport = serde_json::from_slice(&answer.bytes().await.unwrap()).unwrap();
    let change = report
        .applied
        .iter()
        .find(|c| c.setting == "operator secret")
        .expect("the secret is reported");
    let shown = serde_json::to_string(&report).unwrap();
    assert!(
        !shown.contains(new_secret) && !shown.contains(&node.secret),
        "{shown}"
    );
    assert_eq!(change.to.as_deref(), Some("(hidden)"));
    assert_eq!(
        status_with(node.secret.clone()).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(status_with(new_secret.to_string()).await, StatusCode::OK);
}

#[tokio::test]
async fn a_wrong_configuration_changes_nothing_and_says_why() {
    let node = DirNode::start().await;
    let before = node.status().await;
    node.set("storage", "reserved_space", Some("123M"));
    node.set(SWAMP, "max_connections", Some("lots"));
    let error = node.reload().await.unwrap_err();
    assert!(
        error.contains("max_connections") && error.contains("lots"),
        "the error names the setting and the value: {error}"
    );
    assert_eq!(
        node.status().await["reserved_space"],
        before["reserved_space"]
    );
    // Through the operator listener: 422 and the reason.
    let answer = node
        .http
        .post(format!("http://{}/reload", node.operator_addr))
        .header("authorization", format!("Swamp-Operator {}", node.secret))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: serde_json::Value = serde_json::from_slice(&answer.bytes().await.unwrap()).unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("max_connections"),
        "{body}"
    );
    // Fixed: both apply.
    node.set(SWAMP, "max_connections", None);
    let report = node.reload().await.unwrap();
    assert!(changed(&report, "[storage] reserved_space"));
    assert_eq!(node.status().await["reserved_space"], 123_000_000);
}

#[tokio::test]
async fn settings_that_need_a_restart_are_named_until_it() {
    let node = DirNode::start().await;
    node.set("node", "tub.port", Some("tcp:1:interface=127.0.0.1"));
    node.set(SWAMP, "operator_port", Some("disabled"));
    for _ in 0..2 {
        let report = node.reload().await.unwrap();
        let pending: Vec<&str> = report
            .needs_restart
            .iter()
            .map(|c| c.setting.as_str())
            .collect();
        assert_eq!(
            pending,
            ["[node] tub.port", &format!("[{SWAMP}] operator_port")],
            "{report:?}"
        );
        assert!(report.applied.is_empty(), "{report:?}");
    }
    // Both listeners serve as before.
    node.client.general().version().await.unwrap();
    assert!(node.status().await["version"].is_string());
}

/// Waits (up to a minute) for a line of the node's log that `wanted` accepts.
async fn log_line(node: &NodeProcess, wanted: impl Fn(&str) -> bool) -> String {
    let found = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let log = std::fs::read_to_string(node.log_path()).unwrap_or_default();
            if let Some(line) = log.lines().find(|l| wanted(l)) {
                return line.to_string();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("no such line; {}", node.log_tail(20)))
}

/// Makes the node log a line at debug level: a TLS handshake that fails.
async fn failed_handshake(node: &NodeProcess) {
    use tokio::io::AsyncWriteExt;
    let mut tcp = tokio::net::TcpStream::connect((node.nurl().host.as_str(), node.nurl().port))
        .await
        .unwrap();
    tcp.write_all(b"this is not a TLS client hello\r\n\r\n")
        .await
        .unwrap();
    let _ = tcp.shutdown().await;
}

fn reload_command(node: &NodeProcess) -> std::process::Output {
    std::process::Command::new(server_binary())
        .arg("reload")
        .arg(node.node_dir())
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap()
}

#[tokio::test]
async fn sighup_and_the_reload_command_change_the_log_output() {
    let mut node = NodeProcess::create();
    node.log_filter_from_config();
    node.start().await;
    let dir = node.node_dir();

    // The command: JSON lines, debug level.
    set_in_cfg(&dir, SWAMP, "log_format", Some("json"));
    set_in_cfg(&dir, SWAMP, "log_filter", Some("swamp_server=debug"));
    let out = reload_command(&node);
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{printed} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        printed.contains(&format!("[{SWAMP}] log_format: (default) -> json")),
        "{printed}"
    );
    failed_handshake(&node).await;
    let debug = log_line(&node, |l| l.contains("TLS handshake failed")).await;
    let debug: serde_json::Value = serde_json::from_str(&debug).expect("a JSON line");
    assert_eq!(debug["level"], "DEBUG");

    // SIGHUP: text again, info level.
    set_in_cfg(&dir, SWAMP, "log_format", Some("text"));
    set_in_cfg(&dir, SWAMP, "log_filter", Some("swamp_server=info"));
    node.signal(rustix::process::Signal::HUP);
    let line = log_line(&node, |l| {
        !l.starts_with('{') && l.contains("reloaded: applied") && l.contains("log_filter")
    })
    .await;
    assert!(line.contains("INFO"), "{line}");

    // A wrong configuration: the command says why and fails; the node runs on.
    set_in_cfg(&dir, "storage", "reserved_space", Some("plenty"));
    let out = reload_command(&node);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("reserved_space") && said.contains("plenty"),
        "{said}"
    );
    assert!(
        said.contains("runs on with the configuration it had"),
        "{said}"
    );
    let client = StorageClient::new(node.nurl()).unwrap();
    let version = client.general().version().await.unwrap();
    assert!(version.storage.available_space > 0);
    // Fixed, then stopped: not running is status 3.
    set_in_cfg(&dir, "storage", "reserved_space", None);
    node.stop().await;
    // Not running: status 3.
    assert_eq!(reload_command(&node).status.code(), Some(3));
}
