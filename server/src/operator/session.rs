//! Who may see the operator listener's pages beyond `/metrics`, `/healthz` and
//! `/readyz`: whoever presents the operator secret (`private/operator.secret`), in an
//! `Authorization: Swamp-Operator <secret>` header (scripts, `swamp-server status`) or
//! through a session cookie its login set (browsers: `EventSource` cannot send headers).
//!
//! Why a cookie and not the secret in the URL: URLs end up in browser history, proxies'
//! logs and screenshots. The cookie never holds the secret: it is
//! `<expiry>.<HMAC-SHA256(key, expiry)>`, the key derived from the secret, so it proves
//! the secret was presented without revealing it, works across restarts, stops working
//! when the secret changes, and expires after [`SESSION_SECS`]. It is `HttpOnly` (no
//! script reads it) and `SameSite=Strict` (no other site's page sends it).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use data_encoding::BASE64URL_NOPAD;
use ring::hmac;

use crate::http::App;
use crate::node::OperatorSecret;

/// The cookie's name.
pub const COOKIE: &str = "swamp_operator";

/// How long a login lasts, in seconds (twelve hours: a working day at a dashboard).
pub const SESSION_SECS: u64 = 12 * 3600;

/// The largest login body read (`secret=...`, form-encoded).
const MAX_LOGIN_BODY: usize = 4096;

fn key(secret: &OperatorSecret) -> hmac::Key {
    let mut material = b"swamp operator session key v1\0".to_vec();
    material.extend_from_slice(secret.expose().as_bytes());
    let derived = ring::digest::digest(&ring::digest::SHA256, &material);
    hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref())
}

fn message(expires: u64) -> String {
    format!("operator session until {expires}")
}

/// A session value valid until `now + SESSION_SECS`.
pub fn issue(secret: &OperatorSecret, now: u64) -> String {
    let expires = now.saturating_add(SESSION_SECS);
    let tag = hmac::sign(&key(secret), message(expires).as_bytes());
    format!("{expires}.{}", BASE64URL_NOPAD.encode(tag.as_ref()))
}

/// Whether `value` is a session issued under `secret` that has not expired at `now`.
/// The tag is checked in constant time (`ring::hmac::verify`); an expiry further
/// ahead than a login grants (with an hour's slack for a clock stepped back) was never
/// issued.
pub fn valid(secret: &OperatorSecret, value: &str, now: u64) -> bool {
    let Some((expires, tag)) = value.split_once('.') else {
        return false;
    };
    let (Ok(expires), Ok(tag)) = (
        expires.parse::<u64>(),
        BASE64URL_NOPAD.decode(tag.as_bytes()),
    ) else {
        return false;
    };
    expires > now
        && expires <= now.saturating_add(SESSION_SECS + 3600)
        && hmac::verify(&key(secret), message(expires).as_bytes(), &tag).is_ok()
}

/// The value of cookie `name` in a request's `Cookie` headers (HTTP/2 may split them).
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (n, v) = pair.trim().split_once('=')?;
            (n == name).then_some(v)
        })
}

/// Whether a request carries the operator secret or a valid session.
pub fn authorized(app: &App, headers: &HeaderMap) -> bool {
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        return value
            .strip_prefix("Swamp-Operator ")
            .is_some_and(|s| app.operator_secret.get().matches(s));
    }
    cookie(headers, COOKIE).is_some_and(|v| valid(&app.operator_secret.get(), v, app.storage.now()))
}

/// Middleware: 401 unless [`authorized`].
pub async fn require(State(app): State<App>, request: Request, next: Next) -> Response {
    if authorized(&app, request.headers()) {
        return next.run(request).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::CACHE_CONTROL, "no-store")],
        "the operator secret is required: send Authorization: Swamp-Operator <secret> \
         (private/operator.secret in the node directory), or log in at /dashboard\n",
    )
        .into_response()
}

/// `POST /login` with the form field `secret`: 204 and the session cookie, or 401.
pub async fn login(State(app): State<App>, request: Request) -> Response {
    let Ok(body) = axum::body::to_bytes(request.into_body(), MAX_LOGIN_BODY).await else {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            "the login form is larger than 4096 bytes\n",
        )
            .into_response();
    };
    let presented = form_field(&body, "secret").unwrap_or_default();
    if !app.operator_secret.get().matches(&presented) {
        tracing::warn!("operator login refused: wrong secret");
        return (
            StatusCode::UNAUTHORIZED,
            [(header::CACHE_CONTROL, "no-store")],
            "that is not this node's operator secret (private/operator.secret)\n",
        )
            .into_response();
    }
    let value = issue(&app.operator_secret.get(), app.storage.now());
    set_cookie(&format!(
        "{COOKIE}={value}; Path=/; Max-Age={SESSION_SECS}; HttpOnly; SameSite=Strict"
    ))
}

/// `POST /logout`: clears the cookie (a copy kept elsewhere stays valid until it
/// expires or the secret changes).
pub async fn logout() -> Response {
    set_cookie(&format!(
        "{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"
    ))
}

fn set_cookie(value: &str) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(header::SET_COOKIE, value);
    }
    response
}

/// Field `name` of an `application/x-www-form-urlencoded` body (`+` is a space,
/// `%XX` a byte); `None` if absent or not UTF-8 once decoded.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    body.split(|b| *b == b'&').find_map(|pair| {
        let (n, v) = match pair.iter().position(|b| *b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &[][..]),
        };
        (percent_decode(n)? == name).then(|| percent_decode(v))?
    })
}

fn percent_decode(text: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(text: &str) -> OperatorSecret {
        OperatorSecret::parse(text).unwrap()
    }

    #[test]
    fn a_session_is_valid_until_it_expires_and_only_under_its_secret() {
        let s = secret("0123456789abcdefghij");
        let now = 1_000_000;
        let value = issue(&s, now);
        assert!(
            !value.contains(s.expose()),
            "the cookie never holds the secret"
        );
        assert!(valid(&s, &value, now));
        assert!(valid(&s, &value, now + SESSION_SECS - 1));
        assert!(!valid(&s, &value, now + SESSION_SECS));
        assert!(!valid(&secret("another-secret-of-20"), &value, now));
        // A forged expiry with the old tag, and garbage.
        let (_, tag) = value.split_once('.').unwrap();
        assert!(!valid(
            &s,
            &format!("{}.{tag}", now + 2 * SESSION_SECS),
            now
        ));
        for bad in ["", ".", "x.y", "12", &format!("{}.", now + 10)] {
            assert!(!valid(&s, bad, now), "{bad:?}");
        }
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; swamp_operator=v"),
        );
        headers.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&headers, COOKIE), Some("v"));
        assert_eq!(cookie(&headers, "b"), Some("2"));
        assert_eq!(cookie(&headers, "swamp"), None);
    }

    #[test]
    fn form_fields_are_decoded() {
        assert_eq!(
            form_field(b"x=1&secret=a%2Bb+c%3D", "secret").as_deref(),
            Some("a+b c=")
        );
        assert_eq!(form_field(b"secret", "secret").as_deref(), Some(""));
        assert_eq!(form_field(b"other=1", "secret"), None);
        assert_eq!(form_field(b"secret=%zz", "secret"), None);
        assert_eq!(form_field(b"secret=%4", "secret"), None);
    }
}
