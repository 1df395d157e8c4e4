//! `POST /uri/$DIRCAP[/PATH]?t=stream-manifest` and `?t=stream-deep-check`: a whole
//! tree, one JSON line per object as it is reached (Tahoe's order, the client
//! library's [`Grid::walk_tree`]), then a `{"type": "stats"}` line with Tahoe's
//! deep-stats. Lines are written as Python's `json.dumps` writes them
//! ([`swamp_formats::pyjson`]), so Tahoe's `tahoe manifest --raw` and `tahoe
//! deep-check --raw` print the same bytes from either node.
//!
//! The walk runs on a transfer thread (a verify hashes every share, a repair
//! uploads) and hands lines to the response through a small bounded channel: a slow
//! client slows the walk instead of growing a queue, a client that stops reading for
//! [`STALL_TIMEOUT`] or hangs up ends it. A failure mid-walk ends the stream with
//! Tahoe's non-JSON `ERROR:` line, which Tahoe's CLI reports and exits 1 on.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{StatusCode, header};
use serde_json::json;
use swamp_client::check::CheckOptions;
use swamp_client::grid::{Grid, GridError};
use swamp_client::tree::{TreeNode, Walker};
use swamp_formats::cap::Cap;
use swamp_formats::pyjson;
use tokio::sync::mpsc;

use crate::Gateway;
use crate::args::Args;
use crate::error::WebError;

/// Lines queued between the walk and the client.
const QUEUED_LINES: usize = 64;
/// How long the walk waits for the client to take a line.
pub(crate) const STALL_TIMEOUT: Duration = Duration::from_secs(120);

/// What each object is streamed with.
#[derive(Clone, Copy)]
pub(crate) enum Stream {
    /// Its manifest line.
    Manifest,
    /// Its check (and repair) results.
    Check { options: CheckOptions, repair: bool },
}

impl Stream {
    /// `t=stream-deep-check`'s arguments.
    pub(crate) fn check(args: &Args) -> Result<Self, WebError> {
        Ok(Self::Check {
            options: CheckOptions {
                verify: args.boolean("verify", false)?,
                add_lease: args.boolean("add-lease", false)?,
            },
            repair: args.boolean("repair", false)?,
        })
    }
}

/// Starts the walk of `root`; the response streams its lines.
pub(crate) async fn stream(
    gateway: &Arc<Gateway>,
    root: Cap,
    what: Stream,
) -> Result<Response, WebError> {
    let (tx, rx) = mpsc::channel::<Bytes>(QUEUED_LINES);
    let grid = gateway.grid.clone();
    crate::transfer::start(gateway, "gateway-deep", move |handle| {
        handle.block_on(async move {
            let mut walker = LineWalker {
                grid: &grid,
                tx,
                what,
                failure: None,
            };
            let end = grid.walk_tree(&root, &mut walker).await;
            let last = match (end, walker.failure.take()) {
                (_, Some(failure)) => failure,
                (Err(e), None) => error_line(&e),
                (Ok(end), None) if end.stopped => return,
                (Ok(end), None) => {
                    let line = json!({"type": "stats", "stats": end.stats.to_json()});
                    format!("{}\n", pyjson::dumps(&line))
                }
            };
            let _ = walker.send(last).await;
        });
    })
    .await?;
    let lines = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|line| (Ok::<Bytes, std::io::Error>(line), rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from_stream(lines))
        .map_err(|e| WebError::Internal(format!("building a response: {e}")))
}

/// Tahoe's `ERROR:` line: the exception's name and arguments, then its text.
fn error_line(error: &GridError) -> String {
    let name = match error {
        GridError::NotEnoughShares { .. } => "UnrecoverableFileError",
        GridError::NotADirectory { .. } => "NotDirectoryError",
        _ => "GridError",
    };
    let text = swamp_proto::error::chain(error).replace('\n', " ");
    format!("ERROR: {name}({text})\n{text}\n")
}

/// A walk that writes a line per object.
struct LineWalker<'g> {
    grid: &'g Grid,
    tx: mpsc::Sender<Bytes>,
    what: Stream,
    /// The `ERROR:` line that ended the walk.
    failure: Option<String>,
}

impl LineWalker<'_> {
    /// Sends a line; `Break` when the client is gone or has stopped reading.
    async fn send(&self, line: String) -> ControlFlow<()> {
        match tokio::time::timeout(STALL_TIMEOUT, self.tx.send(Bytes::from(line))).await {
            Ok(Ok(())) => ControlFlow::Continue(()),
            _ => ControlFlow::Break(()),
        }
    }
}

impl Walker for LineWalker<'_> {
    async fn visit(&mut self, node: TreeNode) -> ControlFlow<()> {
        let line = match self.what {
            Stream::Check { options, repair } if !matches!(node.cap, Cap::Unknown(_)) => {
                match self.grid.check_node(node, options, repair).await {
                    Ok(checked) => checked.to_stream_json(),
                    Err(e) => {
                        self.failure = Some(error_line(&e));
                        return ControlFlow::Break(());
                    }
                }
            }
            // Tahoe's unknown nodes have no check results; its CLI skips their lines.
            _ => node.to_manifest_json(),
        };
        self.send(format!("{}\n", pyjson::dumps(&line))).await
    }

    fn unreadable(&mut self, _path: &[String], error: &GridError) -> ControlFlow<()> {
        self.failure = Some(error_line(error));
        ControlFlow::Break(())
    }
}
