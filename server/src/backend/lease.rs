//! Lease records as Tahoe stores them, in both container families.
//!
//! Immutable records are `>L32s32sL` (owner, renew, cancel, expiry: 72 bytes); mutable
//! ones are `>LL32s32s20s` (owner, expiry, renew, cancel, node id: 92 bytes; owner 0
//! marks an empty slot). Version 1 containers keep the secrets verbatim; version 2
//! keeps their unkeyed BLAKE2b-256, so a stolen disk does not hand out lease secrets.

use blake2::Blake2b;
use blake2::digest::Digest;
use blake2::digest::consts::U32;
use swamp_proto::secrets::{LeaseCancelSecret, LeaseRenewSecret, constant_time_eq};

/// A lease a client asked for: the presented secrets, not yet in any container's form.
#[derive(Clone, Debug)]
pub struct LeaseGrant {
    /// Owner number (0 at allocate time, 1 from the lease endpoint and read-test-write).
    pub owner: u32,
    /// The presented renew secret.
    pub renew: LeaseRenewSecret,
    /// The presented cancel secret.
    pub cancel: LeaseCancelSecret,
    /// Unix seconds at which it expires.
    pub expiry: u64,
    /// This server's node id.
    pub nodeid: [u8; 20],
}

impl LeaseGrant {
    /// The record to store in a container that keeps secrets as `storage` says.
    pub fn to_lease(&self, storage: SecretStorage) -> Lease {
        Lease::new(
            storage,
            self.owner,
            &self.renew,
            &self.cancel,
            self.expiry,
            self.nodeid,
        )
    }
}

/// Tahoe's lease duration: 31 days.
pub const LEASE_DURATION_SECS: u64 = 31 * 24 * 3600;
/// Size of an immutable lease record.
pub const IMMUTABLE_LEASE_SIZE: usize = 72;
/// Size of a mutable lease record.
pub const MUTABLE_LEASE_SIZE: usize = 92;

/// How a container stores lease secrets.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SecretStorage {
    /// Container version 1: the secrets themselves.
    Plain,
    /// Container version 2: BLAKE2b-256 of each secret.
    Hashed,
}

impl SecretStorage {
    fn stored(self, secret: &[u8; 32]) -> [u8; 32] {
        match self {
            Self::Plain => *secret,
            Self::Hashed => Blake2b::<U32>::digest(secret).into(),
        }
    }
}

/// A lease as found in (or about to go into) a container.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Lease {
    /// Owner number (0 for leases made at upload time, 1 for later ones).
    pub owner: u32,
    /// The renew secret as stored (verbatim or hashed, per the container).
    pub renew_stored: [u8; 32],
    /// The cancel secret as stored.
    pub cancel_stored: [u8; 32],
    /// Unix seconds at which the lease expires.
    pub expiry: u32,
    /// Node id of the server that granted it (mutable leases only).
    pub nodeid: [u8; 20],
}

impl Lease {
    /// A new lease from presented secrets.
    pub fn new(
        storage: SecretStorage,
        owner: u32,
        renew: &LeaseRenewSecret,
        cancel: &LeaseCancelSecret,
        expiry: u64,
        nodeid: [u8; 20],
    ) -> Self {
        Self {
            owner,
            renew_stored: storage.stored(renew.expose()),
            cancel_stored: storage.stored(cancel.expose()),
            expiry: clamp_expiry(expiry),
            nodeid,
        }
    }

    /// Whether `renew` is this lease's renew secret.
    pub fn has_renew_secret(&self, storage: SecretStorage, renew: &LeaseRenewSecret) -> bool {
        constant_time_eq(&storage.stored(renew.expose()), &self.renew_stored)
    }

    /// Serializes an immutable record.
    pub fn to_immutable(&self) -> [u8; IMMUTABLE_LEASE_SIZE] {
        let mut out = [0u8; IMMUTABLE_LEASE_SIZE];
        out[0..4].copy_from_slice(&self.owner.to_be_bytes());
        out[4..36].copy_from_slice(&self.renew_stored);
        out[36..68].copy_from_slice(&self.cancel_stored);
        out[68..72].copy_from_slice(&self.expiry.to_be_bytes());
        out
    }

    /// Parses an immutable record.
    pub fn from_immutable(b: &[u8; IMMUTABLE_LEASE_SIZE]) -> Self {
        Self {
            owner: be_u32(&b[0..4]),
            renew_stored: b[4..36].try_into().expect("invariant: 32-byte slice"),
            cancel_stored: b[36..68].try_into().expect("invariant: 32-byte slice"),
            expiry: be_u32(&b[68..72]),
            nodeid: [0; 20],
        }
    }

    /// Serializes a mutable record.
    pub fn to_mutable(&self) -> [u8; MUTABLE_LEASE_SIZE] {
        let mut out = [0u8; MUTABLE_LEASE_SIZE];
        out[0..4].copy_from_slice(&self.owner.to_be_bytes());
        out[4..8].copy_from_slice(&self.expiry.to_be_bytes());
        out[8..40].copy_from_slice(&self.renew_stored);
        out[40..72].copy_from_slice(&self.cancel_stored);
        out[72..92].copy_from_slice(&self.nodeid);
        out
    }

    /// Parses a mutable record; `None` for an empty slot (owner 0).
    pub fn from_mutable(b: &[u8; MUTABLE_LEASE_SIZE]) -> Option<Self> {
        let owner = be_u32(&b[0..4]);
        (owner != 0).then(|| Self {
            owner,
            expiry: be_u32(&b[4..8]),
            renew_stored: b[8..40].try_into().expect("invariant: 32-byte slice"),
            cancel_stored: b[40..72].try_into().expect("invariant: 32-byte slice"),
            nodeid: b[72..92].try_into().expect("invariant: 20-byte slice"),
        })
    }
}

/// Expiry times are stored as u32 Unix seconds (good until 2106).
pub fn clamp_expiry(expiry: u64) -> u32 {
    u32::try_from(expiry).unwrap_or(u32::MAX)
}

pub(crate) fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b[..4].try_into().expect("invariant: 4-byte slice"))
}

pub(crate) fn be_u64(b: &[u8]) -> u64 {
    u64::from_be_bytes(b[..8].try_into().expect("invariant: 8-byte slice"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_secrets_are_blake2b_256() {
        // nacl.hash.blake2b(b"\x00"*32, digest_size=32, encoder=RawEncoder).hex()
        let stored = SecretStorage::Hashed.stored(&[0u8; 32]);
        assert_eq!(
            data_encoding::HEXLOWER.encode(&stored),
            "89eb0d6a8a691dae2cd15ed0369931ce0a949ecafa5c3f93f8121833646e15c3"
        );
    }

    #[test]
    fn records_round_trip() {
        let lease = Lease::new(
            SecretStorage::Hashed,
            1,
            &LeaseRenewSecret::from_bytes([1; 32]),
            &LeaseCancelSecret::from_bytes([2; 32]),
            1000,
            [9; 20],
        );
        assert_eq!(
            Lease::from_mutable(&lease.to_mutable()),
            Some(lease.clone())
        );
        let imm = Lease::from_immutable(&lease.to_immutable());
        assert_eq!(imm.renew_stored, lease.renew_stored);
        assert_eq!(imm.expiry, 1000);
        assert!(lease.has_renew_secret(
            SecretStorage::Hashed,
            &LeaseRenewSecret::from_bytes([1; 32])
        ));
        assert!(!lease.has_renew_secret(
            SecretStorage::Hashed,
            &LeaseRenewSecret::from_bytes([2; 32])
        ));
    }
}
