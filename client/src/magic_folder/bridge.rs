//! The bridge's loop: keeps the set of followed folders equal to the daemon's list,
//! turns the causes the followers send into coalesced `poll-remote` requests, and
//! rides out the daemon going away (requests kept and asked again; one poll of every
//! folder when it is back, since it may have missed a trigger while away).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::api::{DaemonApi, DaemonError, FolderInfo};
use super::coalesce::{CoalesceOptions, Coalescer, Pending};
use super::folders::plan;
use super::follow::{Noted, follow_folder};
use super::participants::Cause;
use super::report::BridgeEvent;
use super::status::{StatusSignal, follow_status};
use crate::grid::Grid;
use crate::watch::WatchOptions;

/// How the bridge runs.
#[derive(Clone, Debug)]
pub struct BridgeOptions {
    /// How often the daemon's folder list is read again.
    pub refresh: Duration,
    /// How often servers without a change feed are polled.
    pub poll_interval: Duration,
    /// Timing of poll requests.
    pub coalesce: CoalesceOptions,
    /// Watch settings (feeds); depth and recursion are the bridge's own.
    pub watch: WatchOptions,
}

impl Default for BridgeOptions {
    fn default() -> Self {
        Self {
            refresh: Duration::from_secs(30),
            poll_interval: Duration::from_secs(10),
            coalesce: CoalesceOptions::default(),
            watch: WatchOptions::default(),
        }
    }
}

/// Retry delays while the daemon cannot be reached.
const DAEMON_RETRY_MIN: Duration = Duration::from_secs(1);
const DAEMON_RETRY_MAX: Duration = Duration::from_secs(5);

/// A poll that ended.
struct Done {
    folder: String,
    pending: Pending,
    result: Result<(), DaemonError>,
}

struct Bridge {
    grid: Arc<Grid>,
    api: DaemonApi,
    options: BridgeOptions,
    out: mpsc::Sender<BridgeEvent>,
    followed: BTreeMap<String, (FolderInfo, JoinHandle<()>)>,
    coalescer: Coalescer,
    causes: mpsc::Sender<Noted>,
    done: mpsc::Sender<Done>,
    /// The daemon could not be reached at the last try.
    daemon_down: bool,
    daemon_retry: Duration,
    next_refresh: Instant,
}

/// Runs the bridge until `out` is closed.
pub async fn run(
    grid: Arc<Grid>,
    api: DaemonApi,
    options: BridgeOptions,
    out: mpsc::Sender<BridgeEvent>,
) {
    let (causes, mut causes_rx) = mpsc::channel(1024);
    let (done, mut done_rx) = mpsc::channel(64);
    let (signals, mut signals_rx) = mpsc::channel(16);
    let status = tokio::spawn(follow_status(api.clone(), signals));
    let mut b = Bridge {
        grid,
        api,
        coalescer: Coalescer::new(options.coalesce),
        options,
        out,
        followed: BTreeMap::new(),
        causes,
        done,
        daemon_down: false,
        daemon_retry: DAEMON_RETRY_MIN,
        next_refresh: Instant::now(),
    };
    loop {
        let due = b.coalescer.next_due();
        let far = Instant::now() + Duration::from_secs(3600);
        let alive = tokio::select! {
            () = tokio::time::sleep_until(b.next_refresh.into()) => b.refresh().await,
            Some(noted) = causes_rx.recv() => b.note(noted).await,
            Some(done) = done_rx.recv() => b.finished(done).await,
            Some(signal) = signals_rx.recv() => b.on_status(signal).await,
            () = tokio::time::sleep_until(due.unwrap_or(far).into()), if due.is_some() => {
                b.start_due().await
            }
            () = b.out.closed() => false,
        };
        if !alive {
            break;
        }
    }
    status.abort();
    for (_, (_, task)) in std::mem::take(&mut b.followed) {
        task.abort();
    }
}

impl Bridge {
    async fn report(&self, event: BridgeEvent) -> bool {
        self.out.send(event).await.is_ok()
    }

    /// Notes that the daemon could not be reached; reports it once per outage.
    async fn daemon_unreachable(&mut self, error: &DaemonError) -> bool {
        let first = !self.daemon_down;
        self.daemon_down = true;
        let retry = self.daemon_retry;
        self.daemon_retry = (self.daemon_retry * 2).min(DAEMON_RETRY_MAX);
        self.next_refresh = self.next_refresh.min(Instant::now() + retry);
        !first
            || self
                .report(BridgeEvent::Info(format!(
                    "{error}; trying again every few seconds"
                )))
                .await
    }

