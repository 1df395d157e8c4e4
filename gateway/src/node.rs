//! `/uri/$CAP[/PATH]`: following the path to a node, then what each method and
//! `t=` does to it (`DirectoryNodeHandler`, `FileNodeHandler` and
//! `PlaceHolderNodeHandler` in `web/directory.py` and `web/filenode.py`).
//!
//! As in Tahoe, a `PUT` or `POST` (other than `t=delete`, `t=rename`, `t=check`)
//! creates the missing directories on its way, and a missing last name is not an
//! error for the requests that create it (`PUT` of a file or cap, the `mkdir`s).

use std::sync::Arc;

use axum::body::Body;
use axum::response::{Html, IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde_json::Value;
use swamp_client::dir_edit::Replace;
use swamp_formats::cap::{Cap, MutableFormat};
use swamp_formats::dirnode::{Entry, normalize_name};

use crate::Gateway;
use crate::args::Args;
use crate::body::read_bounded;
use crate::error::WebError;
use crate::listing::{DirListing, file_json, to_text, unknown_json};
use crate::reply::{encode_segment, escape, text};
use crate::statistics::Counter;
use crate::{children, deep, edit, file, operations, unlinked};

/// Names in one path at most.
const MAX_DEPTH: usize = 256;
/// Bytes of a cap sent as a body (`PUT ...?t=uri`).
const MAX_CAP_BODY: usize = 16 * 1024;

/// A request for a node, as the router split it.
pub(crate) struct NodeRequest<'a> {
    pub(crate) method: &'a Method,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) args: &'a Args,
    /// The cap segment, decoded.
    pub(crate) cap: &'a str,
    /// The names after it, decoded.
    pub(crate) names: &'a [&'a str],
    /// The name to serve a file under (`/file/$CAP/NAME`), else the last name.
    pub(crate) filename: Option<&'a str>,
}

/// A node found: its cap, and the directory entry it was reached through.
struct Target {
    cap: Cap,
    parent: Option<(Cap, Entry)>,
}

fn no_child(name: &str) -> WebError {
    WebError::NotFound(format!("No such child: {name}"))
}

fn json_response(value: &Value) -> Response {
    text(StatusCode::OK, to_text(value))
}

/// Handles a request for a node.
pub(crate) async fn handle(
    gateway: &Arc<Gateway>,
    request: NodeRequest<'_>,
    body: Body,
) -> Result<Response, WebError> {
    let root = root_cap(request.cap)?;
    let names = path_names(request.names)?;
    let t = request.args.t();
    let creating = matches!(*request.method, Method::PUT | Method::POST)
        && !matches!(t, "delete" | "rename" | "rename-form" | "check");
    let Some((last, walk)) = names.split_last() else {
        let target = Target {
            cap: root,
            parent: None,
        };
        return on_node(gateway, &request, target, body).await;
    };
    let mut here = root;
    for name in walk {
        here = step(gateway, &here, name, creating).await?;
    }
    let listing = read_parent(gateway, &here, last, creating).await?;
    let name = normalize_name(last);
    match listing.into_iter().find(|e| e.name == name) {
        Some(entry) => {
            let cap = entry.cap()?;
            let target = Target {
                cap,
                parent: Some((here, entry)),
            };
            on_node(gateway, &request, target, body).await
        }
        None => missing(gateway, &request, &here, &name, body).await,
    }
}

/// The cap a `/uri/$CAP` path starts from.
pub(crate) fn root_cap(text: &str) -> Result<Cap, WebError> {
    Cap::parse_lenient(text)
        .map_err(|_| WebError::bad(format!("'{text}' is not a valid file- or directory- cap")))
}

