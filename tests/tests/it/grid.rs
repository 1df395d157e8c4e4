//! Immutable files through the client library's grid: three real servers, 2-of-3.

use swamp_client::grid::GridError;
use swamp_formats::cap::Cap;
use swamp_tests::{TestServer, grid_of, random_bytes};

#[tokio::test]
async fn upload_and_download_round_trip_tolerating_a_damaged_share() {
    let servers = TestServer::three().await;
    let grid = grid_of(&servers);
    assert_eq!(
        grid.upload(b"tiny").await.unwrap(),
        Cap::Lit(b"tiny".to_vec()),
        "small files are LIT"
    );
    for size in [56usize, 1000, 2 * 1024 * 1024 + 5] {
        let data = random_bytes(size);
        let cap = grid.upload(&data).await.unwrap();
        let Cap::Chk(chk) = &cap else {
            panic!("expected a CHK cap")
        };
        assert_eq!(
            grid.upload(&data).await.unwrap(),
            cap,
            "convergent: same file, same cap"
        );
        assert_eq!(grid.download(chk).await.unwrap(), data, "{size} bytes");
        // Every server holds one share.
        for server in &servers {
            assert_eq!(
                server
                    .client
                    .immutable()
                    .list_shares(&chk.storage_index())
                    .await
                    .unwrap()
                    .len(),
                1
            );
        }
    }

    // Damage one share on disk: still readable from the other two, and the damaged
    // share is reported to its server.
    let data = random_bytes(300_000);
    let Cap::Chk(chk) = grid.upload(&data).await.unwrap() else {
        panic!()
    };
    let si = chk.storage_index();
    // The first server in permuted order is read first, so its share is used.
    let first = &grid.permuted(&si)[0].nurl;
    let victim = servers.iter().position(|s| &s.nurl == first).unwrap();
    let shnum = servers[victim]
        .client
        .immutable()
        .list_shares(&si)
        .await
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    let path = swamp_tests::share_file(&servers[victim].shares_dir(), &si, shnum.get());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[12 + 0x24 + 100] ^= 0xff; // a byte of the first block
    std::fs::write(&path, bytes).unwrap();
    assert_eq!(grid.download(&chk).await.unwrap(), data);
    let advisories = std::fs::read_dir(servers[victim].storage_dir.join("corruption-advisories"))
        .unwrap()
        .count();
    assert_eq!(advisories, 1, "the damaged share was reported");
}

/// A file of several write batches with an odd tail, uploaded from disk: every share
/// on the servers is byte for byte what the reference encoder makes (whose output is
/// pinned to real Tahoe's), and it downloads into a file intact.
#[tokio::test]
async fn a_streamed_file_upload_writes_exactly_the_reference_shares() {
    use swamp_formats::chk::{Params, convergent_key, encode};
    let servers = TestServer::three().await;
    let grid = grid_of(&servers);
    let dir = tempfile::tempdir().unwrap();
    let data = random_bytes(9 * 1024 * 1024 + 7);
    let path = dir.path().join("in");
    std::fs::write(&path, &data).unwrap();
    let Cap::Chk(chk) = grid.upload_file(&path).await.unwrap() else {
        panic!("expected a CHK cap")
    };
    let params = Params {
        needed: 2,
        total: 3,
        max_segment_size: swamp_formats::chk::DEFAULT_MAX_SEGMENT_SIZE,
    };
    // grid_of's convergence secret.
    let reference = encode(&data, convergent_key(&data, &params, &[9; 32]), &params).unwrap();
    assert_eq!(chk, reference.cap);
    let si = chk.storage_index();
    let mut seen = Vec::new();
    for server in &servers {
        for shnum in server.client.immutable().list_shares(&si).await.unwrap() {
            let share = server
                .client
                .immutable()
                .read_share_chunk(&si, shnum, 0, 1 << 30)
                .await
                .unwrap();
            let n = usize::from(shnum.get());
            assert!(share[..] == reference.shares[n][..], "share {n}");
            seen.push(n);
        }
    }
    seen.sort_unstable();
    assert_eq!(seen, [0, 1, 2]);
    let out = dir.path().join("out");
    let mut file = std::fs::File::create(&out).unwrap();
    grid.download_to(&chk, &mut file).await.unwrap();
    drop(file);
    assert!(std::fs::read(&out).unwrap() == data);
}

#[tokio::test]
async fn a_missing_server_is_tolerated_down_to_k() {
    let servers = TestServer::three().await;
    let data = random_bytes(100_000);
    let Cap::Chk(chk) = grid_of(&servers).upload(&data).await.unwrap() else {
        panic!()
    };
    // A client that reaches only two of the three servers still reads the file...
    assert_eq!(grid_of(&servers[..2]).download(&chk).await.unwrap(), data);
    // ...but not with one.
    assert!(grid_of(&servers[..1]).download(&chk).await.is_err());
}

#[tokio::test]
async fn upload_places_shares_around_a_dead_server_and_refuses_when_unhappy() {
    let mut servers = vec![
        TestServer::start().await,
        TestServer::start().await,
        TestServer::start().await,
        TestServer::start().await,
    ];
    // 2-of-3, happy 3, over four servers, one of which is about to die.
    let grid = grid_of(&servers);
    let dead = servers.remove(0);
    dead.stop().await;
    for seed in 0..4u8 {
        let mut data = random_bytes(100_000);
        data[0] = seed;
        let Cap::Chk(chk) = grid.upload(&data).await.unwrap() else {
            panic!("expected a CHK cap")
        };
        assert_eq!(grid.download(&chk).await.unwrap(), data);
        for server in &servers {
            let held = server
                .client
                .immutable()
                .list_shares(&chk.storage_index())
                .await
                .unwrap();
            assert_eq!(held.len(), 1, "each live server holds one share");
        }
    }
    // With two servers left, three distinct holders are impossible: refused, and the
    // space reserved is given back (no share appears).
    let second = servers.remove(0);
    second.stop().await;
    let data = random_bytes(100_000);
    match grid.upload(&data).await {
        Err(GridError::NotHappy {
            placed: 2,
            happy: 3,
        }) => {}
        other => panic!("expected NotHappy, got {other:?}"),
    }
    // The refused file's storage index, as the upload computed it (convergent key).
    let params = swamp_formats::chk::Params {
        needed: 2,
        total: 3,
        max_segment_size: swamp_formats::chk::DEFAULT_MAX_SEGMENT_SIZE,
    };
    let key = swamp_formats::chk::convergent_key(&data, &params, &[9; 32]);
    let si =
        swamp_proto::StorageIndex::from_bytes(swamp_formats::hashutil::storage_index_hash(&key));
    for server in &servers {
        let held = server.client.immutable().list_shares(&si).await.unwrap();
        assert!(held.is_empty(), "no share of a refused upload");
        let incoming = server.shares_dir().join("incoming");
        let pending = std::fs::read_dir(&incoming).map_or(0, |d| d.count());
        assert_eq!(pending, 0, "the reserved space was given back");
    }
}
