//! `tahoe backup FROM ALIAS:TO`: a versioned backup of a local directory, laid out
//! as Tahoe's (`scripts/tahoe_backup.py`): every run makes an immutable directory
//! snapshot of FROM, links it as `TO/Archives/<UTC time>` (`2026-12-07_02:30:00Z`)
//! and as `TO/Latest`.
//!
//! The tree is walked children first; each file is uploaded unless the backup
//! record ([`crate::backupdb`]) says it is unchanged since it was uploaded, and each
//! directory is made (immutable, with its children's caps) unless the same contents
//! were made before; then that cap is used again. Each child's link carries the
//! local file's `stat` as Tahoe's backup records it (`ctime`, `mtime` as float
//! seconds, `st_mode`, `st_ino`, `st_dev`, `st_uid`, `st_gid`), and nothing else.
//!
//! Output is Tahoe's: a progress line per file or directory on stdout, warnings for
//! what is skipped (symlinks, special files, unreadable files and directories) on
//! stderr, then the summary; the exit code is 2 when anything was skipped.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};
use swamp_client::check::CheckOptions;
use swamp_client::dir_edit::Replace;
use swamp_client::grid::Grid;
use swamp_formats::cap::{Cap, MutableFormat};
use swamp_formats::dirnode::{Entry, pack_immutable};
use swamp_formats::hashutil::{netstring, tagged_hash};
use swamp_proto::base32;

use crate::aliases::Aliases;
use crate::backupdb::{BackupDb, Stat, Verdict};
use crate::exclude::{VCS_PATTERNS, excluded};
use crate::fail::Failure;
use crate::paths;
use crate::quote::{quote, quote_local};

/// Tahoe's tag for the hash of a directory's contents in its backup record.
const DIRHASH_TAG: &[u8] = b"allmydata_backupdb_dirhash_v1";

/// `backup` flags and arguments.
#[derive(clap::Args)]
pub struct BackupArgs {
    /// Be noisy about what is happening.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Do not use backupdb timestamps to decide whether a local file is unchanged.
    #[arg(long = "ignore-timestamps")]
    pub ignore_timestamps: bool,
    /// Do not use (or add to) the backup record: upload everything (older Tahoe's
    /// option).
    #[arg(long = "no-backupdb")]
    pub no_backupdb: bool,
    /// Ignore files matching a glob pattern. You may give multiple '--exclude'
    /// options.
    #[arg(long, value_name = "PATTERN")]
    pub exclude: Vec<String>,
    /// Ignore file matching glob patterns listed in file, one per line.
    #[arg(long = "exclude-from-utf-8", value_name = "FILE")]
    pub exclude_from: Vec<PathBuf>,
    /// Exclude files and directories used by following version control systems:
    /// CVS, RCS, SCCS, Git, SVN, Arch, Bazaar(bzr), Mercurial, Darcs.
    #[arg(long = "exclude-vcs")]
    pub exclude_vcs: bool,
    /// The local directory.
    pub from: PathBuf,
    /// Where on the grid (`ALIAS:TO`).
    pub to: String,
}

/// What the walk found, children before their directory.
enum Target {
    File(PathBuf),
    Dir(PathBuf),
    /// Skipped, with Tahoe's warning.
    Skip {
        dir: bool,
        warning: String,
    },
}

/// A skipped file or directory, with Tahoe's warning.
fn skip(dir: bool, path: &Path, why: &str) -> Target {
    Target::Skip {
        dir,
        warning: warning(dir, path, why),
    }
}

/// Tahoe's "WARNING: ..." for a skipped file or directory: `why` is `denied`,
/// `encoding`, or the kind of file (`symlink`, `special`).
fn warning(dir: bool, path: &Path, why: &str) -> String {
    let kind = if dir { "directory" } else { "file" };
    let path = quote_local(path);
    match why {
        "denied" => format!("WARNING: permission denied on {kind} {path}"),
        "encoding" => {
            format!("WARNING: could not list {kind} {path} due to a filename encoding error")
        }
        filetype => format!("WARNING: cannot backup {filetype} {path}"),
    }
}

/// Files and directories one backup takes at most (each costs its path in memory
/// until its directory is made): a larger tree is refused before anything is
/// uploaded.
pub const MAX_TARGETS: usize = 5_000_000;

