//! A Rust client for Tahoe-LAFS storage servers speaking Great Black Swamp (GBS):
//! Swamp, and the Python server.
//!
//! [`StorageClient::new`] takes a NURL, pins the server's certificate by its SPKI hash,
//! and speaks HTTP/2 (falling back to HTTP/1.1 when the server offers no ALPN, as the
//! Python server does). Its facades follow Tahoe's: [`StorageClient::general`],
//! [`StorageClient::immutable`], [`StorageClient::mutable`].
//!
//! # Layout
//! - `tls.rs`: the SPKI-pinning certificate verifier.
//! - `storage.rs`: the client and its typed method per endpoint.
//! - `grid.rs`: servers of a grid, lease secrets; `grid/upload.rs` and
//!   `grid/download.rs`: immutable upload and download, streamed and concurrent.
//! - `dirs.rs`: reading directories and following paths.
//! - `watch.rs`: `tahoe watch`: feeds as triggers, re-read, decrypt, diff.
//! - `feed.rs`: the change-feed client (WebSocket, SSE, long-poll; resume; multi-server).
//! - `error.rs`: [`ClientError`].

pub mod dirs;
pub mod error;
pub mod feed;
pub mod grid;
pub mod nodedir;
pub mod storage;
pub mod tls;
pub mod watch;

pub use error::ClientError;
pub use storage::{ClientOptions, StorageClient, UploadWrite};
