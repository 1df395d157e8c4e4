//! The client node's web API (`swamp-gateway`) end to end: a gateway over three real
//! servers (2-of-3), driven over HTTP as Tahoe's CLI, magic-folder and GridSync drive
//! a Tahoe client node, checking Tahoe's statuses, headers and JSON shapes.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};
use swamp_client::nodedir::ServerName;
use swamp_gateway::{Gateway, Limits, serve};
use swamp_tests::{TestServer, grid_of, random_bytes, share_file};
use tokio_util::sync::CancellationToken;

/// The node's API token (`private/api_auth_token`).
pub(crate) const TOKEN: &str = "aW50ZXJvcC10b2tlbg==";

/// A gateway served on loopback; stops when dropped. (Shared with `gateway_watch`.)
pub(crate) struct Node {
    pub(crate) url: String,
    pub(crate) http: reqwest::Client,
    pub(crate) gateway: Arc<Gateway>,
    pub(crate) stop: CancellationToken,
    servers: [TestServer; 3],
    _spool: tempfile::TempDir,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn node() -> Node {
    node_with(Limits::default()).await
}

pub(crate) async fn node_with(limits: Limits) -> Node {
    // Plain HTTP, but reqwest wants a TLS provider chosen before a client is built.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let servers = TestServer::three().await;
    let grid = grid_of(&servers);
    let names = (0..3)
        .map(|i| ServerName {
            id: format!("v0-server{i}"),
            nickname: format!("s{i}"),
        })
        .collect();
    let spool = tempfile::tempdir().expect("spool dir");
    let gateway =
        Gateway::new(grid, names, spool.path().join("tmp"), limits).with_api_token(TOKEN.into());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let stop = CancellationToken::new();
    let gateway = Arc::new(gateway);
    tokio::spawn(serve(listener, Arc::clone(&gateway), stop.clone()));
    Node {
        url,
        gateway,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        stop,
        servers,
        _spool: spool,
    }
}

impl Node {
    /// Where the gateway spools uploads.
    pub(crate) fn spool_dir(&self) -> std::path::PathBuf {
        self._spool.path().join("tmp")
    }

    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: impl Into<reqwest::Body>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
        let response = self
            .http
            .request(method, format!("{}{path}", self.url))
            .body(body)
            .send()
            .await
            .expect("request");
        let status = response.status();
        let headers = response.headers().clone();
        (
            status,
            headers,
            response.bytes().await.expect("body").to_vec(),
        )
    }

    pub(crate) async fn ok_text(
        &self,
        method: reqwest::Method,
        path: &str,
        body: impl Into<reqwest::Body>,
    ) -> String {
        let (status, _, body) = self.send(method, path, body).await;
        let text = String::from_utf8(body).expect("text");
        assert!(status.is_success(), "{path}: {status} {text}");
        text
    }

    async fn json(&self, path: &str) -> Value {
        let text = self.ok_text(reqwest::Method::GET, path, "").await;
        serde_json::from_str(&text).expect("json")
    }
}

/// The ETag of a HEAD of `cap`.
async fn headers_of(node: &Node, cap: &str) -> String {
    let head = node
        .http
        .head(format!("{}/uri/{}", node.url, seg(cap)))
        .send()
        .await
        .expect("head");
    head.headers()["etag"].to_str().expect("etag").to_string()
}

