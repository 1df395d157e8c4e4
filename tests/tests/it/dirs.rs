//! Directories through the client library: created, changed by concurrent writers
//! without losing a change, and watched live. Three real servers, 2-of-3.

use std::time::Duration;

use swamp_client::dir_edit::Replace;
use swamp_client::grid::GridError;
use swamp_client::watch::{WatchEvent, WatchOptions, watch};
use swamp_formats::cap::{Cap, MutableFormat};
use swamp_formats::dirdiff::ChildChange;
use swamp_tests::{TestServer, grid_of, random_bytes};
use tokio::sync::mpsc;

async fn three() -> [TestServer; 3] {
    [
        TestServer::start().await,
        TestServer::start().await,
        TestServer::start().await,
    ]
}

fn names(entries: &[swamp_formats::dirnode::Entry]) -> Vec<&str> {
    entries.iter().map(|e| e.name.as_str()).collect()
}

#[tokio::test]
async fn make_link_replace_and_unlink() {
    let servers = three().await;
    let grid = grid_of(&servers);
    for format in [MutableFormat::Sdmf, MutableFormat::Mdmf] {
        let root = grid.create_dir(format).await.unwrap();
        assert!(grid.read_dir(&root).await.unwrap().entries.is_empty());

        let file = grid.upload(&random_bytes(1000)).await.unwrap();
        grid.link(&root, "cafe\u{301}.txt", &file, Replace::Always)
            .await
            .unwrap();
        let deep = grid.make_dirs(&root, &["a", "b"], format).await.unwrap();
        assert_eq!(
            grid.make_dirs(&root, &["a", "b"], format).await.unwrap(),
            deep,
            "existing directories are reused"
        );
        grid.link(&deep, "x", &Cap::Lit(b"x".to_vec()), Replace::Never)
            .await
            .unwrap();

        let listing = grid.read_dir(&root).await.unwrap();
        assert_eq!(names(&listing.entries), ["a", "caf\u{e9}.txt"], "NFC names");
        assert_eq!(
            listing.entries[1].rw_uri, None,
            "immutable children have no write cap"
        );
        assert_eq!(
            listing.entries[1].ro_uri.as_deref(),
            Some(file.to_string().as_str())
        );
        assert_eq!(
            grid.walk(&root, &["a", "b", "x"]).await.unwrap(),
            Cap::Lit(b"x".to_vec())
        );

        // A directory is never replaced by a file; a name is not linked twice with Never.
        let refused = grid.link(&root, "a", &file, Replace::OnlyFiles).await;
        assert!(matches!(
            refused,
            Err(GridError::ChildExists { is_dir: true, .. })
        ));
        let refused = grid.link(&deep, "x", &file, Replace::Never).await;
        assert!(matches!(
            refused,
            Err(GridError::ChildExists { is_dir: false, .. })
        ));
        let before = grid.read_dir(&root).await.unwrap().entries[1]
            .metadata
            .clone();
        grid.link(&root, "café.txt", &file, Replace::OnlyFiles)
            .await
            .unwrap();
        let after = grid.read_dir(&root).await.unwrap().entries[1]
            .metadata
            .clone();
        assert_eq!(after["tahoe"]["linkcrtime"], before["tahoe"]["linkcrtime"]);

        let removed = grid.unlink(&root, "café.txt").await.unwrap();
        assert_eq!(removed.name, "café.txt");
        assert!(matches!(
            grid.unlink(&root, "café.txt").await,
            Err(GridError::NoSuchChild { .. })
        ));
        assert_eq!(names(&grid.read_dir(&root).await.unwrap().entries), ["a"]);

        // Read-only caps cannot change a directory.
        assert!(
            grid.link(&root.read_only(), "y", &file, Replace::Always)
                .await
                .is_err()
        );
    }
}

