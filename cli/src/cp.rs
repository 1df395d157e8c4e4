//! `tahoe cp`: files and directories between the local disk and the grid, either
//! way and grid to grid, with Tahoe's rules (`scripts/tahoe_cp.py`):
//!
//! - An argument is on the grid when it starts with a cap or `ALIAS:`; otherwise it
//!   is a local path (a colon after a `/` does not make an alias).
//! - Directories need `-r`. A named source directory is copied *as* a directory
//!   under the target; an unnamed one (a bare dircap, `alias:`) has its contents
//!   copied into the target.
//! - The target is a file only when it exists as one, or when it is missing and the
//!   one source is a file; a file target must not end with `/`; several sources need
//!   a directory target, which is made when missing.
//! - Copying into a grid directory uploads each file and then links all of them in
//!   one change of that directory; an existing mutable file of the same name is
//!   overwritten in place instead. Immutable grid files are linked, not copied (what
//!   Tahoe means to do; Tahoe 1.20 copies their bytes, see its ticket 3719).
//!
//! Files are streamed both ways (mutable files are read and written whole, as they
//! are stored). Directory trees are listed before anything is copied; a directory
//! reached again below itself (a symlink loop, a directory linked into itself) is
//! not entered twice.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use swamp_client::dir_edit::child_entry;
use swamp_client::grid::{Grid, GridError};
use swamp_formats::cap::{Cap, MutableFormat};

use crate::aliases::Aliases;
use crate::edit::{self, Content};
use crate::fail::Failure;
use crate::paths;
use crate::quote::{quote, quote_local};
use crate::transfer;

/// `cp` flags and arguments.
#[derive(clap::Args)]
pub struct CpArgs {
    /// Copy source directory recursively.
    #[arg(short = 'r', long)]
    pub recursive: bool,
    /// Be noisy about what is happening.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// When copying to local files, write out filecaps instead of actual data (only
    /// useful for debugging and tree-comparison purposes).
    #[arg(long = "caps-only")]
    pub caps_only: bool,
    /// FROM.. TO
    #[arg(num_args = 2.., required = true, value_name = "FROM.. TO")]
    pub args: Vec<String>,
}

/// A file to copy.
#[derive(Clone, Debug)]
enum FileSource {
    Local(PathBuf),
    Grid(Cap),
}

/// A source argument.
enum Source {
    File {
        file: FileSource,
        name: Option<String>,
    },
    Dir {
        dir: DirSource,
        name: Option<String>,
    },
}

/// A source directory.
#[derive(Clone)]
enum DirSource {
    Local(PathBuf),
    Grid(Cap),
}

