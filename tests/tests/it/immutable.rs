//! Immutable shares: allocate, write, read, abort, list, advise corrupt.

use std::collections::BTreeSet;

use http::StatusCode;
use swamp_proto::ShareNumber;
use swamp_tests::{Secrets, TestServer, random_bytes, random_si};

fn shares(ns: &[u8]) -> BTreeSet<ShareNumber> {
    ns.iter().copied().map(ShareNumber::new).collect()
}

#[tokio::test]
async fn allocate_reports_new_shares_then_in_progress_ones_in_neither_set() {
    let server = TestServer::start().await;
    let (si, s) = (random_si(), Secrets::random());
    let first = s
        .allocate(&server.client, &si, shares(&[0, 1, 2]), 100)
        .await;
    assert_eq!(first.allocated.0, shares(&[0, 1, 2]));
    assert!(first.already_have.0.is_empty());
    // Same again, even with another upload secret: uploads in progress are in neither set.
    let other = Secrets::random();
    let again = other
        .allocate(&server.client, &si, shares(&[1, 2, 3]), 100)
        .await;
    assert_eq!(again.allocated.0, shares(&[3]));
    assert!(again.already_have.0.is_empty());
}

#[tokio::test]
async fn written_share_reads_back_and_is_reported_as_already_held() {
    let server = TestServer::start().await;
    let (si, s) = (random_si(), Secrets::random());
    let imm = server.client.immutable();
    let data = random_bytes(3000);
    s.allocate(&server.client, &si, shares(&[5]), 3000).await;
    // Out of order: the tail first, then the head.
    let tail = imm
        .write_share_chunk(
            &si,
            ShareNumber::new(5),
            &s.upload,
            1000,
            data[1000..].to_vec(),
        )
        .await
        .unwrap();
    assert!(!tail.complete);
    assert_eq!(tail.progress.required.len(), 1);
    assert_eq!(
        (
            tail.progress.required[0].begin,
            tail.progress.required[0].end
        ),
        (0, 1000)
    );
    let head = imm
        .write_share_chunk(
            &si,
            ShareNumber::new(5),
            &s.upload,
            0,
            data[..1000].to_vec(),
        )
        .await
        .unwrap();
    assert!(
        head.complete,
        "the last missing range completes the share (201)"
    );
    assert!(head.progress.required.is_empty());

    assert_eq!(
        &imm.read_share_chunk(&si, ShareNumber::new(5), 0, 3000)
            .await
            .unwrap()[..],
        &data[..]
    );
    assert_eq!(
        &imm.read_share_chunk(&si, ShareNumber::new(5), 10, 20)
            .await
            .unwrap()[..],
        &data[10..30]
    );
    // A read past the end is clipped; one starting at the end is empty (204).
    assert_eq!(
        &imm.read_share_chunk(&si, ShareNumber::new(5), 2990, 100)
            .await
            .unwrap()[..],
        &data[2990..]
    );
    assert!(
        imm.read_share_chunk(&si, ShareNumber::new(5), 3000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(imm.list_shares(&si).await.unwrap(), shares(&[5]));

    let other = Secrets::random();
    let realloc = other
        .allocate(&server.client, &si, shares(&[5, 6]), 3000)
        .await;
    assert_eq!(realloc.already_have.0, shares(&[5]));
    assert_eq!(realloc.allocated.0, shares(&[6]));

    // A complete share is no longer an upload.
    let err = imm
        .write_share_chunk(&si, ShareNumber::new(5), &s.upload, 0, vec![1u8])
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::NOT_FOUND));
}

#[tokio::test]
async fn overlapping_writes_must_match() {
    let server = TestServer::start().await;
    let (si, s) = (random_si(), Secrets::random());
    let imm = server.client.immutable();
    let n = ShareNumber::new(0);
    s.allocate(&server.client, &si, shares(&[0]), 10).await;
    imm.write_share_chunk(&si, n, &s.upload, 0, b"abcdef".to_vec())
        .await
        .unwrap();
    // Same bytes again: fine.
    imm.write_share_chunk(&si, n, &s.upload, 2, b"cd".to_vec())
        .await
        .unwrap();
    let err = imm
        .write_share_chunk(&si, n, &s.upload, 4, b"XX".to_vec())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::CONFLICT));
    let done = imm
        .write_share_chunk(&si, n, &s.upload, 4, b"efghij".to_vec())
        .await
        .unwrap();
    assert!(done.complete);
    assert_eq!(
        &imm.read_share_chunk(&si, n, 0, 10).await.unwrap()[..],
        b"abcdefghij"
    );
}

#[tokio::test]
async fn writes_need_the_upload_secret_and_stay_inside_the_allocation() {
    let server = TestServer::start().await;
    let (si, s) = (random_si(), Secrets::random());
    let imm = server.client.immutable();
    let n = ShareNumber::new(1);
    s.allocate(&server.client, &si, shares(&[1]), 10).await;
    let wrong = Secrets::random();
    let err = imm
        .write_share_chunk(&si, n, &wrong.upload, 0, b"a".to_vec())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED));
    let err = imm
        .write_share_chunk(&si, n, &s.upload, 5, b"0123456789".to_vec())
        .await
        .unwrap_err();
    assert_eq!(
        err.status(),
        Some(StatusCode::RANGE_NOT_SATISFIABLE),
        "past the allocation is the client's error"
    );
    let err = imm
        .write_share_chunk(&si, ShareNumber::new(9), &s.upload, 0, b"a".to_vec())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::NOT_FOUND), "no such upload");
}

