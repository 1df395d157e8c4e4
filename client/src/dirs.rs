//! Reading directories on a grid, and following paths through them.
//!
//! A directory is a file (mutable SDMF/MDMF, or immutable CHK/LIT) whose plaintext
//! lists its children ([`swamp_formats::dirnode`]). Paths are what Tahoe's CLI takes:
//! a cap, optionally followed by `/name/name...`; names are matched exactly (after
//! Unicode NFC, which Tahoe applies on write: we compare as stored).

use swamp_formats::cap::Cap;
use swamp_formats::dirnode::{self, Entry};

use crate::grid::{Grid, GridError};

/// One version of a directory, as read.
#[derive(Clone, Debug, PartialEq)]
pub struct DirVersion {
    /// Its children, in name order.
    pub entries: Vec<Entry>,
    /// For a mutable directory: the backing file's (seqnum, root hash).
    pub version: Option<(u64, [u8; 32])>,
    /// Bytes of its contents as stored (before encryption of the file holding
    /// them): what Tahoe counts as a directory's size.
    pub size: u64,
}

impl Grid {
    /// Reads a directory (any directory cap: read-write, read-only, immutable).
    ///
    /// # Errors
    /// [`GridError::NotADirectory`] for a file cap; [`GridError`] when the backing
    /// file cannot be read or its contents are malformed.
    pub async fn read_dir(&self, cap: &Cap) -> Result<DirVersion, GridError> {
        let Cap::Dir(inner) = cap else {
            return Err(GridError::NotADirectory {
                path: cap.to_string(),
            });
        };
        match inner.as_ref() {
            Cap::Mutable(file) => {
                let read = self.read_mutable(file).await?;
                Ok(DirVersion {
                    size: read.data.len() as u64,
                    entries: dirnode::parse(&read.data, file.writekey().as_ref())?,
                    version: Some((read.seqnum, read.root_hash)),
                })
            }
            Cap::Chk(file) => {
                let data = self.download(file).await?;
                Ok(DirVersion {
                    entries: dirnode::parse(&data, None)?,
                    version: None,
                    size: data.len() as u64,
                })
            }
            Cap::Lit(data) => Ok(DirVersion {
                size: data.len() as u64,
                entries: dirnode::parse(data, None)?,
                version: None,
            }),
            _ => Err(GridError::NotADirectory {
                path: cap.to_string(),
            }),
        }
    }

    /// Follows `names` from the directory `root`, returning the cap found at the end
    /// (its write cap when there is one).
    ///
    /// # Errors
    /// [`GridError::NoSuchChild`] or [`GridError::NotADirectory`] naming the path
    /// walked so far.
    pub async fn walk(&self, root: &Cap, names: &[&str]) -> Result<Cap, GridError> {
        let mut here = root.clone();
        let mut walked = String::new();
        for name in names {
            let listing = self.read_dir(&here).await.map_err(|e| match e {
                GridError::NotADirectory { .. } => GridError::NotADirectory {
                    path: walked.clone(),
                },
                other => other,
            })?;
            if !walked.is_empty() {
                walked.push('/');
            }
            walked.push_str(name);
            let entry = listing
                .entries
                .iter()
                .find(|e| e.name == *name)
                .ok_or_else(|| GridError::NoSuchChild {
                    path: walked.clone(),
                })?;
            here = entry.cap()?;
        }
        Ok(here)
    }
}

/// Splits a path argument into its root (a cap, or an alias with its colon, or "" for
/// the default alias) and its names, as Tahoe's CLI does: `URI:DIR2:a:b/x/y` gives
/// (`URI:DIR2:a:b`, [`x`, `y`]) (the old `URI:...:./x` form too); `work:x/y` gives
/// (`work:`, [`x`, `y`]); `x/y` and `dir/name:7` use the default alias. Empty names
/// (doubled or trailing slashes) are dropped.
pub fn split_path(arg: &str) -> (&str, Vec<&str>) {
    let arg = arg.trim_matches(' ');
    let (root, rest) = if arg.starts_with("URI:") {
        match arg.find(":./") {
            Some(sep) => (&arg[..sep], &arg[sep + 3..]),
            None => arg.split_once('/').unwrap_or((arg, "")),
        }
    } else {
        match arg.find(':') {
            Some(colon) if !arg[..colon].contains('/') => arg.split_at(colon + 1),
            _ => ("", arg),
        }
    };
    (root, rest.split('/').filter(|n| !n.is_empty()).collect())
}

#[cfg(test)]
mod tests {
    use super::split_path;

    #[test]
    fn split_path_separates_root_and_names() {
        assert_eq!(
            split_path("URI:DIR2:aa:bb/x//y/"),
            ("URI:DIR2:aa:bb", vec!["x", "y"])
        );
        assert_eq!(split_path("URI:DIR2:aa:bb"), ("URI:DIR2:aa:bb", vec![]));
        assert_eq!(
            split_path("tahoe:docs/a.txt"),
            ("tahoe:", vec!["docs", "a.txt"])
        );
        assert_eq!(split_path("plain"), ("", vec!["plain"]));
        assert_eq!(
            split_path("URI:DIR2:aa:bb:./x"),
            ("URI:DIR2:aa:bb", vec!["x"])
        );
        assert_eq!(split_path("dir/name:7"), ("", vec!["dir", "name:7"]));
    }
}
