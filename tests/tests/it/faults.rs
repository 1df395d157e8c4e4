//! Disk faults on real file systems: a small ext4 image mounted over loop (direct
//! writes, as on a real disk) and a small tmpfs (ordinary writes), filled until
//! `ENOSPC` in the middle of uploads and read-test-writes; and `EIO` injected through
//! the storage layer's fault seam (`backend/faults.rs`). Nothing acknowledged is lost,
//! nothing is acknowledged that is not on disk, and a retry after the fault gives
//! byte-exact shares. These tests mount file systems, so they run as root (as CI and
//! the development machines do).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use http::StatusCode;
use swamp_proto::ShareNumber;
use swamp_server::node::NodeIdentity;
use swamp_tests::{Secrets, TestOptions, TestServer, random_bytes, random_si, slot_write};

/// A small file system mounted for one test, unmounted when dropped.
struct Mount {
    _dir: tempfile::TempDir,
    at: PathBuf,
}

impl Mount {
    fn run(cmd: &mut Command) {
        let out = cmd.output().expect("run a mount command");
        assert!(
            out.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// An ext4 image of `mib` MiB on a loop device.
    fn ext4(mib: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("disk.img");
        std::fs::File::create(&image)
            .unwrap()
            .set_len(mib << 20)
            .unwrap();
        Self::run(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&image));
        let at = dir.path().join("mnt");
        std::fs::create_dir(&at).unwrap();
        Self::run(
            Command::new("mount")
                .args(["-o", "loop"])
                .arg(&image)
                .arg(&at),
        );
        Self { _dir: dir, at }
    }

    /// A tmpfs of `mib` MiB.
    fn tmpfs(mib: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().join("mnt");
        std::fs::create_dir(&at).unwrap();
        Self::run(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
                .arg(&at),
        );
        Self { _dir: dir, at }
    }

    /// Fills the file system until it refuses more; returns the filler to delete.
    fn fill(&self) -> PathBuf {
        let path = self.at.join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0x55u8; 64 << 10];
        loop {
            match file.write_all(&chunk).and_then(|()| file.sync_all()) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("filling: {e}"),
            }
        }
        path
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.at).status();
    }
}

async fn start_on(dir: &Path, options: TestOptions) -> TestServer {
    let identity = Arc::new(NodeIdentity::ephemeral().unwrap());
    TestServer::start_on(dir.join("storage"), identity, options).await
}

/// The scenario: a 24 MiB upload half written in 1 MiB PATCHes, the disk fills
/// up, the remaining PATCHes fail with 507; space is freed, they are sent again, the
/// share is acknowledged and reads back byte-exact, also after a restart. On ext4 the
/// upload goes around the page cache (the path that used to leave holes), on tmpfs
/// through it.
#[tokio::test]
async fn a_full_disk_mid_upload_is_a_507_and_the_retry_is_byte_exact() {
    for (name, mount) in [("ext4", Mount::ext4(64)), ("tmpfs", Mount::tmpfs(40))] {
        let server = start_on(&mount.at, TestOptions::default()).await;
        let (si, s) = (random_si(), Secrets::random());
        let share = ShareNumber::new(0);
        let data = random_bytes(24 << 20);
        let got = s
            .allocate(&server.client, &si, [share], data.len() as u64)
            .await;
        assert_eq!(got.allocated.0.len(), 1, "{name}");
        let imm = server.client.immutable();
        let chunks: Vec<(u64, Vec<u8>)> = data
            .chunks(1 << 20)
            .enumerate()
            .map(|(i, c)| ((i as u64) << 20, c.to_vec()))
            .collect();
        for (at, chunk) in &chunks[..12] {
            imm.write_share_chunk(&si, share, &s.upload, *at, chunk.clone())
                .await
                .unwrap();
        }
        let filler = mount.fill();
        let mut refused = Vec::new();
        for (at, chunk) in &chunks[12..] {
            match imm
                .write_share_chunk(&si, share, &s.upload, *at, chunk.clone())
                .await
            {
                Ok(progress) => assert!(!progress.complete, "{name}: complete on a full disk"),
                Err(e) => {
                    assert_eq!(
                        e.status(),
                        Some(StatusCode::INSUFFICIENT_STORAGE),
                        "{name}: {e}"
                    );
                    refused.push((*at, chunk.clone()));
                }
            }
        }
        assert!(!refused.is_empty(), "{name}: the full disk refused nothing");
        std::fs::remove_file(filler).unwrap();
        let mut complete = false;
        for (at, chunk) in refused {
            complete = imm
                .write_share_chunk(&si, share, &s.upload, at, chunk)
                .await
                .unwrap()
                .complete;
        }
        assert!(complete, "{name}: the retried upload completes");
        let back = imm
            .read_share_chunk(&si, share, 0, data.len() as u64)
            .await
            .unwrap();
        if back[..] != data[..] {
            let diffs: Vec<usize> = (0..data.len()).filter(|&i| back[i] != data[i]).collect();
            let mut runs = Vec::new();
            for &i in &diffs {
                match runs.last_mut() {
                    Some((_, e)) if *e == i => *e = i + 1,
                    _ => runs.push((i, i + 1)),
                }
            }
            panic!(
                "{name}: not byte-exact: {} runs {:?}",
                runs.len(),
                &runs[..runs.len().min(20)]
            );
        }
        let server = server.restart(|_| {}).await;
        let back = server
            .client
            .immutable()
            .read_share_chunk(&si, share, 0, data.len() as u64)
            .await
            .unwrap();
        assert!(back[..] == data[..], "{name}: byte-exact after a restart");
        server.stop().await;
    }
}

