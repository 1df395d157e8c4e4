//! `Range` and `Content-Range`: whatever parses is a non-empty range that formats and
//! parses back to itself, and agrees with its offset and length.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swamp_proto::range::ByteRange;

fn check(r: ByteRange) {
    assert!(r.first <= r.last);
    assert_eq!(
        ByteRange::parse_range_header(&r.to_range_header()).expect("formatted Range parses"),
        r
    );
    assert_eq!(
        ByteRange::parse_content_range(&r.to_content_range())
            .expect("formatted Content-Range parses"),
        r
    );
    assert!(r.len() >= 1);
    assert_eq!(ByteRange::from_offset_len(r.first, r.len()), Some(r));
    assert!(r.end() > r.first || r.last == u64::MAX);
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = ByteRange::parse_range_header(text) {
        check(r);
    }
    if let Ok(r) = ByteRange::parse_content_range(text) {
        check(r);
    }
});
