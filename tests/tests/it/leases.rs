//! Leases: added at upload, added or renewed by the lease endpoint and read-test-write,
//! stored hashed (v2 containers), and expired by policy: bucket by bucket, and by the
//! node's own sweep, whose progress shows on the operator listener.

use std::fs::File;

use http::StatusCode;
use swamp_proto::ShareNumber;
use swamp_server::testing::expiry::{ExpiryMode, ExpiryPolicy, SweepReport};
use swamp_server::testing::lease::{LEASE_DURATION_SECS, Lease};
use swamp_server::testing::{immutable, mutable};
use swamp_tests::{Secrets, TestServer, random_si, share_file};

fn immutable_leases(server: &TestServer, si: &swamp_proto::StorageIndex, shnum: u8) -> Vec<Lease> {
    let file = File::open(share_file(&server.shares_dir(), si, shnum)).unwrap();
    let header = immutable::read_header(&file).unwrap();
    assert_eq!(
        header.version, 2,
        "new containers are v2 (hashed lease secrets)"
    );
    immutable::read_leases(&file, &header).unwrap()
}

fn mutable_leases(server: &TestServer, si: &swamp_proto::StorageIndex, shnum: u8) -> Vec<Lease> {
    let file = std::fs::File::open(share_file(&server.shares_dir(), si, shnum)).unwrap();
    mutable::Container::open(file).unwrap().leases()
}

async fn upload(server: &TestServer, si: &swamp_proto::StorageIndex, s: &Secrets) {
    swamp_tests::upload_share(&server.client, si, s, 0, b"data").await;
}

#[tokio::test]
async fn immutable_leases_are_added_then_renewed() {
    let server = TestServer::start().await;
    let (si, s) = (random_si(), Secrets::random());
    upload(&server, &si, &s).await;
    let leases = immutable_leases(&server, &si, 0);
    assert_eq!(leases.len(), 1);
    assert_eq!(leases[0].owner, 0);
    assert_eq!(
        u64::from(leases[0].expiry),
        server.clock.now() + LEASE_DURATION_SECS
    );
    assert_ne!(
        &leases[0].renew_stored,
        s.renew.expose(),
        "stored hashed, never in the clear"
    );

    let other = Secrets::random();
    server
        .client
        .general()
        .add_or_renew_lease(&si, &other.renew, &other.cancel)
        .await
        .unwrap();
    let leases = immutable_leases(&server, &si, 0);
    assert_eq!(leases.len(), 2);
    assert_eq!(leases[1].owner, 1);

    server.clock.advance(1000);
    server
        .client
        .general()
        .add_or_renew_lease(&si, &other.renew, &other.cancel)
        .await
        .unwrap();
    let leases = immutable_leases(&server, &si, 0);
    assert_eq!(leases.len(), 2, "the same renew secret renews");
    assert_eq!(
        u64::from(leases[1].expiry),
        server.clock.now() + LEASE_DURATION_SECS
    );
    // The share data is untouched by lease changes.
    assert_eq!(
        &server
            .client
            .immutable()
            .read_share_chunk(&si, ShareNumber::new(0), 0, 100)
            .await
            .unwrap()[..],
        b"data"
    );
}

#[tokio::test]
async fn lease_on_unknown_index_is_404() {
    let server = TestServer::start().await;
    let s = Secrets::random();
    let err = server
        .client
        .general()
        .add_or_renew_lease(&random_si(), &s.renew, &s.cancel)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::NOT_FOUND));
}

#[tokio::test]
async fn mutable_leases_fill_slots_then_extra_leases() {
    let server = TestServer::start().await;
    let (si, s) = (random_si(), Secrets::random());
    swamp_tests::write_slot(&server.client, &si, &s, 0, b"v1").await;
    assert_eq!(mutable_leases(&server, &si, 0).len(), 1);
    for _ in 0..5 {
        let other = Secrets::random();
        server
            .client
            .general()
            .add_or_renew_lease(&si, &other.renew, &other.cancel)
            .await
            .unwrap();
    }
    let leases = mutable_leases(&server, &si, 0);
    assert_eq!(leases.len(), 6, "four slots plus two extra leases");
    assert!(leases.iter().all(|l| l.nodeid == server.identity.tubid));
    // A larger write moves the extra leases; they survive.
    swamp_tests::write_slot(&server.client, &si, &s, 0, &[7u8; 5000]).await;
    assert_eq!(mutable_leases(&server, &si, 0).len(), 6);
    assert_eq!(
        server
            .client
            .mutable()
            .read_share_chunk(&si, ShareNumber::new(0), 0, 10_000)
            .await
            .unwrap()
            .len(),
        5000
    );
}

