//! Slots: read-test-write semantics as Tahoe's `slot_testv_and_readv_and_writev`.

use std::collections::BTreeMap;

use http::StatusCode;
use swamp_proto::ShareNumber;
use swamp_proto::v1::{
    ReadTestWriteRequest, ReadVector, TestVector, TestWriteVectors, WriteVector,
};
use swamp_tests::{Secrets, TestServer, random_si, slot_write as write};

#[tokio::test]
async fn write_then_read_back() {
    let server = TestServer::start().await;
    let (si, s) = (random_si(), Secrets::random());
    let m = server.client.mutable();
    let mut req = write(0, 0, b"abcdefghij");
    req.test_write_vectors
        .get_mut(&0)
        .unwrap()
        .test
        .push(TestVector {
            offset: 0,
            size: 1,
            specimen: vec![],
        });
    let r = m
        .read_test_write(&si, &s.we, &s.renew, &s.cancel, &req)
        .await
        .unwrap();
    assert!(r.success);
    assert!(r.data.is_empty(), "no share existed before");
    assert_eq!(
        &m.read_share_chunk(&si, ShareNumber::new(0), 2, 3)
            .await
            .unwrap()[..],
        b"cde"
    );
    assert_eq!(m.list_shares(&si).await.unwrap().len(), 1);
    // The "absent or empty" test idiom now fails.
    let r = m
        .read_test_write(&si, &s.we, &s.renew, &s.cancel, &req)
        .await
        .unwrap();
    assert!(!r.success);
}

#[tokio::test]
async fn failed_test_writes_nothing_and_reads_happen_before_writes() {
    let server = TestServer::start().await;
    let (si, s) = (random_si(), Secrets::random());
    let m = server.client.mutable();
    for shnum in [0, 1] {
        assert!(
            m.read_test_write(
                &si,
                &s.we,
                &s.renew,
                &s.cancel,
                &write(shnum, 0, b"0123456789")
            )
            .await
            .unwrap()
            .success
        );
    }
    // Test on share 0 fails: nothing is written anywhere; reads still cover both shares.
    let mut tw = BTreeMap::new();
    tw.insert(
        0,
        TestWriteVectors {
            test: vec![TestVector {
                offset: 0,
                size: 3,
                specimen: b"XXX".to_vec(),
            }],
            write: vec![WriteVector {
                offset: 0,
                data: b"new".to_vec(),
            }],
            new_length: None,
        },
    );
    let req = ReadTestWriteRequest {
        test_write_vectors: tw.clone(),
        read_vector: vec![
            ReadVector { offset: 1, size: 2 },
            ReadVector {
                offset: 8,
                size: 10,
            },
        ],
    };
    let r = m
        .read_test_write(&si, &s.we, &s.renew, &s.cancel, &req)
        .await
        .unwrap();
    assert!(!r.success);
    assert_eq!(r.data.len(), 2, "read vectors run on every existing share");
    assert_eq!(&r.data[&1][0][..], b"12");
    assert_eq!(&r.data[&1][1][..], b"89", "clipped at the end");
    assert_eq!(
        &m.read_share_chunk(&si, ShareNumber::new(0), 0, 3)
            .await
            .unwrap()[..],
        b"012"
    );
    // Passing test: the read shows the old data, the write lands.
    tw.get_mut(&0).unwrap().test[0].specimen = b"012".to_vec();
    let req = ReadTestWriteRequest {
        test_write_vectors: tw,
        read_vector: vec![ReadVector { offset: 0, size: 3 }],
    };
    let r = m
        .read_test_write(&si, &s.we, &s.renew, &s.cancel, &req)
        .await
        .unwrap();
    assert!(r.success);
    assert_eq!(
        &r.data[&0][0][..],
        b"012",
        "reads see the state before the writes"
    );
    assert_eq!(
        &m.read_share_chunk(&si, ShareNumber::new(0), 0, 3)
            .await
            .unwrap()[..],
        b"new"
    );
}

#[tokio::test]
async fn wrong_write_enabler_is_refused() {
    let server = TestServer::start().await;
    let (si, s) = (random_si(), Secrets::random());
    let m = server.client.mutable();
    m.read_test_write(&si, &s.we, &s.renew, &s.cancel, &write(0, 0, b"x"))
        .await
        .unwrap();
    let other = Secrets::random();
    let err = m
        .read_test_write(&si, &other.we, &s.renew, &s.cancel, &write(1, 0, b"y"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED));
    assert_eq!(
        m.list_shares(&si).await.unwrap().len(),
        1,
        "nothing was written"
    );
}

