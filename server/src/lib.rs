//! Swamp's storage node: Tahoe-LAFS's GBS storage protocol over HTTPS (HTTP/1.1 and
//! HTTP/2 on one port), on Tahoe's own node directory and disk format.
//!
//! # Layout
//! - [`activity`]: counters for the operator's activity stream.
//! - [`backend`]: shares on disk in Tahoe's format; uploads, read-test-write, leases.
//! - [`wal`]: the storage's write-ahead log: every committed change, synced before it
//!   is acknowledged (read-test-write's redo, replayed at open), and the feeds' history
//!   on disk. Owned by [`backend::Storage`]; hands synced changes to the feeds through
//!   one hook ([`wal::Publisher`]).
//! - [`feeds`]: change feeds: the history of published changes, the hub that fans them
//!   out, and subscriptions. No transport: those are `http::feed`'s.
//! - [`node`]: the node directory: `tahoe.cfg`, environment overrides, identity files.
//! - [`http`]: routes, authorization, content negotiation, the error-to-status map, and
//!   the feed transports (`http::feed`: WebSocket, SSE, long-poll).
//! - [`tls`]: the rustls configuration (one self-signed certificate, ALPN h2/http1.1).
//! - [`serve`]: the accept loop and graceful shutdown.
//! - [`connection`]: per-connection bounds (idle, write and body timeouts, early answers).
//! - [`tasks`]: background work (idle uploads, lease expiry), given the storage and
//!   counters it works on, not the HTTP state.
//! - [`start`]: assembling a [`serve::Server`] from a node directory.

pub mod activity;
pub mod backend;
pub mod connection;
pub mod feeds;
pub mod http;
pub mod node;
pub mod serve;
pub mod start;
pub mod tasks;
pub mod tls;
pub mod wal;

pub use serve::{Server, serve};
