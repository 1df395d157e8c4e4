//! Group commit's waiting room: which sequence number is known synced, whether a sync
//! runs now, and how writers wait for one.
//!
//! One writer at a time runs a sync that covers everything written before it started;
//! the others wait until it ends and then either find their entries covered or start
//! the next one. Two kinds of writer wait here:
//! - a thread (the blocking pool: uploads, advisories, large read-test-writes) waits on
//!   a condition variable and runs the sync itself;
//! - a task (a small read-test-write handled on the request's own thread,
//!   `backend/slots_inline.rs`) awaits a notification and, when it is its turn, hands
//!   the sync to the blocking pool: one trip there per group, not one per writer.
//!
//! Both are woken together when a sync ends, whoever ran it. The sync's ending is
//! recorded by a guard that moves with the sync, so a sync that panics, or whose task
//! is dropped, still ends and never leaves the others waiting.

use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::Notify;

use super::log::SyncJob;

/// What group commit reports to the node's metrics (`crate::operator::metrics`);
/// by default, nowhere.
#[derive(Clone)]
pub struct GroupMetrics {
    /// Seconds each sync of the log took.
    pub sync_seconds: metrics::Histogram,
    /// Entries each sync made durable (the group's size).
    pub entries: metrics::Histogram,
}

impl Default for GroupMetrics {
    fn default() -> Self {
        Self {
            sync_seconds: metrics::Histogram::noop(),
            entries: metrics::Histogram::noop(),
        }
    }
}

/// Where the syncs stand, shared with the sync running on the blocking pool.
pub(crate) struct Group {
    state: Mutex<Synced>,
    metrics: GroupMetrics,
    /// Threads waiting for a sync to end.
    done: Condvar,
    /// Tasks waiting for a sync to end.
    done_async: Notify,
}

struct Synced {
    /// The last sequence number known synced to disk.
    upto: u64,
    /// Whether a writer is syncing now.
    syncing: bool,
}

/// What a writer does next.
enum Turn {
    /// Its entries are synced.
    Covered,
    /// Another writer's sync runs: wait for it.
    Wait,
    /// Nobody syncs: run one now.
    Sync,
}

impl Group {
    /// Everything up to `head` is synced (the log as opened).
    pub(crate) fn new(head: u64, metrics: GroupMetrics) -> Self {
        Self {
            metrics,
            state: Mutex::new(Synced {
                upto: head,
                syncing: false,
            }),
            done: Condvar::new(),
            done_async: Notify::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, Synced> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The last sequence number known synced.
    pub(crate) fn upto(&self) -> u64 {
        self.state().upto
    }

    fn turn(state: &mut Synced, last: u64) -> Turn {
        if state.upto >= last {
            Turn::Covered
        } else if state.syncing {
            Turn::Wait
        } else {
            state.syncing = true;
            Turn::Sync
        }
    }

    /// Returns once everything up to `last` is synced, on this thread: waits for the
    /// sync running now, or runs one got from `job` (which says the sequence number it
    /// covers and the sync to run).
    pub(crate) fn sync_through(
        &self,
        last: u64,
        job: impl Fn() -> (u64, SyncJob),
    ) -> io::Result<()> {
        let mut state = self.state();
        loop {
            match Self::turn(&mut state, last) {
                Turn::Covered => return Ok(()),
                Turn::Wait => {
                    state = self.done.wait(state).unwrap_or_else(|p| p.into_inner());
                }
                Turn::Sync => {
                    drop(state);
                    let (target, job) = job();
                    return Ending::new(self).run(target, &job);
                }
            }
        }
    }

    /// The same for a task: waits without holding a thread, and runs its turn's sync
    /// on the blocking pool.
    pub(crate) async fn sync_through_async(
        self: &Arc<Self>,
        last: u64,
        job: impl Fn() -> (u64, SyncJob),
    ) -> io::Result<()> {
        loop {
            // Registered before the state is read, so a sync ending in between still
            // wakes us.
            let notified = self.done_async.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let turn = Self::turn(&mut self.state(), last);
            match turn {
                Turn::Covered => return Ok(()),
                Turn::Wait => notified.await,
                Turn::Sync => {
                    let (target, job) = job();
                    let group = Arc::clone(self);
                    let sync =
                        tokio::task::spawn_blocking(move || Ending::new(&group).run(target, &job));
                    return sync.await.unwrap_or_else(|e| {
                        Err(io::Error::other(format!("the sync failed: {e}")))
                    });
                }
            }
        }
    }
}

/// Ends the sync a writer runs, also if it panics: records what it made durable, then
/// wakes every waiter.
struct Ending<'a> {
    group: &'a Group,
    upto: Option<u64>,
}

impl<'a> Ending<'a> {
    fn new(group: &'a Group) -> Self {
        Self { group, upto: None }
    }

    /// Runs `job`, which makes everything up to `target` durable. On failure the
    /// others try again and fail on the latch (`durable.rs`).
    fn run(mut self, target: u64, job: &SyncJob) -> io::Result<()> {
        let started = Instant::now();
        let result = job.run();
        if result.is_ok() {
            let metrics = &self.group.metrics;
            metrics.sync_seconds.record(started.elapsed().as_secs_f64());
            let before = self.group.upto();
            metrics.entries.record(target.saturating_sub(before) as f64);
        }
        self.upto = result.is_ok().then_some(target);
        result
    }
}

impl Drop for Ending<'_> {
    fn drop(&mut self) {
        let mut state = self.group.state();
        state.syncing = false;
        if let Some(upto) = self.upto {
            state.upto = state.upto.max(upto);
        }
        drop(state);
        self.group.done.notify_all();
        self.group.done_async.notify_waiters();
    }
}
