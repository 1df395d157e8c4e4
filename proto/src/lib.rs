//! Wire types and formats of Tahoe-LAFS's "Great Black Swamp" (GBS) storage protocol,
//! shared by the Swamp server and client.
//!
//! This crate does no I/O and reads no clock: everything here is a pure function of its
//! input, so the server and the client agree on every byte by construction, and every
//! decoder can be tested (and fuzzed) without a socket.
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
//! - [`v1`]: the CBOR request and response bodies of `/storage/v1` and its paths.
//! - [`feed`]: change-feed cursors, events and commands.
//! - [`hashutil`]: Tahoe's tagged hashes, netstrings and key derivations.
//! - [`sha256`]: SHA-256, two streams at once where the CPU allows.
//! - [`cap`]: capability strings and the keys they imply.
//! - [`ini`]: the `tahoe.cfg` dialect of INI.
//! - [`dirnode`]: directory contents; [`dirdiff`]: what changed between two versions.
//! - [`zfec`]: erasure coding identical to zfec 1.6.
//! - [`hashtree`]: Tahoe's Merkle trees.
//! - [`aes`]: AES-128-CTR as Tahoe uses it.
//! - [`mutable`], [`mutable_encode`], [`mutable_key`]: SDMF/MDMF shares read, written,
//!   and the RSA key pair a mutable file is made from.
//! - [`error`]: [`DecodeError`], the one error of this crate.

pub mod aes;
pub mod base32;
pub mod cap;
pub mod chk;
pub mod dirdiff;
pub mod dirnode;
pub mod error;
pub mod feed;
pub mod hashtree;
pub mod hashutil;
pub mod ini;
pub mod mutable;
pub mod mutable_encode;
pub mod mutable_key;
pub mod nurl;
pub mod range;
pub mod secrets;
pub mod sha256;
pub mod share;
pub mod storage_index;
pub mod v1;
pub mod zfec;

pub use error::DecodeError;
pub use nurl::{Nurl, SpkiHash};
pub use share::ShareNumber;
pub use storage_index::StorageIndex;