#[tokio::test]
async fn concurrent_writers_lose_no_change() {
    let servers = three().await;
    let grid = grid_of(&servers);
    let root = grid.create_dir(MutableFormat::Sdmf).await.unwrap();
    let writers: Vec<_> = (0..6)
        .map(|i| {
            let grid = grid_of(&servers);
            let root = root.clone();
            tokio::spawn(async move {
                let child = Cap::Lit(format!("file {i}").into_bytes());
                grid.link(&root, &format!("n{i}"), &child, Replace::Never)
                    .await
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap().unwrap();
    }
    let listing = grid.read_dir(&root).await.unwrap();
    assert_eq!(
        names(&listing.entries),
        ["n0", "n1", "n2", "n3", "n4", "n5"]
    );
}

async fn next_change(rx: &mut mpsc::Receiver<WatchEvent>) -> WatchEvent {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("an event within 30 s")
            .expect("the watch goes on");
        if !matches!(event, WatchEvent::Notice(_) | WatchEvent::Resync(_)) {
            return event;
        }
    }
}

/// A spawned watch: the servers back, and how the watch ended.
type Watcher = tokio::task::JoinHandle<([TestServer; 3], Result<(), GridError>)>;

/// Watches `dir` (read-only) on its own grid over `servers`; the watch result comes
/// back, with the servers, once the receiver is dropped.
fn spawn_watch(
    servers: [TestServer; 3],
    dir: &Cap,
    options: WatchOptions,
) -> (mpsc::Receiver<WatchEvent>, Watcher) {
    let (tx, rx) = mpsc::channel(64);
    let watched = dir.read_only();
    let watcher = tokio::spawn(async move {
        let grid = grid_of(&servers);
        let result = watch(&grid, watched, options, tx).await;
        (servers, result)
    });
    (rx, watcher)
}

#[tokio::test]
async fn watch_reports_changes_recursively() {
    let servers = three().await;
    let grid = grid_of(&servers);
    let root = grid.create_dir(MutableFormat::Mdmf).await.unwrap();
    grid.link(&root, "old", &Cap::Lit(b"o".to_vec()), Replace::Never)
        .await
        .unwrap();
    let options = WatchOptions {
        snapshot: true,
        recursive: true,
        ..WatchOptions::default()
    };
    let (mut rx, watcher) = spawn_watch(servers, &root, options);
    assert!(
        matches!(next_change(&mut rx).await, WatchEvent::Existing { path, .. } if path == "old")
    );
    assert_eq!(next_change(&mut rx).await, WatchEvent::Ready);

    let sub = grid
        .make_dirs(&root, &["sub"], MutableFormat::Sdmf)
        .await
        .unwrap();
    match next_change(&mut rx).await {
        WatchEvent::Changed {
            path,
            change: ChildChange::Added(entry),
            ..
        } => assert_eq!(
            (path.as_str(), entry.rw_uri),
            ("sub", None),
            "read-only view"
        ),
        other => panic!("expected sub added, got {other:?}"),
    }
    grid.link(&sub, "inner", &Cap::Lit(b"i".to_vec()), Replace::Never)
        .await
        .unwrap();
    assert!(matches!(
        next_change(&mut rx).await,
        WatchEvent::Changed { path, change: ChildChange::Added(_), .. } if path == "sub/inner"
    ));
    grid.link(&root, "old", &Cap::Lit(b"new".to_vec()), Replace::Always)
        .await
        .unwrap();
    assert!(matches!(
        next_change(&mut rx).await,
        WatchEvent::Changed { path, change: ChildChange::Modified { .. }, .. } if path == "old"
    ));
    grid.unlink(&root, "sub").await.unwrap();
    assert!(matches!(
        next_change(&mut rx).await,
        WatchEvent::Changed { path, change: ChildChange::Removed(_), .. } if path == "sub"
    ));
    // The removed subtree is no longer followed.
    grid.link(&sub, "ignored", &Cap::Lit(b"z".to_vec()), Replace::Never)
        .await
        .unwrap();
    grid.unlink(&root, "old").await.unwrap();
    assert!(matches!(
        next_change(&mut rx).await,
        WatchEvent::Changed { path, change: ChildChange::Removed(_), .. } if path == "old"
    ));
    drop(rx);
    let (_servers, result) = watcher.await.unwrap();
    result.unwrap();
}

#[tokio::test]
async fn watch_bounds_its_depth_and_skips_named_directories() {
    let servers = three().await;
    let grid = grid_of(&servers);
    let root = grid.create_dir(MutableFormat::Sdmf).await.unwrap();
    let mine = grid
        .make_dirs(&root, &["mine"], MutableFormat::Sdmf)
        .await
        .unwrap();
    let theirs = grid
        .make_dirs(&root, &["theirs"], MutableFormat::Sdmf)
        .await
        .unwrap();
    let deep = grid
        .make_dirs(&theirs, &["deep"], MutableFormat::Sdmf)
        .await
        .unwrap();
    let options = WatchOptions {
        recursive: true,
        max_depth: Some(1),
        skip: vec!["mine".into()],
        ..WatchOptions::default()
    };
    let (mut rx, watcher) = spawn_watch(servers, &root, options);
    assert_eq!(next_change(&mut rx).await, WatchEvent::Ready);
    // Neither the skipped directory nor one two levels down is followed: the next
    // change reported is the one at depth 1 made after them.
    let lit = Cap::Lit(b"x".to_vec());
    grid.link(&mine, "a", &lit, Replace::Never).await.unwrap();
    grid.link(&deep, "b", &lit, Replace::Never).await.unwrap();
    grid.link(&theirs, "c", &lit, Replace::Never).await.unwrap();
    assert!(matches!(
        next_change(&mut rx).await,
        WatchEvent::Changed { path, .. } if path == "theirs/c"
    ));
    drop(rx);
    let (_servers, result) = watcher.await.unwrap();
    result.unwrap();
}

/// A mutable file's shares are on all three servers, so every version is announced by
/// three feeds (and by their snapshots); the watch reads it once and reports it once.
#[tokio::test]
async fn watch_reports_each_version_of_a_file_once() {
    let servers = three().await;
    let grid = grid_of(&servers);
    let file = grid
        .create_mutable(b"v1", MutableFormat::Mdmf)
        .await
        .unwrap();
    let options = WatchOptions {
        snapshot: true,
        ..WatchOptions::default()
    };
    let (mut rx, watcher) = spawn_watch(servers, &Cap::Mutable(file), options);
    let mut seqnums = Vec::new();
    loop {
        match next_change(&mut rx).await {
            WatchEvent::Version { seqnum, .. } => seqnums.push(seqnum),
            WatchEvent::Ready => break,
            other => panic!("expected the file's version, got {other:?}"),
        }
    }
    assert_eq!(seqnums, [1], "the snapshot");
    for seqnum in 2..=4u64 {
        let data = format!("v{seqnum}");
        grid.overwrite_mutable(&file, data.as_bytes(), None)
            .await
            .unwrap();
        // A version reported twice would come before the next one.
        match next_change(&mut rx).await {
            WatchEvent::Version {
                seqnum: got,
                data: read,
                ..
            } => assert_eq!((got, read), (seqnum, data.into_bytes()), "once, in order"),
            other => panic!("expected version {seqnum}, got {other:?}"),
        }
    }
    drop(rx);
    let (_servers, result) = watcher.await.unwrap();
    result.unwrap();
}