/// The names after the cap, checked (a trailing `/` is dropped; no empty names, at
/// most [`MAX_DEPTH`]).
pub(crate) fn path_names<'a>(names: &'a [&'a str]) -> Result<&'a [&'a str], WebError> {
    let mut names = names;
    if let [rest @ .., ""] = names {
        names = rest;
    }
    if names.iter().any(|n| n.is_empty()) {
        return Err(WebError::bad(
            "The webapi does not allow empty pathname components, i.e. a double slash",
        ));
    }
    if names.len() > MAX_DEPTH {
        return Err(WebError::bad(format!(
            "paths may have at most {MAX_DEPTH} names"
        )));
    }
    Ok(names)
}

/// The children of `dir`, which `name` is to be found in.
async fn read_parent(
    gateway: &Arc<Gateway>,
    dir: &Cap,
    name: &str,
    creating: bool,
) -> Result<Vec<Entry>, WebError> {
    if !dir.is_dir() {
        return Err(if creating {
            WebError::Conflict(format!(
                "Cannot create directory {name}, because its parent is a file, not a directory"
            ))
        } else {
            WebError::bad(format!("Files have no children named {name}"))
        });
    }
    Ok(gateway.grid.read_dir(dir).await?.entries)
}

/// One step down a path; with `creating`, a missing directory is made.
async fn step(
    gateway: &Arc<Gateway>,
    here: &Cap,
    name: &str,
    creating: bool,
) -> Result<Cap, WebError> {
    let entries = read_parent(gateway, here, name, creating).await?;
    let wanted = normalize_name(name);
    match entries.iter().find(|e| e.name == wanted) {
        Some(entry) => {
            let cap = entry.cap()?;
            if creating && !cap.is_dir() {
                return Err(WebError::Conflict(format!(
                    "Unable to create directory {name}: a file was in the way"
                )));
            }
            Ok(cap)
        }
        None if creating => Ok(gateway
            .grid
            .make_dirs(here, &[name], MutableFormat::Sdmf)
            .await?),
        None => Err(no_child(name)),
    }
}

/// A request whose last name is not in `parent`.
async fn missing(
    gateway: &Arc<Gateway>,
    request: &NodeRequest<'_>,
    parent: &Cap,
    name: &str,
    body: Body,
) -> Result<Response, WebError> {
    let args = request.args;
    match (request.method.as_str(), args.t()) {
        ("POST" | "PUT", "mkdir") | ("POST", "mkdir-with-children" | "mkdir-immutable") => {
            let immutable = args.t() == "mkdir-immutable";
            let kids = if args.t() == "mkdir" {
                Vec::new()
            } else {
                let body = read_bounded(body, gateway.limits.max_json).await?;
                children::parse(&body, immutable)?
            };
            let format = if immutable {
                MutableFormat::Sdmf
            } else {
                args.dir_format()?
            };
            let dir = edit::create_dir(gateway, kids, immutable, format, None).await?;
            gateway
                .grid
                .link(parent, name, &dir, Replace::Always)
                .await?;
            Ok(text(StatusCode::OK, dir.to_string()))
        }
        ("PUT", "") => {
            if request.headers.contains_key(header::CONTENT_RANGE) {
                return Err(WebError::NotImplemented(
                    "Content-Range in PUT not yet supported".into(),
                ));
            }
            let replace = args.replace()?;
            let cap = unlinked::upload(gateway, args, body).await?;
            gateway.grid.link(parent, name, &cap, replace).await?;
            Ok(text(StatusCode::CREATED, cap.to_string()))
        }
        ("PUT", "uri") => {
            let replace = args.replace()?;
            let cap = cap_body(body).await?;
            gateway.grid.link(parent, name, &cap, replace).await?;
            Ok(text(StatusCode::OK, cap.to_string()))
        }
        _ => Err(no_child(name)),
    }
}

/// A cap sent as a request body.
async fn cap_body(body: Body) -> Result<Cap, WebError> {
    let body = read_bounded(body, MAX_CAP_BODY).await?;
    let text = std::str::from_utf8(&body).map_err(|_| WebError::bad("the cap is not UTF-8"))?;
    linkable(text.trim())
}

/// A cap that may be linked into a directory: a known one, or an unknown one only
/// in a read slot (`ro.` or `imm.` prefixed), as Tahoe requires.
fn linkable(text: &str) -> Result<Cap, WebError> {
    let cap = Cap::parse_lenient(text)?;
    if let Cap::Unknown(s) = &cap
        && !(s.starts_with("ro.") || s.starts_with("imm."))
    {
        return Err(WebError::bad(
            "MustNotBeUnknownRWError: an operation to add a child to a directory was given \
             an unknown cap in a write slot.",
        ));
    }
    Ok(cap)
}

/// What a request does to the node it names.
async fn on_node(
    gateway: &Arc<Gateway>,
    request: &NodeRequest<'_>,
    target: Target,
    body: Body,
) -> Result<Response, WebError> {
    let t = request.args.t();
    match *request.method {
        Method::GET | Method::HEAD => read(gateway, request, &target).await,
        Method::PUT => put(gateway, request, &target, body).await,
        Method::POST if target.cap.is_dir() => {
            post_dir(gateway, request.args, &target.cap, body).await
        }
        Method::POST => match t {
            "check" => crate::check::check(gateway, &target.cap, request.args).await,
            _ => Err(WebError::bad(format!("POST to file: bad t={t}"))),
        },
        Method::DELETE => {
            let (parent, entry) = target
                .parent
                .ok_or_else(|| WebError::bad("DELETE needs a name in a directory"))?;
            gateway.grid.unlink(&parent, &entry.name).await?;
            Ok(text(StatusCode::OK, target.cap.to_string()))
        }
        _ => Err(WebError::MethodNotAllowed(format!(
            "{} is not allowed here",
            request.method
        ))),
    }
}

/// `GET` and `HEAD`; what never changes (immutable files and directories) carries
/// Tahoe's `ETag` (`SI-t`, `DIR:SI-t` for directories), and a request that names it
/// in `If-None-Match` gets a 304.
async fn read(
    gateway: &Arc<Gateway>,
    request: &NodeRequest<'_>,
    target: &Target,
) -> Result<Response, WebError> {
    let t = request.args.t();
    let etag = match target.cap.storage_index() {
        Some(si)
            if !target.cap.is_mutable() && matches!(t, "" | "json" | "uri" | "readonly-uri") =>
        {
            let prefix = if target.cap.is_dir() { "DIR:" } else { "" };
            HeaderValue::from_str(&format!("{prefix}{si}-{t}")).ok()
        }
        _ => None,
    };
    if let Some(etag) = &etag {
        let cached = request
            .headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|tags| {
                tags.split_whitespace()
                    .any(|tag| tag == "*" || tag.as_bytes() == etag.as_bytes())
            });
        if cached {
            let mut response = StatusCode::NOT_MODIFIED.into_response();
            response.headers_mut().insert(header::ETAG, etag.clone());
            return Ok(response);
        }
    }
    let mut response = read_uncached(gateway, request, target).await?;
    if let Some(etag) = etag {
        response.headers_mut().insert(header::ETAG, etag);
    }
    Ok(response)
}

