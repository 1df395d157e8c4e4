//! Changing directories: make one, link a child, unlink a child, make a path.
//!
//! A directory change is a read-modify-write of its backing mutable file: read the
//! newest version, change the children, write the next version on the condition that
//! nobody wrote in between (the test vectors of read-test-write). When somebody did
//! ([`GridError::UncoordinatedWrite`]), the change is applied again to what they
//! wrote, after a short random pause, as Tahoe's directory code retries. Changes are
//! functions of the children, so a retry never loses the other writer's change.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use swamp_formats::cap::{Cap, MutableCap, MutableFormat};
use swamp_formats::dirnode::{self, Entry, link_metadata, normalize_name};

use crate::grid::{Grid, GridError};

/// Attempts at a directory change before giving up on a busy directory.
const ATTEMPTS: u32 = 6;

/// What to do when the name is already linked.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Replace {
    /// Replace whatever is there.
    Always,
    /// Replace files, refuse to replace a directory (Tahoe's `replace=only-files`).
    OnlyFiles,
    /// Refuse.
    Never,
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The writable mutable file behind a directory cap.
fn backing_file(dir: &Cap) -> Result<(MutableCap, [u8; 16]), GridError> {
    match dir {
        Cap::Dir(inner) => match inner.as_ref() {
            Cap::Mutable(file) => match file.writekey() {
                Some(wk) => Ok((*file, wk)),
                None => Err(GridError::NotWritable {
                    si: file.storage_index(),
                }),
            },
            _ => Err(GridError::ReadOnlyDirectory {
                path: dir.to_string(),
            }),
        },
        _ => Err(GridError::NotADirectory {
            path: dir.to_string(),
        }),
    }
}

/// The entry linking `child` under `name`, with metadata derived from `old`'s.
pub fn child_entry(name: &str, child: &Cap, old: Option<&Entry>) -> Entry {
    Entry {
        name: normalize_name(name),
        ro_uri: Some(child.read_only().to_string()),
        rw_uri: child.is_writable().then(|| child.to_string()),
        metadata: link_metadata(old.map(|e| &e.metadata), now()),
    }
}

/// Whether an entry links a directory.
fn is_dir_entry(entry: &Entry) -> bool {
    entry.cap().is_ok_and(|c| c.is_dir())
}

impl Grid {
    /// Creates a new, empty mutable directory and returns its write cap.
    ///
    /// # Errors
    /// [`GridError`] when the backing file cannot be created.
    pub async fn create_dir(&self, format: MutableFormat) -> Result<Cap, GridError> {
        let file = self.create_mutable(&[], format).await?;
        Ok(Cap::Dir(Box::new(Cap::Mutable(file))))
    }

    /// [`Grid::create_dir`] with a given signing key (Tahoe's `private-key=`).
    ///
    /// # Errors
    /// As [`Grid::create_mutable_with_key`].
    pub async fn create_dir_with_key(
        &self,
        format: MutableFormat,
        key: swamp_formats::mutable_key::MutableKey,
    ) -> Result<Cap, GridError> {
        let file = self.create_mutable_with_key(&[], format, key).await?;
        Ok(Cap::Dir(Box::new(Cap::Mutable(file))))
    }

