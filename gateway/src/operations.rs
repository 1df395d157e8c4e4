//! Tahoe's slow operations: `POST /uri/$DIRCAP?t=start-manifest|start-deep-size|
//! start-deep-stats|start-deep-check&ophandle=$HANDLE` starts a whole-tree walk and
//! redirects to `/operations/$HANDLE`, which answers with its state until it is
//! collected (`tahoe stats` polls it with `t=status&output=JSON&
//! release-after-complete=true`; `POST ?t=cancel` stops it).
//!
//! Handles live as long as Tahoe keeps them (4 days when never collected, 1 day
//! after the first look once finished, or `retain-for=` seconds), expired lazily.
//! [`MAX_OPERATIONS`] bounds how many a node holds: each keeps its results (a
//! manifest or a deep-check is as large as the tree) until released.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::response::{Html, IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode, header};
use serde_json::{Value, json};
use swamp_client::check::CheckOptions;
use swamp_client::grid::GridError;
use swamp_client::tree::{TreeNode, Walker};
use swamp_formats::cap::Cap;
use swamp_proto::base32;
use tokio_util::sync::CancellationToken;

use crate::Gateway;
use crate::args::Args;
use crate::error::WebError;
use crate::listing::to_text;
use crate::reply::{encode_segment, escape, text};

/// Operations a node holds at once (running, or finished and not yet released).
pub(crate) const MAX_OPERATIONS: usize = 64;
/// Bytes of an operation handle.
const MAX_HANDLE: usize = 200;
/// How long a finished, never-collected operation is kept.
const UNCOLLECTED_LIFETIME: Duration = Duration::from_secs(4 * 24 * 3600);
/// How long a finished operation is kept once it has been looked at.
const COLLECTED_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// The longest `retain-for=` honoured.
const MAX_RETAIN: Duration = Duration::from_secs(30 * 24 * 3600);

/// What a slow operation computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Manifest,
    DeepSize,
    DeepStats,
    DeepCheck { options: CheckOptions, repair: bool },
}

impl Kind {
    /// The answer while it runs, in the shape of its finished answer.
    fn pending(self, origin: &str) -> Value {
        match self {
            Self::Manifest => json!({"stats": {}, "finished": false, "origin": origin}),
            Self::DeepSize => json!({"finished": false, "size": null}),
            Self::DeepStats | Self::DeepCheck { .. } => json!({"finished": false}),
        }
    }
}

/// An operation's answer once it ended, and when it did.
struct Finished {
    at: Instant,
    /// Its JSON (shared, so a poll does not copy a manifest), or why it failed.
    outcome: Result<Arc<Value>, String>,
}

/// One operation: what it is, its answer once finished, when it goes.
struct Operation {
    kind: Kind,
    origin: String,
    finished: Arc<Mutex<Option<Finished>>>,
    cancel: CancellationToken,
    /// When it is released, once looked at or given `retain-for=`; otherwise
    /// [`UNCOLLECTED_LIFETIME`] after it finished (never while it runs).
    expires: Option<Instant>,
}

impl Operation {
    fn finished(&self) -> std::sync::MutexGuard<'_, Option<Finished>> {
        self.finished.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn expired(&self, now: Instant) -> bool {
        match self.expires {
            Some(at) => at <= now,
            None => self
                .finished()
                .as_ref()
                .is_some_and(|f| f.at + UNCOLLECTED_LIFETIME <= now),
        }
    }
}

/// The node's operations by handle.
#[derive(Default)]
pub(crate) struct Operations {
    table: Mutex<HashMap<String, Operation>>,
}

impl Operations {
    /// The table, with the expired operations released.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Operation>> {
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        table.retain(|_, op| !op.expired(now));
        table
    }
}

fn retain_for(args: &Args) -> Result<Option<Duration>, WebError> {
    args.get("retain-for")
        .map(|s| {
            s.trim()
                .parse::<u64>()
                .map(|secs| Duration::from_secs(secs).min(MAX_RETAIN))
                .map_err(|_| WebError::bad("retain-for= must be a number of seconds"))
        })
        .transpose()
}

/// `POST ...?t=start-*`: starts the walk of `root` and redirects to its handle.
pub(crate) async fn start(
    gateway: &Arc<Gateway>,
    root: Cap,
    args: &Args,
) -> Result<Response, WebError> {
    let t = args.t();
    let kind = match t {
        "start-manifest" => Kind::Manifest,
        "start-deep-size" => Kind::DeepSize,
        "start-deep-stats" => Kind::DeepStats,
        _ => Kind::DeepCheck {
            options: CheckOptions {
                verify: args.boolean("verify", false)?,
                add_lease: args.boolean("add-lease", false)?,
            },
            repair: args.boolean("repair", false)?,
        },
    };
    let handle = args
        .get("ophandle")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| WebError::bad("slow operation requires ophandle="))?
        .to_string();
    if handle.len() > MAX_HANDLE || handle.contains('/') {
        return Err(WebError::bad(format!(
            "ophandle= must be at most {MAX_HANDLE} bytes, without a slash"
        )));
    }
    let retain = retain_for(args)?;
    let finished = Arc::new(Mutex::new(None));
    let cancel = CancellationToken::new();
    let origin = root
        .storage_index()
        .map(|si| base32::encode(si.as_bytes()))
        .unwrap_or_default();
    {
        let mut table = gateway.operations.lock();
        if table.contains_key(&handle) {
            return Err(WebError::Conflict(format!(
                "operation handle '{handle}' is already in use"
            )));
        }
        if table.len() >= MAX_OPERATIONS {
            return Err(WebError::Unavailable(format!(
                "this node holds {MAX_OPERATIONS} operations already; collect or cancel some"
            )));
        }
        table.insert(
            handle.clone(),
            Operation {
                kind,
                origin: origin.clone(),
                finished: finished.clone(),
                cancel: cancel.clone(),
                expires: retain.map(|r| Instant::now() + r),
            },
        );
    }
    let grid = gateway.grid.clone();
    let started = crate::transfer::start(gateway, "gateway-operation", move |rt| {
        let outcome = rt.block_on(async {
            tokio::select! {
                () = cancel.cancelled() => Err("Operation Cancelled".to_string()),
                outcome = run(&grid, &root, &origin, kind) => outcome,
            }
        });
        *finished.lock().unwrap_or_else(PoisonError::into_inner) = Some(Finished {
            at: Instant::now(),
            outcome: outcome.map(Arc::new),
        });
    })
    .await;
    if let Err(e) = started {
        gateway.operations.lock().remove(&handle);
        return Err(e);
    }
    let mut location = format!("/operations/{}", encode_segment(&handle));
    if let Some(output) = args.get("output") {
        location.push_str(&format!("?output={}", encode_segment(output)));
    }
    let mut response = text(StatusCode::FOUND, String::new());
    let location = HeaderValue::from_str(&location)
        .map_err(|_| WebError::bad("ophandle= cannot be put in a URL"))?;
    response.headers_mut().insert(header::LOCATION, location);
    Ok(response)
}

