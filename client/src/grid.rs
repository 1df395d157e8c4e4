//! A client's view of a grid of storage servers, and immutable files on it.
//!
//! Servers are ordered per file as Tahoe orders them (by SHA-1 of storage index and
//! permutation seed); lease secrets are derived per file and per server from the
//! client's lease secret and the server's tubid, as Tahoe derives them, so leases made
//! by Swamp's client and by Tahoe's renew each other.

use swamp_proto::chk::Params;
use swamp_proto::secrets::{LeaseCancelSecret, LeaseRenewSecret};
use swamp_proto::{Nurl, StorageIndex, hashutil};

use crate::{ClientError, StorageClient};

mod download;
mod upload;

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
    #[error("found {found} good shares of the {needed} needed for {si}")]
    NotEnoughShares {
        /// Storage index.
        si: StorageIndex,
        /// Good shares found.
        found: usize,
        /// k.
        needed: usize,
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
        cap: &swamp_proto::cap::MutableCap,
    ) -> Result<MutableVersion, GridError> {
        use swamp_proto::mutable::{MutableShare, decode};
        let si = cap.storage_index();
        let readkey = cap.readkey().ok_or(GridError::NotEnoughShares {
            si,
            found: 0,
            needed: 1,
        })?;
        let mut good: Vec<(usize, MutableShare)> = Vec::new();
        for server in self.permuted(&si) {
            let Ok(shares) = server.client.mutable().list_shares(&si).await else {
                continue;
            };
            for shnum in shares {
                let n = usize::from(shnum.get());
                let Ok(bytes) = server
                    .client
                    .mutable()
                    .read_share_chunk(&si, shnum, 0, 1 << 40)
                    .await
                else {
                    continue;
                };
                match MutableShare::parse(&bytes) {
                    Ok(share) if share.verify(n, &cap.fingerprint).is_ok() => good.push((n, share)),
                    _ => {
                        let _ = server
                            .client
                            .mutable()
                            .advise_corrupt(&si, shnum, "share failed verification (swamp client)")
                            .await;
                    }
                }
            }
        }
        let mut versions: Vec<(u64, [u8; 32])> =
            good.iter().map(|(_, s)| (s.seqnum, s.root_hash)).collect();
        versions.sort_unstable();
        versions.dedup();
        for (seqnum, root_hash) in versions.into_iter().rev() {
            let mut of_version: Vec<(usize, &MutableShare)> = Vec::new();
            for (n, s) in &good {
                if (s.seqnum, s.root_hash) == (seqnum, root_hash)
                    && !of_version.iter().any(|(m, _)| m == n)
                {
                    of_version.push((*n, s));
                }
            }
            let k = of_version
                .first()
                .map_or(usize::MAX, |(_, s)| usize::from(s.needed));
            if of_version.len() >= k {
                let data = decode(&readkey, &of_version)?;
                return Ok(MutableVersion {
                    data,
                    seqnum,
                    root_hash,
                });
            }
        }
        Err(GridError::NotEnoughShares {
            si,
            found: good.len(),
            needed: 1,
        })
    }
}
