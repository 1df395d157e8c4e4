//! Immutable files through the client library's grid: three real servers, 2-of-3.

use swamp_proto::cap::Cap;
use swamp_tests::{TestServer, grid_of, random_bytes};

#[tokio::test]
async fn upload_and_download_round_trip_tolerating_a_damaged_share() {
    let servers = [
        TestServer::start().await,
        TestServer::start().await,
        TestServer::start().await,
    ];
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

#[tokio::test]
async fn a_missing_server_is_tolerated_down_to_k() {
    let servers = [
        TestServer::start().await,
        TestServer::start().await,
        TestServer::start().await,
    ];
    let data = random_bytes(100_000);
    let Cap::Chk(chk) = grid_of(&servers).upload(&data).await.unwrap() else {
        panic!()
    };
    // A client that reaches only two of the three servers still reads the file...
    assert_eq!(grid_of(&servers[..2]).download(&chk).await.unwrap(), data);
    // ...but not with one.
    assert!(grid_of(&servers[..1]).download(&chk).await.is_err());
}