/// The target argument.
enum Target {
    /// A local path: an existing file, directory, or nothing yet.
    Local { path: PathBuf, kind: LocalKind },
    /// An existing grid file: its cap, and its link (parent and name) unless the
    /// argument was the bare cap.
    GridFile {
        cap: Cap,
        link: Option<(Cap, String)>,
    },
    /// An existing grid directory.
    GridDir(Cap),
    /// Nothing on the grid yet at `names` under `root`.
    GridMissing { root: Cap, names: Vec<String> },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum LocalKind {
    File,
    Dir,
    Missing,
}

/// Where an argument is, as Tahoe's `get_alias(..., default=None)` decides.
fn is_grid(arg: &str) -> bool {
    let arg = arg.trim_matches(' ');
    if arg.starts_with("URI:") {
        return true;
    }
    arg.find(':')
        .is_some_and(|colon| !arg[..colon].contains('/'))
}

/// An absolute, normalised local path (Tahoe's `abspath_expanduser_unicode`).
pub(crate) fn absolute(arg: &str) -> Result<PathBuf, Failure> {
    let expanded = match arg.strip_prefix("~/") {
        Some(rest) => std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join(rest),
        None => PathBuf::from(arg),
    };
    let abs = std::path::absolute(&expanded).map_err(|e| Failure::new(format!("{arg}: {e}")))?;
    let mut out = PathBuf::new();
    for part in abs.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

fn name_of(path: &Path) -> Result<String, Failure> {
    path.file_name()
        .unwrap_or_default()
        .to_str()
        .map(str::to_string)
        .ok_or_else(|| Failure::new(format!("{}: the name is not UTF-8", path.display())))
}

fn grid_failure(arg: &str, e: &GridError) -> Failure {
    Failure::new(format!("{arg}: {}", crate::chain(e)))
}

/// Turns a source argument into a [`Source`].
async fn source(grid: &Grid, aliases: &Aliases, arg: &str) -> Result<Source, Failure> {
    let trailing_slash = arg.ends_with('/');
    let not_a_dir = |shown: String| {
        Failure::said(format!(
            "source '{shown}' is not a directory, but ends with a slash"
        ))
    };
    if !is_grid(arg) {
        let path = absolute(arg)?;
        let meta = std::fs::metadata(&path).map_err(|_| {
            Failure::said(format!("No such file or directory {}", quote_local(&path)))
        })?;
        let name = Some(name_of(&path)?);
        if meta.is_dir() {
            return Ok(Source::Dir {
                dir: DirSource::Local(path),
                name,
            });
        }
        if trailing_slash {
            return Err(not_a_dir(quote_local(&path)));
        }
        if !meta.is_file() {
            return Err(Failure::said(format!(
                "source '{}' is neither a file nor a directory, I can't handle it",
                quote_local(&path)
            )));
        }
        return Ok(Source::File {
            file: FileSource::Local(path),
            name,
        });
    }
    let path = paths::parse(aliases, arg)?;
    let name = path.names.last().map(|n| (*n).to_string());
    let cap = match grid.walk(&path.root, &path.names).await {
        Ok(cap) => cap,
        Err(e) if paths::is_missing(&e) => {
            return Err(Failure::said(format!(
                "No such file or directory {}",
                quote(arg, true)
            )));
        }
        Err(e) => return Err(grid_failure(arg, &e)),
    };
    if cap.is_dir() {
        Ok(Source::Dir {
            dir: DirSource::Grid(cap),
            name,
        })
    } else if trailing_slash {
        Err(not_a_dir(quote(arg, true)))
    } else {
        Ok(Source::File {
            file: FileSource::Grid(cap),
            name,
        })
    }
}

/// Turns the target argument into a [`Target`].
async fn target(grid: &Grid, aliases: &Aliases, arg: &str) -> Result<Target, Failure> {
    if !is_grid(arg) {
        let path = absolute(arg)?;
        let kind = match std::fs::metadata(&path) {
            Err(_) => LocalKind::Missing,
            Ok(m) if m.is_dir() => LocalKind::Dir,
            Ok(_) => LocalKind::File,
        };
        return Ok(Target::Local { path, kind });
    }
    let path = paths::parse(aliases, arg)?;
    let names: Vec<String> = path.names.iter().map(|n| (*n).to_string()).collect();
    let Some((last, parents)) = path.names.split_last() else {
        return Ok(if path.root.is_dir() {
            Target::GridDir(path.root)
        } else {
            Target::GridFile {
                cap: path.root,
                link: None,
            }
        });
    };
    let parent = match grid.walk(&path.root, parents).await {
        Ok(parent) => parent,
        Err(e) if paths::is_missing(&e) => {
            return Ok(Target::GridMissing {
                root: path.root,
                names,
            });
        }
        Err(e) => return Err(grid_failure(arg, &e)),
    };
    match grid.walk(&parent, &[last]).await {
        Ok(cap) if cap.is_dir() => Ok(Target::GridDir(cap)),
        Ok(cap) => Ok(Target::GridFile {
            cap,
            link: Some((parent, (*last).to_string())),
        }),
        Err(e) if paths::is_missing(&e) => Ok(Target::GridMissing {
            root: path.root,
            names,
        }),
        Err(e) => Err(grid_failure(arg, &e)),
    }
}

/// `tahoe cp [-r] FROM.. TO`.
pub async fn run(grid: &Grid, aliases: &Aliases, args: &CpArgs) -> Result<(), Failure> {
    let (to, from) = args
        .args
        .split_last()
        .ok_or_else(|| Failure::said("cp requires at least two arguments"))?;
    let copier = Copier {
        planned: std::cell::Cell::new(0),
        grid,
        aliases,
        caps_only: args.caps_only,
        verbose: args.verbose,
    };
    let target = target(grid, aliases, to).await?;
    let mut sources = Vec::new();
    for arg in from {
        sources.push(source(grid, aliases, arg).await?);
    }
    if sources.iter().any(|s| matches!(s, Source::Dir { .. })) && !args.recursive {
        return Err(Failure::said("cannot copy directories without --recursive"));
    }
    let target_is_file = match &target {
        Target::Local { kind, .. } if *kind != LocalKind::Missing => *kind == LocalKind::File,
        Target::GridFile { .. } => true,
        Target::GridDir(_) => false,
        _ => sources.len() == 1 && matches!(sources[0], Source::File { .. }),
    };
    if target_is_file && to.ends_with('/') {
        return Err(Failure::said(
            "target is not a directory, but ends with a slash",
        ));
    }
    if sources.len() > 1 && target_is_file {
        return Err(Failure::said(
            "copying multiple things requires target be a directory",
        ));
    }
    if target_is_file {
        let Source::File { file, .. } = &sources[0] else {
            return Err(Failure::said("cannot copy directory into a file"));
        };
        let linked = copier.file_to_file(file, &target, to).await?;
        println!(
            "Success: {}",
            if linked { "file linked" } else { "file copied" }
        );
        return Ok(());
    }
    for (arg, source) in from.iter().zip(&sources) {
        if let Source::File { name: None, .. } = source {
            return Err(Failure::said(format!(
                "when copying into a directory, all source files must have names, but {} is unnamed",
                quote(arg, true)
            )));
        }
    }
    copier.things_to_directory(&sources, target, to).await?;
    println!("Success: files copied");
    Ok(())
}

/// Files to copy into each target directory, by its path under the target.
type Plan = BTreeMap<Vec<String>, Vec<(String, FileSource)>>;

/// Files and directories one copy takes at most (each is planned, in memory, before
/// anything is copied): a larger tree is refused.
pub const MAX_PLANNED: usize = 5_000_000;

struct Copier<'a> {
    /// Files and directories planned so far (see [`MAX_PLANNED`]).
    planned: std::cell::Cell<usize>,
    grid: &'a Grid,
    aliases: &'a Aliases,
    caps_only: bool,
    verbose: bool,
}

impl Copier<'_> {
    fn progress(&self, message: &str) {
        if self.verbose {
            eprintln!("{message}");
        }
    }