/// Walks `root` children first, leaving out excluded names, as Tahoe's
/// `collect_backup_targets` (names in sorted order).
fn collect(root: &Path, exclude: &[String], out: &mut Vec<Target>) -> Result<(), Failure> {
    if out.len() >= MAX_TARGETS {
        return Err(Failure::new(format!(
            "{}: more than {MAX_TARGETS} files and directories to back up",
            quote_local(root)
        )));
    }
    let listing = match std::fs::read_dir(root) {
        Ok(listing) => listing,
        Err(_) => {
            out.push(skip(true, root, "denied"));
            return Ok(());
        }
    };
    let mut names = Vec::new();
    for entry in listing {
        let name = match entry.map(|e| e.file_name().into_string()) {
            Ok(Ok(name)) => name,
            // Tahoe cannot list a directory with a name that does not decode.
            Ok(Err(_)) => {
                out.push(skip(true, root, "encoding"));
                return Ok(());
            }
            Err(_) => {
                out.push(skip(true, root, "denied"));
                return Ok(());
            }
        };
        names.push(name);
    }
    names.sort();
    for name in names.iter().filter(|n| !excluded(exclude, n)) {
        let path = root.join(name);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => out.push(skip(false, &path, "symlink")),
            Ok(m) if m.is_dir() => collect(&path, exclude, out)?,
            Ok(m) if m.is_file() => out.push(Target::File(path)),
            Ok(_) => out.push(skip(false, &path, "special")),
            Err(_) => out.push(skip(false, &path, "denied")),
        }
    }
    out.push(Target::Dir(root.to_path_buf()));
    Ok(())
}

/// Python's `os.stat` time as a float: whole seconds plus nanoseconds.
fn float_time(secs: i64, nanos: i64) -> f64 {
    secs as f64 + nanos as f64 * 1e-9
}

/// The metadata Tahoe's backup puts on a child's link (`get_local_metadata`).
fn local_metadata(m: &std::fs::Metadata) -> Value {
    json!({
        "ctime": float_time(m.ctime(), m.ctime_nsec()),
        "mtime": float_time(m.mtime(), m.mtime_nsec()),
        "st_mode": m.mode(),
        "st_ino": m.ino(),
        "st_dev": m.dev(),
        "st_uid": m.uid(),
        "st_gid": m.gid(),
    })
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `iso_utc(t, sep="_") + "Z"`: the name of an archive.
fn archive_name(secs: i64) -> String {
    let (y, mo, d) = crate::ls::civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}_{:02}:{:02}:{:02}Z",
        s / 3600,
        s % 3600 / 60,
        s % 60
    )
}

/// Python's `str(timedelta)` without the microseconds: `H:MM:SS`, or
/// `N day(s), H:MM:SS`.
fn timedelta(secs: u64) -> String {
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let clock = format!("{}:{:02}:{:02}", rest / 3600, rest % 3600 / 60, rest % 60);
    match days {
        0 => clock,
        1 => format!("1 day, {clock}"),
        n => format!("{n} days, {clock}"),
    }
}

/// Counts for the summary.
#[derive(Default)]
struct Counts {
    files_created: usize,
    files_reused: usize,
    files_skipped: usize,
    dirs_created: usize,
    dirs_reused: usize,
    dirs_skipped: usize,
    files_checked: usize,
    dirs_checked: usize,
}

impl Counts {
    fn done(&self) -> usize {
        self.files_created
            + self.files_reused
            + self.files_skipped
            + self.dirs_created
            + self.dirs_reused
            + self.dirs_skipped
    }
}

/// A child made or reused: its cap and link metadata.
struct Child {
    cap: Cap,
    metadata: Value,
}

struct Backup<'a> {
    grid: &'a Grid,
    db: Option<BackupDb>,
    verbose: bool,
    use_timestamps: bool,
    counts: Counts,
}

fn db_failure(e: &std::io::Error) -> Failure {
    Failure::new(format!("cannot write the backup record: {e}"))
}

