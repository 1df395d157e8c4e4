//! `POST ...?t=upload`: a file sent from an HTML form (`POSTUnlinkedCHK` and
//! `POSTUnlinkedSSK` in `web/unlinked.py`, `_POST_upload` in `web/directory.py`,
//! `replace_me_with_a_formpost` in `web/filenode.py`).
//!
//! The form's `file` part is already spooled (`forms.rs`); an immutable file is
//! uploaded from the spool file a segment at a time, a mutable one (`format=SDMF`
//! or `MDMF`, at most `Limits::max_mutable` bytes) is read whole, as `PUT` does.

use std::sync::Arc;

use axum::response::{Html, IntoResponse, Response};
use http::StatusCode;
use swamp_client::dir_edit::Replace;
use swamp_formats::cap::{Cap, MutableFormat};
use swamp_formats::dirnode::normalize_name;

use crate::Gateway;
use crate::args::{Args, Format};
use crate::error::WebError;
use crate::forms::{Upload, redirect};
use crate::node::{path_names, root_cap};
use crate::reply::{encode_segment, escape, text};
use crate::statistics::Counter;
use crate::{transfer, unlinked};

fn no_file() -> WebError {
    WebError::bad("t=upload needs the file in a form part named file (multipart/form-data)")
}

/// `POST /uri?t=upload` (or no `t=`): a new unlinked file. The answer is Tahoe's:
/// with `when_done=`, a 302 there (`%(uri)s` in it replaced by the new cap); else
/// for a mutable file its cap, for an immutable one a small "upload results" page.
pub(crate) async fn unlinked(
    gateway: &Arc<Gateway>,
    args: &Args,
    file: Option<Upload>,
    when_done: Option<&str>,
) -> Result<Response, WebError> {
    let upload = file.ok_or_else(no_file)?;
    let format = args.format(Some(Format::Chk))?;
    let cap = store(gateway, args, format, &upload).await?;
    drop(upload);
    if let Some(target) = when_done {
        let target = target.replace("%(uri)s", &encode_segment(&cap.to_string()));
        return Ok(redirect(StatusCode::FOUND, &target));
    }
    Ok(match format {
        Some(Format::Mutable(_)) => text(StatusCode::OK, cap.to_string()),
        _ => results_page(&cap),
    })
}

/// `POST /uri/$CAP[/PATH]?t=upload`: the file is linked under `PATH`'s last name
/// (missing directories before it are made), or, when the path names a directory,
/// in it under `name=` or the file's own name. A mutable file found there is
/// overwritten in place; an immutable one is replaced unless `replace=false` (409).
pub(crate) async fn into_dir(
    gateway: &Arc<Gateway>,
    cap: &str,
    names: &[&str],
    args: &Args,
    file: Option<Upload>,
) -> Result<Response, WebError> {
    let upload = file.ok_or_else(no_file)?;
    let root = root_cap(cap)?;
    let names = path_names(names)?;
    let replace = args.boolean("replace", true)?;
    let (dir, name) = match names.split_last() {
        None => (root, None),
        Some((last, walk)) => {
            let parent = if walk.is_empty() {
                root
            } else {
                gateway
                    .grid
                    .make_dirs(&root, walk, MutableFormat::Sdmf)
                    .await?
            };
            match child(gateway, &parent, last).await? {
                Some(found) if found.is_dir() => (found, None),
                _ => (parent, Some(normalize_name(last))),
            }
        }
    };
    if !dir.is_dir() {
        return match &dir {
            Cap::Mutable(_) => overwrite(gateway, &dir, &upload).await,
            _ => Err(WebError::bad(
                "POST t=upload to an immutable file needs a name in a directory",
            )),
        };
    }
    let name = match name {
        Some(name) => name,
        None => form_name(args, &upload)?,
    };
    match child(gateway, &dir, &name).await? {
        Some(found) if found.is_dir() => Err(WebError::Conflict(format!(
            "{name} is a directory; upload the file into it, or under another name"
        ))),
        Some(found @ Cap::Mutable(_)) => overwrite(gateway, &found, &upload).await,
        Some(_) if !replace => Err(WebError::Conflict(
            "There was already a child by that name, and you asked me to not replace it.".into(),
        )),
        _ => {
            let format = args.format(Some(Format::Chk))?;
            let cap = store(gateway, args, format, &upload).await?;
            let replace = if replace {
                Replace::Always
            } else {
                Replace::Never
            };
            gateway.grid.link(&dir, &name, &cap, replace).await?;
            Ok(text(StatusCode::OK, cap.to_string()))
        }
    }
}

