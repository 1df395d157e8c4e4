//! Checking, verifying and repairing files and directories, as Tahoe's checker and
//! repairer do (`immutable/checker.py`, `immutable/repairer.py`, `mutable/checker.py`,
//! `mutable/repairer.py`), reported in Tahoe's shapes so that its web API and CLI
//! output can be produced from them unchanged.
//!
//! - A *check* asks every server which shares it holds and believes the answer (a
//!   mutable file's shares are read, and each trusted once its signed prefix
//!   verifies, as Tahoe's servermap trusts them): it finds missing shares, not
//!   damaged blocks.
//! - A *verify* reads every share whole and checks every hash: for an immutable
//!   file the UEB against the cap, the share hash chain against the UEB's share
//!   root, the block hash tree and every block, and the ciphertext hash tree; for a
//!   mutable file the signature and the block and share hash trees. A share that
//!   fails is reported corrupt.
//! - A *repair* puts back what is missing: an immutable file is downloaded, encoded
//!   again with the same key and parameters (which gives the same shares, checked
//!   against the cap), and the missing share numbers are uploaded to servers that do
//!   not hold them; a mutable file's current version is published again, as Tahoe's
//!   repairer does (which rewrites every share as the next sequence number).
//!
//! # Layout
//! - `results.rs`: [`CheckResults`], [`CheckAndRepairResults`] and their JSON.
//! - `happiness.rs`: servers of happiness.
//! - `immutable.rs`: check and verify of CHK files; `repair.rs`: their repair.
//! - `mutable.rs`: check, verify and repair of SDMF and MDMF files.
//! - `deep.rs`: all of it over a directory tree.

use swamp_formats::cap::Cap;
use swamp_proto::base32;

use crate::grid::{Grid, GridError, Server};

mod deep;
mod happiness;
mod immutable;
mod mutable;
mod repair;
mod results;

pub use deep::{DeepCheckResults, DeepNode};
pub use repair::MAX_REPAIR_SIZE;
pub use results::{CheckAndRepairResults, CheckResults, CorruptShare, Counts, ShareCounts};

/// What a check does besides counting shares.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckOptions {
    /// Read every share whole and check every hash (Tahoe's `verify=true`).
    pub verify: bool,
    /// Renew (or add) this client's lease on every server holding shares (Tahoe's
    /// `add-lease=true`), with the lease secrets uploads use.
    pub add_lease: bool,
}

/// The id Tahoe reports a server by (its "longname": the key of its `servers.yaml`
/// entry). A storage server's id is `v0-` and the base32 of its Ed25519 node key,
/// which is also its permutation seed (what Tahoe and Swamp servers announce); a
/// server whose seed is something else is named by its tubid. [`Server`] does not
/// keep the key itself, so an entry whose key does not follow that rule is named
/// differently from Tahoe.
pub(crate) fn server_id(server: &Server) -> String {
    if server.permutation_seed.len() == 32 {
        format!("v0-{}", base32::encode(&server.permutation_seed))
    } else {
        base32::encode(&server.tubid)
    }
}

impl Grid {
    /// Checks (or, with `options.verify`, verifies) a file or directory. A LIT cap
    /// needs no servers and is always healthy.
    ///
    /// # Errors
    /// [`GridError::Format`] for a cap that cannot be checked (a verify cap of an
    /// immutable file, an unknown cap). Servers that fail are counted, not errors.
    pub async fn check(&self, cap: &Cap, options: CheckOptions) -> Result<CheckResults, GridError> {
        match cap {
            Cap::Lit(_) => Ok(CheckResults::literal()),
            Cap::Chk(chk) => Ok(self.check_immutable(chk, options).await.results),
            Cap::Mutable(m) => Ok(self.check_mutable(m, options).await.results),
            Cap::Dir(inner) => Box::pin(self.check(inner, options)).await,
            other => Err(uncheckable(other)),
        }
    }

    /// Checks a file or directory and repairs it if it is not healthy (for a mutable
    /// file, also if it has several versions or corrupt shares). A read-only mutable
    /// cap cannot repair: the results say no repair was attempted, as Tahoe's do.
    ///
    /// # Errors
    /// As [`Grid::check`]. A failed repair is a result (`repair-successful` false).
    pub async fn check_and_repair(
        &self,
        cap: &Cap,
        options: CheckOptions,
    ) -> Result<CheckAndRepairResults, GridError> {
        match cap {
            Cap::Lit(_) => Ok(CheckAndRepairResults::literal()),
            Cap::Chk(chk) => Ok(self.repair_immutable(chk, options).await),
            Cap::Mutable(m) => Ok(self.repair_mutable(m, options).await),
            Cap::Dir(inner) => Box::pin(self.check_and_repair(inner, options)).await,
            other => Err(uncheckable(other)),
        }
    }
}

fn uncheckable(cap: &Cap) -> GridError {
    GridError::Format(swamp_proto::DecodeError::Invalid(format!(
        "cannot check this kind of cap: {}",
        cap.to_string()
            .split(':')
            .take(2)
            .collect::<Vec<_>>()
            .join(":")
    )))
}

/// A cap's storage index in base32 ("" when it has none).
fn si_string_of(cap: &Cap) -> String {
    cap.storage_index()
        .map(|si| results::si_string(&si))
        .unwrap_or_default()
}
