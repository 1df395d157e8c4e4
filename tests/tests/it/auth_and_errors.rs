//! Authorization, secrets, content negotiation, bad bodies, bad paths, bad ranges: each
//! gets the status Tahoe gives (or the 4xx we document where Tahoe gives 500).

use http::{Method, StatusCode};
use swamp_proto::ShareNumber;
use swamp_proto::secrets::{SecretKind, format_secret_header};
use swamp_proto::v1;
use swamp_tests::{Secrets, TestServer, random_si};

fn url(server: &TestServer, path: &str) -> String {
    format!("{}{path}", server.nurl.base_url())
}

async fn status(req: reqwest::RequestBuilder) -> (StatusCode, String) {
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.text().await.unwrap())
}

#[tokio::test]
async fn swissnum_is_required_on_every_route() {
    let server = TestServer::start().await;
    let c = server.raw_client();
    let si = random_si();
    for path in [
        v1::VERSION_PATH.to_string(),
        v1::shares_path(v1::ShareKind::Immutable, &si),
        v1::mutable_share_path(&si, ShareNumber::new(0)),
    ] {
        let (s, body) = status(c.get(url(&server, &path))).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{path}");
        assert!(
            body.contains("Authorization"),
            "the body says what is missing: {body}"
        );
        let (s, _) = status(
            c.get(url(&server, &path))
                .header("authorization", "Tahoe-LAFS d3Jvbmc="),
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "wrong swissnum on {path}");
    }
    let (s, _) = status(
        c.get(url(&server, v1::VERSION_PATH))
            .header("authorization", &[0xffu8, 0xfe][..]),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "non-UTF-8 Authorization");
}

#[tokio::test]
async fn secrets_must_be_exactly_those_the_endpoint_needs() {
    let server = TestServer::start().await;
    let si = random_si();
    let s = Secrets::random();
    let extra = format_secret_header(SecretKind::Upload, b"xyz");
    let (st, _) = status(
        server
            .client
            .request(Method::GET, v1::VERSION_PATH)
            .header("x-tahoe-authorization", &extra),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "extra secret on /version");
    let body = v1::encode(&v1::AllocateRequest {
        share_numbers: [ShareNumber::new(0)].into_iter().collect(),
        allocated_size: 5,
    });
    let (st, text) = status(
        server
            .client
            .request(Method::POST, &v1::immutable_path(&si))
            .header(
                "x-tahoe-authorization",
                format_secret_header(SecretKind::LeaseRenew, s.renew.expose()),
            )
            .body(body.clone()),
    )
    .await;
    assert_eq!(
        st,
        StatusCode::BAD_REQUEST,
        "missing cancel and upload secrets"
    );
    assert!(text.contains("upload-secret"), "{text}");
    let (st, _) = status(
        server
            .client
            .request(Method::POST, &v1::immutable_path(&si))
            .header(
                "x-tahoe-authorization",
                format_secret_header(SecretKind::LeaseRenew, &[1; 16]),
            )
            .header(
                "x-tahoe-authorization",
                format_secret_header(SecretKind::LeaseCancel, s.cancel.expose()),
            )
            .header(
                "x-tahoe-authorization",
                format_secret_header(SecretKind::Upload, s.upload.expose()),
            )
            .body(body),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "a 16-byte lease secret");
}

fn allocate_request(
    server: &TestServer,
    si: &swamp_proto::StorageIndex,
    s: &Secrets,
) -> reqwest::RequestBuilder {
    server
        .client
        .request(Method::POST, &v1::immutable_path(si))
        .header(
            "x-tahoe-authorization",
            format_secret_header(SecretKind::LeaseRenew, s.renew.expose()),
        )
        .header(
            "x-tahoe-authorization",
            format_secret_header(SecretKind::LeaseCancel, s.cancel.expose()),
        )
        .header(
            "x-tahoe-authorization",
            format_secret_header(SecretKind::Upload, s.upload.expose()),
        )
}

