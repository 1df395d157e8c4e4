//! Where things live under a Tahoe storage directory, and the file-system moves that
//! make writes durable.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use swamp_proto::{ShareNumber, StorageIndex};

/// The paths of one storage directory (`<node>/storage`).
#[derive(Clone, Debug)]
pub struct Layout {
    /// `storage/shares`
    pub shares: PathBuf,
    /// `storage/shares/incoming`
    pub incoming: PathBuf,
    /// `storage/corruption-advisories`
    pub advisories: PathBuf,
}

impl Layout {
    /// The layout under `storage_dir`.
    pub fn new(storage_dir: &Path) -> Self {
        let shares = storage_dir.join("shares");
        Self {
            incoming: shares.join("incoming"),
            advisories: storage_dir.join("corruption-advisories"),
            shares,
        }
    }

    /// The storage directory itself (`<node>/storage`).
    pub fn storage_dir(&self) -> PathBuf {
        self.shares
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    /// `shares/<prefix>/<si>`
    pub fn bucket_dir(&self, si: &StorageIndex) -> PathBuf {
        self.shares.join(si.dir_prefix()).join(si.to_base32())
    }

    /// `shares/<prefix>/<si>/<shnum>`
    pub fn share_path(&self, si: &StorageIndex, shnum: ShareNumber) -> PathBuf {
        self.bucket_dir(si).join(shnum.to_string())
    }

    /// `shares/incoming/<prefix>/<si>/<shnum>`
    pub fn incoming_path(&self, si: &StorageIndex, shnum: ShareNumber) -> PathBuf {
        self.incoming
            .join(si.dir_prefix())
            .join(si.to_base32())
            .join(shnum.to_string())
    }
}

/// Flushes a directory's entries (a rename or create in it) to disk.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// Creates `dir` and any missing parents, syncing each parent whose entries changed, so
/// that a file later made durable in `dir` is reachable after a crash.
pub fn create_dir_durable(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dir_durable(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e),
    }
    if let Some(parent) = dir.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Removes `dir` and then its parent if they are empty, stopping at `stop`.
pub fn remove_empty_dirs(dir: &Path, stop: &Path) {
    let mut at = dir.to_path_buf();
    while at.starts_with(stop) && at != stop {
        if fs::remove_dir(&at).is_err() {
            break;
        }
        if let Some(parent) = at.parent() {
            let _ = sync_dir(parent);
            at = parent.to_path_buf();
        } else {
            break;
        }
    }
}

/// The share numbers in a bucket directory: its entries whose names are digits only,
/// as Tahoe lists them (temporary files and anything else are ignored).
pub fn list_share_numbers(bucket: &Path) -> io::Result<Vec<ShareNumber>> {
    let entries = match fs::read_dir(bucket) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        if let Some(n) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<ShareNumber>().ok())
        {
            out.push(n);
        }
    }
    out.sort();
    Ok(out)
}
