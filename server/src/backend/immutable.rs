//! Tahoe's immutable share container (`storage/immutable.py`).
//!
//! ```text
//! 0x00 u32 container version (1: plain lease secrets, 2: hashed)
//! 0x04 u32 legacy data length, min(allocated size, 2^32-1), unused on read
//! 0x08 u32 number of leases
//! 0x0c     share data
//! end-72n  n lease records
//! ```
//! The data length is derived from the file size and the lease count, so leases must be
//! changed under the storage index's lock (see `locks.rs`) for readers to agree on it.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use super::lease::{IMMUTABLE_LEASE_SIZE, Lease, LeaseGrant, SecretStorage, be_u32};

/// Offset of the share data in the container.
pub const DATA_OFFSET: u64 = 0x0c;
/// The version new containers are written with.
pub const NEW_VERSION: u32 = 2;

/// The parsed header of an immutable container.
#[derive(Clone, Copy, Debug)]
pub struct Header {
    /// Container version.
    pub version: u32,
    /// Number of lease records at the end of the file.
    pub num_leases: u32,
}

impl Header {
    /// How this container stores lease secrets.
    pub fn secret_storage(&self) -> SecretStorage {
        if self.version == 1 {
            SecretStorage::Plain
        } else {
            SecretStorage::Hashed
        }
    }
}

/// Whether the first bytes of a share file look like an immutable container.
pub fn is_immutable_header(first: &[u8]) -> bool {
    first.len() >= 4 && matches!(be_u32(first), 1 | 2)
}

/// The 12-byte header of a new container for a share of `allocated_size` bytes with
/// `num_leases` lease records.
pub fn new_header(allocated_size: u64, num_leases: u32) -> [u8; 12] {
    let mut h = [0u8; 12];
    h[0..4].copy_from_slice(&NEW_VERSION.to_be_bytes());
    let legacy = u32::try_from(allocated_size).unwrap_or(u32::MAX);
    h[4..8].copy_from_slice(&legacy.to_be_bytes());
    h[8..12].copy_from_slice(&num_leases.to_be_bytes());
    h
}

/// Reads and checks the header.
///
/// # Errors
/// `InvalidData` if the version is unknown or the file is shorter than its leases.
pub fn read_header(file: &File) -> io::Result<Header> {
    let mut h = [0u8; 12];
    file.read_exact_at(&mut h, 0)?;
    parse_header(&h)
}

/// Checks and parses the header from the file's first bytes.
///
/// # Errors
/// `InvalidData` if there are fewer than 12 bytes or the version is unknown.
pub fn parse_header(first: &[u8]) -> io::Result<Header> {
    if first.len() < 12 || !is_immutable_header(first) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not an immutable share container",
        ));
    }
    Ok(Header {
        version: be_u32(&first[0..4]),
        num_leases: be_u32(&first[8..12]),
    })
}

/// The length of the share data: file size minus header minus leases.
///
/// # Errors
/// `InvalidData` if the leases would not fit.
pub fn data_length(file: &File, header: &Header) -> io::Result<u64> {
    let size = file.metadata()?.len();
    let leases = u64::from(header.num_leases) * IMMUTABLE_LEASE_SIZE as u64;
    size.checked_sub(DATA_OFFSET + leases).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "container shorter than its leases",
        )
    })
}

/// Reads every lease record.
///
/// # Errors
/// I/O errors, or `InvalidData` for a damaged container.
pub fn read_leases(file: &File, header: &Header) -> io::Result<Vec<Lease>> {
    let start = DATA_OFFSET + data_length(file, header)?;
    (0..u64::from(header.num_leases))
        .map(|i| {
            let mut rec = [0u8; IMMUTABLE_LEASE_SIZE];
            file.read_exact_at(&mut rec, start + i * IMMUTABLE_LEASE_SIZE as u64)?;
            Ok(Lease::from_immutable(&rec))
        })
        .collect()
}

/// Renews the lease whose renew secret matches (only ever extending its expiry), or
/// appends a new record, as Tahoe's `add_or_renew_lease` does.
///
/// # Errors
/// I/O errors, or `InvalidData` for a damaged container.
pub fn add_or_renew_lease(file: &File, grant: &LeaseGrant) -> io::Result<()> {
    let header = read_header(file)?;
    let storage = header.secret_storage();
    let lease = grant.to_lease(storage);
    let start = DATA_OFFSET + data_length(file, &header)?;
    for (i, existing) in read_leases(file, &header)?.into_iter().enumerate() {
        if existing.has_renew_secret(storage, &grant.renew) {
            if lease.expiry > existing.expiry {
                let renewed = Lease {
                    expiry: lease.expiry,
                    ..existing
                };
                file.write_all_at(
                    &renewed.to_immutable(),
                    start + (i * IMMUTABLE_LEASE_SIZE) as u64,
                )?;
            }
            return Ok(());
        }
    }
    write_lease_at(
        file,
        &header,
        start + u64::from(header.num_leases) * IMMUTABLE_LEASE_SIZE as u64,
        &lease,
    )
}

/// Appends a lease at `offset` (the current end of the lease list) and bumps the count.
/// The record goes first and the count second, as in Tahoe.
///
/// # Errors
/// I/O errors.
pub fn write_lease_at(file: &File, header: &Header, offset: u64, lease: &Lease) -> io::Result<()> {
    file.write_all_at(&lease.to_immutable(), offset)?;
    file.write_all_at(&(header.num_leases + 1).to_be_bytes(), 8)
}
