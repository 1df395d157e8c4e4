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

/// One operation: what it is, its answer once finished, when it goes.
struct Operation {
    kind: Kind,
    origin: String,
    result: Arc<Mutex<Option<Result<Value, String>>>>,
    cancel: CancellationToken,
    /// When it is released (`None`: not before it finishes and is looked at).
    expires: Option<Instant>,
    started: Instant,
}

/// The node's operations by handle.
#[derive(Default)]
pub(crate) struct Operations {
    table: Mutex<HashMap<String, Operation>>,
}

impl Operations {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Operation>> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
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
    let result = Arc::new(Mutex::new(None));
    let cancel = CancellationToken::new();
    {
        let mut table = gateway.operations.lock();
        let now = Instant::now();
        table.retain(|_, op| op.expires.is_none_or(|at| at > now));
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
                origin: root
                    .storage_index()
                    .map(|si| base32::encode(si.as_bytes()))
                    .unwrap_or_default(),
                result: result.clone(),
                cancel: cancel.clone(),
                expires: retain.map(|r| now + r),
                started: now,
            },
        );
    }
    let grid = gateway.grid.clone();
    let started = crate::transfer::start(gateway, "gateway-operation", move |rt| {
        let outcome = rt.block_on(async {
            tokio::select! {
                () = cancel.cancelled() => Err("Operation Cancelled".to_string()),
                outcome = run(&grid, &root, kind) => outcome,
            }
        });
        *result.lock().unwrap_or_else(PoisonError::into_inner) = Some(outcome);
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

/// The walk behind each kind, to its finished JSON.
async fn run(grid: &swamp_client::grid::Grid, root: &Cap, kind: Kind) -> Result<Value, String> {
    let why = |e: GridError| swamp_proto::error::chain(&e);
    match kind {
        Kind::DeepCheck { options, repair } => {
            let mut results = grid
                .deep_check(root, options, repair)
                .await
                .map_err(why)?
                .to_json();
            results["finished"] = json!(true);
            Ok(results)
        }
        Kind::Manifest | Kind::DeepSize | Kind::DeepStats => {
            let mut manifest = Manifest::default();
            let end = grid.walk_tree(root, &mut manifest).await.map_err(why)?;
            if let Some(e) = manifest.failure {
                return Err(e);
            }
            let stats = end.stats.to_json();
            Ok(match kind {
                Kind::Manifest => json!({
                    "stats": stats,
                    "manifest": manifest.lines,
                    "verifycaps": manifest.verifycaps,
                    "storage-index": manifest.storage_indexes,
                }),
                // Tahoe's deep-size answer carries the whole deep-stats as "size".
                Kind::DeepSize => json!({ "size": stats }),
                _ => stats,
            })
        }
    }
}

/// A walk that keeps the manifest.
#[derive(Default)]
struct Manifest {
    lines: Vec<Value>,
    verifycaps: Vec<String>,
    storage_indexes: Vec<String>,
    failure: Option<String>,
}

impl Walker for Manifest {
    async fn visit(&mut self, node: TreeNode) -> ControlFlow<()> {
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
    table.retain(|_, op| op.expires.is_none_or(|at| at > now));
    let unknown = || WebError::NotFound(format!("unknown/expired handle '{}'", escape(handle)));
    let op = table.get_mut(handle).ok_or_else(unknown)?;
    let outcome = op
        .result
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let (kind, origin) = (op.kind, op.origin.clone());
    if args.t() == "cancel" && *method == Method::POST {
        op.cancel.cancel();
        table.remove(handle);
    } else {
        let retain = retain_for(args)?;
        if let Some(retain) = retain {
            op.expires = Some(now + retain);
        }
        if outcome.is_some() {
            if args.boolean("release-after-complete", false)? {
                table.remove(handle);
            } else if retain.is_none() {
                op.expires = Some(now + COLLECTED_LIFETIME);
            }
        } else if op.expires.is_none() && now.duration_since(op.started) > UNCOLLECTED_LIFETIME {
            op.expires = Some(now);
        }
    }
    drop(table);
    let value = match outcome {
        Some(Err(why)) => return Err(WebError::Gone(why)),
        Some(Ok(mut value)) => {
            value["finished"] = json!(true);
            value
        }
        None => json!({"finished": false}),
    };
    let value = match kind {
        Kind::Manifest => {
            let mut ordered = json!({
                "stats": value.get("stats").cloned().unwrap_or_else(|| json!({})),
                "finished": value["finished"],
                "origin": origin,
            });
            for key in ["manifest", "verifycaps", "storage-index"] {
                if let Some(v) = value.get(key) {
                    ordered[key] = v.clone();
                }
            }
            ordered
        }
        Kind::DeepSize => {
            json!({"finished": value["finished"], "size": value.get("size").cloned().unwrap_or(Value::Null)})
        }
        _ => value,
    };
    let json = matches!(kind, Kind::DeepStats)
        || args
            .get("output")
            .is_some_and(|o| o.eq_ignore_ascii_case("json"));
    if json {
        return Ok(text(StatusCode::OK, to_text(&value)));
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
        escape(&to_text(&value))
    );
    Ok(Html(page).into_response())
}
