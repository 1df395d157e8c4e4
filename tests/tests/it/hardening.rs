//! Hostile requests against the storage layer (issue: "no request can crash, starve or
//! corrupt a node"): offsets, sizes and counts a client names never decide what the
//! node holds in memory, open files or work; each attack gets a clear 4xx or 503 and
//! a well-behaved client keeps getting answers.

use std::collections::BTreeMap;
use std::time::Duration;

use http::StatusCode;
use swamp_proto::ShareNumber;
use swamp_proto::v1::{ReadTestWriteRequest, ReadVector, TestVector};
use swamp_tests::{Secrets, TestOptions, TestServer, random_bytes, random_si, slot_write as write};
use tokio::io::AsyncWriteExt;

/// This process's resident memory, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Open file descriptors of this process.
fn open_files() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[tokio::test]
async fn a_write_at_a_petabyte_offset_is_refused_and_the_node_lives() {
    let server = TestServer::start().await;
    let (si, s) = (random_si(), Secrets::random());
    let m = server.client.mutable();
    let err = m
        .read_test_write(&si, &s.we, &s.renew, &s.cancel, &write(0, 1 << 50, b"x"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::PAYLOAD_TOO_LARGE), "{err}");
    assert!(err.to_string().contains("maximum"), "{err}");
    // Nothing was created, and the node still answers.
    assert!(m.list_shares(&si).await.unwrap().is_empty());
    server.client.general().version().await.unwrap();
}

#[tokio::test]
async fn a_write_at_four_gib_makes_a_sparse_share_without_holding_it() {
    let server = TestServer::start().await;
    let (si, s) = (random_si(), Secrets::random());
    let m = server.client.mutable();
    m.read_test_write(&si, &s.we, &s.renew, &s.cancel, &write(0, 0, b"head"))
        .await
        .unwrap();
    let before = rss();
    let r = m
        .read_test_write(&si, &s.we, &s.renew, &s.cancel, &write(0, 4 << 30, b"x"))
        .await
        .unwrap();
    assert!(r.success);
    // A test vector naming a huge size, and one naming the whole 4 GiB, read nothing
    // they cannot match.
    let mut req = write(0, 0, b"head");
    req.test_write_vectors.get_mut(&0).unwrap().test = vec![TestVector {
        offset: 0,
        size: u64::MAX,
        specimen: b"head".to_vec(),
    }];
    let r = m
        .read_test_write(&si, &s.we, &s.renew, &s.cancel, &req)
        .await
        .unwrap();
    assert!(!r.success, "the clipped share is 4 GiB, not 4 bytes");
    let grown = rss().saturating_sub(before);
    assert!(grown < 256 << 20, "the node grew by {grown} bytes");
    let tail = m
        .read_share_chunk(&si, ShareNumber::new(0), (4 << 30) - 2, 3)
        .await
        .unwrap();
    assert_eq!(&tail[..], b"\0\0x");
    let path = swamp_tests::share_file(&server.shares_dir(), &si, 0);
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).unwrap();
    assert!(meta.len() > 4 << 30);
    assert!(meta.blocks() * 512 < 16 << 20, "sparse, as Tahoe's");
}

#[tokio::test]
async fn read_vectors_past_the_answer_bound_get_413() {
    let mut options = TestOptions::default();
    options.limits.max_read_answer_size = 1000;
    let server = TestServer::start_with(options).await;
    let (si, s) = (random_si(), Secrets::random());
    let m = server.client.mutable();
    let mut req = write(0, 0, &[1; 800]);
    req.test_write_vectors
        .insert(1, req.test_write_vectors[&0].clone());
    m.read_test_write(&si, &s.we, &s.renew, &s.cancel, &req)
        .await
        .unwrap();
    let read = |offset, size| ReadTestWriteRequest {
        test_write_vectors: BTreeMap::new(),
        read_vector: vec![ReadVector { offset, size }],
    };
    let err = m
        .read_test_write(&si, &s.we, &s.renew, &s.cancel, &read(0, 800))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::PAYLOAD_TOO_LARGE), "{err}");
    // Sizes are clipped to the shares before they count: 2 x 400 fits.
    let r = m
        .read_test_write(&si, &s.we, &s.renew, &s.cancel, &read(400, u64::MAX))
        .await
        .unwrap();
    assert_eq!(r.data[&0][0].len(), 400);
}

