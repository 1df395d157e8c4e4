//! Turning a stream of "folder F may have changed, because of X" into few poll
//! requests, each soon after its first cause.
//!
//! A folder's first cause starts a short delay (so the rest of a burst joins it);
//! when it ends the poll is due. Only one poll per folder is in flight (the daemon
//! answers a poll when it is done, and a poll started during another might not see
//! the newer change), and polls of one folder start at least `min_gap` apart. Causes
//! that arrive meanwhile are kept and make exactly one more poll. A failed poll puts
//! its causes back, due again after a retry delay: nothing is dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Timing of the coalescer.
#[derive(Clone, Copy, Debug)]
pub struct CoalesceOptions {
    /// From a folder's first pending cause to its poll.
    pub delay: Duration,
    /// Least time between the starts of two polls of the same folder.
    pub min_gap: Duration,
}

impl Default for CoalesceOptions {
    fn default() -> Self {
        Self {
            delay: Duration::from_millis(100),
            min_gap: Duration::from_millis(300),
        }
    }
}

/// The causes of one poll.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    /// When the oldest cause was noted (for the latency).
    pub since: Instant,
    /// What caused it: participant names, or a reason such as `resync`.
    pub causes: BTreeSet<String>,
}

#[derive(Default)]
struct Folder {
    pending: Option<Pending>,
    in_flight: bool,
    /// No poll starts before this (the gap after the last start, or a retry delay).
    not_before: Option<Instant>,
}

/// Pending polls per folder.
pub struct Coalescer {
    options: CoalesceOptions,
    folders: BTreeMap<String, Folder>,
}

impl Coalescer {
    /// An empty coalescer.
    pub fn new(options: CoalesceOptions) -> Self {
        Self {
            options,
            folders: BTreeMap::new(),
        }
    }

    /// Notes that `folder` needs a poll because of `cause`, seen at `now`.
    pub fn note(&mut self, folder: &str, cause: &str, now: Instant) {
        let f = self.folders.entry(folder.to_string()).or_default();
        let pending = f.pending.get_or_insert_with(|| Pending {
            since: now,
            causes: BTreeSet::new(),
        });
        pending.causes.insert(cause.to_string());
    }

    fn due_at(&self, f: &Folder) -> Option<Instant> {
        if f.in_flight {
            return None;
        }
        let pending = f.pending.as_ref()?;
        let at = pending.since + self.options.delay;
        Some(f.not_before.map_or(at, |nb| at.max(nb)))
    }

    /// When the next poll is due, if any is pending.
    pub fn next_due(&self) -> Option<Instant> {
        self.folders.values().filter_map(|f| self.due_at(f)).min()
    }

    /// Takes every poll due at `now`, marking each in flight.
    pub fn take_due(&mut self, now: Instant) -> Vec<(String, Pending)> {
        let due: Vec<String> = self
            .folders
            .iter()
            .filter(|(_, f)| self.due_at(f).is_some_and(|at| at <= now))
            .map(|(name, _)| name.clone())
            .collect();
        let min_gap = self.options.min_gap;
        due.into_iter()
            .filter_map(|name| {
                let f = self.folders.get_mut(&name)?;
                let pending = f.pending.take()?;
                f.in_flight = true;
                f.not_before = Some(now + min_gap);
                Some((name, pending))
            })
            .collect()
    }

    /// The poll of `folder` ended. `Ok` drops its causes; `Err(retry_in)` puts
    /// `failed` back (merged with anything newer), due no earlier than `retry_in`.
    pub fn finished(
        &mut self,
        folder: &str,
        result: Result<(), (Pending, Duration)>,
        now: Instant,
    ) {
        let Some(f) = self.folders.get_mut(folder) else {
            return;
        };
        f.in_flight = false;
        if let Err((failed, retry_in)) = result {
            let merged = match f.pending.take() {
                Some(newer) => Pending {
                    since: failed.since.min(newer.since),
                    causes: failed.causes.union(&newer.causes).cloned().collect(),
                },
                None => failed,
            };
            f.pending = Some(merged);
            f.not_before = Some(now + retry_in);
        }
    }

    /// Forgets a folder that is no longer followed.
    pub fn forget(&mut self, folder: &str) {
        self.folders.remove(folder);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn coalescer() -> Coalescer {
        Coalescer::new(CoalesceOptions {
            delay: 100 * MS,
            min_gap: 300 * MS,
        })
    }

    #[test]
    fn a_burst_makes_one_poll_after_the_delay() {
        let mut c = coalescer();
        let t0 = Instant::now();
        for (i, who) in ["alice", "carol", "alice"].iter().enumerate() {
            c.note("docs", who, t0 + 10 * MS * u32::try_from(i).expect("small"));
        }
        assert_eq!(c.next_due(), Some(t0 + 100 * MS), "from the first cause");
        assert!(c.take_due(t0 + 99 * MS).is_empty());
        let due = c.take_due(t0 + 100 * MS);
        assert_eq!(due.len(), 1);
        let (folder, pending) = &due[0];
        assert_eq!(folder, "docs");
        assert_eq!(pending.since, t0);
        assert_eq!(
            pending.causes,
            BTreeSet::from(["alice".into(), "carol".into()])
        );
        assert_eq!(c.next_due(), None, "nothing else pending");
    }

    #[test]
    fn causes_during_a_poll_make_exactly_one_more_after_the_gap() {
        let mut c = coalescer();
        let t0 = Instant::now();
        c.note("docs", "alice", t0);
        assert_eq!(c.take_due(t0 + 100 * MS).len(), 1);
        for i in 0..5 {
            c.note("docs", "alice", t0 + (110 + i) * MS);
        }
        assert_eq!(c.next_due(), None, "never two polls of a folder at once");
        assert!(c.take_due(t0 + 10 * 1000 * MS).is_empty());
        c.finished("docs", Ok(()), t0 + 150 * MS);
        assert_eq!(c.next_due(), Some(t0 + 400 * MS), "min_gap after the start");
        let again = c.take_due(t0 + 400 * MS);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].1.since, t0 + 110 * MS);
        c.finished("docs", Ok(()), t0 + 410 * MS);
        assert_eq!(c.next_due(), None);
    }

    #[test]
    fn folders_are_independent() {
        let mut c = coalescer();
        let t0 = Instant::now();
        c.note("a", "x", t0);
        c.note("b", "y", t0 + 50 * MS);
        assert_eq!(c.take_due(t0 + 100 * MS).len(), 1);
        let b = c.take_due(t0 + 150 * MS);
        assert_eq!(b[0].0, "b");
        c.forget("a");
        c.finished("a", Ok(()), t0 + 200 * MS);
        assert_eq!(c.next_due(), None);
    }

    #[test]
    fn a_failed_poll_keeps_its_causes_and_retries_later() {
        let mut c = coalescer();
        let t0 = Instant::now();
        c.note("docs", "alice", t0);
        let (_, pending) = c.take_due(t0 + 100 * MS).remove(0);
        c.note("docs", "carol", t0 + 120 * MS);
        c.finished("docs", Err((pending, 2000 * MS)), t0 + 130 * MS);
        assert_eq!(c.next_due(), Some(t0 + 2130 * MS));
        let (_, retried) = c.take_due(t0 + 2130 * MS).remove(0);
        assert_eq!(retried.since, t0, "latency counts from the first cause");
        assert_eq!(
            retried.causes,
            BTreeSet::from(["alice".into(), "carol".into()])
        );
    }
}
