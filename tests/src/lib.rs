#![allow(clippy::unwrap_used)]
//! Shared support for Swamp's end-to-end tests: a real server on a real socket with
//! real TLS, and helpers to make ids and secrets.
//!
//! `TestServer::start()` binds `127.0.0.1:0`, keeps the listener, hands it to `serve`,
//! and returns a connected client; dropping it cancels the server. Nothing sleeps to
//! wait for readiness: the listener is bound before `serve` starts, so the first request
//! simply waits in the backlog.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use swamp_client::{ClientOptions, StorageClient};
use swamp_proto::secrets::{LeaseCancelSecret, LeaseRenewSecret, UploadSecret, WriteEnabler};
use swamp_proto::{Nurl, StorageIndex};
use swamp_server::Clock;
use swamp_server::live::Live;
use swamp_server::node::grid_manager::GridCertificates;
use swamp_server::node::settings::LocationHint;
use swamp_server::node::{Limits, NodeIdentity};
use swamp_server::testing::expiry::ExpiryPolicy;
use swamp_server::testing::{Storage, StorageLimits, StorageSettings};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A settable clock for lease tests.
#[derive(Clone)]
pub struct TestClock(Arc<AtomicU64>);

impl TestClock {
    /// Starts at `now`.
    pub fn new(now: u64) -> Self {
        Self(Arc::new(AtomicU64::new(now)))
    }
    /// Moves time forward.
    pub fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
    /// The current time.
    pub fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
    /// As the backend's clock type.
    pub fn as_clock(&self) -> Clock {
        let inner = Arc::clone(&self.0);
        Arc::new(move || inner.load(Ordering::SeqCst))
    }
}

/// How to start a test server.
#[derive(Clone)]
pub struct TestOptions {
    /// Request limits.
    pub limits: Limits,
    /// Space reserve.
    pub reserved_space: u64,
    /// The clock.
    pub clock: TestClock,
    /// Change feed settings.
    pub feeds: swamp_server::testing::FeedSettings,
    /// Uploads written around the page cache where the file system allows it.
    pub direct_upload_writes: bool,
    /// Disk faults to inject.
    pub faults: swamp_server::testing::faults::Faults,
}

impl Default for TestOptions {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            reserved_space: 0,
            clock: TestClock::new(1_700_000_000),
            feeds: swamp_server::testing::FeedSettings::default(),
            direct_upload_writes: true,
            faults: swamp_server::testing::faults::Faults::default(),
        }
    }
}

impl TestOptions {
    /// Options whose feed keeps only `events` events of exact history, whatever their
    /// age: older cursors get latest states, and the journal compacts early.
    pub fn short_history(events: usize) -> Self {
        use swamp_server::testing::Retention;
        Self {
            feeds: swamp_server::testing::FeedSettings {
                retention: Retention {
                    min_events: events,
                    min_age: std::time::Duration::ZERO,
                    ..Retention::default()
                },
                ..swamp_server::testing::FeedSettings::default()
            },
            ..Self::default()
        }
    }
}

/// A running server and a client for it.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Where its operator listener (`/metrics`, `/healthz`, `/readyz`) listens.
    pub operator_addr: SocketAddr,
    /// Its NURL.
    pub nurl: Nurl,
    /// A client (HTTP/2 preferred).
    pub client: StorageClient,
    /// The storage directory (`<node>/storage`).
    pub storage_dir: PathBuf,
    /// The identity, to restart with the same NURL.
    pub identity: Arc<NodeIdentity>,
    /// The clock the server uses.
    pub clock: TestClock,
    /// Direct access to the backend the server uses.
    pub storage: Arc<Storage>,
    /// The server's change feeds.
    pub feeds: Arc<swamp_server::testing::Feeds>,
    /// The lease expiry policy the node reads (none at start): setting it is what a
    /// reload that turns expiry on does, and starts a sweep at once.
    pub expiry: Live<Option<ExpiryPolicy>>,
    /// The grid-manager certificates the node reports (what a reload replaces).
    pub certificates: Live<GridCertificates>,
    /// What reloads the node's configuration: for a node served
    /// [`from_node`](Self::from_node) (one started from a node directory).
    pub reloader: Option<Arc<swamp_server::reload::Reloader>>,
    shutdown: CancellationToken,
    handle: Option<JoinHandle<std::io::Result<()>>>,
    _dir: Option<tempfile::TempDir>,
}

impl TestServer {
    /// A server on a fresh storage directory.
    pub async fn start() -> Self {
        Self::start_with(TestOptions::default()).await
    }