#[tokio::test]
async fn large_slot_reads_come_in_chunks_of_one_version() {
    let server = TestServer::start().await;
    let (si, s) = (random_si(), Secrets::random());
    let m = server.client.mutable();
    let data = random_bytes(20 << 20);
    m.read_test_write(&si, &s.we, &s.renew, &s.cancel, &write(0, 0, &data))
        .await
        .unwrap();
    let back = server
        .raw_client()
        .get(format!("https://{}/storage/v1/mutable/{si}/0", server.addr))
        .header("authorization", server.nurl.swissnum.authorization_header())
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), StatusCode::OK);
    assert_eq!(back.bytes().await.unwrap(), data);
    // A chunk after a write to the slot is refused rather than mixed in.
    let shnum = ShareNumber::new(0);
    let (_, _, stamp) = server
        .storage
        .read_slot_chunk(&si, shnum, 0, 10, None)
        .unwrap();
    m.read_test_write(&si, &s.we, &s.renew, &s.cancel, &write(0, 5, b"new"))
        .await
        .unwrap();
    let again = server
        .storage
        .read_slot_chunk(&si, shnum, 10, 10, Some(stamp));
    assert!(
        matches!(again, Err(swamp_server::testing::StorageError::Changed)),
        "{again:?}"
    );
}

#[tokio::test]
async fn uploads_in_progress_are_capped_and_pin_no_files() {
    let mut options = TestOptions::default();
    options.limits.max_uploads_in_progress = 300;
    let server = TestServer::start_with(options).await;
    let s = Secrets::random();
    let imm = server.client.immutable();
    let files_before = open_files();
    let mut open = Vec::new();
    for _ in 0..30 {
        let si = random_si();
        let got = s
            .allocate(&server.client, &si, (0..10).map(ShareNumber::new), 100_000)
            .await;
        assert_eq!(got.allocated.0.len(), 10);
        for shnum in 0..10 {
            imm.write_share_chunk(&si, ShareNumber::new(shnum), &s.upload, 0, vec![7; 5000])
                .await
                .unwrap();
        }
        open.push(si);
    }
    assert_eq!(server.storage.uploads_in_progress(), 300);
    let grown = open_files().saturating_sub(files_before);
    assert!(
        grown < 30,
        "300 uploads in progress hold {grown} more open files"
    );
    // The cap: no room for any share of a new storage index.
    let err = imm
        .allocate(
            &random_si(),
            &s.upload,
            &s.renew,
            &s.cancel,
            [ShareNumber::new(0)],
            10,
        )
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::SERVICE_UNAVAILABLE), "{err}");
    // Finishing uploads makes room again.
    let si = open[0];
    for shnum in 0..10 {
        imm.abort(&si, ShareNumber::new(shnum), &s.upload)
            .await
            .unwrap();
    }
    let got = s
        .allocate(&server.client, &random_si(), [ShareNumber::new(0)], 10)
        .await;
    assert_eq!(got.allocated.0.len(), 1);
}

#[tokio::test]
async fn scattered_writes_past_the_piece_bound_get_400() {
    let server = TestServer::start().await;
    let (si, s) = (random_si(), Secrets::random());
    let imm = server.client.immutable();
    let pieces = swamp_server::testing::MAX_UPLOAD_PIECES as u64;
    let share = ShareNumber::new(0);
    s.allocate(&server.client, &si, [share], 2 * pieces + 10)
        .await;
    for i in 0..pieces {
        imm.write_share_chunk(&si, share, &s.upload, 2 * i, vec![1])
            .await
            .unwrap();
    }
    let err = imm
        .write_share_chunk(&si, share, &s.upload, 2 * pieces, vec![1])
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::BAD_REQUEST), "{err}");
    // Filling a gap merges pieces, and is still accepted.
    let done = imm
        .write_share_chunk(&si, share, &s.upload, 1, vec![1])
        .await
        .unwrap();
    assert!(!done.complete);
}