/// The cap of `name` in `dir`, if there is one (`dir` must be a directory).
async fn child(gateway: &Arc<Gateway>, dir: &Cap, name: &str) -> Result<Option<Cap>, WebError> {
    if !dir.is_dir() {
        return Err(WebError::Conflict(format!(
            "Cannot create {name}, because its parent is a file, not a directory"
        )));
    }
    let wanted = normalize_name(name);
    let listing = gateway.grid.read_dir(dir).await?;
    listing
        .entries
        .iter()
        .find(|e| e.name == wanted)
        .map(|e| e.cap().map_err(WebError::from))
        .transpose()
}

/// The name an upload into a directory gets: `name=`, else the file's own, trimmed;
/// a file part without a file name is `unknown-filename`, as Tahoe names it
/// (`FileUploadFieldStorage` in `webish.py`). Only spaces is a 400.
fn form_name(args: &Args, upload: &Upload) -> Result<String, WebError> {
    let name = args
        .get("name")
        .filter(|n| !n.is_empty())
        .or(upload.filename.as_deref().filter(|f| !f.is_empty()))
        .unwrap_or("unknown-filename")
        .trim();
    if name.is_empty() {
        return Err(WebError::bad("upload requires a name"));
    }
    if name.contains('/') {
        return Err(WebError::bad("name= may not contain a slash"));
    }
    Ok(normalize_name(name))
}

/// The spooled file read whole, for a mutable file (at most `max_mutable` bytes).
async fn read_whole(gateway: &Arc<Gateway>, upload: &Upload) -> Result<Vec<u8>, WebError> {
    let local = |e: std::io::Error| WebError::Internal(format!("spool file: {e}"));
    let size = tokio::fs::metadata(upload.file.path())
        .await
        .map_err(local)?
        .len();
    if size > gateway.limits.max_mutable as u64 {
        return Err(WebError::TooLarge {
            limit: gateway.limits.max_mutable as u64,
        });
    }
    tokio::fs::read(upload.file.path()).await.map_err(local)
}

/// A new file from the upload, of `format` (immutable when none).
async fn store(
    gateway: &Arc<Gateway>,
    args: &Args,
    format: Option<Format>,
    upload: &Upload,
) -> Result<Cap, WebError> {
    match format {
        Some(Format::Mutable(format)) => {
            let data = read_whole(gateway, upload).await?;
            unlinked::publish_mutable(gateway, args, format, &data).await
        }
        Some(Format::Chk) | None => {
            transfer::upload_file(gateway, upload.file.path().to_path_buf()).await
        }
    }
}

/// A mutable file's contents replaced by the upload (its cap is the answer).
async fn overwrite(
    gateway: &Arc<Gateway>,
    cap: &Cap,
    upload: &Upload,
) -> Result<Response, WebError> {
    let Cap::Mutable(file) = cap else {
        return Err(WebError::Internal(
            "overwrite of a file that is not mutable".into(),
        ));
    };
    let data = read_whole(gateway, upload).await?;
    gateway.grid.overwrite_mutable(file, &data, None).await?;
    gateway.statistics.count_file(
        Counter::FilesPublished,
        Counter::BytesPublished,
        data.len() as u64,
    );
    Ok(text(StatusCode::OK, cap.to_string()))
}

/// Tahoe's "File Uploaded" page, kept to the cap and a link to the file.
fn results_page(cap: &Cap) -> Response {
    let cap = cap.to_string();
    let page = format!(
        "<!DOCTYPE html>\n<html><head><title>Tahoe-LAFS - File Uploaded</title></head><body>\n\
         <h1>Uploading File... done!</h1>\n<h2>Upload Results:</h2>\n<ul>\n\
         <li>URI: <tt><span>{cap_html}</span></tt></li>\n\
         <li>Download link: <a href=\"/uri/{cap_url}\">/uri/{cap_html}</a></li>\n</ul>\n\
         <div>Return to the <a href=\"/\">Welcome Page</a></div>\n</body></html>\n",
        cap_html = escape(&cap),
        cap_url = encode_segment(&cap),
    );
    Html(page).into_response()
}