    /// The bytes of a grid file source are needed unless it is immutable and the
    /// target is on the grid (then it is linked).
    fn needs_bytes(file: &FileSource) -> bool {
        !matches!(file, FileSource::Grid(cap) if !cap.is_mutable())
    }

    /// Writes `file` to the local `path`.
    async fn to_local(&self, file: &FileSource, path: &Path, what: &str) -> Result<(), Failure> {
        let write_fail =
            |e: std::io::Error| Failure::new(format!("cannot write {}: {e}", path.display()));
        match file {
            FileSource::Local(from) => std::fs::copy(from, path).map(|_| ()).map_err(|e| {
                Failure::new(format!(
                    "cannot copy {} to {}: {e}",
                    from.display(),
                    path.display()
                ))
            }),
            FileSource::Grid(cap) if self.caps_only => {
                std::fs::write(path, cap.read_only().to_string()).map_err(write_fail)
            }
            FileSource::Grid(cap) => transfer::fetch_to_path(self.grid, cap, path, what).await,
        }
    }

    /// Copies one file to a file target; returns whether it was linked (not copied).
    async fn file_to_file(
        &self,
        file: &FileSource,
        target: &Target,
        to: &str,
    ) -> Result<bool, Failure> {
        let grid = self.grid;
        match target {
            Target::Local { path, .. } => self.to_local(file, path, to).await.map(|()| false),
            Target::GridFile { cap, link } => {
                let writable_mutable = cap.is_mutable() && cap.is_writable();
                if !writable_mutable && !Self::needs_bytes(file) {
                    let FileSource::Grid(source) = file else {
                        unreachable!("needs_bytes is false only for grid files")
                    };
                    let Some((parent, name)) = link else {
                        return Err(Failure::new(format!(
                            "{to}: only a mutable file cap can be overwritten"
                        )));
                    };
                    edit::link_file(grid, parent, name, source, to).await?;
                    return Ok(true);
                }
                self.put(file, to).await.map(|()| false)
            }
            Target::GridMissing { root, names } => {
                if let FileSource::Grid(source) = file
                    && !Self::needs_bytes(file)
                {
                    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                    let (last, parents) = refs
                        .split_last()
                        .expect("invariant: a missing target has a name");
                    let parent = grid
                        .make_dirs(root, parents, MutableFormat::Sdmf)
                        .await
                        .map_err(|e| grid_failure(to, &e))?;
                    edit::link_file(grid, &parent, last, source, to).await?;
                    return Ok(true);
                }
                self.put(file, to).await.map(|()| false)
            }
            Target::GridDir(_) => unreachable!("a directory target is not a file target"),
        }
    }

