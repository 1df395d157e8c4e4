//! Watch sessions: what makes `t=watch` resumable and bounded.
//!
//! A session is one client-library watch ([`swamp_client::watch::watch`]) running in
//! its own task, the last [`WatchLimits::backlog`] events it produced (as JSON text,
//! each with a cursor), and at most one connection reading them. Events are numbered
//! in the session; a cursor is `<session id>-<number>` and names "everything up to
//! this event".
//!
//! - Resuming (SSE `Last-Event-ID`, or `cursor=`) reattaches to the session and
//!   replays what came after the cursor, when the session still runs, is for the same
//!   directory and options, and still holds every event after it. Otherwise the
//!   cursor is unknown (expired, too old, or from before a restart) and the caller
//!   starts a new session with a snapshot.
//! - When its connection goes, a session lingers for [`WatchLimits::linger`] so a
//!   reconnect misses nothing, then stops (its library watch, and the feeds that
//!   watch follows, end with it). A new connection with the session's cursor takes it
//!   over, ending the old one.
//! - Nothing grows without bound: the backlog is a ring; while a connection is
//!   attached the library watch waits for it when the ring is full of events it has
//!   not taken (backpressure, as `tahoe watch` waits for stdout); a connection that
//!   takes nothing for [`STALL`] while the ring is full is dropped with an `error`
//!   event. With no connection attached the oldest events are dropped, which only
//!   makes older cursors unknown.
//! - Sessions (lingering ones included) are bounded by [`WatchLimits::watches`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};
use swamp_client::watch::{WatchOptions, watch};
use swamp_formats::cap::Cap;
use tokio::sync::{mpsc, watch as signal};
use tokio_util::sync::CancellationToken;

use crate::Gateway;
use crate::error::WebError;

/// How long an attached connection may take nothing while the backlog is full before
/// it is dropped as lagging.
pub(crate) const STALL: Duration = Duration::from_secs(30);

/// Bounds on `t=watch`.
#[derive(Clone, Debug)]
pub struct WatchLimits {
    /// Watch sessions at once, lingering ones included; more are refused (503).
    pub watches: usize,
    /// Events a session keeps for resuming (and, while a connection is attached, at
    /// most this many it has not taken yet).
    pub backlog: usize,
    /// How long a session outlives its connection, waiting for a resume.
    pub linger: Duration,
    /// Interval of SSE keep-alive comments and WebSocket pings (which is also how
    /// soon a silently gone client is noticed).
    pub keep_alive: Duration,
}

impl Default for WatchLimits {
    fn default() -> Self {
        Self {
            watches: 64,
            backlog: 4096,
            linger: Duration::from_secs(60),
            keep_alive: Duration::from_secs(15),
        }
    }
}

/// Every running session, by id.
#[derive(Default)]
pub(crate) struct Sessions {
    map: Mutex<HashMap<u64, Arc<Session>>>,
}

impl Sessions {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Arc<Session>>> {
        // A poisoned map is still a consistent map (no code panics holding it).
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sessions running (lingering ones included).
    pub(crate) fn count(&self) -> usize {
        self.lock().len()
    }

    /// Stops every session (the node is shutting down): their connections end after
    /// the events already produced, so a graceful shutdown does not wait on them.
    pub(crate) fn stop_all(&self) {
        for session in self.lock().values() {
            session.stop.cancel();
        }
    }
}

/// A parsed cursor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cursor {
    session: u64,
    seq: u64,
}

impl Cursor {
    /// Parses `<16 hex digits>-<decimal>`; anything else is `None` (an unknown cursor).
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let (session, seq) = text.trim().split_once('-')?;
        if session.len() != 16 {
            return None;
        }
        Some(Self {
            session: u64::from_str_radix(session, 16).ok()?,
            seq: seq.parse().ok()?,
        })
    }

    fn text(self) -> String {
        format!("{:016x}-{}", self.session, self.seq)
    }
}

/// One event as sent: its cursor and its JSON text.
#[derive(Clone, Debug)]
pub(crate) struct Sent {
    pub(crate) cursor: String,
    pub(crate) json: Arc<str>,
}

/// One watch session.
pub(crate) struct Session {
    id: u64,
    /// The watched cap and options, so a cursor only resumes the same watch.
    key: String,
    limits: WatchLimits,
    state: Mutex<State>,
    /// The number of the newest event (readers wait on it).
    head: signal::Sender<u64>,
    /// The number of the newest event the attached connection took (the pump waits
    /// on it when the backlog is full).
    taken: signal::Sender<u64>,
    /// Ends the library watch.
    stop: CancellationToken,
}