async fn read_uncached(
    gateway: &Arc<Gateway>,
    request: &NodeRequest<'_>,
    target: &Target,
) -> Result<Response, WebError> {
    let t = request.args.t();
    let head = *request.method == Method::HEAD;
    let metadata = target.parent.as_ref().map(|(_, e)| &e.metadata);
    let cap = &target.cap;
    match cap {
        Cap::Unknown(_) => match t {
            "info" => Ok(crate::info::page(cap, None)),
            "json" => {
                let entry = target.parent.as_ref().map(|(_, e)| e);
                Ok(json_response(&unknown_json(
                    entry.map_or(Some(request.cap), |e| e.ro_uri.as_deref()),
                    entry.and_then(|e| e.rw_uri.as_deref()),
                    metadata,
                )))
            }
            _ => Err(WebError::bad(format!(
                "GET unknown URI type: can only do t=info and t=json, not t={t}."
            ))),
        },
        Cap::Dir(_) => match t {
            "json" => {
                let listing = gateway.grid.read_dir(cap).await?;
                Ok(text(
                    StatusCode::OK,
                    to_text(&DirListing {
                        cap,
                        entries: &listing.entries,
                    }),
                ))
            }
            "uri" => Ok(text(StatusCode::OK, cap.to_string())),
            "readonly-uri" => Ok(text(StatusCode::OK, cap.read_only().to_string())),
            "" => {
                let listing = gateway.grid.read_dir(cap).await?;
                Ok(dir_html(cap, &listing.entries))
            }
            "info" => Ok(crate::info::page(cap, None)),
            "rename-form" => Ok(crate::form_pages::rename_form(cap, request.args)),
            _ => Err(WebError::bad(format!("GET directory: bad t={t}"))),
        },
        _ => match t {
            "" => {
                let name = request
                    .args
                    .get("filename")
                    .or(request.filename)
                    .or(request.names.iter().rev().find(|n| !n.is_empty()).copied())
                    .unwrap_or("unknown");
                file::read(gateway, cap, name, request.headers, head).await
            }
            _ if head => Err(WebError::bad(format!("HEAD file: bad t={t}"))),
            "json" => {
                let size = match cap {
                    Cap::Mutable(m) => Some(gateway.grid.read_mutable(m).await?.data.len() as u64),
                    _ => None,
                };
                Ok(json_response(&file_json(cap, size, metadata)))
            }
            "uri" => Ok(text(StatusCode::OK, cap.to_string())),
            "readonly-uri" => Ok(text(StatusCode::OK, cap.read_only().to_string())),
            "info" => {
                let size = match cap {
                    Cap::Mutable(m) => Some(gateway.grid.read_mutable(m).await?.data.len() as u64),
                    other => crate::listing::cap_size(other),
                };
                Ok(crate::info::page(cap, size))
            }
            _ => Err(WebError::bad(format!("GET file: bad t={t}"))),
        },
    }
}

