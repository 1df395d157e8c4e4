//! The storage client: one typed method per GBS endpoint.

use std::collections::BTreeSet;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_RANGE, CONTENT_TYPE, RANGE};
use http::{Method, StatusCode};
use swamp_proto::range::ByteRange;
use swamp_proto::secrets::{
    LeaseCancelSecret, LeaseRenewSecret, SecretKind, UploadSecret, WriteEnabler,
    format_secret_header,
};
use swamp_proto::v1::{
    self, AdviseCorruptRequest, AllocateRequest, AllocateResponse, ReadTestWriteRequest,
    ReadTestWriteResponse, ShareKind, ShareSet, UploadProgress, VersionResponse,
};
use swamp_proto::{Nurl, ShareNumber, StorageIndex};

use crate::error::ClientError;
use crate::tls::pinned_config;

const SECRETS_HEADER: &str = "X-Tahoe-Authorization";

/// HTTP/2 receive windows: large and fixed, so a share's blocks stream without
/// waiting for window updates even when a busy machine makes round trips slow.
const H2_STREAM_WINDOW: u32 = 16 * 1024 * 1024;
const H2_CONNECTION_WINDOW: u32 = 64 * 1024 * 1024;
/// Largest HTTP/2 frame a server may send us (the protocol's largest, 16 MiB - 1): a
/// share read arrives as one DATA frame instead of 16 KiB ones, so its body is one
/// buffer, taken as it is, not gathered into a new one (100 MiB of copying and fresh
/// memory per 100 MiB downloaded).
const H2_MAX_FRAME: u32 = (1 << 24) - 1;

/// Connection choices.
#[derive(Clone, Debug, Default)]
pub struct ClientOptions {
    /// Offer only HTTP/1.1 in ALPN (as Tahoe's Python client does, which offers none).
    pub http1_only: bool,
}

/// A client of one storage server.
#[derive(Clone)]
pub struct StorageClient {
    http: reqwest::Client,
    /// For share writes: HTTP/1.1 (see [`StorageClient::with_options`]).
    writes: reqwest::Client,
    base_url: String,
    authorization: String,
}

/// The result of one immutable write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadWrite {
    /// True when the share is complete (HTTP 201).
    pub complete: bool,
    /// What is still missing.
    pub progress: UploadProgress,
}

impl StorageClient {
    /// A client for the server at `nurl`, HTTP/2 preferred.
    ///
    /// # Errors
    /// [`ClientError::Transport`] if the HTTP client cannot be built.
    pub fn new(nurl: &Nurl) -> Result<Self, ClientError> {
        Self::with_options(nurl, &ClientOptions::default())
    }

    /// A client with explicit options.
    ///
    /// Immutable share writes (`PATCH` bodies) always go over HTTP/1.1, on
    /// connections of their own: a server receiving HTTP/2 gets the body in 16 KiB
    /// DATA frames (its own frame size limit) with flow control going back and forth,
    /// and in interleaved A/B runs of `tahoe put` (`docs/benchmarks.md`) the three
    /// servers spent 0.26 s of CPU per 100 MiB over HTTP/1.1 against 0.37 s over
    /// HTTP/2, and the put took 0.47 s against 0.53 s. Reads keep HTTP/2, where the
    /// client can ask for large frames.
    ///
    /// # Errors
    /// [`ClientError::Transport`] if the HTTP client cannot be built.
    pub fn with_options(nurl: &Nurl, options: &ClientOptions) -> Result<Self, ClientError> {
        let http1 = || {
            reqwest::Client::builder()
                .tls_backend_preconfigured(pinned_config(nurl.spki_hash, &[b"http/1.1"]))
                .pool_max_idle_per_host(16)
                .http1_only()
                .build()
        };
        let http = if options.http1_only {
            http1()?
        } else {
            reqwest::Client::builder()
                .tls_backend_preconfigured(pinned_config(nurl.spki_hash, &[b"h2", b"http/1.1"]))
                .pool_max_idle_per_host(16)
                .http2_initial_stream_window_size(H2_STREAM_WINDOW)
                .http2_initial_connection_window_size(H2_CONNECTION_WINDOW)
                .http2_max_frame_size(H2_MAX_FRAME)
                .build()?
        };
        Ok(Self {
            writes: if options.http1_only {
                http.clone()
            } else {
                http1()?
            },
            http,
            base_url: nurl.base_url(),
            authorization: nurl.swissnum.authorization_header(),
        })
    }

