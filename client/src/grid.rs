//! A client's view of a grid of storage servers, and immutable files on it.
//!
//! Servers are ordered per file as Tahoe orders them (by SHA-1 of storage index and
//! permutation seed); lease secrets are derived per file and per server from the
//! client's lease secret and the server's tubid, as Tahoe derives them, so leases made
//! by Swamp's client and by Tahoe's renew each other.

use swamp_formats::chk::Params;
use swamp_formats::hashutil;
use swamp_proto::secrets::{LeaseCancelSecret, LeaseRenewSecret};
use swamp_proto::{Nurl, StorageIndex};

use crate::{ClientError, StorageClient};

mod download;
mod placement;
mod pool;
mod source;
mod upload;

pub(crate) use download::{Failure, READ_BYTES, advise_corrupt, fetch_meta};
pub(crate) use placement::new_upload_secret;
pub use source::Progress;
pub use upload::FileError;

/// One storage server as a client knows it (from `servers.yaml` or an announcement).
#[derive(Clone)]
pub struct Server {
    /// Where and how to connect.
    pub nurl: Nurl,
    /// The tubid from its storage fURL (keys lease secrets and write enablers).
    pub tubid: [u8; 20],
    /// Its permutation seed.
    pub permutation_seed: Vec<u8>,
    /// A connected client.
    pub client: StorageClient,
}

/// Why a grid operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GridError {
    /// Not enough servers accepted shares.
    #[error("placed shares on {placed} servers, {happy} needed (servers of happiness)")]
    NotHappy {
        /// Distinct servers holding shares.
        placed: usize,
        /// Required.
        happy: usize,
    },
    /// Not enough good shares could be found.
    #[error(
        "found {found} good shares of the {needed} needed for {si}{}",
        if *corrupt > 0 { format!("; {corrupt} failed verification and were reported to their servers") } else { String::new() }
    )]
    NotEnoughShares {
        /// Storage index.
        si: StorageIndex,
        /// Good shares found.
        found: usize,
        /// k.
        needed: usize,
        /// Shares that failed verification (each reported with a corruption
        /// advisory).
        corrupt: usize,
    },
    /// A path or cap names something that is not a directory.
    #[error("{path}: not a directory")]
    NotADirectory {
        /// The path (or cap) walked so far.
        path: String,
    },
    /// A path names a child that does not exist.
    #[error("{path}: no such file or directory")]
    NoSuchChild {
        /// The path walked so far, the missing name last.
        path: String,
    },
    /// A directory cap that cannot be changed (an immutable directory).
    #[error("{path}: an immutable directory cannot be changed")]
    ReadOnlyDirectory {
        /// The cap.
        path: String,
    },
    /// The name is taken and the operation may not replace it.
    #[error("{path}: already exists{}", if *is_dir { " (a directory)" } else { "" })]
    ChildExists {
        /// The name.
        path: String,
        /// Whether what is there is a directory.
        is_dir: bool,
    },
    /// The cap names something that never changes (or cannot be read), so there is
    /// nothing to watch.
    #[error("{cap}: only mutable directories and mutable files can be watched")]
    NotWatchable {
        /// The cap.
        cap: String,
    },
    /// Encoding parameters or data were invalid.
    #[error(transparent)]
    Format(#[from] swamp_proto::DecodeError),
    /// Another writer changed a mutable file between our read and our write (a
    /// share's checkstring was not the one read, or the newest version was not the
    /// one the caller expected). Some shares may hold our version and some theirs:
    /// re-read and retry, as Tahoe's callers do.
    #[error("uncoordinated write: another writer changed mutable file {si}; re-read and retry")]
    UncoordinatedWrite {
        /// Storage index.
        si: StorageIndex,
        /// The version found instead, when known: (seqnum, root hash).
        found: Option<(u64, [u8; 32])>,
    },
    /// Writing needs a write cap.
    #[error("{si} is not writable with this cap")]
    NotWritable {
        /// Storage index.
        si: StorageIndex,
    },
    /// A CHK file too large for the repairer, which holds it in memory
    /// (`check/repair.rs`).
    #[error("{size} bytes is larger than the {max} bytes a repair holds in memory; not repaired")]
    TooLargeToRepair {
        /// The file's size.
        size: u64,
        /// [`crate::check::MAX_REPAIR_SIZE`].
        max: u64,
    },
    /// A tree larger than one walk visits (`tree::MAX_OBJECTS`).
    #[error("the tree holds more than {max} objects, the most one walk visits")]
    TreeTooLarge {
        /// [`crate::tree::MAX_OBJECTS`].
        max: usize,
    },
    /// A server failed.
    #[error("server {server}: {source}")]
    Server {
        /// Which server (its NURL's host:port).
        server: String,
        /// What happened.
        #[source]
        source: ClientError,
    },
}

