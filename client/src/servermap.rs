//! Where a mutable file's shares are right now: Tahoe's "servermap"
//! (`mutable/servermap.py`), reduced to what Swamp's reader and publisher need.
//!
//! Every server is asked for its shares of the file and every share is read whole and
//! verified against the cap. Reading then decodes the newest version with k good
//! shares; publishing overwrites every share on the map, each write guarded by the
//! checkstring seen here, so a writer that raced us makes our write fail instead of
//! being silently undone.
//!
//! A share is read in at most two requests: its first [`FIRST_READ`] bytes (all of a
//! small file's share), then, if it is longer, the rest, whose length is taken from
//! its header only after the key and signature in those first bytes prove the header
//! is the cap's and the signed sizes allow that length
//! ([`swamp_formats::mutable::signed_share_len`]). A server cannot make the client read
//! more than the file's writer signed for.

use futures::future::join_all;
use swamp_formats::cap::MutableCap;
use swamp_formats::mutable::{MutableShare, checkstring_len, signed_share_len};
use swamp_proto::ShareNumber;
use swamp_proto::StorageIndex;

use crate::ClientError;
use crate::grid::{Grid, Server};

/// The first read of a share: a small file's share whole (directories of a few dozen
/// entries), and a large one's header, keys and signature.
const FIRST_READ: u64 = 64 * 1024;

/// What was found in one share.
pub(crate) enum ShareState {
    /// It parsed and verified against the cap.
    Good(Box<MutableShare>),
    /// It did not; `checkstring` is its leading bytes as read (what a publisher
    /// expects to find there when it replaces the share).
    Bad {
        /// The share's first bytes (up to a checkstring's length).
        checkstring: Vec<u8>,
        /// The share, if it parsed and its signed prefix verified (its blocks or
        /// hash chain are what failed): a checker that does not verify counts it.
        signed: Option<Box<MutableShare>>,
    },
}

/// One share on one server.
pub(crate) struct FoundShare {
    /// The server's position in [`ServerMap::servers`].
    pub server: usize,
    /// The share number.
    pub shnum: ShareNumber,
    /// What it holds.
    pub state: ShareState,
}

/// A newest recoverable version: its name and k of its good shares' numbers.
pub(crate) struct Version<'m> {
    /// Sequence number.
    pub seqnum: u64,
    /// Root hash.
    pub root_hash: [u8; 32],
    /// Good shares of this version, one per share number.
    pub shares: Vec<(usize, &'m MutableShare)>,
}

/// A mutable file's shares across the grid.
pub(crate) struct ServerMap<'g> {
    /// All servers, in the file's permuted order.
    pub servers: Vec<&'g Server>,
    /// Per server: whether it answered the share listing.
    pub answered: Vec<bool>,
    /// Every share read.
    pub shares: Vec<FoundShare>,
}

impl ServerMap<'_> {
    /// The highest sequence number among the good shares (0 if none).
    pub fn highest_seqnum(&self) -> u64 {
        self.good().map(|(_, s)| s.seqnum).max().unwrap_or(0)
    }

    fn good(&self) -> impl Iterator<Item = (usize, &MutableShare)> {
        self.shares.iter().filter_map(|f| match &f.state {
            ShareState::Good(s) => Some((usize::from(f.shnum.get()), s.as_ref())),
            ShareState::Bad { .. } => None,
        })
    }

    /// The newest version with at least k distinct good shares.
    pub fn newest_recoverable(&self) -> Option<Version<'_>> {
        let mut versions: Vec<(u64, [u8; 32])> =
            self.good().map(|(_, s)| (s.seqnum, s.root_hash)).collect();
        versions.sort_unstable();
        versions.dedup();
        versions.into_iter().rev().find_map(|(seqnum, root_hash)| {
            let mut shares: Vec<(usize, &MutableShare)> = Vec::new();
            for (n, s) in self.good() {
                if (s.seqnum, s.root_hash) == (seqnum, root_hash)
                    && !shares.iter().any(|(m, _)| *m == n)
                {
                    shares.push((n, s));
                }
            }
            let k = shares.first().map(|(_, s)| usize::from(s.needed))?;
            (shares.len() >= k).then_some(Version {
                seqnum,
                root_hash,
                shares,
            })
        })
    }

    /// How many good shares were found.
    pub fn good_count(&self) -> usize {
        self.good().count()
    }

    /// How many shares failed verification (and were reported).
    pub fn bad_count(&self) -> usize {
        self.shares
            .iter()
            .filter(|f| matches!(f.state, ShareState::Bad { .. }))
            .count()
    }
}

