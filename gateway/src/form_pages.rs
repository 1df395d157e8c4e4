//! The HTML forms a person in a browser uses the node with: on the welcome page
//! (upload a file, make a directory, open a cap), on a directory's page (upload into
//! it, make a directory, link a cap, and per child unlink and rename), and the
//! `t=rename-form` page. Each posts to the endpoints programs use, with Tahoe's
//! field names (`t`, `name`, `when_done`, `format`, `file`), so a form from Tahoe's
//! own pages works here and ours works on Tahoe.
//!
//! Plain and small: no scripts, no styles. Every name and cap is escaped for HTML,
//! and put in a URL path percent-encoded.

use axum::response::{Html, IntoResponse, Response};
use swamp_formats::cap::Cap;

use crate::args::Args;
use crate::reply::{encode_segment, escape};

/// `/uri/$CAP/`, where a directory's forms post (the trailing `/` makes Tahoe's
/// `when_done=.` come back to the directory).
fn dir_url(cap: &Cap) -> String {
    format!("/uri/{}/", encode_segment(&cap.to_string()))
}

fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
        escape(name),
        escape(value)
    )
}

/// Radio buttons for `format=`: `choices` of (value, label), the first checked.
fn formats(choices: &[(&str, &str)]) -> String {
    choices
        .iter()
        .enumerate()
        .map(|(i, (value, label))| {
            let checked = if i == 0 { " checked" } else { "" };
            format!(
                "<label><input type=\"radio\" name=\"format\" value=\"{value}\"{checked}> \
                 {label}</label> "
            )
        })
        .collect()
}

const FILE_FORMATS: &[(&str, &str)] = &[("chk", "Immutable"), ("sdmf", "SDMF"), ("mdmf", "MDMF")];
const DIR_FORMATS: &[(&str, &str)] = &[("sdmf", "SDMF"), ("mdmf", "MDMF")];

/// The welcome page's forms (Tahoe's `welcome.xhtml`: they post to `uri`).
pub(crate) fn welcome_forms() -> String {
    format!(
        "<h2>Open a cap</h2>\n<form action=\"uri\" method=\"get\">\
         <input type=\"text\" name=\"uri\"> <input type=\"submit\" value=\"View\"></form>\n\
         <h2>Upload a file</h2>\n<form action=\"uri\" method=\"post\" \
         enctype=\"multipart/form-data\">{}<input type=\"file\" name=\"file\"> {}\
         <input type=\"submit\" value=\"Upload\"></form>\n\
         <h2>Make a directory</h2>\n<form action=\"uri\" method=\"post\" \
         enctype=\"multipart/form-data\">{}{}{}<input type=\"submit\" value=\"Create\"></form>\n",
        hidden("t", "upload"),
        formats(FILE_FORMATS),
        hidden("t", "mkdir"),
        hidden("redirect_to_result", "true"),
        formats(DIR_FORMATS),
    )
}

/// The forms under a directory's listing: none when it is read-only.
pub(crate) fn dir_forms(cap: &Cap) -> String {
    if !cap.is_writable() {
        return "<p>No upload forms: directory is read-only</p>\n".into();
    }
    let here = escape(&dir_url(cap));
    let post = |fields: String, submit: &str| {
        format!(
            "<form action=\"{here}\" method=\"post\" enctype=\"multipart/form-data\">\
             {fields}<input type=\"submit\" value=\"{submit}\"></form>\n"
        )
    };
    let done = hidden("when_done", ".");
    format!(
        "<h2>Upload a file to this directory</h2>\n{}\
         <h2>Create a new directory in this directory</h2>\n{}\
         <h2>Link a cap into this directory</h2>\n{}",
        post(
            format!(
                "{}{done}<input type=\"file\" name=\"file\"> {}",
                hidden("t", "upload"),
                formats(FILE_FORMATS)
            ),
            "Upload"
        ),
        post(
            format!(
                "{}{done}Name: <input type=\"text\" name=\"name\"> {}",
                hidden("t", "mkdir"),
                formats(DIR_FORMATS)
            ),
            "Create"
        ),
        post(
            format!(
                "{}{done}Name: <input type=\"text\" name=\"name\"> \
                 Cap: <input type=\"text\" name=\"uri\"> ",
                hidden("t", "uri")
            ),
            "Attach"
        ),
    )
}

/// A child's "unlink" and "rename" buttons (cells of its row; `-` when the
/// directory is read-only), as Tahoe's listing has them.
pub(crate) fn child_actions(cap: &Cap, name: &str) -> String {
    if !cap.is_writable() {
        return "<td>-</td><td>-</td>".into();
    }
    let here = escape(&dir_url(cap));
    format!(
        "<td><form action=\"{here}\" method=\"post\">{}{}{}\
         <input type=\"submit\" value=\"unlink\"></form></td>\
         <td><form action=\"{here}\" method=\"get\">{}{}\
         <input type=\"submit\" value=\"rename/relink\"></form></td>",
        hidden("t", "unlink"),
        hidden("name", name),
        hidden("when_done", "."),
        hidden("t", "rename-form"),
        hidden("name", name),
    )
}

/// `GET /uri/$DIRCAP?t=rename-form&name=X`: a form posting `t=rename` for `X`.
pub(crate) fn rename_form(cap: &Cap, args: &Args) -> Response {
    let si: String = cap
        .storage_index()
        .map(|si| si.to_string().chars().take(6).collect())
        .unwrap_or_default();
    let readonly = if cap.is_writable() {
        ""
    } else {
        " (readonly!)"
    };
    let name = args.get("name").unwrap_or("");
    let page = format!(
        "<!DOCTYPE html>\n<html><head><title>Directory SI={si}</title></head><body>\n\
         <h2>Rename in directory SI={si}{readonly}:</h2>\n\
         <form action=\"{here}\" method=\"post\" enctype=\"multipart/form-data\">\
         {t}{done}\nRename child: <input type=\"text\" name=\"from_name\" readonly \
         value=\"{name}\"><br>\nto name: <input type=\"text\" name=\"to_name\"><br>\n\
         <input type=\"submit\" value=\"rename\"></form>\n</body></html>\n",
        here = escape(&dir_url(cap)),
        t = hidden("t", "rename"),
        done = hidden("when_done", "."),
        name = escape(name),
    );
    Html(page).into_response()
}
