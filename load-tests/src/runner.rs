//! What every scenario shares: the server connections, when to stop, per-request timing
//! and the tallies workers keep.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use http::Method;
use swamp_client::{ClientError, StorageClient};
use tokio::task::JoinSet;

/// The server under test: one or more independent clients (each has its own connection
/// pool, so with HTTP/2 each is one TCP connection), and the per-request timeout.
#[derive(Clone)]
pub struct Target {
    clients: Vec<StorageClient>,
    /// A request without an answer after this long counts as an error, so a stuck
    /// server cannot hang a run.
    pub timeout: Duration,
}

impl Target {
    /// Wraps the clients; there must be at least one.
    pub fn new(clients: Vec<StorageClient>, timeout: Duration) -> anyhow::Result<Self> {
        anyhow::ensure!(!clients.is_empty(), "at least one connection is needed");
        Ok(Self { clients, timeout })
    }

    /// The client worker `n` uses: workers are spread round-robin over the clients.
    pub fn client(&self, n: usize) -> StorageClient {
        self.clients[n % self.clients.len()].clone()
    }

    /// How many clients (connections, under HTTP/2) there are.
    pub fn connections(&self) -> usize {
        self.clients.len()
    }

    /// Opens the connections before a timed phase, so TLS handshakes are not measured:
    /// `concurrency` simultaneous version requests spread over the clients. Also the
    /// first check that the server answers at all.
    ///
    /// # Errors
    /// The first failed request: an unreachable server or a wrong NURL stops the run here.
    pub async fn warm_up(&self, concurrency: usize) -> anyhow::Result<()> {
        let mut set = JoinSet::new();
        for n in 0..concurrency.max(self.clients.len()) {
            let client = self.client(n);
            let timeout = self.timeout;
            set.spawn(
                async move { tokio::time::timeout(timeout, client.general().version()).await },
            );
        }
        while let Some(joined) = set.join_next().await {
            joined
                .context("a warm-up task panicked")?
                .map_err(|_| {
                    anyhow::anyhow!(
                        "GET /storage/v1/version got no answer within {:?}",
                        self.timeout
                    )
                })?
                .context("GET /storage/v1/version failed")?;
        }
        Ok(())
    }

    /// The HTTP version the server negotiated ("HTTP/2.0" or "HTTP/1.1").
    ///
    /// # Errors
    /// When the request fails.
    pub async fn protocol(&self) -> anyhow::Result<String> {
        let request = self.clients[0].request(Method::GET, swamp_proto::v1::VERSION_PATH);
        let response = tokio::time::timeout(self.timeout, request.send())
            .await
            .map_err(|_| anyhow::anyhow!("no answer within {:?}", self.timeout))?
            .context("GET /storage/v1/version failed")?;
        Ok(format!("{:?}", response.version()))
    }
}

/// When a scenario's timed phase ends: at a deadline, or after a number of requests,
/// whichever comes first. Every loop claims before each request, so every loop ends.
pub struct Budget {
    deadline: Instant,
    remaining: Option<AtomicU64>,
}

impl Budget {
    /// A budget of `duration` from now and, if given, at most `requests` requests.
    pub fn new(duration: Duration, requests: Option<u64>) -> Self {
        Self {
            deadline: Instant::now() + duration,
            remaining: requests.map(AtomicU64::new),
        }
    }

    /// Claims one request: false once the deadline has passed or the count is spent.
    pub fn claim(&self) -> bool {
        if self.expired() {
            return false;
        }
        match &self.remaining {
            None => true,
            Some(left) => left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok(),
        }
    }

    /// Whether the deadline has passed.
    pub fn expired(&self) -> bool {
        Instant::now() >= self.deadline
    }
}

/// What one worker (or, merged, a whole scenario) saw.
#[derive(Default)]
pub struct Tally {
    /// One entry per successful timed request.
    pub latencies: Vec<Duration>,
    /// Failed requests: error answers, transport failures, timeouts, wrong data.
    pub errors: u64,
    /// Payload bytes moved by successful requests.
    pub bytes: u64,
    /// The first error, for the report.
    pub first_error: Option<String>,
}

impl Tally {
    /// Runs one request under the timeout, recording its latency if it succeeds and an
    /// error if it fails. Only the request is timed, not what the caller does with
    /// the answer.
    pub async fn time<T>(
        &mut self,
        timeout: Duration,
        request: impl Future<Output = Result<T, ClientError>>,
    ) -> Option<T> {
        let start = Instant::now();
        let answer = self.attempt(timeout, request).await?;
        self.latencies.push(start.elapsed());
        Some(answer)
    }

    /// Runs one request under the timeout, recording an error if it fails but no
    /// latency: for requests outside the scenario's own (allocations in the upload).
    pub async fn attempt<T>(
        &mut self,
        timeout: Duration,
        request: impl Future<Output = Result<T, ClientError>>,
    ) -> Option<T> {
        match tokio::time::timeout(timeout, request).await {
            Ok(Ok(answer)) => Some(answer),
            Ok(Err(e)) => {
                self.error(format!("{:#}", anyhow::Error::new(e)));
                None
            }
            Err(_) => {
                self.error(format!("no answer within {timeout:?}"));
                None
            }
        }
    }

    /// Turns the last timed request into an error: it answered, but wrongly.
    pub fn reject(&mut self, message: String) {
        self.latencies.pop();
        self.error(message);
    }

    /// Counts an error, keeping the first message.
    pub fn error(&mut self, message: String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(message);
        }
    }

    /// Adds another worker's tally to this one.
    pub fn merge(&mut self, other: Self) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        self.bytes += other.bytes;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// Spawns `workers` tasks made by `make(worker_number)` and collects what they return.
///
/// # Errors
/// If a worker panicked.
pub async fn run_workers<F, Fut, T>(workers: usize, mut make: F) -> anyhow::Result<Vec<T>>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let mut set = JoinSet::new();
    for n in 0..workers {
        set.spawn(make(n));
    }
    let mut results = Vec::with_capacity(workers);
    while let Some(joined) = set.join_next().await {
        results.push(joined.context("a load worker panicked")?);
    }
    Ok(results)
}

/// Merges tallies into one.
pub fn merged(tallies: impl IntoIterator<Item = Tally>) -> Tally {
    let mut total = Tally::default();
    for t in tallies {
        total.merge(t);
    }
    total
}