async fn put(
    gateway: &Arc<Gateway>,
    request: &NodeRequest<'_>,
    target: &Target,
    body: Body,
) -> Result<Response, WebError> {
    let args = request.args;
    let t = args.t();
    if request.headers.contains_key(header::CONTENT_RANGE) {
        return Err(WebError::NotImplemented(
            "Content-Range in PUT not yet supported".into(),
        ));
    }
    let replace = args.replace()?;
    let existing = || {
        WebError::Conflict(
            "There was already a child by that name, and you asked me to not replace it.".into(),
        )
    };
    match t {
        "mkdir" if target.cap.is_dir() => Ok(text(StatusCode::OK, target.cap.to_string())),
        "uri" => {
            if replace == Replace::Never {
                return Err(existing());
            }
            let (parent, entry) = target
                .parent
                .as_ref()
                .ok_or_else(|| WebError::bad("PUT t=uri needs a name in a directory"))?;
            let cap = cap_body(body).await?;
            gateway
                .grid
                .link(parent, &entry.name, &cap, replace)
                .await?;
            Ok(text(StatusCode::OK, cap.to_string()))
        }
        "" if target.cap.is_dir() => Err(WebError::bad("PUT to a directory")),
        "" => {
            if replace == Replace::Never {
                return Err(existing());
            }
            if let Cap::Mutable(m) = &target.cap {
                if !target.cap.is_writable() {
                    return Err(WebError::bad(
                        "PUT to a mutable file: replace or update requested with read-only cap",
                    ));
                }
                if args.get("offset").is_some() {
                    return Err(WebError::NotImplemented(
                        "PUT with offset= is not supported by this node yet".into(),
                    ));
                }
                let data = read_bounded(body, gateway.limits.max_mutable).await?;
                gateway.grid.overwrite_mutable(m, &data, None).await?;
                gateway.statistics.count_file(
                    Counter::FilesPublished,
                    Counter::BytesPublished,
                    data.len() as u64,
                );
                return Ok(text(StatusCode::OK, target.cap.to_string()));
            }
            let (parent, entry) = target.parent.as_ref().ok_or_else(|| {
                WebError::bad("PUT to an immutable file needs a name in a directory")
            })?;
            let cap = unlinked::upload(gateway, args, body).await?;
            gateway
                .grid
                .link(parent, &entry.name, &cap, replace)
                .await?;
            Ok(text(StatusCode::OK, cap.to_string()))
        }
        _ => Err(WebError::bad(format!("PUT: bad t={t}"))),
    }
}