#[tokio::test]
async fn expired_shares_are_collected_and_live_ones_kept() {
    let server = TestServer::start().await;
    let (old, young) = (random_si(), random_si());
    upload(&server, &old, &Secrets::random()).await;
    server.clock.advance(20 * 86_400);
    upload(&server, &young, &Secrets::random()).await;
    let policy = ExpiryPolicy {
        mode: ExpiryMode::Age,
        immutable: true,
        mutable: true,
    };
    // 35 days after the first upload: its lease (31 days) is over, the second's is not.
    server.clock.advance(15 * 86_400);
    let mut report = SweepReport::default();
    for si in [old, young] {
        server
            .storage
            .expire_bucket(&si, &policy, &mut report)
            .unwrap();
    }
    assert_eq!(
        report,
        SweepReport {
            examined: 2,
            deleted: 1
        }
    );
    assert!(
        server
            .client
            .immutable()
            .list_shares(&old)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        server
            .client
            .immutable()
            .list_shares(&young)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        !server
            .shares_dir()
            .join(old.dir_prefix())
            .join(old.to_base32())
            .exists()
    );

    let keep_immutable = ExpiryPolicy {
        mode: ExpiryMode::AgeOverride(1),
        immutable: false,
        mutable: true,
    };
    server
        .storage
        .expire_bucket(&young, &keep_immutable, &mut report)
        .unwrap();
    assert_eq!(
        server
            .client
            .immutable()
            .list_shares(&young)
            .await
            .unwrap()
            .len(),
        1,
        "expire.immutable = false"
    );
}

#[tokio::test]
async fn turning_expiry_on_starts_a_sweep_whose_progress_shows_in_metrics_and_status() {
    use crate::operator::{operator_status, scrape, scrape_until, value};
    let server = TestServer::start().await;
    let (old, young) = (random_si(), random_si());
    upload(&server, &old, &Secrets::random()).await;
    server.clock.advance(20 * 86_400);
    upload(&server, &young, &Secrets::random()).await;
    server.clock.advance(15 * 86_400);

    // Off (Tahoe's default): no pass, nothing deleted.
    let off = scrape(&server).await;
    assert_eq!(value(&off, "swamp_lease_expiry_enabled"), 0.0);
    assert_eq!(value(&off, "swamp_lease_expiry_passes_total"), 0.0);
    assert_eq!(value(&off, "swamp_lease_expiry_prefixes_done"), 0.0);
    assert!(!off.contains_key("swamp_lease_expiry_last_pass_end_timestamp_seconds"));

    // On, as a reload would turn it on: a pass starts at once.
    server.expiry.set(Some(ExpiryPolicy {
        mode: ExpiryMode::Age,
        immutable: true,
        mutable: true,
    }));
    let got = scrape_until(&server, "a completed lease expiry pass", |m| {
        m.get("swamp_lease_expiry_passes_total") == Some(&1.0)
    })
    .await;
    assert_eq!(value(&got, "swamp_lease_expiry_enabled"), 1.0);
    assert_eq!(value(&got, "swamp_lease_expiry_prefixes_done"), 1024.0);
    assert_eq!(value(&got, "swamp_lease_expiry_shares_examined_total"), 2.0);
    assert_eq!(value(&got, "swamp_lease_expiry_shares_deleted_total"), 1.0);
    let now = server.clock.now();
    assert_eq!(
        value(&got, "swamp_lease_expiry_last_pass_end_timestamp_seconds"),
        now as f64
    );
    assert!(
        server
            .client
            .immutable()
            .list_shares(&old)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        server
            .client
            .immutable()
            .list_shares(&young)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        operator_status(&server).await["lease_expiry"],
        serde_json::json!({
            "enabled": true,
            "running": false,
            "prefixes_done": 1024,
            "prefixes_total": 1024,
            "passes": 1,
            "last_pass_end": now,
            "shares_examined": 2,
            "shares_deleted": 1,
        })
    );
}
