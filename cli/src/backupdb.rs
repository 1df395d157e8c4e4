//! What `tahoe backup` remembers between runs: which local file (by absolute path,
//! size, mtime and ctime) was uploaded as which cap, and which set of directory
//! contents became which immutable directory, each with when it was uploaded and
//! last checked. Tahoe keeps the same facts in SQLite (`private/backupdb.sqlite`,
//! `scripts/backupdb.py`); Swamp keeps them without a database engine, in its own
//! file `private/backupdb.jsonl`, and never reads or writes Tahoe's.
//!
//! The file is JSON lines, one record a line, appended as the backup goes (a
//! backup stopped half way keeps what it uploaded); on loading, a later record of
//! the same file or directory wins, and a line that does not parse (a torn last
//! line) is skipped. When the file holds more than twice the live records, it is
//! written again with only those (a temporary file, synced, then renamed over the
//! old one), so it never grows without bound.
//!
//! Limits: a file over [`MAX_BYTES`] is not loaded (everything is uploaded again,
//! and the file is written anew); at most [`MAX_RECORDS`] records are kept, the
//! least recently checked going first.
//!
//! Tahoe's rules are kept: a file is unchanged when size, mtime and ctime (whole
//! seconds) are those recorded; a cap used within a month is trusted, one not
//! checked for two months is always checked first, and in between it is checked
//! with a probability growing with its age.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Largest record file loaded.
pub const MAX_BYTES: u64 = 256 << 20;
/// Records kept at most (files and directories together).
pub const MAX_RECORDS: usize = 1_000_000;

const DAY: f64 = 24.0 * 60.0 * 60.0;
const MONTH: f64 = 30.0 * DAY;
/// A cap used or checked more recently than this is trusted without a check.
const NO_CHECK_BEFORE: f64 = MONTH;
/// A cap not checked for this long is always checked before it is used.
const ALWAYS_CHECK_AFTER: f64 = 2.0 * MONTH;

/// One line of the file.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum Record {
    /// A local file uploaded (or found unchanged and checked).
    File {
        path: String,
        size: u64,
        mtime: i64,
        ctime: i64,
        #[serde(flatten)]
        cap: Use,
    },
    /// Immutable directory contents made.
    Dir {
        dirhash: String,
        #[serde(flatten)]
        cap: Use,
    },
    /// A local file that changed: what was recorded for it no longer holds.
    Forget { path: String },
}

/// A cap and when it was uploaded and last checked (seconds since the epoch).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Use {
    cap: String,
    uploaded: f64,
    checked: f64,
}

/// A local file as `stat` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    /// Bytes.
    pub size: u64,
    /// Whole seconds.
    pub mtime: i64,
    /// Whole seconds.
    pub ctime: i64,
}

/// What to do with a file or directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing usable recorded: upload (or make) it.
    Upload,
    /// Use this cap as it is.
    Reuse(String),
    /// Check this cap first; use it if healthy, else upload.
    Check(String),
}

/// The records, loaded, and the file they are appended to.
pub struct BackupDb {
    path: PathBuf,
    files: HashMap<String, (Stat, Use)>,
    dirs: HashMap<String, Use>,
    appender: File,
    /// Lines in the file (live or not).
    lines: usize,
}

fn verdict(used: &Use, now: f64) -> Verdict {
    let age = now - used.checked;
    let p = ((age - NO_CHECK_BEFORE) / (ALWAYS_CHECK_AFTER - NO_CHECK_BEFORE)).clamp(0.0, 1.0);
    if rand::random::<f64>() < p {
        Verdict::Check(used.cap.clone())
    } else {
        Verdict::Reuse(used.cap.clone())
    }
}

