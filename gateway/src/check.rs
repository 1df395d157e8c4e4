//! `POST /uri/$CAP[/PATH]?t=check`: the client library's check, verify and repair
//! (`swamp_client::check`) of one file or directory, with Tahoe's arguments
//! (`verify=`, `repair=`, `add-lease=`) and answers (`web/check_results.py`): the
//! results as JSON with `output=JSON` (what Tahoe's `tahoe check` asks for), else a
//! short HTML page with the summary.

use std::sync::Arc;

use axum::response::{Html, IntoResponse, Response};
use swamp_client::check::CheckOptions;
use swamp_formats::cap::Cap;

use crate::Gateway;
use crate::args::Args;
use crate::error::WebError;
use crate::listing::to_text;
use crate::reply::{escape, text};

/// Checks `cap` as the arguments ask.
pub(crate) async fn check(
    gateway: &Arc<Gateway>,
    cap: &Cap,
    args: &Args,
) -> Result<Response, WebError> {
    let options = CheckOptions {
        verify: args.boolean("verify", false)?,
        add_lease: args.boolean("add-lease", false)?,
    };
    let repair = args.boolean("repair", false)?;
    let results = crate::transfer::check(gateway, cap.clone(), options, repair).await?;
    if args
        .get("output")
        .is_some_and(|o| o.eq_ignore_ascii_case("json"))
    {
        return Ok(text(http::StatusCode::OK, to_text(&results)));
    }
    let summary = results
        .pointer("/post-repair-results/summary")
        .or_else(|| results.pointer("/summary"))
        .and_then(|s| s.as_str())
        .unwrap_or("");
    let page = format!(
        "<!DOCTYPE html>\n<html><head><title>Check results</title></head><body>\n\
         <h1>Check results for {}</h1>\n<p>{}</p>\n</body></html>\n",
        escape(&cap.to_string()),
        escape(summary)
    );
    Ok(Html(page).into_response())
}