    /// General endpoints (version, leases).
    pub fn general(&self) -> General<'_> {
        General(self)
    }

    /// Immutable share endpoints.
    pub fn immutable(&self) -> Immutable<'_> {
        Immutable(self)
    }

    /// Mutable share (slot) endpoints.
    pub fn mutable(&self) -> Mutable<'_> {
        Mutable(self)
    }

    /// A request to `path` with the swissnum and `Accept: application/cbor` set: for
    /// endpoints this crate does not wrap, and for tests of error handling.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.request_on(&self.http, method, path)
    }

    fn request_on(
        &self,
        http: &reqwest::Client,
        method: Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        http.request(method, format!("{}{path}", self.base_url))
            .header(AUTHORIZATION, &self.authorization)
            .header(ACCEPT, v1::CBOR_MEDIA_TYPE)
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let response = request.send().await?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        Err(ClientError::Http {
            status,
            body: body.chars().take(1000).collect(),
        })
    }

    async fn cbor<T: serde::de::DeserializeOwned>(
        &self,
        response: reqwest::Response,
    ) -> Result<T, ClientError> {
        let bytes = cbor_bytes(response).await?;
        v1::decode(&bytes).map_err(ClientError::Decode)
    }

    async fn list(
        &self,
        kind: ShareKind,
        si: &StorageIndex,
    ) -> Result<BTreeSet<ShareNumber>, ClientError> {
        let response = self
            .send(self.request(Method::GET, &v1::shares_path(kind, si)))
            .await?;
        let set: ShareSet = self.cbor(response).await?;
        Ok(set.0)
    }

    async fn read(&self, path: &str, offset: u64, length: u64) -> Result<Bytes, ClientError> {
        let Some(range) = ByteRange::from_offset_len(offset, length) else {
            return Ok(Bytes::new());
        };
        let response = self
            .send(
                self.request(Method::GET, path)
                    .header(RANGE, range.to_range_header()),
            )
            .await?;
        match response.status() {
            StatusCode::NO_CONTENT => Ok(Bytes::new()),
            StatusCode::PARTIAL_CONTENT => {
                let content_range = response
                    .headers()
                    .get(CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| ClientError::Protocol("206 without Content-Range".into()))?
                    .to_string();
                let got =
                    ByteRange::parse_content_range(&content_range).map_err(ClientError::Decode)?;
                let body = response.bytes().await?;
                if got.first != offset || body.len() as u64 != got.len() {
                    return Err(ClientError::Protocol(format!(
                        "asked for {offset}+{length}, got {content_range} with {} bytes",
                        body.len()
                    )));
                }
                Ok(body)
            }
            other => Err(ClientError::Protocol(format!(
                "a ranged read answered {other}"
            ))),
        }
    }

    async fn corrupt(
        &self,
        kind: ShareKind,
        si: &StorageIndex,
        shnum: ShareNumber,
        reason: &str,
    ) -> Result<(), ClientError> {
        let body = v1::encode(&AdviseCorruptRequest {
            reason: reason.to_string(),
        });
        self.send(
            self.request(Method::POST, &v1::corrupt_path(kind, si, shnum))
                .header(CONTENT_TYPE, v1::CBOR_MEDIA_TYPE)
                .body(body),
        )
        .await?;
        Ok(())
    }
}

async fn cbor_bytes(response: reqwest::Response) -> Result<Bytes, ClientError> {
    let ct = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct != v1::CBOR_MEDIA_TYPE {
        return Err(ClientError::Protocol(format!(
            "expected application/cbor, got {ct:?}"
        )));
    }
    Ok(response.bytes().await?)
}

fn lease_headers(
    builder: reqwest::RequestBuilder,
    renew: &LeaseRenewSecret,
    cancel: &LeaseCancelSecret,
) -> reqwest::RequestBuilder {
    builder
        .header(
            SECRETS_HEADER,
            format_secret_header(SecretKind::LeaseRenew, renew.expose()),
        )
        .header(
            SECRETS_HEADER,
            format_secret_header(SecretKind::LeaseCancel, cancel.expose()),
        )
}

/// `StorageClient::general()`.
pub struct General<'a>(&'a StorageClient);

impl General<'_> {
    /// `GET /storage/v1/version`
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn version(&self) -> Result<VersionResponse, ClientError> {
        let response = self
            .0
            .send(self.0.request(Method::GET, v1::VERSION_PATH))
            .await?;
        VersionResponse::from_cbor(&cbor_bytes(response).await?).map_err(ClientError::Decode)
    }

    /// `PUT /storage/v1/lease/:si`; a 404 (no shares) is an error the caller may ignore.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn add_or_renew_lease(
        &self,
        si: &StorageIndex,
        renew: &LeaseRenewSecret,
        cancel: &LeaseCancelSecret,
    ) -> Result<(), ClientError> {
        self.0
            .send(lease_headers(
                self.0.request(Method::PUT, &v1::lease_path(si)),
                renew,
                cancel,
            ))
            .await?;
        Ok(())
    }
}

/// `StorageClient::immutable()`.
pub struct Immutable<'a>(&'a StorageClient);