    /// A server with options, on a fresh storage directory.
    pub async fn start_with(options: TestOptions) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let identity = Arc::new(NodeIdentity::ephemeral().expect("identity"));
        let mut server = Self::start_on(dir.path().join("storage"), identity, options).await;
        server._dir = Some(dir);
        server
    }

    /// A server on an existing storage directory with a given identity (a restart).
    pub async fn start_on(
        storage_dir: PathBuf,
        identity: Arc<NodeIdentity>,
        options: TestOptions,
    ) -> Self {
        let any_port = "127.0.0.1:0".parse().expect("address");
        Self::start_at(storage_dir, identity, options, any_port).await
    }

    /// The same, listening on `addr` (a restart on the port clients already know).
    pub async fn start_at(
        storage_dir: PathBuf,
        identity: Arc<NodeIdentity>,
        options: TestOptions,
        addr: SocketAddr,
    ) -> Self {
        let server = swamp_server::start::assemble(
            &storage_dir,
            StorageSettings {
                limits: StorageLimits {
                    reserved_space: options.reserved_space,
                    ..StorageLimits::from_limits(&options.limits)
                },
                direct_upload_writes: options.direct_upload_writes,
                faults: options.faults.clone(),
                ..StorageSettings::new(identity.tubid, options.clock.as_clock())
            },
            &identity,
            options.limits.clone(),
            None,
            options.feeds.clone(),
            true,
        )
        .expect("assemble");
        Self::serve_assembled(server, storage_dir, identity, options.clock, addr).await
    }

    /// A node loaded from a node directory (`swamp_server::start::load_node`, with
    /// `clock`'s time), served as `swamp-server run` would serve it; `dir` (holding the
    /// node directory) lives as long as the server.
    pub async fn from_node(
        node: swamp_server::start::Node,
        clock: TestClock,
        dir: Option<tempfile::TempDir>,
    ) -> Self {
        let any_port = "127.0.0.1:0".parse().expect("address");
        let mut server = Self::serve_assembled(
            node.server,
            node.config.storage_dir(),
            node.identity,
            clock,
            any_port,
        )
        .await;
        server._dir = dir;
        server.reloader = Some(node.reloader);
        server
    }

    async fn serve_assembled(
        server: swamp_server::Server,
        storage_dir: PathBuf,
        identity: Arc<NodeIdentity>,
        clock: TestClock,
        addr: SocketAddr,
    ) -> Self {
        let storage = Arc::clone(&server.app.storage);
        let expiry = server.app.expiry.clone();
        let certificates = server.app.certificates.clone();
        let feeds = Arc::clone(&server.app.feeds);
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let nurl = identity
            .nurls(&[LocationHint {
                host: "127.0.0.1".into(),
                port: addr.port(),
            }])
            .remove(0);
        let shutdown = CancellationToken::new();
        let operator = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the operator listener");
        let operator_addr = operator.local_addr().expect("local addr");
        tokio::spawn(swamp_server::serve_operator(
            operator,
            server.app.clone(),
            shutdown.clone(),
        ));
        let handle = tokio::spawn(swamp_server::serve(listener, server, shutdown.clone()));
        let client = StorageClient::new(&nurl).expect("client");
        Self {
            addr,
            operator_addr,
            nurl,
            client,
            storage_dir,
            identity,
            clock,
            storage,
            feeds,
            expiry,
            certificates,
            reloader: None,
            shutdown,
            handle: Some(handle),
            _dir: None,
        }
    }

    /// Reloads the node's configuration, as SIGHUP does (for a node served
    /// [`from_node`](Self::from_node)).
    ///
    /// # Errors
    /// Why the configuration was refused.
    ///
    /// # Panics
    /// For a node not started from a node directory.
    pub async fn reload(&self) -> Result<swamp_server::reload::ReloadReport, String> {
        let reloader = Arc::clone(self.reloader.as_ref().expect("a node from a directory"));
        tokio::task::spawn_blocking(move || reloader.reload().map_err(|e| e.to_string()))
            .await
            .expect("the reload task")
    }

    /// A client with other options.
    pub fn client_with(&self, options: &ClientOptions) -> StorageClient {
        StorageClient::with_options(&self.nurl, options).expect("client")
    }

    /// Stops the server and waits for `serve` to return; keeps the directory.
    pub async fn stop(mut self) -> (Option<tempfile::TempDir>, PathBuf, Arc<NodeIdentity>) {
        self.shutdown.cancel();
        if let Some(h) = self.handle.take() {
            h.await.expect("serve task").expect("serve result");
        }
        (
            self._dir.take(),
            self.storage_dir.clone(),
            Arc::clone(&self.identity),
        )
    }

    /// Three servers (a 2-of-3 grid's worth).
    pub async fn three() -> [TestServer; 3] {
        [
            Self::start().await,
            Self::start().await,
            Self::start().await,
        ]
    }

    /// A plain HTTP client that pins this server's certificate and sets no
    /// authorization: for requests the storage client would not make.
    pub fn raw_client(&self) -> reqwest::Client {
        let tls = swamp_client::tls::pinned_config(self.nurl.spki_hash, &[b"h2", b"http/1.1"]);
        reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .build()
            .unwrap()
    }

    /// Stops the server, lets `meanwhile` touch its storage directory, and starts it
    /// again on the same directory and identity (a new port), keeping the node
    /// directory alive.
    pub async fn restart(self, meanwhile: impl FnOnce(&Path)) -> TestServer {
        let (dir, storage_dir, identity) = self.stop().await;
        meanwhile(&storage_dir);
        let mut server = Self::start_on(storage_dir, identity, TestOptions::default()).await;
        server._dir = dir;
        server
    }

    /// The shares directory.
    pub fn shares_dir(&self) -> PathBuf {
        self.storage_dir.join("shares")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A random storage index.
pub fn random_si() -> StorageIndex {
    StorageIndex::from_bytes(rand::random())
}

/// Random lease secrets, upload secret and write enabler.
pub struct Secrets {
    /// Renew.
    pub renew: LeaseRenewSecret,
    /// Cancel.
    pub cancel: LeaseCancelSecret,
    /// Upload.
    pub upload: UploadSecret,
    /// Write enabler.
    pub we: WriteEnabler,
}

impl Secrets {
    /// Fresh random secrets.
    pub fn random() -> Self {
        Self {
            renew: LeaseRenewSecret::from_bytes(rand::random()),
            cancel: LeaseCancelSecret::from_bytes(rand::random()),
            upload: UploadSecret::new(rand::random::<[u8; 20]>().to_vec()).expect("non-empty"),
            we: WriteEnabler::from_bytes(rand::random()),
        }
    }

    /// Allocates `shares` of `size` bytes for upload with these secrets (panics on an
    /// error answer: for tests whose subject comes after the allocation).
    pub async fn allocate(
        &self,
        client: &StorageClient,
        si: &StorageIndex,
        shares: impl IntoIterator<Item = swamp_proto::ShareNumber>,
        size: u64,
    ) -> swamp_proto::v1::AllocateResponse {
        client
            .immutable()
            .allocate(si, &self.upload, &self.renew, &self.cancel, shares, size)
            .await
            .expect("allocate")
    }
}

/// A read-test-write request that writes `data` at `offset` of share `shnum`, with no
/// test and no read.
pub fn slot_write(shnum: u64, offset: u64, data: &[u8]) -> swamp_proto::v1::ReadTestWriteRequest {
    use swamp_proto::v1::{TestWriteVectors, WriteVector};
    let vectors = TestWriteVectors {
        test: vec![],
        write: vec![WriteVector {
            offset,
            data: data.to_vec(),
        }],
        new_length: None,
    };
    swamp_proto::v1::ReadTestWriteRequest {
        test_write_vectors: [(shnum, vectors)].into(),
        read_vector: vec![],
    }
}

/// A server whose storage layer injects the faults a test sets in the returned plan.
pub async fn start_with_faults() -> (TestServer, Arc<swamp_server::testing::faults::FaultPlan>) {
    let plan = Arc::new(swamp_server::testing::faults::FaultPlan::default());
    let options = TestOptions {
        faults: swamp_server::testing::faults::Faults::injected(Arc::clone(&plan)),
        ..TestOptions::default()
    };
    (TestServer::start_with(options).await, plan)
}

/// Random bytes.
pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    rand::fill(&mut out[..]);
    out
}

