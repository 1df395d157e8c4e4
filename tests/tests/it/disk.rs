//! The disk format and durability: what lands under `shares/`, and what survives a
//! restart.

use std::time::Duration;

use swamp_proto::ShareNumber;
use swamp_server::node::Limits;
use swamp_tests::{Secrets, TestOptions, TestServer, random_si, share_file};

#[tokio::test]
async fn immutable_container_matches_tahoe_layout() {
    let server = TestServer::start().await;
    let (si, s) = (random_si(), Secrets::random());
    swamp_tests::upload_share(&server.client, &si, &s, 7, b"hello").await;
    let bytes = std::fs::read(share_file(&server.shares_dir(), &si, 7)).unwrap();
    assert_eq!(bytes.len(), 12 + 5 + 72, "header, data, one lease");
    assert_eq!(&bytes[0..4], &2u32.to_be_bytes(), "container version 2");
    assert_eq!(&bytes[4..8], &5u32.to_be_bytes(), "legacy length");
    assert_eq!(&bytes[8..12], &1u32.to_be_bytes(), "one lease");
    assert_eq!(&bytes[12..17], b"hello");
}

#[tokio::test]
async fn mutable_container_matches_tahoe_layout() {
    let server = TestServer::start().await;
    let (si, s) = (random_si(), Secrets::random());
    swamp_tests::write_slot(&server.client, &si, &s, 1, b"slotdata").await;
    let bytes = std::fs::read(share_file(&server.shares_dir(), &si, 1)).unwrap();
    assert_eq!(&bytes[..27], b"Tahoe mutable container v2\n");
    assert_eq!(
        &bytes[32..52],
        &server.identity.tubid,
        "the node id is the tubid"
    );
    assert_eq!(
        &bytes[52..84],
        s.we.expose(),
        "write enabler in the clear, as Tahoe keeps it"
    );
    assert_eq!(&bytes[84..92], &8u64.to_be_bytes(), "data length");
    assert_eq!(
        &bytes[92..100],
        &(468u64 + 8).to_be_bytes(),
        "extra-lease offset follows the data"
    );
    assert_eq!(&bytes[468..476], b"slotdata");
    assert_eq!(bytes.len(), 468 + 8 + 4);
    // Temporary files of the atomic replace are gone.
    let bucket = share_file(&server.shares_dir(), &si, 1)
        .parent()
        .unwrap()
        .to_path_buf();
    assert_eq!(std::fs::read_dir(bucket).unwrap().count(), 1);
}

#[tokio::test]
async fn shares_survive_a_restart_and_partial_uploads_do_not() {
    let server = TestServer::start().await;
    let (si, s) = (random_si(), Secrets::random());
    let imm = server.client.immutable();
    s.allocate(
        &server.client,
        &si,
        [ShareNumber::new(0), ShareNumber::new(1)],
        4,
    )
    .await;
    imm.write_share_chunk(&si, ShareNumber::new(0), &s.upload, 0, b"done".to_vec())
        .await
        .unwrap();
    imm.write_share_chunk(&si, ShareNumber::new(1), &s.upload, 0, b"ha".to_vec())
        .await
        .unwrap();
    let nurl = server.nurl.to_string();
    let (dir, storage_dir, identity) = server.stop().await;
    let _keep = dir;

    let server = TestServer::start_on(storage_dir, identity, TestOptions::default()).await;
    assert_eq!(
        server.nurl.to_string(),
        nurl.replace(
            &format!(":{}/", nurl_port(&nurl)),
            &format!(":{}/", server.addr.port())
        )
    );
    let held = server.client.immutable().list_shares(&si).await.unwrap();
    assert_eq!(
        held.into_iter().collect::<Vec<_>>(),
        vec![ShareNumber::new(0)],
        "only the complete share"
    );
    assert_eq!(
        &server
            .client
            .immutable()
            .read_share_chunk(&si, ShareNumber::new(0), 0, 4)
            .await
            .unwrap()[..],
        b"done"
    );
    assert_eq!(
        std::fs::read_dir(server.shares_dir().join("incoming"))
            .unwrap()
            .count(),
        0,
        "incoming wiped at start"
    );
    // The partial share can be uploaded again.
    let again = s
        .allocate(&server.client, &si, [ShareNumber::new(1)], 4)
        .await;
    assert_eq!(again.allocated.0.len(), 1);
}

