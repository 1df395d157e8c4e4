//! Where an immutable file's shares go (servers of happiness, as Tahoe's uploader
//! means it): share i is first asked of the i-th server in the file's permuted order
//! (wrapping); shares a server refuses (full, down, erroring) are asked again of the
//! servers that answered, those holding the fewest shares first, until every share is
//! placed or nobody is left to ask. The upload may go ahead only if the shares sit on
//! at least `happy` distinct servers; otherwise the space reserved is given back.

use std::collections::BTreeSet;

use swamp_proto::secrets::UploadSecret;
use swamp_proto::{ShareNumber, StorageIndex};

use super::{Grid, GridError, Server};

/// One share's place.
pub(super) struct Placed {
    /// Index of the server in permuted order.
    pub server: usize,
    /// The share.
    pub shnum: usize,
    /// The secret of the allocation that reserved it (writes must carry it).
    pub secret: UploadSecret,
    /// The server had this share already: nothing to write.
    pub already: bool,
}

fn server_name(server: &Server) -> String {
    format!("{}:{}", server.nurl.host, server.nurl.port)
}

impl Grid {
    /// Places `total` shares of `size` bytes for `si` on `servers` (permuted order).
    ///
    /// # Errors
    /// [`GridError::NotHappy`] when the shares could not be spread over enough
    /// servers (naming the last server error in the log of the attempt).
    pub(super) async fn place(
        &self,
        si: &StorageIndex,
        servers: &[&Server],
        total: usize,
        size: u64,
    ) -> Result<Vec<Placed>, GridError> {
        let mut placed: Vec<Placed> = Vec::new();
        let mut refused: BTreeSet<usize> = BTreeSet::new();
        let mut last_error: Option<GridError> = None;
        let mut asks: Vec<Vec<usize>> = vec![Vec::new(); servers.len()];
        if servers.is_empty() {
            return Err(GridError::NotHappy {
                placed: 0,
                happy: self.happy,
            });
        }
        for shnum in 0..total {
            asks[shnum % servers.len()].push(shnum);
        }
        for _round in 0..=servers.len() {
            let round = futures::future::join_all(asks.iter().enumerate().map(|(index, mine)| {
                let server = servers[index];
                async move {
                    if mine.is_empty() {
                        return (index, mine.clone(), None);
                    }
                    let (renew, cancel) = self.lease_secrets(si, server);
                    let secret = new_upload_secret();
                    let answer = server
                        .client
                        .immutable()
                        .allocate(
                            si,
                            &secret,
                            &renew,
                            &cancel,
                            mine.iter().map(|&s| ShareNumber::new(s as u8)),
                            size,
                        )
                        .await
                        .map(|a| (secret, a))
                        .map_err(|source| GridError::Server {
                            server: server_name(server),
                            source,
                        });
                    (index, mine.clone(), Some(answer))
                }
            }))
            .await;
            let mut unplaced = Vec::new();
            for (index, mine, answer) in round {
                match answer {
                    None => {}
                    Some(Err(e)) => {
                        refused.insert(index);
                        last_error = Some(e);
                        unplaced.extend(mine);
                    }
                    Some(Ok((secret, allocation))) => {
                        for shnum in mine {
                            let n = ShareNumber::new(shnum as u8);
                            let already = allocation.already_have.0.contains(&n);
                            if already || allocation.allocated.0.contains(&n) {
                                placed.push(Placed {
                                    server: index,
                                    shnum,
                                    secret: secret.clone(),
                                    already,
                                });
                            } else {
                                // Full (or unwilling): ask the others.
                                refused.insert(index);
                                unplaced.push(shnum);
                            }
                        }
                    }
                }
            }
            asks = vec![Vec::new(); servers.len()];
            let mut load: Vec<(usize, usize)> = (0..servers.len())
                .filter(|i| !refused.contains(i))
                .map(|i| (placed.iter().filter(|p| p.server == i).count(), i))
                .collect();
            if unplaced.is_empty() || load.is_empty() {
                break;
            }
            for shnum in unplaced {
                load.sort_unstable();
                let (count, index) = &mut load[0];
                asks[*index].push(shnum);
                *count += 1;
            }
        }
        let holders: BTreeSet<usize> = placed.iter().map(|p| p.server).collect();
        if holders.len() < self.happy.min(self.servers.len()) {
            self.give_back(si, servers, &placed).await;
            return Err(match last_error {
                Some(e) if holders.is_empty() => e,
                _ => GridError::NotHappy {
                    placed: holders.len(),
                    happy: self.happy,
                },
            });
        }
        Ok(placed)
    }

    /// Aborts the allocations of `placed` (best effort: a server that does not
    /// answer drops them after its idle timeout anyway).
    pub(super) async fn give_back(
        &self,
        si: &StorageIndex,
        servers: &[&Server],
        placed: &[Placed],
    ) {
        futures::future::join_all(placed.iter().filter(|p| !p.already).map(|p| async move {
            servers[p.server]
                .client
                .immutable()
                .abort(si, ShareNumber::new(p.shnum as u8), &p.secret)
                .await
        }))
        .await;
    }
}

/// A fresh random upload secret (each allocation has its own, as Tahoe's).
pub(crate) fn new_upload_secret() -> UploadSecret {
    UploadSecret::new(rand::random::<[u8; 20]>().to_vec()).expect("invariant: non-empty")
}