/// The path of a share file under a shares directory.
pub fn share_file(shares: &Path, si: &StorageIndex, shnum: u8) -> PathBuf {
    shares
        .join(si.dir_prefix())
        .join(si.to_base32())
        .join(shnum.to_string())
}

pub mod child;
pub mod tap;

/// Change-feed clients speaking the raw protocol, for testing the server's transports.
pub mod feed {
    use std::sync::Arc;

    use futures::{SinkExt, StreamExt};
    use http::Method;
    use swamp_proto::feed::{FeedBatch, FeedEvent};
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    use super::TestServer;

    /// Asserts `event` is `slot_changed` for an MDMF version (si, shnum, seqnum,
    /// root_hash) and returns its cursor; `context` names the case in a failure.
    pub fn expect_changed(
        event: &FeedEvent,
        si: &swamp_proto::StorageIndex,
        shnum: u8,
        seqnum: u64,
        root_hash: [u8; 32],
        context: impl std::fmt::Debug,
    ) -> swamp_proto::feed::Cursor {
        match event {
            FeedEvent::SlotChanged {
                cursor,
                si: got,
                shnum: n,
                seqnum: s,
                root_hash: r,
                format,
                ..
            } => {
                assert_eq!(
                    (got, n.get(), *s, *r, *format),
                    (
                        si,
                        shnum,
                        Some(seqnum),
                        Some(swamp_proto::feed::RootHash(root_hash)),
                        Some(1)
                    ),
                    "{context:?}: {event:?}"
                );
                *cursor
            }
            other => panic!("{context:?}: expected slot_changed, got {other:?}"),
        }
    }