    /// Asks for one poll of every followed folder (after the daemon was away).
    fn resync_all(&mut self) {
        let now = Instant::now();
        for name in self.followed.keys() {
            self.coalescer.note(name, "resync", now);
        }
    }

    /// A push from the daemon's status stream.
    async fn on_status(&mut self, signal: StatusSignal) -> bool {
        self.next_refresh = Instant::now();
        if signal == StatusSignal::Reconnected {
            self.resync_all();
            let text = "the daemon's status stream is back (a restart?); polling every folder once";
            return self.report(BridgeEvent::Info(text.into())).await;
        }
        true
    }

    /// Reads the daemon's folder list and starts and stops followers to match.
    async fn refresh(&mut self) -> bool {
        self.next_refresh = Instant::now() + self.options.refresh;
        let listed = match self.api.folders().await {
            Ok(listed) => listed,
            Err(e) => return self.daemon_unreachable(&e).await,
        };
        self.daemon_retry = DAEMON_RETRY_MIN;
        if self.daemon_down {
            self.daemon_down = false;
            if !self
                .report(BridgeEvent::Info(
                    "the magic-folder daemon answers again; polling every folder once".into(),
                ))
                .await
            {
                return false;
            }
            self.resync_all();
        }
        let current: BTreeMap<String, FolderInfo> = self
            .followed
            .iter()
            .map(|(name, (info, _))| (name.clone(), info.clone()))
            .collect();
        let plan = plan(&current, &listed);
        for name in plan.stop {
            if let Some((_, task)) = self.followed.remove(&name) {
                task.abort();
            }
            self.coalescer.forget(&name);
            if !self.report(BridgeEvent::Stopped { folder: name }).await {
                return false;
            }
        }
        for folder in plan.start {
            let event = BridgeEvent::Following {
                folder: folder.name.clone(),
                author: folder.author.clone(),
            };
            if !self.report(event).await {
                return false;
            }
            let mut watch = self.options.watch.clone();
            watch.poll_interval = self.options.poll_interval;
            let task = tokio::spawn(follow_folder(
                Arc::clone(&self.grid),
                folder.clone(),
                watch,
                self.causes.clone(),
                self.out.clone(),
            ));
            self.followed.insert(folder.name.clone(), (folder, task));
        }
        true
    }

    async fn note(&mut self, noted: Noted) -> bool {
        if !self.followed.contains_key(&noted.folder) {
            return true;
        }
        self.coalescer
            .note(&noted.folder, &noted.cause.label(), noted.at);
        if let Cause::Gap(why) = &noted.cause {
            let text = format!("folder {}: {why}; asking for one poll", noted.folder);
            return self.report(BridgeEvent::Info(text)).await;
        }
        true
    }

    /// Sends every due poll request, each in its own task.
    async fn start_due(&mut self) -> bool {
        let now = Instant::now();
        for (folder, pending) in self.coalescer.take_due(now) {
            let event = BridgeEvent::PollRequested {
                folder: folder.clone(),
                causes: pending.causes.iter().cloned().collect(),
                latency: now.saturating_duration_since(pending.since),
            };
            if !self.report(event).await {
                return false;
            }
            let (api, done) = (self.api.clone(), self.done.clone());
            tokio::spawn(async move {
                let result = api.poll_remote(&folder).await;
                let _ = done
                    .send(Done {
                        folder,
                        pending,
                        result,
                    })
                    .await;
            });
        }
        true
    }

    async fn finished(&mut self, done: Done) -> bool {
        let now = Instant::now();
        let Done {
            folder,
            pending,
            result,
        } = done;
        let error = match result {
            Ok(()) => {
                self.coalescer.finished(&folder, Ok(()), now);
                return true;
            }
            Err(error) => error,
        };
        let retry_in = match &error {
            DaemonError::Unreachable(_) | DaemonError::Config(_) => {
                // Look at the daemon (and its possibly new port) again soon.
                if !self.daemon_unreachable(&error).await {
                    return false;
                }
                self.daemon_retry
            }
            // A 404: the folder may be gone; the next listing will tell.
            DaemonError::Http { status: 404, .. } => {
                self.next_refresh = now;
                DAEMON_RETRY_MAX
            }
            _ => DAEMON_RETRY_MAX,
        };
        self.coalescer
            .finished(&folder, Err((pending, retry_in)), now);
        self.report(BridgeEvent::PollFailed {
            folder,
            error: error.to_string(),
            retry_in,
        })
        .await
    }
}