#[tokio::test]
async fn request_bodies_share_one_memory_budget() {
    let mut options = TestOptions::default();
    options.limits.max_patch_size = 64 << 10;
    options.limits.max_read_test_write_size = 64 << 10;
    options.limits.max_bodies_in_flight = 64 << 10;
    options.limits.body_budget_wait = Duration::from_millis(500);
    let server = TestServer::start_with(options).await;
    let (si, s) = (random_si(), Secrets::random());
    // A client announces a 60 KiB body and sends only part of it.
    let mut stalled = swamp_tests::feed::tls_http1(&server, None).await;
    use swamp_proto::secrets::{SecretKind, format_secret_header};
    let secrets = [
        format_secret_header(SecretKind::WriteEnabler, s.we.expose()),
        format_secret_header(SecretKind::LeaseRenew, s.renew.expose()),
        format_secret_header(SecretKind::LeaseCancel, s.cancel.expose()),
    ]
    .map(|v| format!("x-tahoe-authorization: {v}\r\n"))
    .concat();
    let head = format!(
        "POST /storage/v1/mutable/{si}/read-test-write HTTP/1.1\r\nhost: x\r\n\
         authorization: {}\r\n{secrets}content-type: application/cbor\r\n\
         accept: application/cbor\r\ncontent-length: {}\r\n\r\n",
        server.nurl.swissnum.authorization_header(),
        60 << 10
    );
    stalled.write_all(head.as_bytes()).await.unwrap();
    stalled.write_all(&[0xa2; 100]).await.unwrap();
    stalled.flush().await.unwrap();
    // Other bodies now find no room and are told to come back (the stalled request
    // reserves as soon as its headers are in; retry until it has).
    let m = server.client.mutable();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match m
            .read_test_write(&si, &s.we, &s.renew, &s.cancel, &write(0, 0, &[2; 8000]))
            .await
        {
            Err(e) if e.status() == Some(StatusCode::SERVICE_UNAVAILABLE) => break,
            other => assert!(
                tokio::time::Instant::now() < deadline,
                "never refused: {other:?}"
            ),
        }
    }
    // Requests without a body still go through.
    server.client.general().version().await.unwrap();
    // Once the stalled client goes away, its reservation is released.
    drop(stalled);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match m
            .read_test_write(&si, &s.we, &s.renew, &s.cancel, &write(0, 0, &[2; 8000]))
            .await
        {
            Ok(r) => {
                assert!(r.success);
                break;
            }
            Err(e) => assert!(tokio::time::Instant::now() < deadline, "still refused: {e}"),
        }
    }
}

#[tokio::test]
async fn renewing_a_slot_lease_writes_only_the_lease_bytes() {
    use std::os::unix::fs::MetadataExt;
    let server = TestServer::start().await;
    let (si, s) = (random_si(), Secrets::random());
    let m = server.client.mutable();
    let data = random_bytes(8 << 20);
    m.read_test_write(&si, &s.we, &s.renew, &s.cancel, &write(0, 0, &data))
        .await
        .unwrap();
    let path = swamp_tests::share_file(&server.shares_dir(), &si, 0);
    let before = std::fs::metadata(&path).unwrap();
    let other = Secrets::random();
    server
        .client
        .general()
        .add_or_renew_lease(&si, &other.renew, &other.cancel)
        .await
        .unwrap();
    let after = std::fs::metadata(&path).unwrap();
    // The same file, changed in place (not rewritten whole and renamed over).
    assert_eq!(before.ino(), after.ino());
    assert_eq!(
        before.len(),
        after.len(),
        "a free header slot took the lease"
    );
    let back = m
        .read_share_chunk(&si, ShareNumber::new(0), 0, data.len() as u64)
        .await
        .unwrap();
    assert!(back[..] == data[..]);
    let file = std::fs::File::open(&path).unwrap();
    let leases = swamp_server::testing::mutable::Container::open(file)
        .unwrap()
        .leases();
    assert_eq!(leases.len(), 2);
}