    /// Applies `change` to `dir`'s children and writes the result, retrying on
    /// uncoordinated writes. `change` returns `Ok(false)` when there is nothing to
    /// write. Returns what `change` last returned.
    ///
    /// # Errors
    /// [`GridError::NotWritable`] or [`GridError::ReadOnlyDirectory`] without a write
    /// cap; what `change` returns; [`GridError`] from reading or writing.
    pub async fn modify_dir<F>(&self, dir: &Cap, mut change: F) -> Result<bool, GridError>
    where
        F: FnMut(&mut Vec<Entry>) -> Result<bool, GridError>,
    {
        let (file, writekey) = backing_file(dir)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let read = self.read_mutable(&file).await?;
            let mut entries = dirnode::parse(&read.data, Some(&writekey))?;
            if !change(&mut entries)? {
                return Ok(false);
            }
            let packed = dirnode::pack(&entries, &writekey);
            match self
                .overwrite_mutable(&file, &packed, Some((read.seqnum, read.root_hash)))
                .await
            {
                Ok(_) => return Ok(true),
                Err(GridError::UncoordinatedWrite { .. }) if attempt < ATTEMPTS => {
                    let pause = rand::random_range(20..200u64) * u64::from(attempt);
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Links `child` under `name` in `dir`.
    ///
    /// # Errors
    /// [`GridError::ChildExists`] when `replace` forbids replacing what is there;
    /// [`GridError`] from [`Grid::modify_dir`].
    pub async fn link(
        &self,
        dir: &Cap,
        name: &str,
        child: &Cap,
        replace: Replace,
    ) -> Result<(), GridError> {
        let name = normalize_name(name);
        let mut first_time = true;
        self.modify_dir(dir, |entries| {
            let retry = !std::mem::replace(&mut first_time, false);
            let at = entries.iter().position(|e| e.name == name);
            let old = at.map(|i| entries[i].clone());
            if let Some(old) = &old {
                // On a retry after an uncoordinated write, the entry may be our own
                // earlier attempt, which landed after all: nothing left to do.
                if retry && old.cap().is_ok_and(|c| c == *child) {
                    return Ok(false);
                }
                let refuse = match replace {
                    Replace::Always => false,
                    Replace::OnlyFiles => is_dir_entry(old),
                    Replace::Never => true,
                };
                if refuse {
                    return Err(GridError::ChildExists {
                        path: name.clone(),
                        is_dir: is_dir_entry(old),
                    });
                }
            }
            let entry = child_entry(&name, child, old.as_ref());
            match at {
                Some(i) => entries[i] = entry,
                None => entries.push(entry),
            }
            Ok(true)
        })
        .await
        .map(|_| ())
    }

    /// Removes `name` from `dir` and returns the removed entry.
    ///
    /// # Errors
    /// [`GridError::NoSuchChild`] when there is no such name; [`GridError`] from
    /// [`Grid::modify_dir`].
    pub async fn unlink(&self, dir: &Cap, name: &str) -> Result<Entry, GridError> {
        let name = normalize_name(name);
        let mut removed = None;
        self.modify_dir(dir, |entries| {
            let at = entries
                .iter()
                .position(|e| e.name == name)
                .ok_or_else(|| GridError::NoSuchChild { path: name.clone() })?;
            removed = Some(entries.remove(at));
            Ok(true)
        })
        .await?;
        removed.ok_or(GridError::NoSuchChild { path: name })
    }

    /// Follows `names` from `root`, creating each missing directory (of `format`)
    /// on the way, and returns the cap of the last one (`mkdir -p`).
    ///
    /// # Errors
    /// [`GridError::NotADirectory`] when a name on the way is a file; [`GridError`].
    pub async fn make_dirs(
        &self,
        root: &Cap,
        names: &[&str],
        format: MutableFormat,
    ) -> Result<Cap, GridError> {
        let mut here = root.clone();
        for (depth, name) in names.iter().enumerate() {
            let walked = names[..=depth].join("/");
            let listing = self.read_dir(&here).await?;
            let wanted = normalize_name(name);
            let existing = listing.entries.iter().find(|e| e.name == wanted);
            here = match existing {
                Some(entry) => {
                    let cap = entry.cap()?;
                    if !cap.is_dir() {
                        return Err(GridError::NotADirectory { path: walked });
                    }
                    cap
                }
                None => {
                    let new = self.create_dir(format).await?;
                    match self.link(&here, name, &new, Replace::Never).await {
                        Ok(()) => new,
                        // Somebody made it meanwhile: use theirs.
                        Err(GridError::ChildExists { is_dir: true, .. }) => {
                            self.walk(&here, &[name]).await?
                        }
                        Err(e) => return Err(e),
                    }
                }
            };
        }
        Ok(here)
    }
}