/// A cap as a path segment.
pub(crate) fn seg(cap: &str) -> String {
    cap.replace(':', "%3A")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn welcome_reports_connected_servers_for_magic_folder_and_gridsync() {
    let node = node().await;
    let welcome = node.json("/?t=json").await;
    let servers = welcome["servers"].as_array().expect("servers");
    assert_eq!(servers.len(), 3);
    for server in servers {
        let status = server["connection_status"].as_str().expect("status");
        // GridSync: startswith("Connected"); magic-folder: lower().startswith("connected").
        assert!(status.starts_with("Connected to 127.0.0.1:"), "{status}");
        assert!(server["available_space"].as_u64().is_some(), "{server}");
        assert!(server["nodeid"].as_str().expect("id").starts_with("v0-"));
    }
    assert_eq!(welcome["introducers"]["statuses"], json!([]));
    let (status, _, page) = node.send(reqwest::Method::GET, "/", "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&page).contains("Connected to 3 of 3"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn immutable_files_put_get_ranges_head_and_redirect() {
    let node = node().await;
    let data = random_bytes(3 * 1024 * 1024 + 17);
    let cap = node
        .ok_text(reqwest::Method::PUT, "/uri", data.clone())
        .await;
    assert!(cap.starts_with("URI:CHK:"), "{cap}");

    let (status, headers, body) = node
        .send(reqwest::Method::GET, &format!("/uri/{}", seg(&cap)), "")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["accept-ranges"], "bytes");
    assert_eq!(body, data);

    let (status, headers, body) = node
        .http
        .get(format!("{}/uri/{}", node.url, seg(&cap)))
        .header("Range", "bytes=1000000-2500000")
        .send()
        .await
        .map(|r| (r.status(), r.headers().clone(), r))
        .expect("range");
    let body = body.bytes().await.expect("body");
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        headers["content-range"],
        format!("bytes 1000000-2500000/{}", data.len()).as_str()
    );
    assert_eq!(&body[..], &data[1_000_000..=2_500_000]);

    let past = node
        .http
        .get(format!("{}/uri/{}", node.url, seg(&cap)))
        .header("Range", format!("bytes={}-", data.len()))
        .send()
        .await
        .expect("range past the end");
    assert_eq!(past.status(), StatusCode::RANGE_NOT_SATISFIABLE);

    let head = node
        .http
        .head(format!("{}/uri/{}", node.url, seg(&cap)))
        .send()
        .await
        .expect("head");
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(
        head.headers()["content-length"],
        data.len().to_string().as_str()
    );

    // magic-folder's download: GET /uri?uri=CAP is a redirect to /uri/CAP.
    let (status, headers, _) = node
        .send(
            reqwest::Method::GET,
            &format!("/uri?uri={}&filename=x", seg(&cap)),
            "",
        )
        .await;
    assert_eq!(status, StatusCode::FOUND);
    let location = headers["location"].to_str().expect("location");
    assert!(
        location.ends_with(&format!("/uri/{}?filename=x", seg(&cap))),
        "{location}"
    );

    // Small files live in their cap.
    let lit = node.ok_text(reqwest::Method::PUT, "/uri", "hello").await;
    assert!(lit.starts_with("URI:LIT:"));
    let (_, _, body) = node
        .send(reqwest::Method::GET, &format!("/uri/{}", seg(&lit)), "")
        .await;
    assert_eq!(body, b"hello");

    // Immutable answers carry Tahoe's ETag, and a client that has it gets a 304.
    let etag = headers_of(&node, &cap).await;
    assert!(etag.ends_with('-'), "{etag}");
    let cached = node
        .http
        .get(format!("{}/uri/{}", node.url, seg(&cap)))
        .header("If-None-Match", &etag)
        .send()
        .await
        .expect("conditional get");
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);

    let info = node.json(&format!("/uri/{}?t=json", seg(&cap))).await;
    assert_eq!(info[0], "filenode");
    assert_eq!(info[1]["size"], data.len());
    assert_eq!(info[1]["format"], "CHK");
    assert_eq!(info[1]["mutable"], false);
    assert_eq!(info[1]["ro_uri"], cap.as_str());
    assert!(info[1].get("rw_uri").is_none());
    assert!(
        info[1]["verify_uri"]
            .as_str()
            .expect("verify")
            .starts_with("URI:CHK-Verifier:")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutable_files_are_created_read_and_overwritten() {
    let node = node().await;
    for (format, prefix) in [("SDMF", "URI:SSK:"), ("MDMF", "URI:MDMF:")] {
        let cap = node
            .ok_text(
                reqwest::Method::PUT,
                &format!("/uri?format={format}"),
                "first version",
            )
            .await;
        assert!(cap.starts_with(prefix), "{cap}");
        let (_, _, body) = node
            .send(reqwest::Method::GET, &format!("/uri/{}", seg(&cap)), "")
            .await;
        assert_eq!(body, b"first version");
        node.ok_text(
            reqwest::Method::PUT,
            &format!("/uri/{}", seg(&cap)),
            "second",
        )
        .await;
        let (_, _, body) = node
            .send(reqwest::Method::GET, &format!("/uri/{}", seg(&cap)), "")
            .await;
        assert_eq!(body, b"second");
        let info = node.json(&format!("/uri/{}?t=json", seg(&cap))).await;
        assert_eq!(info[1]["format"], format);
        assert_eq!(info[1]["size"], 6);
        assert_eq!(info[1]["rw_uri"], cap.as_str());
    }
    let sdmf = node
        .ok_text(reqwest::Method::PUT, "/uri?mutable=true", "x")
        .await;
    assert!(sdmf.starts_with("URI:SSK:"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directories_link_replace_rename_unlink_as_tahoe_does() {
    let node = node().await;
    let root = node
        .ok_text(reqwest::Method::POST, "/uri?t=mkdir", "")
        .await;
    assert!(root.starts_with("URI:DIR2:"), "{root}");
    let r = seg(&root);

    // PUT makes the missing directories on its way; a new name is 201.
    let (status, _, cap) = node
        .send(
            reqwest::Method::PUT,
            &format!("/uri/{r}/docs/a.txt"),
            random_bytes(100),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let cap = String::from_utf8(cap).expect("cap");
    // replace=false on an existing name: 409, for files and for t=uri.
    let (status, _, _) = node
        .send(
            reqwest::Method::PUT,
            &format!("/uri/{r}/docs/a.txt?replace=false"),
            "x",
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _, _) = node
        .send(
            reqwest::Method::PUT,
            &format!("/uri/{r}/docs/a.txt?t=uri&replace=false"),
            cap.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    // Replacing is 200.
    let (status, _, _) = node
        .send(
            reqwest::Method::PUT,
            &format!("/uri/{r}/docs/a.txt"),
            random_bytes(200),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let listing = node.json(&format!("/uri/{r}?t=json")).await;
    assert_eq!(listing[0], "dirnode");
    assert_eq!(listing[1]["mutable"], true);
    assert_eq!(listing[1]["rw_uri"], root.as_str());
    let docs = &listing[1]["children"]["docs"];
    assert_eq!(docs[0], "dirnode");
    let tahoe = &docs[1]["metadata"]["tahoe"];
    assert!(
        tahoe["linkcrtime"].is_f64() && tahoe["linkmotime"].is_f64(),
        "{docs}"
    );

    let file = node.json(&format!("/uri/{r}/docs/a.txt?t=json")).await;
    assert_eq!(file[0], "filenode");
    assert_eq!(file[1]["size"], 200);
    assert!(file[1]["metadata"]["tahoe"]["linkcrtime"].is_f64());

    // t=uri (PUT and POST), rename, unlink, DELETE.
    let lit = node.ok_text(reqwest::Method::PUT, "/uri", "tiny").await;
    node.ok_text(
        reqwest::Method::PUT,
        &format!("/uri/{r}/linked?t=uri"),
        lit.clone(),
    )
    .await;
    node.ok_text(
        reqwest::Method::POST,
        &format!("/uri/{r}?t=uri&name=posted&uri={}", seg(&lit)),
        "",
    )
    .await;
    node.ok_text(
        reqwest::Method::POST,
        &format!("/uri/{r}?t=rename&from_name=posted&to_name=renamed"),
        "",
    )
    .await;
    node.ok_text(
        reqwest::Method::POST,
        &format!(
            "/uri/{r}?t=relink&from_name=renamed&to_dir={}/docs",
            seg(&root)
        ),
        "",
    )
    .await;
    let (_, _, body) = node
        .send(reqwest::Method::GET, &format!("/uri/{r}/docs/renamed"), "")
        .await;
    assert_eq!(body, b"tiny");
    node.ok_text(
        reqwest::Method::POST,
        &format!("/uri/{r}?t=unlink&name=linked"),
        "",
    )
    .await;
    let (status, _, _) = node
        .send(
            reqwest::Method::DELETE,
            &format!("/uri/{r}/docs/renamed"),
            "",
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let listing = node.json(&format!("/uri/{r}/docs?t=json")).await;
    let names: Vec<&String> = listing[1]["children"]
        .as_object()
        .expect("children")
        .keys()
        .collect();
    assert_eq!(names, ["a.txt"]);
    let (status, _, _) = node
        .send(reqwest::Method::GET, &format!("/uri/{r}/nothing"), "")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = node
        .send(
            reqwest::Method::POST,
            &format!("/uri/{r}?t=unlink&name=nothing"),
            "",
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // POST t=mkdir&name= (GridSync), and a read-only cap refuses writes.
    let sub = node
        .ok_text(
            reqwest::Method::POST,
            &format!("/uri/{r}?t=mkdir&name=sub&format=MDMF"),
            "",
        )
        .await;
    assert!(sub.starts_with("URI:DIR2-MDMF:"), "{sub}");
    let ro = listing[1]["ro_uri"].as_str().expect("ro").to_string();
    let (status, _, _) = node
        .send(
            reqwest::Method::PUT,
            &format!("/uri/{}/x?t=uri", seg(&ro)),
            lit,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_metadata_round_trips_byte_exactly_through_mkdir_immutable() {
    let node = node().await;
    let content = node
        .ok_text(reqwest::Method::PUT, "/uri", random_bytes(5000))
        .await;
    // What magic-folder sends: its own keys, a signature, numbers as written.
    let children_text = format!(
        r#"{{"content": ["filenode", {{"ro_uri": "{content}", "metadata": {{"version": 1, "snapshot": {{"author": {{"name": "alice", "signature": "c2lnbmF0dXJl"}}}}, "mtime": 1712345678.123456, "z": [1, 2.5, null, "\u00e9"]}}}}],
            "tombstone": ["filenode", {{"ro_uri": "URI:LIT:", "metadata": {{}}}}]}}"#
    );
    let sent: Value = serde_json::from_str(&children_text).expect("children");
    let snapshot = node
        .ok_text(
            reqwest::Method::POST,
            "/uri?t=mkdir-immutable",
            children_text.clone(),
        )
        .await;
    assert!(snapshot.starts_with("URI:DIR2-CHK:"), "{snapshot}");
    let listing = node.json(&format!("/uri/{}?t=json", seg(&snapshot))).await;
    assert_eq!(listing[1]["mutable"], false);
    assert!(listing[1].get("rw_uri").is_none());
    let got = &listing[1]["children"]["content"][1];
    assert_eq!(
        serde_json::to_string(&got["metadata"]).expect("text"),
        serde_json::to_string(&sent["content"][1]["metadata"]).expect("text"),
    );
    assert_eq!(got["ro_uri"], content.as_str());
    assert_eq!(
        listing[1]["children"]["tombstone"][1]["metadata"],
        json!({})
    );

    // A mutable child has no place in an immutable directory.
    let mutable = node
        .ok_text(reqwest::Method::POST, "/uri?t=mkdir", "")
        .await;
    let (status, _, _) = node
        .send(
            reqwest::Method::POST,
            "/uri?t=mkdir-immutable",
            format!(r#"{{"d": ["dirnode", {{"rw_uri": "{mutable}"}}]}}"#),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // mkdir-with-children keeps metadata as given too.
    let dir = node
        .ok_text(
            reqwest::Method::POST,
            "/uri?t=mkdir-with-children",
            children_text,
        )
        .await;
    assert!(dir.starts_with("URI:DIR2:"));
    let listing = node.json(&format!("/uri/{}?t=json", seg(&dir))).await;
    assert_eq!(
        serde_json::to_string(&listing[1]["children"]["content"][1]["metadata"]).expect("text"),
        serde_json::to_string(&sent["content"][1]["metadata"]).expect("text"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_are_refused_with_tahoes_statuses() {
    let node = node().await;
    let root = node
        .ok_text(reqwest::Method::POST, "/uri?t=mkdir", "")
        .await;
    let r = seg(&root);
    for (method, path, want) in [
        (
            reqwest::Method::GET,
            "/uri/URI%3ACHK%3Anot-a-cap".to_string(),
            StatusCode::BAD_REQUEST,
        ),
        (
            reqwest::Method::GET,
            format!("/uri/{r}/a//b"),
            StatusCode::BAD_REQUEST,
        ),
        (
            reqwest::Method::PUT,
            format!("/uri/{r}/f?replace=maybe"),
            StatusCode::BAD_REQUEST,
        ),
        (
            reqwest::Method::PUT,
            "/uri?format=ZIP".to_string(),
            StatusCode::BAD_REQUEST,
        ),
        (
            reqwest::Method::GET,
            "/uri?uri=garbage".to_string(),
            StatusCode::BAD_REQUEST,
        ),
        (
            reqwest::Method::GET,
            "/nowhere".to_string(),
            StatusCode::NOT_FOUND,
        ),
        (
            reqwest::Method::POST,
            format!("/uri/{r}?t=frobnicate"),
            StatusCode::BAD_REQUEST,
        ),
        (
            reqwest::Method::POST,
            "/uri?t=mkdir-immutable".to_string(),
            StatusCode::OK,
        ),
    ] {
        let (status, _, body) = node.send(method.clone(), &path, "").await;
        assert_eq!(
            status,
            want,
            "{method} {path}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let (status, _, _) = node
        .send(
            reqwest::Method::POST,
            "/uri?t=mkdir-with-children",
            "{not json",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A file is in the way of a directory to be made.
    node.ok_text(reqwest::Method::PUT, &format!("/uri/{r}/file"), "x")
        .await;
    let (status, _, _) = node
        .send(reqwest::Method::PUT, &format!("/uri/{r}/file/inner"), "y")
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mkdir_with_a_private_key_makes_the_directory_of_that_key() {
    use swamp_formats::cap::{Cap, MutableFormat};
    use swamp_formats::mutable_key::MutableKey;
    let node = node().await;
    let key = MutableKey::generate(&mut rand::rng()).expect("key");
    let want = Cap::Dir(Box::new(Cap::Mutable(key.write_cap(MutableFormat::Sdmf)))).to_string();
    // GridSync sends urlsafe base64 of the DER, padded.
    let encoded = data_encoding::BASE64URL.encode(key.expose_pkcs8_der());
    let got = node
        .ok_text(
            reqwest::Method::POST,
            &format!("/uri?t=mkdir&private-key={encoded}"),
            "",
        )
        .await;
    assert_eq!(got, want);
    assert_eq!(
        node.json(&format!("/uri/{}?t=json", seg(&got))).await[1]["children"],
        json!({})
    );
    let (status, _, _) = node
        .send(
            reqwest::Method::POST,
            "/uri?t=mkdir&private-key=bm90IGEga2V5",
            "",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_logs_need_the_api_token_and_stay_open_for_gridsync() {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let node = node().await;
    let (status, headers, _) = node
        .send(reqwest::Method::GET, "/private/logs/v1", "")
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["www-authenticate"], "tahoe-lafs");
    let url = node.url.replace("http://", "ws://") + "/private/logs/v1";
    let mut wrong = url.as_str().into_client_request().expect("request");
    wrong.headers_mut().insert(
        "authorization",
        "tahoe-lafs not-the-token".parse().expect("header"),
    );
    assert!(tokio_tungstenite::connect_async(wrong).await.is_err());
    let mut right = url.as_str().into_client_request().expect("request");
    right.headers_mut().insert(
        "authorization",
        format!("tahoe-lafs {TOKEN}").parse().expect("header"),
    );
    let (mut ws, response) = tokio_tungstenite::connect_async(right)
        .await
        .expect("connects");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    ws.send(Message::Close(None)).await.expect("close");
}

/// Reads `child`'s output until a line containing `wanted` (or fails at its end).
async fn wait_for_line(
    lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    wanted: &str,
) {
    let found = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.expect("stdout") {
            if line.contains(wanted) {
                return true;
            }
        }
        false
    })
    .await
    .expect("the line came in time");
    assert!(found, "no line with {wanted:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tahoe_run_serves_a_client_node_directory_as_tahoe_does() {
    use futures::StreamExt;
    use std::process::Stdio;
    use tokio::io::AsyncBufReadExt;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let servers = TestServer::three().await;
    let base = tempfile::tempdir().expect("tempdir");
    let dir = base.path().join("client");
    let mut create = tokio::process::Command::new(swamp_tests::child::tahoe_binary());
    create.args([
        "create-client",
        "--shares-needed=2",
        "--shares-happy=3",
        "--shares-total=3",
    ]);
    create.arg("--webport=tcp:0:interface=127.0.0.1").arg(&dir);
    for s in &servers {
        create.arg("--nurl").arg(s.nurl.to_string());
    }
    assert!(create.status().await.expect("create-client").success());

    let mut child = tokio::process::Command::new(swamp_tests::child::tahoe_binary())
        .arg("run")
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("tahoe run");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    wait_for_line(&mut lines, "client running").await;
    let url = std::fs::read_to_string(dir.join("node.url")).expect("node.url");
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/\n"),
        "{url:?}"
    );
    let token = std::fs::read_to_string(dir.join("private/api_auth_token")).expect("token");
    assert_eq!(token.trim().len(), 44, "urlsafe base64 of 32 bytes");

    let http = reqwest::Client::new();
    let welcome: Value = serde_json::from_slice(
        &http
            .get(format!("{}?t=json", url.trim()))
            .send()
            .await
            .expect("welcome")
            .bytes()
            .await
            .expect("body"),
    )
    .expect("json");
    assert_eq!(welcome["servers"].as_array().expect("servers").len(), 3);
    // GridSync follows the node's log over /private/logs/v1.
    let mut log_request = format!("{}private/logs/v1", url.trim().replace("http://", "ws://"))
        .into_client_request()
        .expect("request");
    log_request.headers_mut().insert(
        "authorization",
        format!("tahoe-lafs {}", token.trim())
            .parse()
            .expect("header"),
    );
    let (mut log, _) = tokio_tungstenite::connect_async(log_request)
        .await
        .expect("log socket");
    let data = random_bytes(200_000);
    let cap = http
        .put(format!("{}uri", url.trim()))
        .body(data.clone())
        .send()
        .await
        .expect("put")
        .text()
        .await
        .expect("cap");
    let got = http
        .get(format!("{}uri/{}", url.trim(), seg(&cap)))
        .send()
        .await
        .expect("get")
        .bytes()
        .await
        .expect("body");
    assert_eq!(&got[..], &data[..]);
    // Each request came down the log, without its cap.
    let logged = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Some(Ok(frame)) = log.next().await {
            if let Message::Text(text) = frame {
                let message: Value = serde_json::from_str(&text).expect("a JSON message");
                if message["resource"] == "/uri" && message["method"] == "PUT" {
                    return (message, text.to_string());
                }
            }
        }
        panic!("the log ended");
    })
    .await
    .expect("the upload was logged");
    assert_eq!(logged.0["status"], 200, "{}", logged.1);
    assert!(logged.0["task_uuid"].is_string() && logged.0["timestamp"].is_number());
    assert!(!logged.1.contains(&cap), "caps are never logged");
    // The statistics Tahoe's client counts, as JSON and as OpenMetrics.
    let stats: Value = serde_json::from_slice(
        &http
            .get(format!("{}statistics?t=json", url.trim()))
            .send()
            .await
            .expect("statistics")
            .bytes()
            .await
            .expect("body"),
    )
    .expect("json");
    assert_eq!(stats["counters"]["uploader.files_uploaded"], 1, "{stats}");
    assert_eq!(stats["counters"]["uploader.bytes_uploaded"], 200_000);
    assert_eq!(stats["counters"]["downloader.bytes_downloaded"], 200_000);
    assert!(
        stats["stats"]["node.uptime"]
            .as_f64()
            .is_some_and(|s| s > 0.0)
    );
    let metrics = http
        .get(format!("{}statistics?t=openmetrics", url.trim()))
        .send()
        .await
        .expect("openmetrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("\ntahoe_counters_uploader_bytes_uploaded 200000\n"),
        "{metrics}"
    );
    // The spooled upload is gone once uploaded.
    let spool = dir.join("tmp");
    assert_eq!(std::fs::read_dir(&spool).map(|d| d.count()).unwrap_or(0), 0);

    // Like Tahoe's, the node ends when its standard input closes.
    drop(child.stdin.take());
    let status = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait())
        .await
        .expect("exits in time")
        .expect("status");
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_mid_download_frees_its_transfer() {
    // One transfer at a time: if an abandoned download kept its thread and permit,
    // the next request would wait forever.
    let node = node_with(Limits {
        transfers: 1,
        ..Limits::default()
    })
    .await;
    let data = random_bytes(20 * 1024 * 1024);
    let cap = node
        .ok_text(reqwest::Method::PUT, "/uri", data.clone())
        .await;
    let mut response = node
        .http
        .get(format!("{}/uri/{}", node.url, seg(&cap)))
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), StatusCode::OK);
    let first = response.chunk().await.expect("chunk").expect("some data");
    assert_eq!(&first[..], &data[..first.len()]);
    drop(response);
    // A slow reader still gets every byte, in order.
    let mut slow = node
        .http
        .get(format!("{}/uri/{}", node.url, seg(&cap)))
        .send()
        .await
        .expect("second get");
    let mut got = Vec::new();
    while let Some(chunk) = slow.chunk().await.expect("chunk") {
        got.extend_from_slice(&chunk);
        if got.len() < 4 * 1024 * 1024 {
            tokio::task::yield_now().await;
        }
    }
    assert_eq!(got.len(), data.len());
    assert!(got == data);
}

#[tokio::test]
async fn check_verify_and_repair_through_t_check() {
    let node = node().await;
    let data = random_bytes(200_000);
    let (status, _, cap) = node.send(reqwest::Method::PUT, "/uri", data.clone()).await;
    assert_eq!(status, StatusCode::OK);
    let cap = String::from_utf8(cap).unwrap();
    let check = |args: &'static str| {
        let path = format!("/uri/{}?t=check&output=JSON{args}", seg(&cap));
        let node = &node;
        async move {
            let (status, headers, body) = node.send(reqwest::Method::POST, &path, "").await;
            assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
            assert!(
                headers["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("text/plain")
            );
            serde_json::from_slice::<Value>(&body).unwrap()
        }
    };
    let healthy = check("&verify=true").await;
    assert_eq!(healthy["results"]["healthy"], true, "{healthy}");
    assert_eq!(healthy["results"]["count-shares-good"], 3);

    // One share gone from the disk of the server that held it.
    let parsed: swamp_formats::cap::Cap = cap.parse().unwrap();
    let si = parsed.storage_index().unwrap();
    let holder = node
        .servers
        .iter()
        .find_map(|s| {
            let path = share_file(&s.storage_dir.join("shares"), &si, 0);
            path.exists().then_some(path)
        })
        .expect("somebody holds share 0");
    std::fs::remove_file(holder).unwrap();
    let damaged = check("").await;
    assert_eq!(damaged["results"]["healthy"], false, "{damaged}");
    assert_eq!(damaged["results"]["count-shares-good"], 2);

    let repaired = check("&repair=true").await;
    assert_eq!(repaired["repair-attempted"], true, "{repaired}");
    assert_eq!(repaired["repair-successful"], true, "{repaired}");
    assert_eq!(check("").await["results"]["count-shares-good"], 3);
    let (status, _, back) = node
        .send(reqwest::Method::GET, &format!("/uri/{}", seg(&cap)), "")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(back, data);

    // Without output=JSON: a page with the summary; a bad boolean is a 400.
    let path = format!("/uri/{}?t=check", seg(&cap));
    let (status, _, page) = node.send(reqwest::Method::POST, &path, "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        String::from_utf8_lossy(&page).contains("Healthy"),
        "{}",
        String::from_utf8_lossy(&page)
    );
    let path = format!("/uri/{}?t=check&verify=perhaps", seg(&cap));
    assert_eq!(
        node.send(reqwest::Method::POST, &path, "").await.0,
        StatusCode::BAD_REQUEST
    );
}

/// The lines of a streamed tree answer, each parsed (an `ERROR:` line fails).
async fn stream_lines(node: &Node, path: &str) -> (Vec<String>, Vec<Value>) {
    let text = node.ok_text(reqwest::Method::POST, path, "").await;
    let raw: Vec<String> = text.lines().map(str::to_string).collect();
    let parsed = raw
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    (raw, parsed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_deep_check_and_deep_stats_walk_the_tree_in_tahoes_order() {
    let node = node().await;
    let root = node
        .ok_text(reqwest::Method::POST, "/uri?t=mkdir", "")
        .await;
    let r = seg(&root);
    for (path, size) in [("a", 3000), ("lit", 20), ("sub/b", 5000)] {
        let (status, _, _) = node
            .send(
                reqwest::Method::PUT,
                &format!("/uri/{r}/{path}"),
                random_bytes(size),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{path}");
    }
    node.ok_text(
        reqwest::Method::PUT,
        &format!("/uri/{r}/m?format=SDMF"),
        "mutable",
    )
    .await;
    let sub = node
        .ok_text(reqwest::Method::GET, &format!("/uri/{r}/sub?t=uri"), "")
        .await;
    // The same directory linked twice is walked once, under its first name.
    node.ok_text(
        reqwest::Method::PUT,
        &format!("/uri/{r}/sub2?t=uri"),
        sub.clone(),
    )
    .await;

    let (raw, lines) = stream_lines(&node, &format!("/uri/{r}?t=stream-manifest")).await;
    let paths: Vec<Value> = lines.iter().map(|l| l["path"].clone()).collect();
    assert_eq!(
        paths,
        [
            json!([]),
            json!(["a"]),
            json!(["lit"]),
            json!(["m"]),
            json!(["sub"]),
            json!(["sub", "b"]),
            Value::Null
        ],
        "{raw:#?}"
    );
    // Python's json.dumps separators, as Tahoe writes each line.
    assert!(
        raw[0].starts_with("{\"path\": [], \"cap\": \"URI:DIR2:"),
        "{}",
        raw[0]
    );
    assert_eq!(lines[4]["cap"], sub.as_str());
    assert_eq!(lines[4]["type"], "directory");
    assert_eq!(lines[2]["storage-index"], "", "a LIT file has none");
    assert!(
        lines[1]["verifycap"]
            .as_str()
            .unwrap()
            .starts_with("URI:CHK-Verifier:")
    );
    let stats = &lines[6];
    assert_eq!(stats["type"], "stats");
    let s = &stats["stats"];
    assert_eq!(s["count-directories"], 2, "{s}");
    assert_eq!(s["count-files"], 4);
    assert_eq!(s["count-immutable-files"], 2);
    assert_eq!(s["count-literal-files"], 1);
    assert_eq!(s["count-mutable-files"], 1);
    assert_eq!(s["size-immutable-files"], 8000);
    assert_eq!(s["largest-immutable-file"], 5000);
    assert_eq!(s["size-literal-files"], 20);
    assert_eq!(s["largest-directory-children"], 5);
    assert_eq!(
        s["size-files-histogram"],
        json!([[11, 31, 1], [1001, 3162, 1], [3163, 10000, 1]])
    );

    // Deep-check: every object healthy; one share of sub/b deleted, then repaired.
    let (_, checked) =
        stream_lines(&node, &format!("/uri/{r}?t=stream-deep-check&verify=true")).await;
    assert_eq!(checked.len(), 7);
    for line in &checked[..6] {
        assert_eq!(line["check-results"]["results"]["healthy"], true, "{line}");
    }
    let b: swamp_formats::cap::Cap = lines[5]["cap"].as_str().unwrap().parse().unwrap();
    let si = b.storage_index().unwrap();
    let holder = node
        .servers
        .iter()
        .find_map(|s| {
            let path = share_file(&s.storage_dir.join("shares"), &si, 1);
            path.exists().then_some(path)
        })
        .expect("somebody holds share 1");
    std::fs::remove_file(holder).unwrap();
    let (_, repaired) =
        stream_lines(&node, &format!("/uri/{r}?t=stream-deep-check&repair=true")).await;
    let b_line = &repaired[5]["check-and-repair-results"];
    assert_eq!(
        b_line["pre-repair-results"]["results"]["healthy"], false,
        "{b_line}"
    );
    assert_eq!(b_line["repair-successful"], true, "{b_line}");
    assert_eq!(
        repaired[1]["check-and-repair-results"]["repair-attempted"],
        false
    );

    // The slow-operation form, as `tahoe stats` uses it.
    let start = format!("/uri/{r}?t=start-deep-stats&ophandle=h1");
    let (status, headers, _) = node.send(reqwest::Method::POST, &start, "").await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(headers["location"], "/operations/h1");
    let (status, _, _) = node.send(reqwest::Method::POST, &start, "").await;
    assert_eq!(status, StatusCode::CONFLICT, "a handle in use");
    let poll = "/operations/h1?t=status&output=JSON&release-after-complete=true";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let finished = loop {
        let state = node.json(poll).await;
        if state["finished"] == true {
            break state;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "deep-stats never finished"
        );
        // The protocol is polling (Tahoe's CLI polls at 1 s, then longer).
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(finished["count-files"], 4, "{finished}");
    assert_eq!(finished["api-version"], 1);
    let (status, _, _) = node.send(reqwest::Method::GET, poll, "").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "released after complete");
    let (status, _, _) = node
        .send(
            reqwest::Method::POST,
            &format!("/uri/{r}?t=start-manifest"),
            "",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "no ophandle");
}