    /// A WebSocket over TLS.
    pub type Ws = WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

    /// A TLS connection to `server` that offers only HTTP/1.1 (as WebSocket upgrades
    /// need); `recv_buffer` shrinks the socket's receive buffer (slow-consumer tests).
    pub async fn tls_http1(
        server: &TestServer,
        recv_buffer: Option<u32>,
    ) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        if let Some(size) = recv_buffer {
            socket.set_recv_buffer_size(size).unwrap();
        }
        let tcp = socket.connect(server.addr).await.unwrap();
        let config = swamp_client::tls::pinned_config(server.nurl.spki_hash, &[b"http/1.1"]);
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
        connector.connect(name, tcp).await.unwrap()
    }

    /// Opens a WebSocket feed (`query` without the leading `?`), with JSON or CBOR
    /// frames; `recv_buffer` shrinks the client's socket buffer (slow-consumer tests).
    pub async fn ws_connect(
        server: &TestServer,
        query: &str,
        cbor: bool,
        recv_buffer: Option<u32>,
    ) -> Ws {
        let tls = tls_http1(server, recv_buffer).await;
        let mut request = format!(
            "wss://127.0.0.1:{}/storage/v1/feed?{query}",
            server.addr.port()
        )
        .into_client_request()
        .unwrap();
        request.headers_mut().insert(
            "authorization",
            server.nurl.swissnum.authorization_header().parse().unwrap(),
        );
        let protocol = if cbor {
            "swamp-feed.v1.cbor"
        } else {
            "swamp-feed.v1.json"
        };
        request
            .headers_mut()
            .insert("sec-websocket-protocol", protocol.parse().unwrap());
        let (ws, response) = tokio_tungstenite::client_async(request, tls).await.unwrap();
        assert_eq!(response.headers()["sec-websocket-protocol"], protocol);
        ws
    }

    /// The next event from a WebSocket (panics on close; see `ws_next_or_close`).
    pub async fn ws_next(ws: &mut Ws) -> FeedEvent {
        match ws_next_or_close(ws).await {
            Ok(event) => event,
            Err(close) => panic!("stream closed: {close:?}"),
        }
    }

    /// The next event, or the close frame's (code, reason).
    pub async fn ws_next_or_close(ws: &mut Ws) -> Result<FeedEvent, (u16, String)> {
        loop {
            let message = tokio::time::timeout(std::time::Duration::from_secs(20), ws.next())
                .await
                .expect("an event within 20 s")
                .expect("stream open")
                .expect("frame");
            match message {
                Message::Text(text) => return Ok(serde_json::from_str(text.as_str()).unwrap()),
                Message::Binary(bytes) => return Ok(swamp_proto::v1::decode(&bytes).unwrap()),
                Message::Close(frame) => {
                    return Err(frame
                        .map(|f| (u16::from(f.code), f.reason.to_string()))
                        .unwrap_or((1005, String::new())));
                }
                _ => continue,
            }
        }
    }

    /// Sends a JSON command.
    pub async fn ws_send(ws: &mut Ws, command: serde_json::Value) {
        ws.send(Message::Text(command.to_string().into()))
            .await
            .unwrap();
    }

    /// An SSE stream read frame by frame.
    pub struct Sse {
        body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
        buf: String,
    }

    /// One SSE frame.
    #[derive(Debug, Clone, PartialEq)]
    pub struct SseFrame {
        /// `id:`
        pub id: Option<String>,
        /// `event:`
        pub event: String,
        /// `data:` parsed.
        pub data: FeedEvent,
    }

    /// Opens an SSE feed; extra headers (e.g. Last-Event-ID) may be given.
    pub async fn sse_connect(server: &TestServer, query: &str, headers: &[(&str, &str)]) -> Sse {
        let mut req = server
            .client
            .request(Method::GET, &format!("/storage/v1/feed?{query}"))
            .header("accept", "text/event-stream");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let response = req.send().await.unwrap();
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Sse {
            body: response.bytes_stream().boxed(),
            buf: String::new(),
        }
    }

    impl Sse {
        /// The next event frame (comments skipped); `None` at the end of the stream.
        pub async fn next(&mut self) -> Option<SseFrame> {
            loop {
                while let Some(end) = self.buf.find("\n\n") {
                    let block: String = self.buf.drain(..end + 2).collect();
                    let (mut id, mut event, mut data) = (None, String::new(), String::new());
                    for line in block.lines() {
                        if let Some(v) = line.strip_prefix("id: ") {
                            id = Some(v.to_string());
                        } else if let Some(v) = line.strip_prefix("event: ") {
                            event = v.to_string();
                        } else if let Some(v) = line.strip_prefix("data: ") {
                            data.push_str(v);
                        }
                    }
                    if !data.is_empty() {
                        return Some(SseFrame {
                            id,
                            event,
                            data: serde_json::from_str(&data).unwrap(),
                        });
                    }
                }
                let chunk =
                    tokio::time::timeout(std::time::Duration::from_secs(20), self.body.next())
                        .await
                        .expect("SSE data within 20 s")?
                        .ok()?;
                self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
            }
        }
    }

    /// One long-poll request (CBOR answer).
    pub async fn poll(server: &TestServer, query: &str) -> FeedBatch {
        poll_with(&server.client, query).await
    }

    /// One long-poll request through `client`.
    pub async fn poll_with(client: &swamp_client::StorageClient, query: &str) -> FeedBatch {
        let response = client
            .request(Method::GET, &format!("/storage/v1/feed?{query}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/cbor");
        swamp_proto::v1::decode(&response.bytes().await.unwrap()).unwrap()
    }
}

