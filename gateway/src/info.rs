//! `GET /uri/$CAP[/PATH]?t=info`: Tahoe's "More Info" page, kept simple: what the
//! object is (in Tahoe's words: `directory`, `immutable directory`, `mutable file
//! (sdmf)`, `immutable file`, `immutable LIT file`), its size, storage index and
//! caps, and links to its JSON and its check.

use axum::response::{Html, IntoResponse, Response};
use swamp_formats::cap::{Cap, MutableFormat};

use crate::reply::{encode_segment, escape};

/// Tahoe's name for what `cap` is.
pub(crate) fn kind(cap: &Cap) -> &'static str {
    match cap {
        Cap::Dir(inner) if inner.is_mutable() => "directory",
        Cap::Dir(_) => "immutable directory",
        Cap::Mutable(m) if m.format == MutableFormat::Mdmf => "mutable file (mdmf)",
        Cap::Mutable(_) => "mutable file (sdmf)",
        Cap::Chk(_) => "immutable file",
        Cap::Lit(_) => "immutable LIT file",
        _ => "unknown",
    }
}

/// The page; `size` when known (a mutable file's is known once read).
pub(crate) fn page(cap: &Cap, size: Option<u64>) -> Response {
    let text = cap.to_string();
    let base = format!("/uri/{}", encode_segment(&text));
    let si = cap
        .storage_index()
        .map_or_else(|| "None".to_string(), |si| si.to_string());
    let size = size.map_or_else(|| "?".to_string(), |s| s.to_string());
    let write = if cap.is_writable() { text.as_str() } else { "" };
    let read = cap.read_only().to_string();
    let verify = cap.verify_cap().map(|v| v.to_string()).unwrap_or_default();
    let mut rows = String::new();
    for (label, value) in [
        ("Type", kind(cap)),
        ("Storage Index", si.as_str()),
        ("Size", size.as_str()),
        ("Read-Write cap", write),
        ("Read-Only cap", read.as_str()),
        ("Verifier cap", verify.as_str()),
    ] {
        rows.push_str(&format!(
            "<tr><th>{label}</th><td>{}</td></tr>\n",
            escape(value)
        ));
    }
    let check = if cap.is_dir() {
        format!(
            "<form method=\"post\" action=\"{base}?t=stream-deep-check\">\
             <input type=\"submit\" value=\"Deep-check\"></form>\n"
        )
    } else {
        String::new()
    };
    Html(format!(
        "<!DOCTYPE html>\n<html><head><title>More Info</title></head><body>\n\
         <h1>More Info</h1>\n<table>\n{rows}</table>\n\
         <p><a href=\"{base}?t=json\">JSON</a> \
         <a href=\"{base}?t=uri\">cap</a></p>\n\
         <form method=\"post\" action=\"{base}?t=check\">\
         <input type=\"submit\" value=\"Check\"></form>\n{check}\
         </body></html>\n"
    ))
    .into_response()
}
