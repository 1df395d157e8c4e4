//! Creating and overwriting mutable files, as Tahoe's publisher does
//! (`mutable/publish.py`).
//!
//! A new file gets a fresh RSA key, seqnum 1, and share i on the i-th server in the
//! file's permuted order (wrapping), each write testing that the share does not exist
//! yet. An overwrite maps the file's shares, encodes seqnum + 1 in the newest
//! version's format, k and N, and writes it over every share found (placing missing
//! share numbers on the least-loaded servers), each write testing that its share
//! still holds the checkstring that was read. A failed test means another writer got
//! there first: [`GridError::UncoordinatedWrite`], and the caller re-reads and retries.
//!
//! Each server gets one read-test-write request carrying all of its shares, each share
//! written whole at offset 0 (what Tahoe's pieces add up to); the requests go out in
//! parallel. Like Tahoe, a publish succeeds once k share numbers are written, even if
//! some servers failed.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::join_all;
use swamp_formats::cap::{MutableCap, MutableFormat};
use swamp_formats::mutable::parse_checkstring;
use swamp_formats::mutable_encode::{self, EncodedVersion, MutableParams};
use swamp_formats::mutable_key::MutableKey;
use swamp_proto::DecodeError;
use swamp_proto::v1::{
    ReadTestWriteRequest, ReadVector, TestVector, TestWriteVectors, WriteVector,
};

use crate::grid::{Grid, GridError, MutableVersion, Server};
use crate::servermap::{ServerMap, ShareState};

/// One share to write: where, and what the share must hold before the write (its old
/// checkstring; empty for a share that must not exist yet).
struct Placement {
    server: usize,
    shnum: usize,
    expect: Vec<u8>,
}

impl Grid {
    /// Creates a mutable file holding `data`: a new 2048-bit key (so a new write cap),
    /// seqnum 1, k and N from the grid's encoding parameters.
    ///
    /// # Errors
    /// [`GridError::Format`] if k or N exceed 255; a server's error, or
    /// [`GridError::NotHappy`], if fewer than k shares could be written;
    /// [`GridError::UncoordinatedWrite`] if a share already existed.
    pub async fn create_mutable(
        &self,
        data: &[u8],
        format: MutableFormat,
    ) -> Result<MutableCap, GridError> {
        let key = MutableKey::generate(&mut rand::rng())?;
        self.create_mutable_with_key(data, format, key).await
    }

    /// [`Grid::create_mutable`] with a given signing key (Tahoe's `private-key=`),
    /// which decides the cap: the same key always gives the same file.
    ///
    /// # Errors
    /// As [`Grid::create_mutable`]; [`GridError::UncoordinatedWrite`] when a file
    /// with this key exists already.
    pub async fn create_mutable_with_key(
        &self,
        data: &[u8],
        format: MutableFormat,
        key: MutableKey,
    ) -> Result<MutableCap, GridError> {
        let byte = |n: u16| {
            u8::try_from(n).map_err(|_| {
                DecodeError::Invalid(format!("mutable files allow at most 255 shares, not {n}"))
            })
        };
        let params = MutableParams::new(
            format,
            byte(self.params().needed)?,
            byte(self.params().total)?,
        )?;
        let (cap, version) = {
            let version = mutable_encode::encode(&key, params, 1, data, &mut rand::rng())?;
            (key.write_cap(format), version)
        };
        let servers = self.permuted(&cap.storage_index());
        let goal: Vec<Placement> = if servers.is_empty() {
            Vec::new()
        } else {
            (0..version.shares.len())
                .map(|shnum| Placement {
                    server: shnum % servers.len(),
                    shnum,
                    expect: Vec::new(),
                })
                .collect()
        };
        self.push(&cap, &servers, &version, goal, &BTreeSet::new())
            .await?;
        Ok(cap)
    }

    /// Replaces the contents of a mutable file with `data`, as the next version of the
    /// newest one found (same format, k and N). With `expected`, the newest version
    /// must be that `(seqnum, root hash)`, as a caller that read and modified it wants.
    ///
    /// # Errors
    /// [`GridError::NotWritable`] for a read-only cap; [`GridError::NotEnoughShares`]
    /// if no version is recoverable; [`GridError::UncoordinatedWrite`] if the newest
    /// version is not `expected` or a share changed after it was read; a server's
    /// error if fewer than k shares could be written.
    pub async fn overwrite_mutable(
        &self,
        cap: &MutableCap,
        data: &[u8],
        expected: Option<(u64, [u8; 32])>,
    ) -> Result<MutableVersion, GridError> {
        let si = cap.storage_index();
        let writekey = cap.writekey().ok_or(GridError::NotWritable { si })?;
        let map = self.map_mutable(cap).await;
        let newest = map.newest_recoverable().ok_or(GridError::NotEnoughShares {
            si,
            found: map.good_count(),
            needed: 1,
            corrupt: map.bad_count(),
        })?;
        let current = (newest.seqnum, newest.root_hash);
        if expected.is_some_and(|e| e != current) {
            return Err(GridError::UncoordinatedWrite {
                si,
                found: Some(current),
            });
        }
        let key = newest
            .shares
            .iter()
            .find_map(|(_, s)| MutableKey::from_encrypted(&s.encrypted_private_key, &writekey).ok())
            .ok_or_else(|| DecodeError::Invalid("no share holds this file's signing key".into()))?;
        let shape = newest.shares[0].1;
        let format = if shape.version == 0 {
            MutableFormat::Sdmf
        } else {
            MutableFormat::Mdmf
        };
        let params = MutableParams::new(format, shape.needed, shape.total)?;
        let seqnum = map.highest_seqnum() + 1;
        let version = mutable_encode::encode(&key, params, seqnum, data, &mut rand::rng())?;
        let known: BTreeSet<(usize, u64)> = map
            .shares
            .iter()
            .map(|f| (f.server, u64::from(f.shnum.get())))
            .collect();
        let goal = overwrite_goal(&map, version.shares.len());
        self.push(cap, &map.servers, &version, goal, &known).await?;
        Ok(MutableVersion {
            data: data.to_vec(),
            seqnum,
            root_hash: version.root_hash,
        })
    }