impl Grid {
    /// Lists and reads every share of `cap`'s file on every server (servers in
    /// parallel). Shares that fail verification are reported to their server with a
    /// corruption advisory, as Tahoe does.
    pub(crate) async fn map_mutable(&self, cap: &MutableCap) -> ServerMap<'_> {
        self.map_mutable_with(cap, true).await
    }

    /// [`Grid::map_mutable`], with advisories sent only if `advise`.
    pub(crate) async fn map_mutable_with(&self, cap: &MutableCap, advise: bool) -> ServerMap<'_> {
        let si = cap.storage_index();
        let servers = self.permuted(&si);
        let per_server = join_all(
            servers
                .iter()
                .enumerate()
                .map(|(index, server)| async move {
                    let Ok(listed) = server.client.mutable().list_shares(&si).await else {
                        return (false, Vec::new());
                    };
                    let mut found = Vec::new();
                    for shnum in listed {
                        let Ok(bytes) = read_share(server, &si, shnum, &cap.fingerprint).await
                        else {
                            continue;
                        };
                        let share = MutableShare::parse(&bytes).ok();
                        let state = match share {
                            Some(share)
                                if share
                                    .verify(usize::from(shnum.get()), &cap.fingerprint)
                                    .is_ok() =>
                            {
                                ShareState::Good(Box::new(share))
                            }
                            share => {
                                if advise {
                                    let _ = server
                                        .client
                                        .mutable()
                                        .advise_corrupt(
                                            &si,
                                            shnum,
                                            "share failed verification (swamp client)",
                                        )
                                        .await;
                                }
                                let len = bytes
                                    .first()
                                    .map_or(0, |v| checkstring_len(*v).min(bytes.len()));
                                ShareState::Bad {
                                    checkstring: bytes[..len].to_vec(),
                                    signed: share
                                        .filter(|s| s.verify_signature(&cap.fingerprint).is_ok())
                                        .map(Box::new),
                                }
                            }
                        };
                        found.push(FoundShare {
                            server: index,
                            shnum,
                            state,
                        });
                    }
                    (true, found)
                }),
        )
        .await;
        let mut answered = Vec::with_capacity(servers.len());
        let mut shares = Vec::new();
        for (ok, found) in per_server {
            answered.push(ok);
            shares.extend(found);
        }
        ServerMap {
            servers,
            answered,
            shares,
        }
    }
}

/// Reads share `shnum` whole, in at most two requests (see the module docs). A share
/// whose first bytes do not prove its length comes back as those bytes alone (it
/// then fails to parse or verify, and is reported); a server that fails is an error.
async fn read_share(
    server: &Server,
    si: &StorageIndex,
    shnum: ShareNumber,
    fingerprint: &[u8; 32],
) -> Result<Vec<u8>, ClientError> {
    let mutable = server.client.mutable();
    let first = mutable.read_share_chunk(si, shnum, 0, FIRST_READ).await?;
    let have = first.len() as u64;
    if have < FIRST_READ {
        // The server stopped at the share's end: all of it is here.
        return Ok(first.to_vec());
    }
    let Ok(len) = signed_share_len(&first, fingerprint) else {
        return Ok(first.to_vec());
    };
    let mut bytes = first.to_vec();
    if len > have {
        let rest = mutable
            .read_share_chunk(si, shnum, have, len - have)
            .await?;
        bytes.reserve_exact(rest.len());
        bytes.extend_from_slice(&rest);
    }
    Ok(bytes)
}
