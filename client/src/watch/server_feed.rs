//! One server's change feed as the watcher sees it: the cursor it resumes from,
//! whether it is followed, lost or polled instead, and the task forwarding its items.
//! Everything the watcher knows about a server lives in one [`ServerFeed`], so it is
//! kept, restarted and dropped together: dropping one aborts its task.

use futures::StreamExt;
use swamp_proto::feed::Cursor;
use swamp_proto::{Nurl, StorageIndex};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::feed::{FeedItem, FeedOptions, FeedRequest, follow};

/// An item from the feed of server `server` (its index in the grid's server list).
pub(super) struct Trigger {
    pub(super) server: usize,
    pub(super) item: FeedItem,
}

/// How a server's feed is doing.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Link {
    /// Followed (or being connected to).
    Up,
    /// Lost, and said so; changes may be missed until it is back.
    Down,
    /// The server has no change feed: it is polled instead, and never followed again.
    Polled,
}

/// One server's feed.
pub(super) struct ServerFeed {
    nurl: Nurl,
    /// The last cursor seen, to resume from when the followed set changes.
    cursor: Option<Cursor>,
    link: Link,
    /// The task forwarding this feed's items as [`Trigger`]s.
    task: Option<JoinHandle<()>>,
}

impl ServerFeed {
    pub(super) fn new(nurl: Nurl) -> Self {
        Self {
            nurl,
            cursor: None,
            link: Link::Up,
            task: None,
        }
    }

    /// `host:port`, for notices.
    pub(super) fn name(&self) -> String {
        format!("{}:{}", self.nurl.host, self.nurl.port)
    }

    /// Whether the server has no feed and is polled instead.
    pub(super) fn is_polled(&self) -> bool {
        self.link == Link::Polled
    }

    /// (Re)follows `storage_indexes`, sending items to `triggers` as from `server`.
    /// It resumes from the last cursor, or starts with a snapshot when there is none,
    /// so nothing between the first read and the subscription is missed. A polled
    /// server is not followed.
    pub(super) fn restart(
        &mut self,
        server: usize,
        storage_indexes: Vec<StorageIndex>,
        options: &FeedOptions,
        triggers: &mpsc::Sender<Trigger>,
    ) {
        self.stop();
        if self.is_polled() {
            return;
        }
        let request = FeedRequest {
            storage_indexes,
            since: self.cursor,
            snapshot: self.cursor.is_none(),
        };
        let mut stream = Box::pin(follow(&self.nurl, request, options.clone()));
        let triggers = triggers.clone();
        self.task = Some(tokio::spawn(async move {
            while let Some(item) = stream.next().await {
                if triggers.send(Trigger { server, item }).await.is_err() {
                    break;
                }
            }
        }));
    }

    fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// Notes the cursor of an event.
    pub(super) fn saw(&mut self, cursor: Cursor) {
        self.cursor = Some(cursor);
    }

    /// Notes a connection; `true` when the feed was lost before, so changes may have
    /// been missed meanwhile.
    pub(super) fn connected(&mut self) -> bool {
        let was_down = self.link == Link::Down;
        if was_down {
            self.link = Link::Up;
        }
        was_down
    }

    /// Notes a lost connection; `true` the first time (until it is back).
    pub(super) fn lost(&mut self) -> bool {
        let news = self.link == Link::Up;
        if news {
            self.link = Link::Down;
        }
        news
    }

    /// Notes that the server has no feed; `true` the first time.
    pub(super) fn unsupported(&mut self) -> bool {
        let news = !self.is_polled();
        self.link = Link::Polled;
        news
    }
}

impl Drop for ServerFeed {
    fn drop(&mut self) {
        self.stop();
    }
}
