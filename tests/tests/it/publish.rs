//! Mutable files created and overwritten through the client library's grid: three
//! real servers, 2-of-3.

use swamp_client::grid::GridError;
use swamp_formats::cap::{MutableCap, MutableFormat};
use swamp_proto::ShareNumber;
use swamp_proto::v1::{ReadTestWriteRequest, TestWriteVectors};
use swamp_tests::{TestServer, grid_of, random_bytes};

async fn share_counts(servers: &[TestServer], cap: &MutableCap) -> Vec<usize> {
    let mut counts = Vec::new();
    for s in servers {
        let listed = s
            .client
            .mutable()
            .list_shares(&cap.storage_index())
            .await
            .unwrap();
        counts.push(listed.len());
    }
    counts
}

#[tokio::test]
async fn create_overwrite_and_detect_a_stale_writer() {
    let servers = TestServer::three().await;
    let grid = grid_of(&servers);
    for format in [MutableFormat::Sdmf, MutableFormat::Mdmf] {
        for size in [0usize, 1000, 300_000] {
            let data = random_bytes(size);
            let cap = grid.create_mutable(&data, format).await.unwrap();
            assert_eq!(cap.format, format);
            let read = grid.read_mutable(&cap).await.unwrap();
            assert!(read.data == data, "{format:?} {size}");
            assert_eq!(read.seqnum, 1);
            assert_eq!(share_counts(&servers, &cap).await, [1, 1, 1]);

            let second = random_bytes(size + 17);
            let written = grid.overwrite_mutable(&cap, &second, None).await.unwrap();
            assert_eq!(written.seqnum, 2);
            let read = grid.read_mutable(&cap).await.unwrap();
            assert_eq!((read.seqnum, read.root_hash), (2, written.root_hash));
            assert!(read.data == second);

            // A writer that read version 2 may write version 3...
            let third = random_bytes(size / 2);
            let v3 = grid
                .overwrite_mutable(&cap, &third, Some((2, written.root_hash)))
                .await
                .unwrap();
            assert_eq!(v3.seqnum, 3);
            // ...but one still holding version 2 may not.
            match grid
                .overwrite_mutable(&cap, b"stale", Some((2, written.root_hash)))
                .await
            {
                Err(GridError::UncoordinatedWrite { found, .. }) => {
                    assert_eq!(found, Some((3, v3.root_hash)));
                }
                other => panic!("expected an uncoordinated write, got {other:?}"),
            }
            assert!(grid.read_mutable(&cap).await.unwrap().data == third);
            // A read cap cannot write.
            assert!(matches!(
                grid.overwrite_mutable(&cap.read_only(), b"x", None).await,
                Err(GridError::NotWritable { .. })
            ));
        }
    }
}

#[tokio::test]
async fn overwrite_refills_a_lost_share() {
    let servers = TestServer::three().await;
    let grid = grid_of(&servers);
    let cap = grid
        .create_mutable(&random_bytes(5000), MutableFormat::Mdmf)
        .await
        .unwrap();
    let si = cap.storage_index();
    // One server loses its share (a zero new-length deletes it).
    let victim = &grid.permuted(&si)[1];
    let server = servers.iter().find(|s| s.nurl == victim.nurl).unwrap();
    let (renew, cancel) = grid.lease_secrets(&si, victim);
    let shnum = *server
        .client
        .mutable()
        .list_shares(&si)
        .await
        .unwrap()
        .first()
        .unwrap();
    let delete = ReadTestWriteRequest {
        test_write_vectors: [(
            u64::from(shnum.get()),
            TestWriteVectors {
                test: vec![],
                write: vec![],
                new_length: Some(0),
            },
        )]
        .into(),
        read_vector: vec![],
    };
    let answer = server
        .client
        .mutable()
        .read_test_write(
            &si,
            &cap.write_enabler(&victim.tubid).unwrap(),
            &renew,
            &cancel,
            &delete,
        )
        .await
        .unwrap();
    assert!(answer.success);
    let lost: Vec<usize> = servers
        .iter()
        .map(|s| usize::from(!std::ptr::eq(s, server)))
        .collect();
    assert_eq!(share_counts(&servers, &cap).await, lost);

    let data = random_bytes(7000);
    let written = grid.overwrite_mutable(&cap, &data, None).await.unwrap();
    assert_eq!(written.seqnum, 2);
    assert_eq!(share_counts(&servers, &cap).await, [1, 1, 1]);
    let listed = server.client.mutable().list_shares(&si).await.unwrap();
    assert_eq!(listed.into_iter().collect::<Vec<ShareNumber>>(), [shnum]);
    assert!(grid.read_mutable(&cap).await.unwrap().data == data);
}