    /// `tahoe put`s a file's bytes to the grid path `to`.
    async fn put(&self, file: &FileSource, to: &str) -> Result<(), Failure> {
        let data;
        let content = match file {
            FileSource::Local(path) => Content::File(path),
            FileSource::Grid(cap) => {
                data = transfer::read_file(self.grid, cap, to).await?;
                Content::Bytes(&data)
            }
        };
        edit::put_to(self.grid, self.aliases, to, content, None).await?;
        Ok(())
    }

    /// Copies files and directories into a directory target (made when missing).
    async fn things_to_directory(
        &self,
        sources: &[Source],
        target: Target,
        to: &str,
    ) -> Result<(), Failure> {
        let mut plan = Plan::new();
        plan.insert(Vec::new(), Vec::new());
        let (files, dirs) = sources.iter().fold((0, 0), |(f, d), s| match s {
            Source::File { .. } => (f + 1, d),
            Source::Dir { .. } => (f, d + 1),
        });
        self.progress(&format!(
            "attaching sources to targets, {files} files / {dirs} dirs in root"
        ));
        for source in sources {
            match source {
                Source::File { file, name } => {
                    let name = name.clone().expect("invariant: checked to have names");
                    plan.entry(Vec::new())
                        .or_default()
                        .push((name, file.clone()));
                }
                Source::Dir { dir, name } => {
                    let under: Vec<String> = name.iter().cloned().collect();
                    self.assign(&mut plan, dir, under, &mut BTreeSet::new())
                        .await?;
                }
            }
        }
        let count: usize = plan.values().map(Vec::len).sum();
        self.progress(&format!(
            "targets assigned, {} dirs, {count} files",
            plan.len()
        ));
        for files in plan.values() {
            let mut names = BTreeSet::new();
            if files.iter().any(|(name, _)| !names.insert(name)) {
                return Err(Failure::said(
                    "cannot copy multiple files with the same name into the same target directory",
                ));
            }
        }
        self.progress(&format!(
            "starting copy, {count} files, {} directories",
            plan.len()
        ));
        match target {
            Target::Local { path, .. } => self.copy_into_local(&plan, &path).await,
            Target::GridDir(cap) => self.copy_into_grid(&plan, cap, to).await,
            Target::GridMissing { root, names } => {
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                let top = self
                    .grid
                    .make_dirs(&root, &refs, MutableFormat::Sdmf)
                    .await
                    .map_err(|e| grid_failure(to, &e))?;
                self.copy_into_grid(&plan, top, to).await
            }
            Target::GridFile { .. } => unreachable!("a file target is not a directory target"),
        }
    }