impl Backup<'_> {
    fn say(&self, message: &str) {
        if self.verbose {
            println!("{message}");
        }
    }

    /// Whether `cap` (from the record) is healthy enough to use again.
    async fn healthy(&mut self, cap: &Cap, file: bool) -> bool {
        self.say(&format!("checking {}", quote(&cap.to_string(), true)));
        if file {
            self.counts.files_checked += 1;
        } else {
            self.counts.dirs_checked += 1;
        }
        self.grid
            .check(cap, CheckOptions::default())
            .await
            .is_ok_and(|r| r.is_healthy())
    }

    /// Uploads a file, or finds it in the record; `None` when it cannot be read.
    async fn file(&mut self, path: &Path) -> Result<Option<(bool, Child)>, Failure> {
        let Ok(meta) = std::fs::metadata(path) else {
            return Ok(None);
        };
        let metadata = local_metadata(&meta);
        let stat = Stat {
            size: meta.len(),
            mtime: meta.mtime(),
            ctime: meta.ctime(),
        };
        let key = path.to_string_lossy().into_owned();
        let now = now();
        let verdict = match self.db.as_mut() {
            Some(db) => db
                .check_file(&key, stat, self.use_timestamps, now)
                .map_err(|e| db_failure(&e))?,
            None => Verdict::Upload,
        };
        let known = match verdict {
            Verdict::Upload => None,
            Verdict::Reuse(text) => text.parse::<Cap>().ok(),
            Verdict::Check(text) => match text.parse::<Cap>() {
                Ok(cap) if self.healthy(&cap, true).await => Some(cap),
                _ => None,
            },
        };
        if let Some(cap) = known {
            if let Some(db) = self.db.as_mut() {
                db.did_upload_file(&key, stat, &cap.to_string(), now)
                    .map_err(|e| db_failure(&e))?;
            }
            self.say(&format!("skipping {}..", quote_local(path)));
            return Ok(Some((false, Child { cap, metadata })));
        }
        self.say(&format!("uploading {}..", quote_local(path)));
        if std::fs::File::open(path).is_err() {
            return Ok(None);
        }
        let cap = crate::transfer::put_file(self.grid, path).await?;
        self.say(&format!(
            " {} -> {}",
            crate::quote::quote_with(&path.to_string_lossy(), false, true),
            quote(&cap.to_string(), false)
        ));
        if let Some(db) = self.db.as_mut() {
            db.did_upload_file(&key, stat, &cap.to_string(), now)
                .map_err(|e| db_failure(&e))?;
        }
        Ok(Some((true, Child { cap, metadata })))
    }

    /// Makes (or finds in the record) the immutable directory of `children`.
    async fn directory(
        &mut self,
        path: &Path,
        children: Vec<(String, Child)>,
    ) -> Result<(bool, Cap), Failure> {
        let mut sorted: Vec<(&str, String)> = children
            .iter()
            .map(|(name, c)| (name.as_str(), c.cap.to_string()))
            .collect();
        sorted.sort();
        let hashed: Vec<u8> = sorted
            .iter()
            .flat_map(|(name, cap)| [netstring(name.as_bytes()), netstring(cap.as_bytes())])
            .flatten()
            .collect();
        let dirhash = base32::encode(&tagged_hash(DIRHASH_TAG, &hashed));
        let now = now();
        let verdict = self
            .db
            .as_ref()
            .map_or(Verdict::Upload, |db| db.check_directory(&dirhash, now));
        let known = match verdict {
            Verdict::Upload => None,
            Verdict::Reuse(text) => text.parse::<Cap>().ok(),
            Verdict::Check(text) => match text.parse::<Cap>() {
                Ok(cap) if self.healthy(&cap, false).await => Some(cap),
                _ => None,
            },
        };
        let (created, cap) = match known {
            Some(cap) => {
                self.say(&format!(
                    " re-using old directory for {}",
                    quote_local(path)
                ));
                (false, cap)
            }
            None => {
                self.say(&format!(" creating directory for {}", quote_local(path)));
                let entries: Vec<Entry> = children
                    .into_iter()
                    .map(|(name, child)| Entry {
                        name,
                        ro_uri: Some(child.cap.to_string()),
                        rw_uri: None,
                        metadata: child.metadata,
                    })
                    .collect();
                let file = self
                    .grid
                    .upload(&pack_immutable(&entries))
                    .await
                    .map_err(|e| {
                        Failure::new(format!("Error during mkdir: {}", crate::chain(&e)))
                    })?;
                (true, Cap::Dir(Box::new(file)))
            }
        };
        if let Some(db) = self.db.as_mut() {
            db.did_create_directory(&dirhash, &cap.to_string(), now)
                .map_err(|e| db_failure(&e))?;
        }
        Ok((created, cap))
    }
}

