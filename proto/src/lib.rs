//! Wire types of Tahoe-LAFS's "Great Black Swamp" (GBS) storage protocol, shared by the
//! Swamp server and client.
//!
//! This crate does no I/O and reads no clock: everything here is a pure function of its
//! input, so the server and the client agree on every byte by construction, and every
//! decoder can be tested (and fuzzed) without a socket.
//!
//! It holds only what crosses the wire between a client and a storage server: the
//! server depends on it and on nothing else of ours. Tahoe's file formats (caps, CHK,
//! zfec, hash trees, mutable files, directories), which only a client needs, live in
//! `swamp-formats`, which builds on this crate; so the server compiles neither those
//! formats nor their cryptography (AES, RSA) nor their `unsafe` kernels.
//!
//! # Glossary (Tahoe's words, used exactly)
//! - **storage index** (SI): 16 bytes naming a file's shares on a server, written as 26
//!   characters of lowercase base32 in URLs and on disk ([`StorageIndex`]).
//! - **share number** (shnum): which of a file's N erasure-coded shares ([`ShareNumber`]).
//! - **bucket**: the set of a storage index's immutable shares held by one server.
//! - **slot**: a mutable file's shares on a server, written with read-test-write.
//! - **lease**: a client's promise to keep paying attention to a share, with a renew
//!   secret and a cancel secret; shares whose leases all expire may be collected.
//! - **write enabler**: a per-server secret that a writer of a slot must present.
//! - **swissnum**: the secret part of a NURL; it authorizes every storage request.
//! - **NURL**: `pb://<spki-hash>@host:port/<swissnum>#v=1`, the address of a GBS server
//!   that pins its certificate by the SHA-256 of its SubjectPublicKeyInfo ([`Nurl`]).
//!
//! # Layout
//! - [`base32`]: Tahoe's lowercase, unpadded base32.
//! - [`storage_index`], [`share`]: the ids in every URL.
//! - [`secrets`]: swissnum, lease secrets, upload secret, write enabler and the
//!   `X-Tahoe-Authorization` header format.
//! - [`nurl`]: NURLs and SPKI hashes.
//! - [`range`]: the `Range` and `Content-Range` dialect GBS uses.
//! - [`v1`]: the CBOR request and response bodies of `/storage/v1`, and the endpoint
//!   table (method, path, name) both sides build their URLs and routes from.
//! - [`feed`]: change-feed cursors, events and commands.
//! - [`ini`]: the `tahoe.cfg` dialect of INI.
//! - [`error`]: [`DecodeError`], the one error of this crate (and of `swamp-formats`).

pub mod base32;
pub mod error;
pub mod feed;
pub mod ini;
pub mod nurl;
pub mod range;
pub mod secrets;
pub mod share;
pub mod storage_index;
pub mod v1;

pub use error::DecodeError;
pub use nurl::{Nurl, SpkiHash};
pub use share::ShareNumber;
pub use storage_index::StorageIndex;