#[tokio::test]
async fn bodies_are_cbor_with_the_closed_schema() {
    let server = TestServer::start().await;
    let (si, s) = (random_si(), Secrets::random());
    let good = v1::encode(&v1::AllocateRequest {
        share_numbers: [ShareNumber::new(0)].into_iter().collect(),
        allocated_size: 5,
    });
    let (st, _) = status(
        allocate_request(&server, &si, &s)
            .header("content-type", "application/json")
            .body(good.clone()),
    )
    .await;
    assert_eq!(st, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Only the first Accept header counts, as in Tahoe; this one prefers anything.
    let c = server.raw_client();
    for accept in [
        "*/*",
        "application/json, application/cbor",
        "application/cbor; charset=utf-8",
    ] {
        let (st, _) = status(
            c.get(url(&server, v1::VERSION_PATH))
                .header("authorization", server.nurl.swissnum.authorization_header())
                .header("accept", accept),
        )
        .await;
        assert_eq!(
            st,
            StatusCode::NOT_ACCEPTABLE,
            "Tahoe requires application/cbor to be the best match: {accept}"
        );
    }
    let (st, text) =
        status(allocate_request(&server, &si, &s).body(b"\xff\x00garbage".to_vec())).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(text.contains("CBOR"), "{text}");
    // An untagged array where a set (tag 258) belongs.
    let untagged = {
        let mut out = Vec::new();
        ciborium_like_map(&mut out);
        out
    };
    let (st, _) = status(allocate_request(&server, &si, &s).body(untagged)).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = status(allocate_request(&server, &si, &s).body(vec![0u8; 9000])).await;
    assert_eq!(
        st,
        StatusCode::PAYLOAD_TOO_LARGE,
        "allocate bodies are at most 8192 bytes"
    );
    let (st, _) = status(
        allocate_request(&server, &si, &s)
            .header("content-type", "application/cbor; x=y")
            .body(good),
    )
    .await;
    assert_eq!(
        st,
        StatusCode::OK,
        "parameters on the content type are ignored"
    );
}

/// `{"share-numbers": [0], "allocated-size": 5}` with an untagged array, by hand.
fn ciborium_like_map(out: &mut Vec<u8>) {
    out.push(0xa2);
    out.push(0x60 + 13);
    out.extend_from_slice(b"share-numbers");
    out.extend_from_slice(&[0x81, 0x00]);
    out.push(0x60 + 14);
    out.extend_from_slice(b"allocated-size");
    out.push(0x05);
}

#[tokio::test]
async fn bad_paths_match_no_route() {
    let server = TestServer::start().await;
    for path in [
        "/storage/v1/immutable/AAAAAAAAAAAAAAAAAAAAAAAAAA/shares",
        "/storage/v1/immutable/aaaa/shares",
        "/storage/v1/immutable/..%2F..%2F..%2Fetc%2Fpasswd/0",
        "/storage/v1/immutable/../../etc/passwd",
        "/storage/v1/mutable/aaaaaaaaaaaaaaaaaaaaaaaaaa/-1",
        "/storage/v1/mutable/aaaaaaaaaaaaaaaaaaaaaaaaaa/256",
        "/storage/v2/version",
        "/",
    ] {
        let (st, _) = status(server.client.request(Method::GET, path)).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{path}");
    }
    let (st, _) = status(server.client.request(Method::DELETE, v1::VERSION_PATH)).await;
    assert_eq!(st, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn ranges_outside_the_dialect_are_416() {
    let server = TestServer::start().await;
    let (si, s) = (random_si(), Secrets::random());
    let imm = server.client.immutable();
    s.allocate(&server.client, &si, [ShareNumber::new(0)], 10)
        .await;
    imm.write_share_chunk(
        &si,
        ShareNumber::new(0),
        &s.upload,
        0,
        b"0123456789".to_vec(),
    )
    .await
    .unwrap();
    let path = v1::immutable_share_path(&si, ShareNumber::new(0));
    for bad in [
        "bytes=0-",
        "bytes=-5",
        "bytes=0-1,3-4",
        "bytes=5-2",
        "lines=0-1",
    ] {
        let (st, _) = status(
            server
                .client
                .request(Method::GET, &path)
                .header("range", bad),
        )
        .await;
        assert_eq!(st, StatusCode::RANGE_NOT_SATISFIABLE, "{bad}");
    }
    let resp = server
        .client
        .request(Method::GET, &path)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "no Range: the whole share");
    assert_eq!(resp.headers()["content-type"], "application/octet-stream");
    assert_eq!(&resp.bytes().await.unwrap()[..], b"0123456789");
    let resp = server
        .client
        .request(Method::GET, &path)
        .header("range", "bytes=8-20")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(resp.headers()["content-range"], "bytes 8-9/*");
    let resp = server
        .client
        .request(Method::GET, &path)
        .header("range", "bytes=10-20")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn patch_needs_a_content_range_matching_the_body() {
    let server = TestServer::start().await;
    let (si, s) = (random_si(), Secrets::random());
    s.allocate(&server.client, &si, [ShareNumber::new(0)], 10)
        .await;
    let path = v1::immutable_share_path(&si, ShareNumber::new(0));
    let patch = || {
        server.client.request(Method::PATCH, &path).header(
            "x-tahoe-authorization",
            format_secret_header(SecretKind::Upload, s.upload.expose()),
        )
    };
    let (st, _) = status(patch().body(b"abc".to_vec())).await;
    assert_eq!(
        st,
        StatusCode::RANGE_NOT_SATISFIABLE,
        "missing Content-Range"
    );
    let (st, _) = status(
        patch()
            .header("content-range", "bytes */10")
            .body(b"abc".to_vec()),
    )
    .await;
    assert_eq!(st, StatusCode::RANGE_NOT_SATISFIABLE);
    let (st, text) = status(
        patch()
            .header("content-range", "bytes 0-4/*")
            .body(b"abc".to_vec()),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("3 bytes"), "{text}");
}

#[tokio::test]
async fn corruption_reason_bounds() {
    let server = TestServer::start().await;
    let (si, s) = (random_si(), Secrets::random());
    swamp_tests::upload_share(&server.client, &si, &s, 0, b"x").await;
    let err = server
        .client
        .immutable()
        .advise_corrupt(&si, ShareNumber::new(0), "")
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::BAD_REQUEST));
}
