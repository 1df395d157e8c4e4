//! The feed endpoints' query string (`si`, `since`, `snapshot`, `wait`, `token`,
//! `ttl`, percent-encoded): parses or is refused, and a long-poll wait is bounded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swamp_server::testing::{FeedQuery, MAX_WAIT};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(query) = FeedQuery::parse(Some(text)) {
        assert!(query.wait.is_none_or(|w| w <= MAX_WAIT));
        assert!(query.si.len() <= text.len() / 26);
    }
});
