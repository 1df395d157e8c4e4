//! Tahoe-LAFS's file formats, as a client reads and writes them: capabilities, immutable
//! (CHK) and mutable (SDMF/MDMF) shares, erasure coding, the hashes and encryption they
//! are built from, and directories.
//!
//! Like `swamp-proto`, this crate does no I/O and reads no clock: every encoder and
//! decoder is a pure function of its input, checked against real Tahoe's bytes
//! (`tests/fixtures/`) and fuzzed without a socket.
//!
//! It is a crate of its own because only the client needs it. A storage server stores
//! shares as opaque bytes under a storage index; it never decrypts, decodes or verifies
//! them. Keeping these formats out of `swamp-proto` keeps the server from compiling
//! about 5,000 lines of them, their cryptography (AES, RSA) and the two audited
//! `unsafe` kernels ([`zfec`]'s SIMD and [`sha256`]'s SHA-NI). The arrows point one way:
//! client → `swamp-formats` → `swamp-proto` ← server. The ids, secrets and base32 that
//! both sides need stay in `swamp-proto`, and errors are its [`DecodeError`].
//!
//! # Layout
//! - [`cap`]: capability strings and the keys they imply.
//! - [`hashutil`]: Tahoe's tagged hashes, netstrings and key derivations (including the
//!   lease secrets a client derives for each server).
//! - [`sha256`]: SHA-256, two streams at once where the CPU allows.
//! - [`hashtree`]: Tahoe's Merkle trees.
//! - [`aes`]: AES-128-CTR as Tahoe uses it.
//! - [`zfec`]: erasure coding identical to zfec 1.6.
//! - [`chk`]: immutable files: encoder, decoder and share layout.
//! - [`mutable`], [`mutable_encode`], [`mutable_key`]: SDMF/MDMF shares read, written,
//!   and the RSA key pair a mutable file is made from.
//! - [`dirnode`]: directory contents; [`dirdiff`]: what changed between two versions.
//! - [`pyjson`]: JSON written byte for byte as Python's `json.dumps` writes it.
//!
//! [`DecodeError`]: swamp_proto::DecodeError

pub mod aes;
pub mod cap;
pub mod chk;
pub mod dirdiff;
pub mod dirnode;
pub mod hashtree;
pub mod hashutil;
pub mod mutable;
pub mod mutable_encode;
pub mod mutable_key;
pub mod pyjson;
pub mod sha256;
pub mod zfec;
