//! The storage client: one typed method per GBS endpoint.
//!
//! A storage server is trusted for nothing but the bytes it is asked for, and those
//! are checked by the caller. So every request has a time bound (connecting, and
//! waiting for each piece of the answer), and every answer a size bound fixed before
//! it is read: a ranged read takes at most the length asked, a CBOR answer at most
//! [`ClientOptions::max_cbor_answer`], an error body at most [`MAX_ERROR_BODY`]. A
//! `Content-Length` over the bound fails before a byte of the body is read; a body
//! that runs past it fails at the chunk that crosses it, with nothing more read.

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
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
use tracing::Instrument;

use swamp_proto::v1::endpoint::SECRETS_HEADER;

/// HTTP/2 receive windows: large and fixed, so a share's blocks stream without
/// waiting for window updates even when a busy machine makes round trips slow.
const H2_STREAM_WINDOW: u32 = 16 * 1024 * 1024;
const H2_CONNECTION_WINDOW: u32 = 64 * 1024 * 1024;
/// Largest HTTP/2 frame a server may send us (the protocol's largest, 16 MiB - 1): a
/// share read arrives as one DATA frame instead of 16 KiB ones, so its body is one
/// buffer, taken as it is, not gathered into a new one (100 MiB of copying and fresh
/// memory per 100 MiB downloaded).
const H2_MAX_FRAME: u32 = (1 << 24) - 1;

/// Default [`ClientOptions::connect_timeout`]: a TCP connection and TLS handshake take
/// a few round trips; ten seconds covers a slow path and still fails fast on a server
/// that is gone or a port that swallows packets.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default [`ClientOptions::read_timeout`]: a live server answers a request (its
/// headers) and sends a body's next bytes well within this even under load; a minute
/// leaves room for a slow disk or a slow link, and is what a hung server costs.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Default [`ClientOptions::max_cbor_answer`]. Every CBOR answer GBS defines is small
/// (a version, a set of at most 256 share numbers, upload progress); only a
/// read-test-write's read vectors carry data, and Swamp's own are checkstrings. 16 MiB
/// leaves callers room for larger read vectors.
pub const DEFAULT_MAX_CBOR_ANSWER: u64 = 16 * 1024 * 1024;
/// The most of an error answer's body that is read (its start is kept, as the
/// explanation, in [`ClientError::Http`]).
pub const MAX_ERROR_BODY: u64 = 4096;

/// Largest HTTP/2 header list accepted in an answer.
const MAX_HEADER_LIST: u32 = 64 * 1024;
/// The most memory a body's announced length reserves before its bytes arrive.
const MAX_PREALLOCATED: u64 = 16 * 1024 * 1024;

/// Connection choices.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Offer only HTTP/1.1 in ALPN (as Tahoe's Python client does, which offers none).
    pub http1_only: bool,
    /// Longest wait for a connection: TCP connect and TLS handshake
    /// ([`DEFAULT_CONNECT_TIMEOUT`]).
    pub connect_timeout: Duration,
    /// Longest wait for an answer once the request is made (sending its body
    /// included), and then for each next piece of the answer's body: the body may take
    /// longer in all, as long as it keeps coming ([`DEFAULT_READ_TIMEOUT`]). Running
    /// out is [`ClientError::Timeout`].
    pub read_timeout: Duration,
    /// Largest CBOR answer read ([`DEFAULT_MAX_CBOR_ANSWER`]); a larger one is
    /// [`ClientError::TooLarge`].
    pub max_cbor_answer: u64,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            http1_only: false,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
            max_cbor_answer: DEFAULT_MAX_CBOR_ANSWER,
        }
    }
}