#[tokio::test]
async fn abort_frees_the_share_for_a_new_upload() {
    let server = TestServer::start().await;
    let (si, s) = (random_si(), Secrets::random());
    let imm = server.client.immutable();
    let n = ShareNumber::new(3);
    s.allocate(&server.client, &si, shares(&[3]), 10).await;
    imm.write_share_chunk(&si, n, &s.upload, 0, b"abc".to_vec())
        .await
        .unwrap();
    let wrong = Secrets::random();
    assert_eq!(
        imm.abort(&si, n, &wrong.upload).await.unwrap_err().status(),
        Some(StatusCode::UNAUTHORIZED)
    );
    imm.abort(&si, n, &s.upload).await.unwrap();
    assert_eq!(
        imm.abort(&si, n, &s.upload).await.unwrap_err().status(),
        Some(StatusCode::NOT_FOUND)
    );
    assert!(imm.list_shares(&si).await.unwrap().is_empty());
    let incoming = server.shares_dir().join("incoming");
    assert_eq!(
        std::fs::read_dir(&incoming).unwrap().count(),
        0,
        "incoming is cleaned up"
    );
    // A new upload of the same share now works, with different content.
    let again = s.allocate(&server.client, &si, shares(&[3]), 10).await;
    assert_eq!(again.allocated.0, shares(&[3]));
    let done = imm
        .write_share_chunk(&si, n, &s.upload, 0, b"XYZXYZXYZX".to_vec())
        .await
        .unwrap();
    assert!(done.complete);
    // Abort of a complete share: 405.
    assert_eq!(
        imm.abort(&si, n, &s.upload).await.unwrap_err().status(),
        Some(StatusCode::METHOD_NOT_ALLOWED)
    );
}

#[tokio::test]
async fn list_of_unknown_index_is_empty_and_reads_of_unknown_shares_404() {
    let server = TestServer::start().await;
    let si = random_si();
    assert!(
        server
            .client
            .immutable()
            .list_shares(&si)
            .await
            .unwrap()
            .is_empty()
    );
    let err = server
        .client
        .immutable()
        .read_share_chunk(&si, ShareNumber::new(0), 0, 10)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::NOT_FOUND));
}

#[tokio::test]
async fn corruption_advisory_is_recorded_for_held_shares_only() {
    let server = TestServer::start().await;
    let (si, s) = (random_si(), Secrets::random());
    let imm = server.client.immutable();
    s.allocate(&server.client, &si, shares(&[0]), 4).await;
    imm.write_share_chunk(&si, ShareNumber::new(0), &s.upload, 0, b"abcd".to_vec())
        .await
        .unwrap();
    imm.advise_corrupt(&si, ShareNumber::new(0), "bad block 7")
        .await
        .unwrap();
    let dir = server.storage_dir.join("corruption-advisories");
    let reports: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(reports.len(), 1);
    let name = reports[0]
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        name.ends_with(&format!("--{si}-0")) && !name.contains(':'),
        "{name}"
    );
    let text = std::fs::read_to_string(&reports[0]).unwrap();
    assert!(
        text.starts_with("report: Share Corruption\ntype: immutable\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "storage_index: {si}\nshare_number: 0\n\nbad block 7\n"
        )),
        "{text}"
    );
    let err = imm
        .advise_corrupt(&si, ShareNumber::new(1), "nope")
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::NOT_FOUND));
}

#[tokio::test]
async fn many_shares_upload_in_parallel() {
    let server = TestServer::start().await;
    let (si, s) = (random_si(), Secrets::random());
    let size = 3 * 1024 * 1024 + 17;
    let all: Vec<u8> = (0..10).collect();
    s.allocate(&server.client, &si, shares(&all), size as u64)
        .await;
    let datas: Vec<Vec<u8>> = all.iter().map(|_| random_bytes(size)).collect();
    let mut tasks = Vec::new();
    for (i, data) in datas.iter().enumerate() {
        let client = server.client.clone();
        let data = data.clone();
        let upload = s.upload.clone();
        tasks.push(tokio::spawn(async move {
            let mut offset = 0;
            let mut last = None;
            for chunk in data.chunks(1024 * 1024) {
                last = Some(
                    client
                        .immutable()
                        .write_share_chunk(
                            &si,
                            ShareNumber::new(i as u8),
                            &upload,
                            offset,
                            chunk.to_vec(),
                        )
                        .await
                        .unwrap(),
                );
                offset += chunk.len() as u64;
            }
            last.unwrap().complete
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap());
    }
    for (i, data) in datas.iter().enumerate() {
        let back = server
            .client
            .immutable()
            .read_share_chunk(&si, ShareNumber::new(i as u8), 0, size as u64)
            .await
            .unwrap();
        assert!(back[..] == data[..], "share {i} reads back");
    }
}
