//! `GET /dashboard`: the operator's live page, one HTML file with its script inline
//! (`dashboard.html`, compiled in), so there is nothing to build, install or fetch.
//!
//! The page holds no figures: anyone may load it, and it shows a login form until its
//! session cookie opens `/activity` (`session`). Its data comes from the activity
//! stream (`/activity`, SSE, one event a second: request rates, bytes, uploads, feed
//! streams) and from `/metrics` (disk, latency histograms, feed deliveries), read once
//! a second and parsed in the page, and `/status` every 30 s (uptime, shares,
//! certificates). The Content-Security-Policy lets it talk to this listener only.

use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};

/// The page.
const PAGE: &str = include_str!("dashboard.html");

/// No fetch, image, font or frame from anywhere but this listener; inline script and
/// style only (the page is one file).
const CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                   connect-src 'self'; img-src 'self' data:; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// `GET /dashboard`.
pub async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        PAGE,
    )
        .into_response()
}

/// `GET /`: to the dashboard.
pub async fn root() -> Redirect {
    Redirect::to("/dashboard")
}
