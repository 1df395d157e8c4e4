//! Requests racing on one storage index. Found by the crash test's load.

use swamp_proto::v1::{ReadTestWriteRequest, TestWriteVectors};
use swamp_tests::{Secrets, TestServer, random_si, write_slot};

/// A lease must not trip over a share that a read-test-write deletes (`new_length` 0)
/// at the same moment. When `PUT /lease/:si` listed the shares before it took the
/// storage index's lock, it then tried to open a file that was gone: a 500 ("could
/// not open ... No such file") for about a third of these leases.
#[tokio::test]
async fn a_lease_racing_a_share_deletion_is_not_an_error() {
    let server = TestServer::start().await;
    let (si, s) = (random_si(), Secrets::random());
    // Share 1 stays, so the slot always has a share to lease.
    write_slot(&server.client, &si, &s, 1, b"stays").await;
    let writes = async {
        for _ in 0..300 {
            write_slot(&server.client, &si, &s, 0, b"comes and goes").await;
            let mut tw = std::collections::BTreeMap::new();
            tw.insert(
                0,
                TestWriteVectors {
                    test: vec![],
                    write: vec![],
                    new_length: Some(0),
                },
            );
            let delete = ReadTestWriteRequest {
                test_write_vectors: tw,
                read_vector: vec![],
            };
            let answer = server
                .client
                .mutable()
                .read_test_write(&si, &s.we, &s.renew, &s.cancel, &delete)
                .await
                .unwrap();
            assert!(answer.success);
        }
    };
    let leases = async {
        let mut failures = Vec::new();
        for _ in 0..300 {
            let other = Secrets::random();
            if let Err(e) = server
                .client
                .general()
                .add_or_renew_lease(&si, &other.renew, &other.cancel)
                .await
            {
                failures.push(e.to_string());
            }
        }
        failures
    };
    let ((), failures) = tokio::join!(writes, leases);
    assert!(
        failures.is_empty(),
        "{} leases failed: {:?}",
        failures.len(),
        failures.first()
    );
}