/// The walk behind each kind, to its finished JSON, keys in Tahoe's order.
async fn run(
    grid: &swamp_client::grid::Grid,
    root: &Cap,
    origin: &str,
    kind: Kind,
) -> Result<Value, String> {
    let why = |e: GridError| swamp_proto::error::chain(&e);
    match kind {
        Kind::DeepCheck { options, repair } => {
            // Its JSON says "finished": true first, as Tahoe's does.
            Ok(grid
                .deep_check(root, options, repair)
                .await
                .map_err(why)?
                .to_json())
        }
        Kind::Manifest | Kind::DeepSize | Kind::DeepStats => {
            let mut manifest = Manifest {
                keep: kind == Kind::Manifest,
                ..Manifest::default()
            };
            let end = grid.walk_tree(root, &mut manifest).await.map_err(why)?;
            if let Some(e) = manifest.failure {
                return Err(e);
            }
            let mut stats = end.stats.to_json();
            Ok(match kind {
                Kind::Manifest => json!({
                    "stats": stats,
                    "finished": true,
                    "origin": origin,
                    "manifest": manifest.lines,
                    "verifycaps": manifest.verifycaps,
                    "storage-index": manifest.storage_indexes,
                }),
                // Tahoe's deep-size answer carries the whole deep-stats as "size".
                Kind::DeepSize => json!({"finished": true, "size": stats}),
                _ => {
                    stats["finished"] = json!(true);
                    stats
                }
            })
        }
    }
}

/// A walk that keeps the manifest (with `keep`; the stats alone need none of it).
#[derive(Default)]
struct Manifest {
    keep: bool,
    lines: Vec<Value>,
    verifycaps: Vec<String>,
    storage_indexes: Vec<String>,
    failure: Option<String>,
}

impl Walker for Manifest {
    async fn visit(&mut self, node: TreeNode) -> ControlFlow<()> {
        if !self.keep {
            return ControlFlow::Continue(());
        }
        let line = node.to_manifest_json();
        for (key, list) in [
            ("verifycap", &mut self.verifycaps),
            ("storage-index", &mut self.storage_indexes),
        ] {
            if let Some(v) = line[key].as_str().filter(|v| !v.is_empty()) {
                list.push(v.to_string());
            }
        }
        self.lines.push(json!([line["path"], line["cap"]]));
        ControlFlow::Continue(())
    }

    fn unreadable(&mut self, _path: &[String], error: &GridError) -> ControlFlow<()> {
        self.failure = Some(swamp_proto::error::chain(error));
        ControlFlow::Break(())
    }
}

/// `/operations/$HANDLE`: the state of an operation (`POST ?t=cancel` stops it).
pub(crate) fn status(
    gateway: &Gateway,
    method: &Method,
    handle: &str,
    args: &Args,
) -> Result<Response, WebError> {
    let mut table = gateway.operations.lock();
    let now = Instant::now();
    let unknown = || WebError::NotFound(format!("unknown/expired handle '{}'", escape(handle)));
    let op = table.get_mut(handle).ok_or_else(unknown)?;
    let kind = op.kind;
    let outcome = op.finished().as_ref().map(|f| f.outcome.clone());
    let done = outcome.is_some();
    let value = outcome.unwrap_or_else(|| Ok(Arc::new(kind.pending(&op.origin))));
    if args.t() == "cancel" && *method == Method::POST {
        op.cancel.cancel();
        table.remove(handle);
    } else {
        let retain = retain_for(args)?;
        if let Some(retain) = retain {
            op.expires = Some(now + retain);
        }
        if done {
            if args.boolean("release-after-complete", false)? {
                table.remove(handle);
            } else if retain.is_none() {
                // This look collects it.
                op.expires = Some(now + COLLECTED_LIFETIME);
            }
        }
    }
    drop(table);
    let value = value.map_err(WebError::Gone)?;
    let json = matches!(kind, Kind::DeepStats)
        || args
            .get("output")
            .is_some_and(|o| o.eq_ignore_ascii_case("json"));
    if json {
        return Ok(text(StatusCode::OK, to_text(&*value)));
    }
    let page = format!(
        "<!DOCTYPE html>\n<html><head><title>Operation {}</title></head><body>\n\
         <p>finished: {}</p>\n<pre>{}</pre>\n</body></html>\n",
        escape(handle),
        if value["finished"] == json!(true) {
            "yes"
        } else {
            "no"
        },
        escape(&to_text(&*value))
    );
    Ok(Html(page).into_response())
}