/// A client of one storage server.
#[derive(Clone)]
pub struct StorageClient {
    http: reqwest::Client,
    /// For share writes: HTTP/1.1 (see [`StorageClient::with_options`]).
    writes: reqwest::Client,
    base_url: String,
    authorization: String,
    options: ClientOptions,
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
        let builder = || {
            reqwest::Client::builder()
                .pool_max_idle_per_host(16)
                .connect_timeout(options.connect_timeout)
                .read_timeout(options.read_timeout)
                // GBS answers carry a handful of short headers; hyper bounds an
                // HTTP/1.1 head by its read buffer, HTTP/2 by this.
                .http2_max_header_list_size(MAX_HEADER_LIST)
        };
        let http1 = || {
            builder()
                .tls_backend_preconfigured(pinned_config(nurl.spki_hash, &[b"http/1.1"]))
                .http1_only()
                .build()
        };
        let http = if options.http1_only {
            http1()?
        } else {
            builder()
                .tls_backend_preconfigured(pinned_config(nurl.spki_hash, &[b"h2", b"http/1.1"]))
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
            options: options.clone(),
        })
    }

    /// The options this client was made with.
    pub fn options(&self) -> &ClientOptions {
        &self.options
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

    /// Sends `request` in a span of its own (`trace.rs`), which ends when the answer
    /// returned is dropped.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let (http, request) = request.build_split();
        let mut request = request.map_err(ClientError::Transport)?;
        let span = crate::trace::start(&mut request);
        let mut response = match http.execute(request).instrument(span.clone()).await {
            Ok(response) => response,
            Err(e) => {
                crate::trace::failed(&span);
                return Err(self.failed(e));
            }
        };
        let status = response.status();
        crate::trace::answered(&span, status);
        if status.is_success() {
            response.extensions_mut().insert(span);
            return Ok(response);
        }
        Err(ClientError::Http {
            status,
            body: error_text(response).instrument(span).await,
        })
    }

    /// A failed transfer, as a [`ClientError`]: a timeout says which bound ran out.
    fn failed(&self, e: reqwest::Error) -> ClientError {
        if !e.is_timeout() {
            return ClientError::Transport(e);
        }
        let connecting = e.is_connect();
        ClientError::Timeout {
            connecting,
            after: if connecting {
                self.options.connect_timeout
            } else {
                self.options.read_timeout
            },
        }
    }

    /// Reads `response`'s body, at most `limit` bytes of it: a `Content-Length` over
    /// the limit fails before anything is read, and a body that runs past it fails at
    /// the chunk that crosses it. A body that arrives as one chunk (a share read over
    /// HTTP/2 with large frames) is returned as it is, without a copy.
    async fn body(
        &self,
        mut response: reqwest::Response,
        limit: u64,
        what: &'static str,
    ) -> Result<Bytes, ClientError> {
        let too_large = ClientError::TooLarge { what, limit };
        if response.content_length().is_some_and(|len| len > limit) {
            return Err(too_large);
        }
        let announced = response.content_length().unwrap_or(0);
        let mut first: Option<Bytes> = None;
        let mut gathered: Option<BytesMut> = None;
        let mut total = 0u64;
        while let Some(chunk) = response.chunk().await.map_err(|e| self.failed(e))? {
            total += chunk.len() as u64;
            if total > limit {
                return Err(too_large);
            }
            match (&mut gathered, first.take()) {
                (Some(buf), _) => buf.extend_from_slice(&chunk),
                (None, None) => first = Some(chunk),
                (None, Some(head)) => {
                    // Room for what was announced (within the limit, and only up to
                    // MAX_PREALLOCATED before the bytes have come), or what came.
                    let room = announced.min(MAX_PREALLOCATED).max(total);
                    let mut buf = BytesMut::with_capacity(room as usize);
                    buf.extend_from_slice(&head);
                    buf.extend_from_slice(&chunk);
                    gathered = Some(buf);
                }
            }
        }
        Ok(gathered.map_or_else(|| first.unwrap_or_default(), BytesMut::freeze))
    }

    /// A CBOR answer's bytes (its content type checked, its size bounded).
    async fn cbor_bytes(&self, response: reqwest::Response) -> Result<Bytes, ClientError> {
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
        self.body(response, self.options.max_cbor_answer, "CBOR answer")
            .await
    }

    async fn cbor<T: serde::de::DeserializeOwned>(
        &self,
        response: reqwest::Response,
    ) -> Result<T, ClientError> {
        let bytes = self.cbor_bytes(response).await?;
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
                // The server may clip the range at the share's end, never widen it.
                if got.first != offset || got.len() > length {
                    return Err(ClientError::Protocol(format!(
                        "asked for {offset}+{length}, got {content_range}"
                    )));
                }
                let body = self.body(response, got.len(), "share data").await?;
                if body.len() as u64 != got.len() {
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

/// The start of an error answer's body (at most [`MAX_ERROR_BODY`] bytes read, 1000
/// characters kept). The explanation is a courtesy: a body that is long, slow or
/// broken is cut short, never turned into another error.
async fn error_text(mut response: reqwest::Response) -> String {
    let mut body = Vec::new();
    while (body.len() as u64) < MAX_ERROR_BODY {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    body.truncate(MAX_ERROR_BODY as usize);
    String::from_utf8_lossy(&body).chars().take(1000).collect()
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
        VersionResponse::from_cbor(&self.0.cbor_bytes(response).await?).map_err(ClientError::Decode)
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
