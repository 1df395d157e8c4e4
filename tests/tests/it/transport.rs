//! TLS and HTTP versions over the wire: HTTP/2 by ALPN, HTTP/1.1 by ALPN, HTTP/1.1 for a
//! client that offers no ALPN and no SNI (Tahoe's Python client), and pinning.

use std::sync::Arc;

use http::{Method, Version};
use swamp_client::{ClientOptions, StorageClient};
use swamp_proto::SpkiHash;
use swamp_proto::v1;
use swamp_tests::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn http2_is_negotiated_by_default() {
    let server = TestServer::start().await;
    let resp = server
        .client
        .request(Method::GET, v1::VERSION_PATH)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/cbor");
}

#[tokio::test]
async fn http1_by_alpn() {
    let server = TestServer::start().await;
    let client = server.client_with(&ClientOptions {
        http1_only: true,
        ..ClientOptions::default()
    });
    let resp = client
        .request(Method::GET, v1::VERSION_PATH)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), Version::HTTP_11);
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn no_alpn_no_sni_gets_http1() {
    let server = TestServer::start().await;
    let config = swamp_client::tls::pinned_config(server.nurl.spki_hash, &[]);
    let mut config = config;
    config.enable_sni = false;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), None);
    let request = format!(
        "GET /storage/v1/version HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {}\r\nAccept: application/cbor\r\nConnection: close\r\n\r\n",
        server.nurl.swissnum.authorization_header()
    );
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tls.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("content-type: application/cbor")
    );
}

#[tokio::test]
async fn a_wrong_pin_is_refused() {
    let server = TestServer::start().await;
    let mut nurl = server.nurl.clone();
    nurl.spki_hash = SpkiHash::from_bytes([0; 32]);
    let client = StorageClient::new(&nurl).unwrap();
    let err = client.general().version().await.unwrap_err();
    assert!(
        matches!(err, swamp_client::ClientError::Transport(_)),
        "{err:?}"
    );
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_for_a_free_slot() {
    let limits = swamp_server::node::Limits {
        max_connections: 1,
        ..Default::default()
    };
    let server = TestServer::start_with(swamp_tests::TestOptions {
        limits,
        ..Default::default()
    })
    .await;
    let first = server.client_with(&ClientOptions {
        http1_only: true,
        ..ClientOptions::default()
    });
    first.general().version().await.unwrap();
    // The first client keeps its connection alive, so a second connection is not served...
    let second = server.client_with(&ClientOptions {
        http1_only: true,
        ..ClientOptions::default()
    });
    let pending = tokio::spawn(async move { second.general().version().await });
    let waited = tokio::time::timeout(std::time::Duration::from_millis(500), async {
        while !pending.is_finished() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(
        waited.is_err(),
        "a second connection was served while the limit was reached"
    );
    // ...until the first one goes away.
    drop(first);
    let answered = tokio::time::timeout(std::time::Duration::from_secs(20), pending).await;
    answered
        .expect("served once a slot was free")
        .unwrap()
        .unwrap();
}