#[tokio::test]
async fn holes_are_zero_filled_new_length_truncates_and_zero_deletes() {
    let server = TestServer::start().await;
    let (si, s) = (random_si(), Secrets::random());
    let m = server.client.mutable();
    let n = ShareNumber::new(2);
    m.read_test_write(&si, &s.we, &s.renew, &s.cancel, &write(2, 0, b"abc"))
        .await
        .unwrap();
    m.read_test_write(&si, &s.we, &s.renew, &s.cancel, &write(2, 6, b"xyz"))
        .await
        .unwrap();
    assert_eq!(
        &m.read_share_chunk(&si, n, 0, 100).await.unwrap()[..],
        b"abc\0\0\0xyz"
    );
    let mut req = write(2, 0, b"A");
    req.test_write_vectors.get_mut(&2).unwrap().new_length = Some(4);
    m.read_test_write(&si, &s.we, &s.renew, &s.cancel, &req)
        .await
        .unwrap();
    assert_eq!(
        &m.read_share_chunk(&si, n, 0, 100).await.unwrap()[..],
        b"Abc\0"
    );
    let mut req = write(2, 0, b"");
    req.test_write_vectors.get_mut(&2).unwrap().write.clear();
    req.test_write_vectors.get_mut(&2).unwrap().new_length = Some(100);
    m.read_test_write(&si, &s.we, &s.renew, &s.cancel, &req)
        .await
        .unwrap();
    assert_eq!(
        m.read_share_chunk(&si, n, 0, 100).await.unwrap().len(),
        4,
        "new-length never grows"
    );
    req.test_write_vectors.get_mut(&2).unwrap().new_length = Some(0);
    assert!(
        m.read_test_write(&si, &s.we, &s.renew, &s.cancel, &req)
            .await
            .unwrap()
            .success
    );
    assert!(m.list_shares(&si).await.unwrap().is_empty());
    let bucket = server
        .shares_dir()
        .join(si.dir_prefix())
        .join(si.to_base32());
    assert!(!bucket.exists(), "the empty bucket directory is removed");
}

#[tokio::test]
async fn large_share_in_one_request() {
    let server = TestServer::start().await;
    let (si, s) = (random_si(), Secrets::random());
    let data = swamp_tests::random_bytes(5 * 1024 * 1024);
    let m = server.client.mutable();
    assert!(
        m.read_test_write(&si, &s.we, &s.renew, &s.cancel, &write(0, 0, &data))
            .await
            .unwrap()
            .success
    );
    let back = m
        .read_share_chunk(&si, ShareNumber::new(0), 0, data.len() as u64)
        .await
        .unwrap();
    assert!(back[..] == data[..]);
}

#[tokio::test]
async fn mutable_corruption_advisory() {
    let server = TestServer::start().await;
    let (si, s) = (random_si(), Secrets::random());
    let m = server.client.mutable();
    m.read_test_write(&si, &s.we, &s.renew, &s.cancel, &write(4, 0, b"x"))
        .await
        .unwrap();
    m.advise_corrupt(&si, ShareNumber::new(4), "signature does not verify")
        .await
        .unwrap();
    assert_eq!(
        m.advise_corrupt(&si, ShareNumber::new(5), "x")
            .await
            .unwrap_err()
            .status(),
        Some(StatusCode::NOT_FOUND)
    );
    let report = std::fs::read_dir(server.storage_dir.join("corruption-advisories"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(
        std::fs::read_to_string(report)
            .unwrap()
            .contains("type: mutable\n")
    );
}

#[tokio::test]
async fn reading_a_slot_as_immutable_finds_nothing() {
    let server = TestServer::start().await;
    let (si, s) = (random_si(), Secrets::random());
    server
        .client
        .mutable()
        .read_test_write(&si, &s.we, &s.renew, &s.cancel, &write(0, 0, b"slot"))
        .await
        .unwrap();
    let err = server
        .client
        .immutable()
        .read_share_chunk(&si, ShareNumber::new(0), 0, 4)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::NOT_FOUND));
}