impl BackupDb {
    /// Opens (or makes) `private/backupdb.jsonl` under the node directory.
    ///
    /// # Errors
    /// When the file cannot be read or opened for appending.
    pub fn open(node_dir: &Path) -> std::io::Result<Self> {
        let path = node_dir.join("private").join("backupdb.jsonl");
        let mut db = Self {
            files: HashMap::new(),
            dirs: HashMap::new(),
            lines: 0,
            appender: OpenOptions::new().create(true).append(true).open(&path)?,
            path,
        };
        let too_big = db.appender.metadata()?.len() > MAX_BYTES;
        if too_big {
            eprintln!(
                "WARNING: {} is over {MAX_BYTES} bytes; not used, and written anew",
                db.path.display()
            );
            db.lines = usize::MAX / 2;
        } else {
            for line in BufReader::new(File::open(&db.path)?).lines() {
                db.lines += 1;
                match serde_json::from_str::<Record>(&line?) {
                    Ok(record) => db.apply(record),
                    Err(_) => continue,
                }
            }
        }
        Ok(db)
    }

    fn apply(&mut self, record: Record) {
        match record {
            Record::File {
                path,
                size,
                mtime,
                ctime,
                cap,
            } => {
                self.files.insert(path, (Stat { size, mtime, ctime }, cap));
            }
            Record::Dir { dirhash, cap } => {
                self.dirs.insert(dirhash, cap);
            }
            Record::Forget { path } => {
                self.files.remove(&path);
            }
        }
    }

    fn append(&mut self, record: Record) -> std::io::Result<()> {
        let mut line = serde_json::to_string(&record).expect("invariant: plain data serialises");
        line.push('\n');
        self.appender.write_all(line.as_bytes())?;
        self.lines += 1;
        self.apply(record);
        Ok(())
    }

    /// What to do with the local file `path` (absolute, UTF-8) of `stat`;
    /// `use_timestamps` false trusts no record.
    ///
    /// # Errors
    /// When a changed file's record cannot be dropped.
    pub fn check_file(
        &mut self,
        path: &str,
        stat: Stat,
        use_timestamps: bool,
        now: f64,
    ) -> std::io::Result<Verdict> {
        let Some((recorded, used)) = self.files.get(path).cloned() else {
            return Ok(Verdict::Upload);
        };
        if recorded != stat || !use_timestamps {
            self.append(Record::Forget { path: path.into() })?;
            return Ok(Verdict::Upload);
        }
        Ok(verdict(&used, now))
    }

    /// Records that `path` of `stat` was uploaded as `cap` (or checked healthy).
    ///
    /// # Errors
    /// When the record cannot be appended.
    pub fn did_upload_file(
        &mut self,
        path: &str,
        stat: Stat,
        cap: &str,
        now: f64,
    ) -> std::io::Result<()> {
        let uploaded = match self.files.get(path) {
            Some((_, used)) if used.cap == cap => used.uploaded,
            _ => now,
        };
        self.append(Record::File {
            path: path.into(),
            size: stat.size,
            mtime: stat.mtime,
            ctime: stat.ctime,
            cap: Use {
                cap: cap.into(),
                uploaded,
                checked: now,
            },
        })
    }

    /// What to do with directory contents of this hash.
    pub fn check_directory(&self, dirhash: &str, now: f64) -> Verdict {
        self.dirs
            .get(dirhash)
            .map_or(Verdict::Upload, |used| verdict(used, now))
    }

    /// Records that contents of `dirhash` are the directory `cap` (made, or
    /// checked healthy).
    ///
    /// # Errors
    /// When the record cannot be appended.
    pub fn did_create_directory(
        &mut self,
        dirhash: &str,
        cap: &str,
        now: f64,
    ) -> std::io::Result<()> {
        let uploaded = match self.dirs.get(dirhash) {
            Some(used) if used.cap == cap => used.uploaded,
            _ => now,
        };
        self.append(Record::Dir {
            dirhash: dirhash.into(),
            cap: Use {
                cap: cap.into(),
                uploaded,
                checked: now,
            },
        })
    }