async fn post_dir(
    gateway: &Arc<Gateway>,
    args: &Args,
    dir: &Cap,
    body: Body,
) -> Result<Response, WebError> {
    let t = args.t();
    match t {
        "check" => crate::check::check(gateway, dir, args).await,
        "mkdir" | "mkdir-with-children" | "mkdir-immutable" => {
            let Some(name) = args.get("name").filter(|n| !n.is_empty()) else {
                // The directory was made on the way here (or is this one).
                return Ok(text(StatusCode::OK, dir.to_string()));
            };
            if name.contains('/') {
                return Err(WebError::bad("name= may not contain a slash"));
            }
            let immutable = t == "mkdir-immutable";
            let (kids, replace) = if t == "mkdir" {
                let replace = if args.boolean("replace", true)? {
                    Replace::Always
                } else {
                    Replace::Never
                };
                (Vec::new(), replace)
            } else {
                let body = read_bounded(body, gateway.limits.max_json).await?;
                (children::parse(&body, immutable)?, Replace::Never)
            };
            let format = if immutable {
                MutableFormat::Sdmf
            } else {
                args.dir_format()?
            };
            let new = edit::create_dir(gateway, kids, immutable, format, None).await?;
            gateway.grid.link(dir, name, &new, replace).await?;
            Ok(text(StatusCode::OK, new.to_string()))
        }
        "uri" => {
            let cap_text = args
                .get("uri")
                .filter(|u| !u.is_empty())
                .ok_or_else(|| WebError::bad("set-uri requires a uri"))?;
            let name = args
                .get("name")
                .filter(|n| !n.is_empty())
                .ok_or_else(|| WebError::bad("set-uri requires a name"))?;
            let cap = linkable(cap_text)?;
            gateway.grid.link(dir, name, &cap, args.replace()?).await?;
            Ok(text(StatusCode::OK, cap_text.to_string()))
        }
        "delete" | "unlink" => {
            let name = args.get("name").unwrap_or("");
            gateway.grid.unlink(dir, name).await?;
            Ok(text(StatusCode::OK, "thing unlinked".into()))
        }
        "rename" | "relink" => {
            if t == "rename" {
                if args.get("to_dir").is_some() {
                    return Err(WebError::bad("to_dir= is not valid for rename"));
                }
                if args.get("to_name").is_none() {
                    return Err(WebError::bad("to_name= is required for rename"));
                }
            }
            let from_name = args
                .get("from_name")
                .map(str::trim)
                .ok_or_else(|| WebError::bad("from_name= is required"))?;
            let to_name = args.get("to_name").map_or(from_name, str::trim);
            if from_name.contains('/') {
                return Err(WebError::bad("from_name= may not contain a slash"));
            }
            if to_name.contains('/') {
                return Err(WebError::bad("to_name= may not contain a slash"));
            }
            let to_dir = match args.get("to_dir").map(str::trim) {
                None => dir.clone(),
                Some(path) => {
                    let mut parts = path.split('/');
                    let root = Cap::parse_lenient(parts.next().unwrap_or(""))?;
                    if !root.is_dir() {
                        return Err(WebError::bad("to_dir is not a directory"));
                    }
                    let names: Vec<&str> = parts.filter(|p| !p.is_empty()).collect();
                    let cap = gateway.grid.walk(&root, &names).await?;
                    if !cap.is_dir() {
                        return Err(WebError::bad("to_dir is not a directory"));
                    }
                    cap
                }
            };
            edit::relink(gateway, dir, from_name, &to_dir, to_name, args.replace()?).await?;
            Ok(text(StatusCode::OK, "thing moved".into()))
        }
        "set_children" | "set-children" => {
            let body = read_bounded(body, gateway.limits.max_json).await?;
            let kids = children::parse_with_metadata(&body)?;
            edit::set_children(gateway, dir, kids, args.replace()?).await?;
            Ok(text(StatusCode::OK, "Okay so I did it.".into()))
        }
        "stream-manifest" => deep::stream(gateway, dir.clone(), deep::Stream::Manifest).await,
        "stream-deep-check" => deep::stream(gateway, dir.clone(), deep::Stream::check(args)?).await,
        "start-deep-check" | "start-manifest" | "start-deep-size" | "start-deep-stats" => {
            operations::start(gateway, dir.clone(), args).await
        }
        _ => Err(WebError::bad(format!("POST to a directory with bad t={t}"))),
    }
}

/// A plain HTML listing of a directory, with Tahoe's forms (`form_pages.rs`).
fn dir_html(cap: &Cap, entries: &[Entry]) -> Response {
    let base = format!("/uri/{}", encode_segment(&cap.to_string()));
    let mut page = String::from(
        "<!DOCTYPE html>\n<html><head><title>Directory</title></head><body>\n<table>\n\
         <tr><th>Name</th><th>Type</th><th>Size</th><th></th><th></th></tr>\n",
    );
    for e in entries {
        let child = e
            .cap()
            .unwrap_or_else(|_| Cap::Unknown(e.cap_text().into()));
        let (kind, size) = match &child {
            Cap::Dir(_) => ("DIR", String::new()),
            Cap::Unknown(_) => ("?", String::new()),
            other => (
                "FILE",
                crate::listing::cap_size(other).map_or(String::from("?"), |s| s.to_string()),
            ),
        };
        page.push_str(&format!(
            "<tr><td><a href=\"{base}/{}\">{}</a></td><td>{kind}</td><td>{size}</td>{}</tr>\n",
            encode_segment(&e.name),
            escape(&e.name),
            crate::form_pages::child_actions(cap, &e.name)
        ));
    }
    page.push_str("</table>\n");
    page.push_str(&crate::form_pages::dir_forms(cap));
    page.push_str("</body></html>\n");
    Html(page).into_response()
}