#[derive(Default)]
struct State {
    /// The last events, numbered consecutively.
    backlog: VecDeque<(u64, Sent)>,
    /// The number the next event gets (the first is 1; 0 means "before any").
    next_seq: u64,
    /// The connection reading (its number), 0 when none.
    attached: u64,
    /// Numbers connections; also tells a lingering timer whether anyone came back.
    connections: u64,
    /// A connection dropped for lagging (it gets an `error` event, then ends).
    lagged: u64,
    /// The first read failed: the reason, for the request that started it.
    failed: Option<WebError>,
    /// The library watch ended: readers end after the backlog.
    ended: bool,
}

impl Session {
    fn new(id: u64, key: String, limits: WatchLimits) -> Arc<Self> {
        Arc::new(Self {
            id,
            key,
            limits,
            state: Mutex::new(State::default()),
            head: signal::channel(0).0,
            taken: signal::channel(0).0,
            stop: CancellationToken::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds one event, waiting (up to [`STALL`]) for the attached connection when the
    /// backlog is full of events it has not taken.
    async fn push(self: &Arc<Self>, mut value: Value) {
        let mut taken = self.taken.subscribe();
        loop {
            {
                let mut st = self.lock();
                let full = st.backlog.len() >= self.limits.backlog.max(1);
                let oldest = st.backlog.front().map_or(0, |(seq, _)| *seq);
                let behind = st.attached != 0 && *taken.borrow_and_update() < oldest;
                if !full || !behind {
                    if full {
                        st.backlog.pop_front();
                    }
                    break;
                }
            }
            let waited = tokio::select! {
                waited = tokio::time::timeout(STALL, taken.changed()) => waited,
                () = self.stop.cancelled() => return,
            };
            if waited.is_err() {
                let mut st = self.lock();
                let lagging = st.attached;
                if lagging != 0 {
                    st.lagged = lagging;
                    st.attached = 0;
                }
                st.backlog.pop_front();
                drop(st);
                if lagging != 0 {
                    self.head.send_modify(|_| {});
                    self.linger();
                }
                break;
            }
        }
        let mut st = self.lock();
        st.next_seq += 1;
        let seq = st.next_seq;
        let cursor = Cursor {
            session: self.id,
            seq,
        }
        .text();
        value["cursor"] = json!(cursor);
        let sent = Sent {
            cursor,
            json: value.to_string().into(),
        };
        st.backlog.push_back((seq, sent));
        drop(st);
        self.head.send_replace(seq);
    }

    /// Attaches a new connection that has seen everything up to `seq`; `None` when
    /// the backlog no longer holds everything after it.
    fn attach(self: &Arc<Self>, seq: u64) -> Option<Reader> {
        let mut st = self.lock();
        let known = match st.backlog.front() {
            // (In this order: `seq` is the client's and may be anything.)
            Some((oldest, _)) => seq <= st.next_seq && seq + 1 >= *oldest,
            None => seq == st.next_seq,
        };
        if !known || st.ended {
            return None;
        }
        let replaced = st.attached != 0;
        st.connections += 1;
        st.attached = st.connections;
        let reader = Reader {
            session: Arc::clone(self),
            connection: st.attached,
            next: seq + 1,
            head: self.head.subscribe(),
            done: false,
        };
        drop(st);
        self.taken.send_replace(seq);
        if replaced {
            // Wakes the connection taken over, which then ends.
            self.head.send_modify(|_| {});
        }
        Some(reader)
    }

    /// Stops the session after [`WatchLimits::linger`] unless a connection attaches.
    fn linger(self: &Arc<Self>) {
        // A reader dropped while the runtime shuts down has nothing to linger for.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.stop.cancel();
            return;
        };
        let connections = self.lock().connections;
        let session = Arc::clone(self);
        runtime.spawn(async move {
            tokio::select! {
                () = session.stop.cancelled() => {}
                () = tokio::time::sleep(session.limits.linger) => {
                    let st = session.lock();
                    if st.attached == 0 && st.connections == connections {
                        session.stop.cancel();
                    }
                }
            }
        });
    }
}

/// A connection's view of a session: the events after its cursor, then live ones.
/// Dropping it detaches the connection (and the session starts lingering).
pub(crate) struct Reader {
    session: Arc<Session>,
    connection: u64,
    /// The number of the next event to send.
    next: u64,
    head: signal::Receiver<u64>,
    done: bool,
}

impl Reader {
    /// The next event; `None` when the connection is to end (the watch ended, another
    /// connection took the session over, or after the `error` event of a lagging one).
    pub(crate) async fn next(&mut self) -> Option<Sent> {
        if self.done {
            return None;
        }
        loop {
            {
                let st = self.session.lock();
                if st.attached != self.connection {
                    self.done = true;
                    if st.lagged != self.connection {
                        return None;
                    }
                    let message = format!(
                        "this connection took none of the {} events waiting for it in {} s; \
                         reconnect (with the last cursor, or for a new snapshot)",
                        self.session.limits.backlog,
                        STALL.as_secs()
                    );
                    let json = json!({"event": "error", "message": message}).to_string();
                    return Some(Sent {
                        cursor: String::new(),
                        json: json.into(),
                    });
                }
                if let Some((oldest, _)) = st.backlog.front()
                    && let Some(index) = self.next.checked_sub(*oldest)
                    && let Some((seq, sent)) =
                        usize::try_from(index).ok().and_then(|i| st.backlog.get(i))
                {
                    let (seq, sent) = (*seq, sent.clone());
                    drop(st);
                    self.next = seq + 1;
                    self.session.taken.send_replace(seq);
                    return Some(sent);
                }
                if st.ended {
                    self.done = true;
                    return None;
                }
            }
            if self.head.changed().await.is_err() {
                return None;
            }
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let mut st = self.session.lock();
        if st.attached == self.connection {
            st.attached = 0;
            drop(st);
            // A pump waiting for this connection to take events waits no longer.
            self.session.taken.send_modify(|_| {});
            self.session.linger();
        }
    }
}

/// What to watch.
pub(crate) struct Target {
    pub(crate) cap: Cap,
    pub(crate) options: WatchOptions,
}

impl Target {
    /// What a resume must ask for again to resume this watch (`snapshot=` is left
    /// out: a snapshot is only taken at the start).
    fn key(&self) -> String {
        format!(
            "{}|{}|{:?}",
            self.cap, self.options.recursive, self.options.max_depth
        )
    }
}

/// Resumes the session `cursor` names, if it is still known for `target`.
pub(crate) fn resume(gateway: &Arc<Gateway>, target: &Target, cursor: Cursor) -> Option<Reader> {
    let session = gateway.watches.lock().get(&cursor.session).cloned()?;
    if session.key != target.key() {
        return None;
    }
    session.attach(cursor.seq)
}

/// Starts a new session for `target`, sending `first` before anything else, and
/// waits for its first event (so a first read that fails is this request's status).
///
/// # Errors
/// [`WebError::Unavailable`] when [`WatchLimits::watches`] sessions run; the first
/// read's failure.
pub(crate) async fn start(
    gateway: &Arc<Gateway>,
    target: Target,
    first: Option<Value>,
) -> Result<Reader, WebError> {
    let limits = gateway.limits.watch.clone();
    let key = target.key();
    let session = {
        let mut map = gateway.watches.lock();
        if map.len() >= limits.watches {
            return Err(WebError::Unavailable(format!(
                "too many watches ({} at once); close one or try again later",
                limits.watches
            )));
        }
        let id = loop {
            let id = rand::random::<u64>();
            if !map.contains_key(&id) {
                break id;
            }
        };
        let session = Session::new(id, key, limits);
        map.insert(id, Arc::clone(&session));
        session
    };
    let reader = session.attach(0).ok_or_else(|| {
        WebError::Internal("invariant: a new session accepts its first reader".into())
    })?;
    let mut head = session.head.subscribe();
    // The watch's first event (after `first`), or its end, shows whether the first
    // read worked.
    let wanted = 1 + u64::from(first.is_some());
    tokio::spawn(pump(
        Arc::clone(gateway),
        Arc::clone(&session),
        target,
        first,
    ));
    loop {
        {
            let mut st = session.lock();
            if let Some(e) = st.failed.take() {
                return Err(e);
            }
            if st.ended || st.next_seq >= wanted {
                break;
            }
        }
        if head.changed().await.is_err() {
            break;
        }
    }
    Ok(reader)
}

/// Runs the library watch for `session` until it is stopped, then forgets the
/// session.
async fn pump(gateway: Arc<Gateway>, session: Arc<Session>, target: Target, first: Option<Value>) {
    if let Some(first) = first {
        session.push(first).await;
    }
    let (tx, mut rx) = mpsc::channel(64);
    let watching = watch(&gateway.grid, target.cap, target.options, tx);
    tokio::pin!(watching);
    loop {
        tokio::select! {
            () = session.stop.cancelled() => break,
            result = &mut watching => {
                if let Err(e) = result {
                    session.lock().failed = Some(e.into());
                }
                break;
            }
            event = rx.recv() => match event {
                Some(event) => session.push(event.to_json()).await,
                None => break,
            },
        }
    }
    session.stop.cancel();
    // Forgotten before its readers are told, so a client that saw its stream end
    // sees the session gone.
    gateway.watches.lock().remove(&session.id);
    session.lock().ended = true;
    session.head.send_modify(|_| {});
}

#[cfg(test)]
#[path = "watch_session_tests.rs"]
mod tests;
