//! A Python node's identity: Foolscap's X.509 v1 certificate is served as it is, its
//! tubid and SPKI hash come out as Tahoe computes them, and our client accepts it.

use std::sync::Arc;

use swamp_proto::base32;
use swamp_server::node::NodeIdentity;
use swamp_tests::{TestOptions, TestServer};

/// Made with Foolscap's `createCertificate()` (tahoe-lafs 1.20's pinned foolscap);
/// the expected values were computed from it in Python.
const FOOLSCAP_PEM: &str = include_str!("../../fixtures/foolscap-node.pem");
const FOOLSCAP_TUBID: &str = "nzzfftlk47ibdf7bow6dwjg2aqabxjqs";
const FOOLSCAP_SPKI_HASH: &str = "S917POejpH2MbDeZhYZHIV7WG7IX-Mmdf9spgd8uQwM";

fn python_node_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("private")).unwrap();
    std::fs::write(dir.path().join("private/node.pem"), FOOLSCAP_PEM).unwrap();
    std::fs::write(
        dir.path().join("private/storage.furl"),
        format!("pb://{FOOLSCAP_TUBID}@tcp:127.0.0.1:1/swissnumfromtahoe234567\n"),
    )
    .unwrap();
    dir
}

#[test]
fn foolscap_certificate_gives_tahoes_tubid_and_spki_hash() {
    let dir = python_node_dir();
    let identity = NodeIdentity::load_or_create(dir.path(), false, &[]).unwrap();
    assert_eq!(base32::encode(&identity.tubid), FOOLSCAP_TUBID);
    assert_eq!(identity.spki_hash.to_string(), FOOLSCAP_SPKI_HASH);
    assert_eq!(identity.swissnum.expose(), "swissnumfromtahoe234567");
    let pem = std::fs::read_to_string(dir.path().join("private/node.pem")).unwrap();
    assert_eq!(
        pem, FOOLSCAP_PEM,
        "the Python node's certificate is never replaced"
    );
}

#[tokio::test]
async fn a_version_1_certificate_is_served_and_accepted() {
    let dir = python_node_dir();
    let identity = Arc::new(NodeIdentity::load_or_create(dir.path(), false, &[]).unwrap());
    let server =
        TestServer::start_on(dir.path().join("storage"), identity, TestOptions::default()).await;
    let version = server.client.general().version().await.unwrap();
    assert!(version.application_version.starts_with(b"swamp/"));
    let http1 = server.client_with(&swamp_client::ClientOptions {
        http1_only: true,
        ..Default::default()
    });
    http1.general().version().await.unwrap();
}

#[test]
fn describing_a_node_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tahoe.cfg"),
        "[node]\ntub.port = tcp:1:interface=127.0.0.1\n",
    )
    .unwrap();
    let err = swamp_server::start::describe_node(dir.path(), |_| None).unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(!dir.path().join("private").exists(), "nothing was created");
}

#[tokio::test]
async fn an_expired_certificate_is_accepted_as_tahoe_accepts_it() {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.not_before = rcgen::date_time_ymd(2001, 1, 1);
    params.not_after = rcgen::date_time_ymd(2002, 1, 1);
    let cert = params.self_signed(&key).unwrap();
    let identity = Arc::new(NodeIdentity::from_pem(&cert.pem(), &key.serialize_pem()).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let server =
        TestServer::start_on(dir.path().join("storage"), identity, TestOptions::default()).await;
    server.client.general().version().await.unwrap();
}