/// A grid and the client's secrets.
pub struct Grid {
    servers: Vec<Server>,
    lease_secret: Vec<u8>,
    convergence_secret: Vec<u8>,
    params: Params,
    happy: usize,
}

impl Grid {
    /// A grid with the client's lease secret (`private/secret`) and convergence secret
    /// (`private/convergence`), and encoding parameters.
    pub fn new(
        servers: Vec<Server>,
        lease_secret: Vec<u8>,
        convergence_secret: Vec<u8>,
        params: Params,
        happy: usize,
    ) -> Self {
        Self {
            servers,
            lease_secret,
            convergence_secret,
            params,
            happy,
        }
    }

    /// The servers, in the order they were configured.
    pub fn servers(&self) -> &[Server] {
        &self.servers
    }

    /// The encoding parameters (k and N also apply to new mutable files).
    pub(crate) fn params(&self) -> &Params {
        &self.params
    }

    /// The servers, in the order Tahoe tries them for `si`.
    pub fn permuted(&self, si: &StorageIndex) -> Vec<&Server> {
        let mut servers: Vec<&Server> = self.servers.iter().collect();
        servers.sort_by_key(|s| hashutil::permute_server_hash(si.as_bytes(), &s.permutation_seed));
        servers
    }

    /// The lease secrets for `si` on `server`.
    pub fn lease_secrets(
        &self,
        si: &StorageIndex,
        server: &Server,
    ) -> (LeaseRenewSecret, LeaseCancelSecret) {
        let renew = hashutil::bucket_renewal_secret_hash(
            &hashutil::file_renewal_secret_hash(
                &hashutil::my_renewal_secret_hash(&self.lease_secret),
                si.as_bytes(),
            ),
            &server.tubid,
        );
        let cancel = hashutil::bucket_cancel_secret_hash(
            &hashutil::file_cancel_secret_hash(
                &hashutil::my_cancel_secret_hash(&self.lease_secret),
                si.as_bytes(),
            ),
            &server.tubid,
        );
        (
            LeaseRenewSecret::from_bytes(renew),
            LeaseCancelSecret::from_bytes(cancel),
        )
    }
}

/// A mutable file's version as read: its contents and signed sequence number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MutableVersion {
    /// The plaintext.
    pub data: Vec<u8>,
    /// The version's sequence number.
    pub seqnum: u64,
    /// The version's root hash.
    pub root_hash: [u8; 32],
}

impl Grid {
    /// Reads the newest recoverable version of a mutable file: every share found is
    /// verified against the cap (fingerprint, signature, hash chain); the highest
    /// sequence number with at least k good shares wins.
    ///
    /// # Errors
    /// [`GridError::NotEnoughShares`] when no version has k good shares.
    pub async fn read_mutable(
        &self,
        cap: &swamp_formats::cap::MutableCap,
    ) -> Result<MutableVersion, GridError> {
        let si = cap.storage_index();
        let readkey = cap.readkey().ok_or(GridError::NotEnoughShares {
            si,
            found: 0,
            needed: 1,
            corrupt: 0,
        })?;
        let map = self.map_mutable(cap).await;
        let version = map.newest_recoverable().ok_or(GridError::NotEnoughShares {
            si,
            found: map.good_count(),
            needed: 1,
            corrupt: map.bad_count(),
        })?;
        Ok(MutableVersion {
            data: swamp_formats::mutable::decode(&readkey, &version.shares)?,
            seqnum: version.seqnum,
            root_hash: version.root_hash,
        })
    }
}
