//! Every endpoint of a storage node, once: its method, its path pattern and a stable
//! name. The server's router is built from this table, its request spans and activity
//! counters name requests by it, and the client's paths are filled from it, so an
//! endpoint cannot be spelled one way in the router and another way in a log or a
//! client. The headers, media types and WebSocket subprotocols both sides exchange are
//! here too.
//!
//! Patterns use the router's syntax: `{si}` is a storage index (26 characters of
//! Tahoe's base32), `{shnum}` a share number (decimal, 0-255).

use std::str::FromStr;

use crate::{ShareNumber, StorageIndex};

/// One endpoint.
#[derive(Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// A stable name, for logs, spans and counters (`read_test_write`).
    pub name: &'static str,
    /// `GET`, `POST`, `PUT` or `PATCH`; `*` for any (the feed: WebSocket over HTTP/2
    /// opens with `CONNECT`).
    pub method: &'static str,
    /// The path pattern.
    pub pattern: &'static str,
}

macro_rules! endpoints {
    ($($(#[$doc:meta])* $id:ident = $name:literal, $method:literal, $pattern:literal;)*) => {
        $($(#[$doc])* pub const $id: Endpoint = Endpoint { name: $name, method: $method, pattern: $pattern };)*
        /// Every endpoint, in matching order.
        pub const ALL: &[Endpoint] = &[$($id),*];
    };
}

endpoints! {
    /// The version map (GBS).
    VERSION = "version", "GET", "/storage/v1/version";
    /// Add or renew a lease on every share of a storage index (GBS).
    LEASE = "lease", "PUT", "/storage/v1/lease/{si}";
    /// Allocate immutable shares for upload (GBS).
    ALLOCATE = "allocate", "POST", "/storage/v1/immutable/{si}";
    /// List the immutable shares of a storage index (GBS).
    LIST_IMMUTABLE = "list_immutable", "GET", "/storage/v1/immutable/{si}/shares";
    /// Read an immutable share (GBS).
    READ_IMMUTABLE = "read_immutable", "GET", "/storage/v1/immutable/{si}/{shnum}";
    /// Write part of an immutable share being uploaded (GBS).
    WRITE_IMMUTABLE = "write_immutable", "PATCH", "/storage/v1/immutable/{si}/{shnum}";
    /// Abort an upload (GBS).
    ABORT = "abort", "PUT", "/storage/v1/immutable/{si}/{shnum}/abort";
    /// Advise that an immutable share is corrupt (GBS).
    CORRUPT_IMMUTABLE = "corrupt_immutable", "POST", "/storage/v1/immutable/{si}/{shnum}/corrupt";
    /// Read, test and write a slot's shares (GBS).
    READ_TEST_WRITE = "read_test_write", "POST", "/storage/v1/mutable/{si}/read-test-write";
    /// List the shares of a slot (GBS).
    LIST_MUTABLE = "list_mutable", "GET", "/storage/v1/mutable/{si}/shares";
    /// Read a slot's share (GBS).
    READ_MUTABLE = "read_mutable", "GET", "/storage/v1/mutable/{si}/{shnum}";
    /// Advise that a slot's share is corrupt (GBS).
    CORRUPT_MUTABLE = "corrupt_mutable", "POST", "/storage/v1/mutable/{si}/{shnum}/corrupt";
    /// A browser token for the change feed (Swamp).
    FEED_TOKEN = "feed_token", "POST", "/storage/v1/feed/token";
    /// The change feed: WebSocket, SSE or long-poll (Swamp, `docs/feeds.md`).
    FEED = "feed", "*", "/storage/v1/feed";
    /// The operator's activity stream (Swamp).
    ACTIVITY = "activity", "GET", "/storage/v1/activity";
}

/// The header carrying the swissnum: `Authorization: Tahoe-LAFS <base64>`.
pub const AUTHORIZATION: &str = "authorization";
/// The header carrying an endpoint's other secrets (lease, upload, write enabler).
pub const SECRETS_HEADER: &str = "x-tahoe-authorization";
/// The media type of every CBOR body.
pub const CBOR_MEDIA_TYPE: &str = "application/cbor";
/// The media type of server-sent events (the feed's SSE transport, the activity stream).
pub const EVENT_STREAM_MEDIA_TYPE: &str = "text/event-stream";
/// The feed's WebSocket subprotocol with JSON text messages.
pub const FEED_JSON_PROTOCOL: &str = "swamp-feed.v1.json";
/// The feed's WebSocket subprotocol with CBOR binary messages.
pub const FEED_CBOR_PROTOCOL: &str = "swamp-feed.v1.cbor";

/// A request matched to its endpoint, with the ids its path carries.
#[derive(Debug, PartialEq, Eq)]
pub struct Matched {
    /// The endpoint.
    pub endpoint: &'static Endpoint,
    /// The storage index, where the pattern has one.
    pub si: Option<StorageIndex>,
    /// The share number, where the pattern has one.
    pub shnum: Option<ShareNumber>,
}

impl Endpoint {
    /// The path of this endpoint for these ids. A pattern's `{si}` or `{shnum}` takes
    /// the id given; ids the pattern does not have are ignored.
    ///
    /// # Panics
    /// If the pattern has an id that is not given: a bug at the call site.
    pub fn path(&self, si: Option<&StorageIndex>, shnum: Option<ShareNumber>) -> String {
        self.pattern
            .split('/')
            .map(|segment| match segment {
                "{si}" => si
                    .expect("invariant: a storage index for this endpoint")
                    .to_string(),
                "{shnum}" => shnum
                    .expect("invariant: a share number for this endpoint")
                    .to_string(),
                literal => literal.to_string(),
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    /// Whether `method` and `path` are this endpoint's, with the ids the path carries.
    fn matches(&'static self, method: &str, path: &str) -> Option<Matched> {
        if self.method != "*" && self.method != method {
            return None;
        }
        let mut matched = Matched {
            endpoint: self,
            si: None,
            shnum: None,
        };
        let mut segments = path.split('/');
        for want in self.pattern.split('/') {
            let got = segments.next()?;
            match want {
                "{si}" => matched.si = Some(StorageIndex::from_str(got).ok()?),
                "{shnum}" => matched.shnum = Some(ShareNumber::from_str(got).ok()?),
                literal if literal == got => {}
                _ => return None,
            }
        }
        segments.next().is_none().then_some(matched)
    }
}

/// The endpoint a request is for, if any. Ids must parse (a malformed storage index
/// matches nothing, as in the router).
pub fn find(method: &str, path: &str) -> Option<Matched> {
    ALL.iter().find_map(|e| e.matches(method, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn si() -> StorageIndex {
        StorageIndex::from_bytes([7; 16])
    }

    #[test]
    fn every_endpoint_finds_itself_from_its_own_path() {
        let shnum = ShareNumber::new(3);
        for e in ALL {
            let method = if e.method == "*" { "GET" } else { e.method };
            let path = e.path(Some(&si()), Some(shnum));
            let m = find(method, &path).unwrap_or_else(|| panic!("{} not found", e.name));
            assert_eq!(m.endpoint, e, "{path}");
            assert_eq!(m.si.is_some(), e.pattern.contains("{si}"));
            assert_eq!(m.shnum.is_some(), e.pattern.contains("{shnum}"));
        }
    }

    #[test]
    fn names_are_unique() {
        for (i, a) in ALL.iter().enumerate() {
            assert!(ALL[i + 1..].iter().all(|b| b.name != a.name), "{}", a.name);
        }
    }

    #[test]
    fn literal_segments_win_over_share_numbers_and_ids_must_parse() {
        let si = si();
        let list = find("GET", &format!("/storage/v1/mutable/{si}/shares")).unwrap();
        assert_eq!(list.endpoint, &LIST_MUTABLE);
        let read = find("GET", &format!("/storage/v1/mutable/{si}/255")).unwrap();
        assert_eq!(read.endpoint, &READ_MUTABLE);
        assert_eq!(read.shnum, Some(ShareNumber::new(255)));
        assert_eq!(
            find("GET", "/storage/v1/mutable/not-a-storage-index/1"),
            None
        );
        assert_eq!(find("GET", &format!("/storage/v1/mutable/{si}/256")), None);
        assert_eq!(find("DELETE", "/storage/v1/version"), None);
        assert_eq!(find("GET", "/storage/v1/version/extra"), None);
        assert_eq!(find("CONNECT", "/storage/v1/feed").unwrap().endpoint, &FEED);
    }
}
