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
use swamp_server::backend::{Clock, Storage, StorageSettings};
use swamp_server::node::settings::LocationHint;
use swamp_server::node::{Limits, NodeIdentity};
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
    pub feeds: swamp_server::feeds::FeedSettings,
}

impl Default for TestOptions {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            reserved_space: 0,
            clock: TestClock::new(1_700_000_000),
            feeds: swamp_server::feeds::FeedSettings::default(),
        }
    }
}

/// A running server and a client for it.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
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
    pub feeds: Arc<swamp_server::feeds::Feeds>,
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
        let storage = Storage::open(
            &storage_dir,
            StorageSettings {
                nodeid: identity.tubid,
                reserved_space: options.reserved_space,
                readonly: false,
                clock: options.clock.as_clock(),
            },
        )
        .expect("open storage");
        let server =
            swamp_server::start::assemble(storage, &identity, options.limits.clone(), None, options.feeds.clone())
                .expect("assemble");
        let storage = Arc::clone(&server.app.storage);
        let feeds = Arc::clone(&server.app.feeds);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let nurl = identity
            .nurls(&[LocationHint {
                host: "127.0.0.1".into(),
                port: addr.port(),
            }])
            .remove(0);
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(swamp_server::serve(listener, server, shutdown.clone()));
        let client = StorageClient::new(&nurl).expect("client");
        Self {
            addr,
            nurl,
            client,
            storage_dir,
            identity,
            clock: options.clock,
            storage,
            feeds,
            shutdown,
            handle: Some(handle),
            _dir: None,
        }
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