/// Uploads written around the page cache (the default) and the ordinary way leave the
/// same container on disk, whatever order and sizes the writes come in: partial blocks
/// at write edges, rewrites of the same bytes, a refused conflicting rewrite.
#[tokio::test]
async fn direct_and_ordinary_upload_writes_store_the_same_bytes() {
    let direct = TestServer::start().await;
    let ordinary = TestServer::start_with(TestOptions {
        direct_upload_writes: false,
        ..TestOptions::default()
    })
    .await;
    let (si, s) = (random_si(), Secrets::random());
    let data = swamp_tests::random_bytes(5 * 4096 + 1000);
    // Out of order, with edges inside blocks, a rewrite across two earlier pieces.
    let pieces = [(9000, 4000), (0, 3000), (2500, 7000), (13000, 8480)];
    let share = ShareNumber::new(3);
    for server in [&direct, &ordinary] {
        let imm = server.client.immutable();
        s.allocate(&server.client, &si, [share], data.len() as u64)
            .await;
        let mut changed = data[100..200].to_vec();
        changed[7] ^= 1;
        for (i, &(at, len)) in pieces.iter().enumerate() {
            let chunk = data[at..at + len].to_vec();
            let status = imm
                .write_share_chunk(&si, share, &s.upload, at as u64, chunk)
                .await
                .unwrap();
            assert_eq!(status.complete, i == pieces.len() - 1, "piece {i}");
            if i == 1 {
                let refused = imm
                    .write_share_chunk(&si, share, &s.upload, 100, changed.clone())
                    .await
                    .unwrap_err();
                assert_eq!(refused.status(), Some(http::StatusCode::CONFLICT));
            }
        }
        let back = imm
            .read_share_chunk(&si, share, 0, data.len() as u64)
            .await
            .unwrap();
        assert_eq!(&back[..], &data[..]);
    }
    let on_disk =
        |server: &TestServer| std::fs::read(share_file(&server.shares_dir(), &si, 3)).unwrap();
    let bytes = on_disk(&direct);
    assert_eq!(bytes.len(), 12 + data.len() + 72);
    assert_eq!(&bytes[12..12 + data.len()], &data[..]);
    assert_eq!(bytes, on_disk(&ordinary), "same container either way");
}

fn nurl_port(nurl: &str) -> u16 {
    nurl.split('@')
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn idle_uploads_are_aborted() {
    let limits = Limits {
        upload_idle_timeout: Duration::from_millis(200),
        ..Limits::default()
    };
    let server = TestServer::start_with(TestOptions {
        limits,
        ..TestOptions::default()
    })
    .await;
    let (si, s) = (random_si(), Secrets::random());
    let before = server.storage.available_space();
    s.allocate(&server.client, &si, [ShareNumber::new(0)], 1 << 30)
        .await;
    assert_eq!(server.storage.uploads_in_progress(), 1);
    assert!(
        server.storage.available_space() < before,
        "space is promised to the open upload"
    );
    // Bounded wait for the sweeper (it runs every 50 ms with this timeout).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while server.storage.uploads_in_progress() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "idle upload was never aborted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let err = server
        .client
        .immutable()
        .write_share_chunk(&si, ShareNumber::new(0), &s.upload, 0, b"x".to_vec())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(http::StatusCode::NOT_FOUND));
}

#[tokio::test]
async fn version_reports_disk_space_minus_reserve() {
    const RESERVE: u64 = 10 << 30;
    const SLACK: u64 = 512 << 20; // other processes write to the same disk meanwhile
    let server = TestServer::start_with(TestOptions {
        reserved_space: RESERVE,
        ..TestOptions::default()
    })
    .await;
    let v = server.client.general().version().await.unwrap();
    let expected = rustix_free(&server.shares_dir()).saturating_sub(RESERVE);
    assert!(
        v.storage.available_space.abs_diff(expected) < SLACK,
        "{} vs {expected}",
        v.storage.available_space
    );
    assert_eq!(
        v.storage.maximum_immutable_share_size,
        v.storage.available_space
    );
    assert!(v.application_version.starts_with(b"swamp/"));
}

fn rustix_free(path: &std::path::Path) -> u64 {
    let out = std::process::Command::new("df")
        .arg("-B1")
        .arg("--output=avail")
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn shutdown_finishes_with_a_connection_open() {
    let server = TestServer::start().await;
    server.client.general().version().await.unwrap();
    // The client keeps its HTTP/2 connection open; stop must still return promptly.
    let stopped = tokio::time::timeout(Duration::from_secs(15), server.stop()).await;
    assert!(stopped.is_ok(), "serve returned after shutdown");
}