    /// Adds everything under `dir` to `plan`, at `under`. `entered` holds the
    /// directories being listed above this one, so that none is entered below
    /// itself.
    async fn assign(
        &self,
        plan: &mut Plan,
        dir: &DirSource,
        under: Vec<String>,
        entered: &mut BTreeSet<String>,
    ) -> Result<(), Failure> {
        let (key, children) = match dir {
            DirSource::Local(path) => (format!("{:?}", same_file_key(path)), list_local(path)?),
            DirSource::Grid(cap) => (
                cap.storage_index()
                    .map_or_else(|| cap.to_string(), |si| si.to_string()),
                self.list_grid(cap).await?,
            ),
        };
        if !entered.insert(key.clone()) {
            self.progress(&format!("skipping {}: a loop", under.join("/")));
            return Ok(());
        }
        let planned = self.planned.get() + children.len() + 1;
        self.planned.set(planned);
        if planned > MAX_PLANNED {
            return Err(Failure::new(format!(
                "more than {MAX_PLANNED} files and directories to copy"
            )));
        }
        plan.entry(under.clone()).or_default();
        for (name, child) in children {
            match child {
                Child::File(file) => plan.entry(under.clone()).or_default().push((name, file)),
                Child::Dir(sub) => {
                    let mut deeper = under.clone();
                    deeper.push(name);
                    Box::pin(self.assign(plan, &sub, deeper, entered)).await?;
                }
            }
        }
        entered.remove(&key);
        Ok(())
    }

    async fn list_grid(&self, cap: &Cap) -> Result<Vec<(String, Child)>, Failure> {
        let listing = self
            .grid
            .read_dir(cap)
            .await
            .map_err(|e| grid_failure(&cap.to_string(), &e))?;
        let mut children = Vec::new();
        for entry in listing.entries {
            let child = match entry.cap() {
                Ok(c @ Cap::Dir(_)) => Child::Dir(DirSource::Grid(c)),
                Ok(Cap::Unknown(_)) | Err(_) => {
                    return Err(Failure::said(
                        "Cannot copy unknown nodes (ticket #839). You probably need to use a later version of Tahoe-LAFS to copy this directory.",
                    ));
                }
                Ok(c) => Child::File(FileSource::Grid(c)),
            };
            children.push((entry.name, child));
        }
        Ok(children)
    }

    async fn copy_into_local(&self, plan: &Plan, top: &Path) -> Result<(), Failure> {
        let count: usize = plan.values().map(Vec::len).sum();
        let mut copied = 0;
        for (done, (under, files)) in plan.iter().enumerate() {
            let dir = under.iter().fold(top.to_path_buf(), |p, n| p.join(n));
            std::fs::create_dir_all(&dir)
                .map_err(|e| Failure::new(format!("cannot make {}: {e}", dir.display())))?;
            for (name, file) in files {
                let path = dir.join(name);
                self.to_local(file, &path, &path.to_string_lossy()).await?;
                copied += 1;
                self.progress(&format!(
                    "{copied}/{count} files, {done}/{} directories",
                    plan.len()
                ));
            }
            self.progress(&format!("{}/{} directories", done + 1, plan.len()));
        }
        Ok(())
    }

