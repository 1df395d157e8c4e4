//! A Tahoe-LAFS client node's web API (the "WAPI", Tahoe's
//! `docs/frontends/webapi.rst`) over Swamp's client library.
//!
//! Programs written for a Python client node (Tahoe's own `tahoe` CLI, magic-folder,
//! GridSync) talk to a local node over HTTP and never to storage servers. Serving the
//! same API, with Tahoe 1.20's paths, parameters, status codes and JSON shapes, lets
//! them use a Swamp client node unchanged. `docs/web-api.md` lists every endpoint and
//! every place this one differs from Tahoe's.
//!
//! Every request is hostile until checked: paths, query strings, bodies and
//! directory sizes have bounds ([`Limits`]), a bad cap or argument is a 400, and no
//! input makes the node panic.
//!
//! # Layout
//! - `serve.rs`: the accept loop and its bounds (connections, header deadline).
//! - `route.rs`: which resource a path names; every request enters there.
//! - `reply.rs`: the plain-text answer and path-segment encoding every handler uses.
//! - `error.rs`: the one mapping from a failure to a status.
//! - `args.rs`: query arguments as Tahoe reads them.
//! - `welcome.rs`: `GET /`, the servers and their connection status.
//! - `unlinked.rs`: `/uri` itself: new unlinked files and directories, `?uri=`.
//! - `node.rs`: `/uri/$CAP/PATH`: following a path, then each method and `t=`.
//! - `file.rs`: reading files (`Range`, `HEAD`), streamed.
//! - `transfer.rs`: uploads and downloads, each on its own thread.
//! - `body.rs`: bounded request bodies, spooled uploads.
//! - `forms.rs`: HTML forms posted (fields merged into the arguments, the file
//!   spooled) and the redirects they ask for (`when_done=`, `redirect_to_result=`);
//!   `multipart.rs`: the streaming `multipart/form-data` reader under it;
//!   `form_upload.rs`: `POST t=upload`; `form_pages.rs`: the forms on the welcome
//!   and directory pages, and `t=rename-form`.
//! - `listing.rs`: `t=json`; `children.rs`: children JSON in requests.
//! - `private.rs`: `/private`, behind the node's API token; `logs.rs`: the log it
//!   streams.
//! - `edit.rs`: directory changes (new directories with children, relinks).
//! - `check.rs`: `t=check` (check, verify, repair; the client library's).
//! - `deep.rs`: `t=stream-manifest`, `t=stream-deep-check`: a tree, line by line.
//! - `info.rs`: `t=info`, the "More Info" page.
//! - `statistics.rs`: `/statistics` (JSON, OpenMetrics) under Tahoe's names.
//! - `operations.rs`: `t=start-*` with `ophandle=`, and `/operations/$HANDLE`.
//! - `watch.rs`: `t=watch`, changes pushed over SSE or WebSocket (not Tahoe's);
//!   `watch_session.rs`: its sessions, cursors and bounds.
//! - `status.rs`: `/status` as JSON, the recent transfers (what `tahoe status` reads).

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use swamp_client::grid::Grid;
use swamp_client::nodedir::ServerName;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

pub use logs::LogFeed;

mod args;
mod body;
mod check;
mod children;
mod deep;
mod edit;
mod error;
mod file;
mod form_pages;
mod form_upload;
mod forms;
mod info;
mod listing;
mod logs;
mod multipart;
mod node;
mod operations;
mod private;
mod reply;
mod route;
mod serve;
mod statistics;
mod status;
mod transfer;
mod unlinked;
mod watch;
mod watch_session;
mod welcome;

pub use watch_session::WatchLimits;

/// Bounds on what one request may make the node hold or do.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Bytes of an immutable upload (spooled to disk, so bounded by disk space too).
    pub max_upload: u64,
    /// Bytes of a mutable file written or created (held in memory while encoded).
    pub max_mutable: usize,
    /// Bytes of a JSON request body (children of a new directory).
    pub max_json: usize,
    /// Uploads and downloads in progress at once (each has a thread, and a download
    /// holds a few reads of k × 4 MiB); more wait.
    pub transfers: usize,
    /// Bounds on `t=watch` (sessions, backlog, linger, keep-alive).
    pub watch: WatchLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_upload: 1 << 40,
            max_mutable: 64 << 20,
            max_json: 16 << 20,
            transfers: 16,
            watch: WatchLimits::default(),
        }
    }
}

/// A client node's web API: the grid it uses and where it spools uploads.
pub struct Gateway {
    grid: Arc<Grid>,
    names: Vec<ServerName>,
    spool_dir: PathBuf,
    limits: Limits,
    transfers: Arc<Semaphore>,
    status: welcome::StatusCache,
    api_token: Option<String>,
    operations: operations::Operations,
    statistics: statistics::Statistics,
    logs: LogFeed,
    watches: watch_session::Sessions,
}

impl Gateway {
    /// A web API over `grid`, whose servers are named by `names` (in the grid's
    /// order), spooling uploads under `spool_dir` (Tahoe uses the node's `tmp/`).
    pub fn new(grid: Grid, names: Vec<ServerName>, spool_dir: PathBuf, limits: Limits) -> Self {
        Self {
            grid: Arc::new(grid),
            names,
            spool_dir,
            transfers: Arc::new(Semaphore::new(limits.transfers.max(1))),
            limits,
            status: welcome::StatusCache::default(),
            api_token: None,
            operations: operations::Operations::default(),
            statistics: statistics::Statistics::default(),
            logs: LogFeed::default(),
            watches: watch_session::Sessions::default(),
        }
    }

    /// The token `/private` requires (`Authorization: tahoe-lafs <token>`; Tahoe's
    /// `private/api_auth_token`). Without one, `/private` refuses everybody.
    #[must_use]
    pub fn with_api_token(mut self, token: String) -> Self {
        self.api_token = Some(token);
        self
    }

    /// The feed `/private/logs/v1` streams (the node's log, published by whoever
    /// runs the gateway; without one the socket stays open and quiet).
    #[must_use]
    pub fn with_log_feed(mut self, logs: LogFeed) -> Self {
        self.logs = logs;
        self
    }

    /// `t=watch` sessions running now, lingering ones included (a gauge).
    pub fn active_watches(&self) -> usize {
        self.watches.count()
    }
}

/// The web API as a router (for tests and embedding).
pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new().fallback(route::dispatch).with_state(gateway)
}

/// Serves the web API on `listener` until `shutdown` is cancelled, then lets the
/// requests in flight finish (for a few seconds); `t=watch` streams end at once.
///
/// # Errors
/// None yet: a failed accept is logged and retried; the `Result` leaves room for
/// failures a caller must hear of.
pub async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let watches = {
        let (gateway, shutdown) = (Arc::clone(&gateway), shutdown.clone());
        tokio::spawn(async move {
            shutdown.cancelled().await;
            gateway.watches.stop_all();
        })
    };
    serve::run(listener, router(gateway), shutdown).await;
    watches.abort();
    Ok(())
}