/// Writes `data` at offset 0 of share `shnum` of a slot.
pub async fn write_slot(
    client: &StorageClient,
    si: &StorageIndex,
    s: &Secrets,
    shnum: u64,
    data: &[u8],
) {
    let mut tw = std::collections::BTreeMap::new();
    tw.insert(
        shnum,
        swamp_proto::v1::TestWriteVectors {
            test: vec![],
            write: vec![swamp_proto::v1::WriteVector {
                offset: 0,
                data: data.to_vec(),
            }],
            new_length: None,
        },
    );
    let req = swamp_proto::v1::ReadTestWriteRequest {
        test_write_vectors: tw,
        read_vector: vec![],
    };
    let r = client
        .mutable()
        .read_test_write(si, &s.we, &s.renew, &s.cancel, &req)
        .await
        .expect("read-test-write");
    assert!(r.success);
}

/// A mutable share's first bytes as Tahoe writes them: MDMF version 1, the seqnum, the
/// root hash; then `tail`.
pub fn mdmf_share(seqnum: u64, root_hash: [u8; 32], tail: &[u8]) -> Vec<u8> {
    let mut data = vec![1u8];
    data.extend_from_slice(&seqnum.to_be_bytes());
    data.extend_from_slice(&root_hash);
    data.extend_from_slice(tail);
    data
}

/// Uploads `data` as immutable share `shnum` (allocate, then one write) and checks it
/// completed.
pub async fn upload_share(
    client: &StorageClient,
    si: &StorageIndex,
    s: &Secrets,
    shnum: u8,
    data: &[u8],
) {
    let share = swamp_proto::ShareNumber::new(shnum);
    let imm = client.immutable();
    let allocated = s.allocate(client, si, [share], data.len() as u64).await;
    assert!(
        allocated.allocated.0.contains(&share),
        "share {shnum} allocated"
    );
    let done = imm
        .write_share_chunk(si, share, &s.upload, 0, data.to_vec())
        .await
        .expect("write");
    assert!(done.complete, "share {shnum} complete");
}

/// A client grid over `servers` (2-of-3, happy 3), with fixed client secrets.
pub fn grid_of(servers: &[TestServer]) -> swamp_client::grid::Grid {
    use swamp_client::grid::{Grid, Server};
    use swamp_formats::chk::{DEFAULT_MAX_SEGMENT_SIZE, Params};
    let list = servers
        .iter()
        .map(|s| Server {
            nurl: s.nurl.clone(),
            tubid: s.identity.tubid,
            permutation_seed: swamp_proto::base32::decode(&s.identity.permutation_seed)
                .expect("invariant: test servers have base32 seeds"),
            client: s.client.clone(),
        })
        .collect();
    let params = Params {
        needed: 2,
        total: 3,
        max_segment_size: DEFAULT_MAX_SEGMENT_SIZE,
    };
    Grid::new(list, vec![7; 32], vec![9; 32], params, 3)
}
