//! The one-way mirror example (`examples/src/mirror.rs`) on three real servers: live
//! changes (a file added, modified, removed, a subdirectory and what goes into it)
//! reach the local folder; stopped, the tree changed, and started again, it catches up
//! from its saved cursors and downloads only what changed: unchanged files keep their
//! inode (a download replaces a file by a rename) and are not in its report.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use swamp_client::dir_edit::Replace;
use swamp_client::grid::Grid;
use swamp_examples::mirror::{MirrorEvent, MirrorOptions, STATE_FILE, run};
use swamp_formats::cap::{Cap, MutableFormat};
use swamp_tests::{TestServer, grid_of, random_bytes};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A running mirror: its task and its report.
struct Running {
    task: JoinHandle<Result<(), String>>,
    events: mpsc::Receiver<MirrorEvent>,
}

fn start(servers: &[TestServer], root: &Cap, target: &Path) -> Running {
    let (tx, events) = mpsc::channel(256);
    let (grid, root, target) = (grid_of(servers), root.clone(), target.to_path_buf());
    let task = tokio::spawn(async move {
        let options = MirrorOptions::default();
        run(&grid, &root, &target, options, tx)
            .await
            .map_err(|e| e.to_string())
    });
    Running { task, events }
}

impl Running {
    /// Events (notices left out) up to and including the first that `done` accepts.
    async fn until(&mut self, done: impl Fn(&MirrorEvent) -> bool) -> Vec<MirrorEvent> {
        let mut seen = Vec::new();
        loop {
            let event = tokio::time::timeout(Duration::from_secs(30), self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("no event within 30 s after {seen:?}"))
                .expect("the mirror goes on");
            if matches!(event, MirrorEvent::Notice { .. }) {
                continue;
            }
            seen.push(event);
            if done(seen.last().unwrap()) {
                return seen;
            }
        }
    }

    /// Waits until every one of `paths` was downloaded (and `removed` removed), and
    /// returns everything reported meanwhile.
    async fn expect(&mut self, downloaded: &[&str], removed: &[&str]) -> Vec<MirrorEvent> {
        let mut seen: Vec<MirrorEvent> = Vec::new();
        let all_there = |seen: &[MirrorEvent]| {
            downloaded.iter().all(|p| {
                seen.iter()
                    .any(|e| matches!(e, MirrorEvent::Downloaded { path, .. } if path == p))
            }) && removed.iter().all(|p| {
                seen.iter()
                    .any(|e| matches!(e, MirrorEvent::Removed { path } if path == p))
            })
        };
        while !all_there(&seen) {
            seen.extend(self.until(|_| true).await);
        }
        seen
    }

    /// Stops it the hard way (as a kill would), between any two steps.
    async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// The local folder's files (the state file left out), by path.
fn local_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if path.is_dir() {
                stack.push(path);
            } else if rel != STATE_FILE {
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

fn downloads(events: &[MirrorEvent]) -> Vec<&str> {
    let mut out: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            MirrorEvent::Downloaded { path, .. } => Some(path.as_str()),
            _ => None,
        })
        .collect();
    out.sort_unstable();
    out
}

async fn put(grid: &Grid, dir: &Cap, name: &str, data: &[u8]) -> Cap {
    let file = grid.upload(data).await.unwrap();
    grid.link(dir, name, &file, Replace::Always).await.unwrap();
    file
}

fn inode(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().ino()
}

#[tokio::test]
async fn the_mirror_follows_changes_and_resumes_without_downloading_again() {
    let servers = TestServer::three().await;
    let grid = grid_of(&servers);
    let root = grid.create_dir(MutableFormat::Sdmf).await.unwrap();
    let (a, a2, c, c2) = (
        random_bytes(20_000),
        random_bytes(30_000),
        random_bytes(5_000),
        random_bytes(6_000),
    );
    put(&grid, &root, "a.bin", &a).await;
    // A hostile name is skipped, never written outside the folder.
    grid.link(&root, "..", &Cap::Lit(b"escape".to_vec()), Replace::Always)
        .await
        .unwrap();
    let target = tempfile::tempdir().unwrap();
    let folder = target.path().join("mirror");

    // Started on the read-only cap: the first sync, then live changes.
    let mut mirror = start(&servers, &root.read_only(), &folder);
    let first = mirror
        .until(|e| matches!(e, MirrorEvent::Ready { .. }))
        .await;
    assert_eq!(downloads(&first), ["a.bin"]);
    assert!(first.contains(&MirrorEvent::Skipped {
        path: "..".into(),
        why: "not a file name".into()
    }));
    assert_eq!(first.last(), Some(&MirrorEvent::Ready { resumed: false }));

    put(&grid, &root, "b.txt", b"small: in its cap").await;
    mirror.expect(&["b.txt"], &[]).await;
    put(&grid, &root, "a.bin", &a2).await;
    mirror.expect(&["a.bin"], &[]).await;
    let sub = grid
        .make_dirs(&root, &["sub"], MutableFormat::Mdmf)
        .await
        .unwrap();
    put(&grid, &sub, "c.bin", &c).await;
    // The new subdirectory is followed too: a change inside it arrives by itself.
    mirror.expect(&["sub/c.bin"], &[]).await;
    put(&grid, &sub, "d.txt", b"d").await;
    mirror.expect(&["sub/d.txt"], &[]).await;
    grid.unlink(&root, "b.txt").await.unwrap();
    mirror.expect(&[], &["b.txt"]).await;
    assert_eq!(
        local_tree(&folder),
        BTreeMap::from([
            ("a.bin".into(), a2.clone()),
            ("sub/c.bin".into(), c.clone()),
            ("sub/d.txt".into(), b"d".to_vec()),
        ])
    );
    assert!(!target.path().join("escape").exists());

    // Stopped; meanwhile one file in the subdirectory changes, one is added at the
    // top, one is removed.
    mirror.kill().await;
    let a_inode = inode(&folder.join("a.bin"));
    put(&grid, &sub, "c.bin", &c2).await;
    put(&grid, &root, "e.txt", b"e").await;
    grid.unlink(&sub, "d.txt").await.unwrap();
    // ... and after the restart one more, last: once it is there, everything the
    // catch-up did is reported before it.
    let mut mirror = start(&servers, &root.read_only(), &folder);
    let resumed = mirror
        .until(|e| matches!(e, MirrorEvent::Ready { .. }))
        .await;
    assert_eq!(resumed, [MirrorEvent::Ready { resumed: true }]);
    let mut caught_up = mirror.expect(&["sub/c.bin", "e.txt"], &["sub/d.txt"]).await;
    put(&grid, &root, "z.txt", b"z").await;
    caught_up.extend(mirror.expect(&["z.txt"], &[]).await);
    assert_eq!(downloads(&caught_up), ["e.txt", "sub/c.bin", "z.txt"]);
    assert_eq!(
        inode(&folder.join("a.bin")),
        a_inode,
        "a.bin was not rewritten"
    );
    assert_eq!(
        local_tree(&folder),
        BTreeMap::from([
            ("a.bin".into(), a2),
            ("e.txt".into(), b"e".to_vec()),
            ("sub/c.bin".into(), c2),
            ("z.txt".into(), b"z".to_vec()),
        ])
    );
    mirror.kill().await;
}
