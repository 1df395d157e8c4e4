//! Feed tokens: any text given as `?token=` (checked against a fixed swissnum), and
//! any payload as if its MAC had verified. A payload that decodes issues a token that
//! verifies to the same grant.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swamp_proto::secrets::Swissnum;
use swamp_server::testing::token;

fuzz_target!(|data: &[u8]| {
    let swissnum = Swissnum::new("fuzz-swissnum").expect("a valid swissnum");
    let Some((now, body)) = data.split_first_chunk::<8>() else {
        return;
    };
    let now = u64::from_be_bytes(*now);
    if let Ok(text) = std::str::from_utf8(body) {
        let _ = token::verify(&swissnum, text, now);
    }
    if let Ok(grant) = token::parse_payload(body, now) {
        assert!(grant.expires > now);
        let issued = token::issue(&swissnum, &grant);
        assert_eq!(token::verify(&swissnum, &issued, now), Ok(grant));
    }
});