    async fn copy_into_grid(&self, plan: &Plan, top: Cap, to: &str) -> Result<(), Failure> {
        let grid = self.grid;
        let count: usize = plan.values().map(Vec::len).sum();
        let mut copied = 0;
        // Parents come before their children in the plan's order.
        let mut made: BTreeMap<Vec<String>, Cap> = BTreeMap::from([(Vec::new(), top)]);
        for (done, (under, files)) in plan.iter().enumerate() {
            let shown = if under.is_empty() {
                to.to_string()
            } else {
                format!("{}/{}", to.trim_end_matches('/'), under.join("/"))
            };
            let dir = match made.get(under) {
                Some(cap) => cap.clone(),
                None => {
                    let (last, parent) = under.split_last().expect("invariant: the top is made");
                    let parent = made
                        .get(parent)
                        .cloned()
                        .expect("invariant: parents come first");
                    let cap = grid
                        .make_dirs(&parent, &[last.as_str()], MutableFormat::Sdmf)
                        .await
                        .map_err(|e| grid_failure(&shown, &e))?;
                    made.insert(under.clone(), cap.clone());
                    cap
                }
            };
            if files.is_empty() {
                continue;
            }
            let existing = grid
                .read_dir(&dir)
                .await
                .map_err(|e| grid_failure(&shown, &e))?;
            let mut links = Vec::new();
            for (name, file) in files {
                let what = format!("{}/{name}", shown.trim_end_matches('/'));
                let old = existing
                    .entries
                    .iter()
                    .find(|e| e.name == *name)
                    .and_then(|e| e.cap().ok());
                match old {
                    // An existing mutable file is written in place, as Tahoe does.
                    Some(Cap::Mutable(m)) if m.writekey().is_some() => {
                        let data = match file {
                            FileSource::Local(path) => std::fs::read(path).map_err(|e| {
                                Failure::new(format!("cannot read {}: {e}", path.display()))
                            })?,
                            FileSource::Grid(cap) => transfer::read_file(grid, cap, &what).await?,
                        };
                        grid.overwrite_mutable(&m, &data, None)
                            .await
                            .map_err(|e| grid_failure(&what, &e))?;
                    }
                    _ => {
                        let cap = match file {
                            FileSource::Local(path) => transfer::put_file(grid, path).await?,
                            FileSource::Grid(cap) if !cap.is_mutable() => cap.clone(),
                            FileSource::Grid(cap) => {
                                let data = transfer::read_file(grid, cap, &what).await?;
                                Content::Bytes(&data).upload(grid, &what).await?
                            }
                        };
                        links.push((name.clone(), cap));
                    }
                }
                copied += 1;
                self.progress(&format!(
                    "{copied}/{count} files, {done}/{} directories",
                    plan.len()
                ));
            }
            if !links.is_empty() {
                grid.modify_dir(&dir, |entries| {
                    for (name, cap) in &links {
                        let at = entries.iter().position(|e| e.name == *name);
                        let entry = child_entry(name, cap, at.map(|i| &entries[i]));
                        match at {
                            Some(i) => entries[i] = entry,
                            None => entries.push(entry),
                        }
                    }
                    Ok(true)
                })
                .await
                .map_err(|e| grid_failure(&shown, &e))?;
            }
            self.progress(&format!("{}/{} directories", done + 1, plan.len()));
        }
        Ok(())
    }
}

/// A child of a source directory.
enum Child {
    File(FileSource),
    Dir(DirSource),
}

/// What identifies a local directory whatever the path to it (device, inode).
fn same_file_key(path: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).map_or((0, 0), |m| (m.dev(), m.ino()))
}

/// A local directory's files and directories, by name (symlinks followed, as
/// Tahoe's; what is neither, such as a dangling link, is left out, as Tahoe does).
fn list_local(path: &Path) -> Result<Vec<(String, Child)>, Failure> {
    let fail = |e: std::io::Error| Failure::new(format!("cannot list {}: {e}", path.display()));
    let mut children = Vec::new();
    for entry in std::fs::read_dir(path).map_err(fail)? {
        let entry = entry.map_err(fail)?;
        let child_path = entry.path();
        let name = name_of(&child_path)?;
        match std::fs::metadata(&child_path) {
            Ok(m) if m.is_dir() => children.push((name, Child::Dir(DirSource::Local(child_path)))),
            Ok(m) if m.is_file() => {
                children.push((name, Child::File(FileSource::Local(child_path))));
            }
            _ => {}
        }
    }
    children.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(children)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_local_or_on_the_grid_as_in_tahoe() {
        assert!(is_grid("URI:DIR2:aa:bb/x"));
        assert!(is_grid("work:x"));
        assert!(is_grid("work:"));
        assert!(!is_grid("plain.txt"));
        assert!(!is_grid("./a:b"));
        assert!(!is_grid("/tmp/a:b"));
    }

    #[test]
    fn local_paths_are_made_absolute_and_normal() {
        let here = std::env::current_dir().expect("cwd");
        assert_eq!(absolute(".").ok(), Some(here.clone()));
        assert_eq!(absolute("a/../b/").ok(), Some(here.join("b")));
    }
}
