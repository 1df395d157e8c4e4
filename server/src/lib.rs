//! Swamp's storage node: Tahoe-LAFS's GBS storage protocol over HTTPS (HTTP/1.1 and
//! HTTP/2 on one port), on Tahoe's own node directory and disk format.
//!
//! The public face is small: a node directory ([`node`]), turning it into a ready
//! server ([`start`]), and serving it ([`serve()`], [`tls`]). Everything else is
//! `pub(crate)`, so the compiler reports what nothing uses. The project's own
//! end-to-end tests and fuzz targets reach the internals they exercise through
//! [`testing`], one list kept in one place; it is not an API for anyone else.
//!
//! # Layout
//! - `activity`: counters for the operator's activity stream.
//! - `backend`: shares on disk in Tahoe's format; uploads, read-test-write, leases.
//! - `wal`: the storage's write-ahead log: every committed change, synced before it
//!   is acknowledged (read-test-write's redo, replayed at open), and the feeds' history
//!   on disk. Owned by `backend::Storage`; hands synced changes to the feeds through
//!   one hook (`wal::Publisher`).
//! - `feeds`: change feeds: the history of published changes, the hub that fans them
//!   out, and subscriptions. No transport: those are `http::feed`'s.
//! - [`node`]: the node directory: `tahoe.cfg`, environment overrides, identity files.
//! - `http`: routes, authorization, content negotiation, the error-to-status map, and
//!   the feed transports (`http::feed`: WebSocket, SSE, long-poll).
//! - [`tls`]: the rustls configuration (one self-signed certificate, ALPN h2/http1.1).
//! - [`serve`](mod@serve): the accept loop and graceful shutdown.
//! - `connection`: per-connection bounds (idle, write and body timeouts, early answers).
//! - `tasks`: background work (idle uploads, lease expiry), given the storage and
//!   counters it works on, not the HTTP state.
//! - [`start`]: assembling a [`Server`] from a node directory.
//! - [`healthcheck`]: asking a node on its own port whether it serves (containers).
//! - [`operator`]: the operator listener (plain HTTP): metrics, health, the live
//!   dashboard, `/status`, and the client half of `swamp-server status`.
//!
//! `docs/architecture.md` draws how they fit together.

pub(crate) mod activity;
pub(crate) mod backend;
pub(crate) mod connection;
pub(crate) mod feeds;
pub mod healthcheck;
pub(crate) mod http;
pub mod live;
pub mod logging;
pub mod node;
pub mod operator;
pub(crate) mod permits;
pub mod reload;
pub mod serve;
pub mod start;
pub(crate) mod tasks;
pub mod tls;
pub(crate) mod wal;

pub use backend::{Clock, system_clock};
pub use operator::serve_operator;
pub use serve::{Server, serve};

/// The internals the project's own tests (`tests/`) and fuzz targets (`fuzz/`) drive
/// directly: storage settings and fault injection for test servers, the on-disk
/// formats and parsers they feed hostile bytes, feed settings and tokens. Not a stable
/// API; anything added here should be something a test cannot reach through HTTP.
#[doc(hidden)]
pub mod testing {
    pub use crate::backend::{
        Storage, StorageError, StorageLimits, StorageSettings, expiry, faults, immutable, lease,
        mutable,
    };
    pub use crate::feeds::{FeedSettings, Feeds, Retention, encode, token};
    pub use crate::http::extract;
    pub use crate::http::feed::{FeedQuery, MAX_WAIT};
    pub use crate::wal::{change::Change, records, redo::ShareRedo};

    /// `backend::ranges::MAX_PIECES`: range pieces one upload may be split into.
    pub const MAX_UPLOAD_PIECES: usize = crate::backend::ranges::MAX_PIECES;
}