/// `tahoe backup`.
pub async fn run(
    grid: &Grid,
    aliases: &Aliases,
    node_dir: &Path,
    args: &BackupArgs,
) -> Result<(), Failure> {
    let started = Instant::now();
    let mut exclude: Vec<String> = args.exclude.iter().map(|p| p.trim().to_string()).collect();
    for file in &args.exclude_from {
        let text = std::fs::read_to_string(file).map_err(|e| {
            Failure::new(format!(
                "Error opening exclude file {}. (Error: {e})",
                quote_local(file)
            ))
        })?;
        exclude.extend(text.lines().map(|l| l.trim().to_string()));
    }
    if args.exclude_vcs {
        exclude.extend(VCS_PATTERNS.iter().map(|p| (*p).to_string()));
    }
    exclude.retain(|p| !p.is_empty());
    let db = if args.no_backupdb {
        None
    } else {
        Some(
            BackupDb::open(node_dir)
                .map_err(|_| Failure::said("ERROR: Unable to load backup db."))?,
        )
    };
    let path = paths::parse(aliases, &args.to)?;
    let fail = |e: &swamp_client::grid::GridError| {
        Failure::new(format!(
            "Unable to create target directory: {}",
            crate::chain(e)
        ))
    };
    let to_dir = grid
        .make_dirs(&path.root, &path.names, MutableFormat::Sdmf)
        .await
        .map_err(|e| fail(&e))?;
    let archives = grid
        .make_dirs(&to_dir, &["Archives"], MutableFormat::Sdmf)
        .await
        .map_err(|e| fail(&e))?;

    let from = crate::cp::absolute(&args.from.to_string_lossy())?;
    let mut targets = Vec::new();
    collect(&from, &exclude, &mut targets)?;
    let total = targets.len();
    let mut backup = Backup {
        grid,
        db,
        verbose: args.verbose,
        use_timestamps: !args.ignore_timestamps,
        counts: Counts::default(),
    };
    // What each directory will hold, by its path: filled in as children finish.
    let mut contents: std::collections::HashMap<PathBuf, Vec<(String, Child)>> =
        std::collections::HashMap::new();
    let mut last = None;
    let name_of = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    for target in targets {
        match target {
            Target::Skip { dir, warning } => {
                eprintln!("{warning}");
                if dir {
                    backup.counts.dirs_skipped += 1;
                } else {
                    backup.counts.files_skipped += 1;
                }
            }
            Target::File(path) => match backup.file(&path).await? {
                Some((created, child)) => {
                    if created {
                        backup.counts.files_created += 1;
                    } else {
                        backup.counts.files_reused += 1;
                    }
                    if let (Some(parent), Some(name)) = (path.parent(), name_of(&path)) {
                        contents
                            .entry(parent.to_path_buf())
                            .or_default()
                            .push((name, child));
                    }
                }
                None => {
                    eprintln!("{}", warning(false, &path, "denied"));
                    backup.counts.files_skipped += 1;
                }
            },
            Target::Dir(path) => {
                let metadata = std::fs::metadata(&path)
                    .map(|m| local_metadata(&m))
                    .unwrap_or_else(|_| Value::Object(Map::new()));
                let children = contents.remove(&path).unwrap_or_default();
                let (created, cap) = backup.directory(&path, children).await?;
                if created {
                    backup.counts.dirs_created += 1;
                } else {
                    backup.counts.dirs_reused += 1;
                }
                if path != from
                    && let (Some(parent), Some(name)) = (path.parent(), name_of(&path))
                {
                    contents.entry(parent.to_path_buf()).or_default().push((
                        name,
                        Child {
                            cap: cap.clone(),
                            metadata,
                        },
                    ));
                }
                last = Some(cap);
            }
        }
        let elapsed = started.elapsed().as_secs();
        println!(
            "Backing up {}/{total}... {}h {}m {}s elapsed...",
            backup.counts.done(),
            elapsed / 3600,
            elapsed / 60 % 60,
            elapsed % 60
        );
    }
    let Some(snapshot) = last else {
        return Err(Failure::new(format!("cannot read {}", quote_local(&from))));
    };
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let link_fail = |e: &swamp_client::grid::GridError| {
        Failure::new(format!("Error during put_child: {}", crate::chain(e)))
    };
    grid.link(&archives, &archive_name(secs), &snapshot, Replace::Always)
        .await
        .map_err(|e| link_fail(&e))?;
    grid.link(&to_dir, "Latest", &snapshot, Replace::Always)
        .await
        .map_err(|e| link_fail(&e))?;
    if let Some(db) = backup.db.take() {
        db.finish().map_err(|e| db_failure(&e))?;
    }
    let c = &backup.counts;
    println!(
        " {} files uploaded ({} reused), {} files skipped, {} directories created ({} reused), {} directories skipped",
        c.files_created,
        c.files_reused,
        c.files_skipped,
        c.dirs_created,
        c.dirs_reused,
        c.dirs_skipped
    );
    if args.verbose {
        println!(
            " {} files checked, {} directories checked",
            c.files_checked, c.dirs_checked
        );
    }
    println!(
        " backup done, elapsed time: {}",
        timedelta(started.elapsed().as_secs())
    );
    if c.files_skipped + c.dirs_skipped > 0 {
        return Err(Failure::silent(2));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_names_and_elapsed_times_are_tahoes() {
        assert_eq!(archive_name(0), "1970-01-01_00:00:00Z");
        assert_eq!(archive_name(1_796_610_645), "2026-12-07_02:30:45Z");
        assert_eq!(timedelta(5), "0:00:05");
        assert_eq!(timedelta(3 * 3600 + 61), "3:01:01");
        assert_eq!(timedelta(86_400 + 1), "1 day, 0:00:01");
        assert_eq!(timedelta(2 * 86_400), "2 days, 0:00:00");
    }
}