    /// Syncs the file, and writes it again with only the live records when it
    /// holds more than twice as many lines, or too many records.
    ///
    /// # Errors
    /// When the file cannot be synced or written.
    pub fn finish(mut self) -> std::io::Result<()> {
        self.appender.sync_all()?;
        let live = self.files.len() + self.dirs.len();
        if self.lines <= 2 * live + 1000 && live <= MAX_RECORDS {
            return Ok(());
        }
        let mut records: Vec<Record> = self
            .files
            .drain()
            .map(|(path, (stat, cap))| Record::File {
                path,
                size: stat.size,
                mtime: stat.mtime,
                ctime: stat.ctime,
                cap,
            })
            .chain(
                self.dirs
                    .drain()
                    .map(|(dirhash, cap)| Record::Dir { dirhash, cap }),
            )
            .collect();
        let checked = |r: &Record| match r {
            Record::File { cap, .. } | Record::Dir { cap, .. } => cap.checked,
            Record::Forget { .. } => 0.0,
        };
        // The most recently checked first; beyond the limit, the rest go.
        records.sort_by(|a, b| checked(b).total_cmp(&checked(a)));
        records.truncate(MAX_RECORDS);
        let tmp = self.path.with_extension("jsonl.tmp");
        let mut out = std::io::BufWriter::new(File::create(&tmp)?);
        for record in &records {
            serde_json::to_writer(&mut out, record)?;
            out.write_all(b"\n")?;
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: Stat = Stat {
        size: 4,
        mtime: 100,
        ctime: 200,
    };

    #[test]
    fn records_survive_reopening_and_changes_forget() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("private")).expect("private");
        let now = 1_000_000.0;
        let mut db = BackupDb::open(dir.path()).expect("open");
        assert_eq!(
            db.check_file("/a", STAT, true, now).ok(),
            Some(Verdict::Upload)
        );
        db.did_upload_file("/a", STAT, "URI:LIT:aaaa", now)
            .expect("record");
        db.did_create_directory("h", "URI:DIR2-LIT:", now)
            .expect("record");
        db.finish().expect("finish");

        let mut db = BackupDb::open(dir.path()).expect("reopen");
        let reuse = Verdict::Reuse("URI:LIT:aaaa".into());
        assert_eq!(db.check_file("/a", STAT, true, now + 1.0).ok(), Some(reuse));
        // Not checked for over two months: always checked first.
        let check = Verdict::Check("URI:LIT:aaaa".into());
        assert_eq!(
            db.check_file("/a", STAT, true, now + 3.0 * MONTH).ok(),
            Some(check)
        );
        assert_eq!(
            db.check_directory("h", now),
            Verdict::Reuse("URI:DIR2-LIT:".into())
        );
        assert_eq!(
            db.check_file("/a", STAT, false, now).ok(),
            Some(Verdict::Upload)
        );
        // --ignore-timestamps forgot it: the next run uploads too.
        assert_eq!(
            db.check_file("/a", STAT, true, now).ok(),
            Some(Verdict::Upload)
        );
        db.finish().expect("finish");

        // A torn last line is skipped.
        let path = dir.path().join("private/backupdb.jsonl");
        let mut text = std::fs::read_to_string(&path).expect("read");
        text.push_str("{\"kind\":\"file\",\"pa");
        std::fs::write(&path, text).expect("write");
        let db = BackupDb::open(dir.path()).expect("reopen");
        assert_eq!(
            db.check_directory("h", now),
            Verdict::Reuse("URI:DIR2-LIT:".into())
        );
    }

    #[test]
    fn a_file_mostly_of_old_lines_is_written_again_smaller() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("private")).expect("private");
        let mut db = BackupDb::open(dir.path()).expect("open");
        for i in 0..3000 {
            db.did_upload_file("/same", STAT, &format!("URI:LIT:{i}"), 1.0)
                .expect("record");
        }
        db.finish().expect("finish");
        let text = std::fs::read_to_string(dir.path().join("private/backupdb.jsonl")).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("URI:LIT:2999"));
    }
}