/// A read-test-write on a full disk is a 507; the slot then holds the old version or
/// the new one whole, never a torn mix, and a write after space is freed works.
#[tokio::test]
async fn a_full_disk_under_read_test_write_never_tears_a_slot() {
    for (name, mount) in [("ext4", Mount::ext4(64)), ("tmpfs", Mount::tmpfs(40))] {
        let server = start_on(&mount.at, TestOptions::default()).await;
        let (si, s) = (random_si(), Secrets::random());
        let m = server.client.mutable();
        let old = random_bytes(1 << 20);
        m.read_test_write(&si, &s.we, &s.renew, &s.cancel, &slot_write(0, 0, &old))
            .await
            .unwrap();
        let filler = mount.fill();
        let new = random_bytes(4 << 20);
        let err = m
            .read_test_write(&si, &s.we, &s.renew, &s.cancel, &slot_write(0, 0, &new))
            .await
            .unwrap_err();
        assert_eq!(
            err.status(),
            Some(StatusCode::INSUFFICIENT_STORAGE),
            "{name}: {err}"
        );
        std::fs::remove_file(filler).unwrap();
        let shnum = ShareNumber::new(0);
        let now = m.read_share_chunk(&si, shnum, 0, 8 << 20).await.unwrap();
        assert!(
            now[..] == old[..] || now[..] == new[..],
            "{name}: the slot is torn ({} bytes)",
            now.len()
        );
        let newer = random_bytes(2 << 20);
        m.read_test_write(&si, &s.we, &s.renew, &s.cancel, &slot_write(0, 0, &newer))
            .await
            .unwrap();
        let mut want = if now[..] == new[..] {
            new.clone()
        } else {
            old.clone()
        };
        want.resize(want.len().max(newer.len()), 0);
        want[..newer.len()].copy_from_slice(&newer);
        let server = server.restart(|_| {}).await;
        let back = server
            .client
            .mutable()
            .read_share_chunk(&si, shnum, 0, 8 << 20)
            .await
            .unwrap();
        assert!(back[..] == want[..], "{name}: after a restart");
        server.stop().await;
    }
}

/// An `EIO` from the in-place write of a logged slot change: the client gets a 5xx,
/// reads of the slot fail rather than show a torn share while the fault lasts, and the
/// change is applied from its redo once the disk works (live), or at the next start.
#[tokio::test]
async fn a_failed_in_place_slot_write_is_repaired_from_its_redo() {
    for restart_first in [false, true] {
        let (server, plan) = swamp_tests::start_with_faults().await;
        let (si, s) = (random_si(), Secrets::random());
        let m = server.client.mutable();
        m.read_test_write(
            &si,
            &s.we,
            &s.renew,
            &s.cancel,
            &slot_write(0, 0, b"old version"),
        )
        .await
        .unwrap();
        plan.fail_writes(5);
        let err = m
            .read_test_write(&si, &s.we, &s.renew, &s.cancel, &slot_write(0, 0, b"NEW"))
            .await
            .unwrap_err();
        assert_eq!(
            err.status(),
            Some(StatusCode::INTERNAL_SERVER_ERROR),
            "{err}"
        );
        let shnum = ShareNumber::new(0);
        let err = m.read_share_chunk(&si, shnum, 0, 100).await.unwrap_err();
        assert_eq!(
            err.status(),
            Some(StatusCode::INTERNAL_SERVER_ERROR),
            "{err}"
        );
        let server = if restart_first {
            // The restarted node has no injected faults: replay repairs the share.
            server.restart(|_| {}).await
        } else {
            plan.heal();
            server
        };
        let back = server
            .client
            .mutable()
            .read_share_chunk(&si, shnum, 0, 100)
            .await
            .unwrap();
        assert_eq!(&back[..], b"NEW version", "restart first: {restart_first}");
        server.stop().await;
    }
}

/// An injected `EIO` from the sync of a completed upload: never acknowledged, the
/// partial share is gone, and the client can upload again from the start.
#[tokio::test]
async fn a_failed_sync_of_an_upload_is_never_acknowledged() {
    let (server, plan) = swamp_tests::start_with_faults().await;
    let (si, s) = (random_si(), Secrets::random());
    let share = ShareNumber::new(3);
    let imm = server.client.immutable();
    let data = random_bytes(100_000);
    s.allocate(&server.client, &si, [share], data.len() as u64)
        .await;
    plan.fail_syncs(5);
    let err = imm
        .write_share_chunk(&si, share, &s.upload, 0, data.clone())
        .await
        .unwrap_err();
    assert_eq!(
        err.status(),
        Some(StatusCode::INTERNAL_SERVER_ERROR),
        "{err}"
    );
    plan.heal();
    assert!(imm.list_shares(&si).await.unwrap().is_empty());
    // The upload was discarded: the same write finds no upload; a new one works.
    let err = imm
        .write_share_chunk(&si, share, &s.upload, 0, data.clone())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::NOT_FOUND), "{err}");
    swamp_tests::upload_share(&server.client, &si, &s, 3, &data).await;
    let back = imm
        .read_share_chunk(&si, share, 0, data.len() as u64)
        .await
        .unwrap();
    assert_eq!(back, data);
}