impl Immutable<'_> {
    /// `POST /storage/v1/immutable/:si`
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn allocate(
        &self,
        si: &StorageIndex,
        upload_secret: &UploadSecret,
        renew: &LeaseRenewSecret,
        cancel: &LeaseCancelSecret,
        share_numbers: impl IntoIterator<Item = ShareNumber>,
        allocated_size: u64,
    ) -> Result<AllocateResponse, ClientError> {
        let body = v1::encode(&AllocateRequest {
            share_numbers: share_numbers.into_iter().collect(),
            allocated_size,
        });
        let request = lease_headers(
            self.0.request(Method::POST, &v1::immutable_path(si)),
            renew,
            cancel,
        )
        .header(
            SECRETS_HEADER,
            format_secret_header(SecretKind::Upload, upload_secret.expose()),
        )
        .header(CONTENT_TYPE, v1::CBOR_MEDIA_TYPE)
        .body(body);
        let response = self.0.send(request).await?;
        self.0.cbor(response).await
    }

    /// `PATCH /storage/v1/immutable/:si/:shnum`: writes `data` at `offset`.
    ///
    /// # Errors
    /// [`ClientError`]; an empty `data` is a [`ClientError::Protocol`] (GBS cannot
    /// express an empty range).
    pub async fn write_share_chunk(
        &self,
        si: &StorageIndex,
        shnum: ShareNumber,
        upload_secret: &UploadSecret,
        offset: u64,
        data: impl Into<Bytes>,
    ) -> Result<UploadWrite, ClientError> {
        let data = data.into();
        let range = ByteRange::from_offset_len(offset, data.len() as u64)
            .ok_or_else(|| ClientError::Protocol("cannot write an empty range".into()))?;
        let request = self
            .0
            .request_on(
                &self.0.writes,
                Method::PATCH,
                &v1::immutable_share_path(si, shnum),
            )
            .header(
                SECRETS_HEADER,
                format_secret_header(SecretKind::Upload, upload_secret.expose()),
            )
            .header(CONTENT_RANGE, range.to_content_range())
            .body(data);
        let response = self.0.send(request).await?;
        let complete = response.status() == StatusCode::CREATED;
        Ok(UploadWrite {
            complete,
            progress: self.0.cbor(response).await?,
        })
    }

    /// `PUT /storage/v1/immutable/:si/:shnum/abort`
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn abort(
        &self,
        si: &StorageIndex,
        shnum: ShareNumber,
        upload_secret: &UploadSecret,
    ) -> Result<(), ClientError> {
        let request = self
            .0
            .request(Method::PUT, &v1::immutable_abort_path(si, shnum))
            .header(
                SECRETS_HEADER,
                format_secret_header(SecretKind::Upload, upload_secret.expose()),
            );
        self.0.send(request).await?;
        Ok(())
    }

    /// `GET /storage/v1/immutable/:si/shares`
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn list_shares(
        &self,
        si: &StorageIndex,
    ) -> Result<BTreeSet<ShareNumber>, ClientError> {
        self.0.list(ShareKind::Immutable, si).await
    }

    /// `GET /storage/v1/immutable/:si/:shnum` with a range (clipped by the server).
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn read_share_chunk(
        &self,
        si: &StorageIndex,
        shnum: ShareNumber,
        offset: u64,
        length: u64,
    ) -> Result<Bytes, ClientError> {
        self.0
            .read(&v1::immutable_share_path(si, shnum), offset, length)
            .await
    }

    /// `POST /storage/v1/immutable/:si/:shnum/corrupt`
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn advise_corrupt(
        &self,
        si: &StorageIndex,
        shnum: ShareNumber,
        reason: &str,
    ) -> Result<(), ClientError> {
        self.0
            .corrupt(ShareKind::Immutable, si, shnum, reason)
            .await
    }
}

/// `StorageClient::mutable()`.
pub struct Mutable<'a>(&'a StorageClient);

impl Mutable<'_> {
    /// `POST /storage/v1/mutable/:si/read-test-write`
    ///
    /// # Errors
    /// [`ClientError`]; failed tests are `success: false` in the response, not errors.
    pub async fn read_test_write(
        &self,
        si: &StorageIndex,
        write_enabler: &WriteEnabler,
        renew: &LeaseRenewSecret,
        cancel: &LeaseCancelSecret,
        request: &ReadTestWriteRequest,
    ) -> Result<ReadTestWriteResponse, ClientError> {
        let builder = lease_headers(
            self.0.request(Method::POST, &v1::read_test_write_path(si)),
            renew,
            cancel,
        )
        .header(
            SECRETS_HEADER,
            format_secret_header(SecretKind::WriteEnabler, write_enabler.expose()),
        )
        .header(CONTENT_TYPE, v1::CBOR_MEDIA_TYPE)
        .body(v1::encode(request));
        let response = self.0.send(builder).await?;
        self.0.cbor(response).await
    }

    /// `GET /storage/v1/mutable/:si/shares`
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn list_shares(
        &self,
        si: &StorageIndex,
    ) -> Result<BTreeSet<ShareNumber>, ClientError> {
        self.0.list(ShareKind::Mutable, si).await
    }

    /// `GET /storage/v1/mutable/:si/:shnum` with a range.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn read_share_chunk(
        &self,
        si: &StorageIndex,
        shnum: ShareNumber,
        offset: u64,
        length: u64,
    ) -> Result<Bytes, ClientError> {
        self.0
            .read(&v1::mutable_share_path(si, shnum), offset, length)
            .await
    }

    /// `POST /storage/v1/mutable/:si/:shnum/corrupt`
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn advise_corrupt(
        &self,
        si: &StorageIndex,
        shnum: ShareNumber,
        reason: &str,
    ) -> Result<(), ClientError> {
        self.0.corrupt(ShareKind::Mutable, si, shnum, reason).await
    }
}