    /// Writes `version`'s shares as `goal` says, one request per server, in parallel.
    /// `known` lists the (server, shnum) shares the caller read; any other share a
    /// server reports, unless it already holds this very version, means another
    /// writer is at work.
    async fn push(
        &self,
        cap: &MutableCap,
        servers: &[&Server],
        version: &EncodedVersion,
        goal: Vec<Placement>,
        known: &BTreeSet<(usize, u64)>,
    ) -> Result<(), GridError> {
        let si = cap.storage_index();
        let new_checkstring = version.checkstring();
        let mut by_server: BTreeMap<usize, Vec<Placement>> = BTreeMap::new();
        for p in goal {
            by_server.entry(p.server).or_default().push(p);
        }
        let requests = by_server.into_iter().map(|(index, placements)| {
            let server = servers[index];
            let request = ReadTestWriteRequest {
                test_write_vectors: placements
                    .iter()
                    .map(|p| {
                        (
                            p.shnum as u64,
                            TestWriteVectors {
                                // Tahoe's "must not exist" test is {0, 1, ""}.
                                test: vec![TestVector {
                                    offset: 0,
                                    size: p.expect.len().max(1) as u64,
                                    specimen: p.expect.clone(),
                                }],
                                write: vec![WriteVector {
                                    offset: 0,
                                    data: version.shares[p.shnum].clone(),
                                }],
                                new_length: None,
                            },
                        )
                    })
                    .collect(),
                read_vector: vec![ReadVector {
                    offset: 0,
                    size: new_checkstring.len() as u64,
                }],
            };
            let (renew, cancel) = self.lease_secrets(&si, server);
            let write_enabler = cap.write_enabler(&server.tubid);
            async move {
                let Some(write_enabler) = write_enabler else {
                    return (index, placements, Err(GridError::NotWritable { si }));
                };
                let answer = server
                    .client
                    .mutable()
                    .read_test_write(&si, &write_enabler, &renew, &cancel, &request)
                    .await
                    .map_err(|source| GridError::Server {
                        server: format!("{}:{}", server.nurl.host, server.nurl.port),
                        source,
                    });
                (index, placements, answer)
            }
        });
        let mut placed = BTreeSet::new();
        let mut placed_servers = BTreeSet::new();
        let mut first_error = None;
        let mut raced = false;
        let mut found: Option<(u64, [u8; 32])> = None;
        for (index, placements, answer) in join_all(requests).await {
            let answer = match answer {
                Ok(answer) => answer,
                Err(e) => {
                    first_error.get_or_insert(e);
                    continue;
                }
            };
            let mine: BTreeSet<u64> = placements.iter().map(|p| p.shnum as u64).collect();
            let surprised = answer.data.iter().any(|(shnum, reads)| {
                !mine.contains(shnum)
                    && !known.contains(&(index, *shnum))
                    && reads.first().map(|r| r.as_slice()) != Some(new_checkstring)
            });
            if answer.success {
                placed.extend(mine);
                placed_servers.insert(index);
            }
            if surprised || !answer.success {
                raced = true;
                // The newest version the server reported, for the caller's benefit.
                found = found.max(
                    answer
                        .data
                        .values()
                        .filter_map(|reads| parse_checkstring(reads.first()?))
                        .max(),
                );
            }
        }
        if raced {
            return Err(GridError::UncoordinatedWrite { si, found });
        }
        let needed = usize::from(version.params.needed());
        if placed.len() < needed {
            return Err(first_error.unwrap_or(GridError::NotHappy {
                placed: placed_servers.len(),
                happy: needed,
            }));
        }
        Ok(())
    }
}

/// Every share found (good or bad, if its number is still in range) is overwritten
/// where it is, guarded by its checkstring as read; share numbers found nowhere go to
/// the servers that answered, fewest shares first, then in permuted order, wrapping
/// (Tahoe's `Publish.update_goal`).
fn overwrite_goal(map: &ServerMap<'_>, total: usize) -> Vec<Placement> {
    let mut goal: Vec<Placement> = map
        .shares
        .iter()
        .filter(|f| usize::from(f.shnum.get()) < total)
        .map(|f| Placement {
            server: f.server,
            shnum: usize::from(f.shnum.get()),
            expect: match &f.state {
                ShareState::Good(share) => share.checkstring().to_vec(),
                ShareState::Bad { checkstring, .. } => checkstring.clone(),
            },
        })
        .collect();
    let homeless: Vec<usize> = (0..total)
        .filter(|n| !goal.iter().any(|p| p.shnum == *n))
        .collect();
    let mut candidates: Vec<(usize, usize)> = (0..map.servers.len())
        .filter(|&i| map.answered[i])
        .map(|i| (goal.iter().filter(|p| p.server == i).count(), i))
        .collect();
    candidates.sort_unstable();
    if candidates.is_empty() {
        return goal;
    }
    for (j, shnum) in homeless.into_iter().enumerate() {
        goal.push(Placement {
            server: candidates[j % candidates.len()].1,
            shnum,
            expect: Vec::new(),
        });
    }
    goal
}
