//! The ids in URLs and on disk (storage index, share number), feed cursors, root
//! hashes and slot versions read from a share's first bytes: whatever parses formats
//! back to text that parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swamp_proto::feed::{Cursor, RootHash, SlotVersion};
use swamp_proto::{ShareNumber, StorageIndex};
use swamp_server::testing::extract;

fuzz_target!(|data: &[u8]| {
    let _ = SlotVersion::from_share_prefix(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = text.parse::<Cursor>() {
        assert_eq!(c.to_string().parse::<Cursor>().expect("round trip"), c);
    }
    if let Ok(si) = extract::storage_index(text) {
        assert_eq!(si.to_string(), text, "one spelling per storage index");
        assert_eq!(
            si.to_string().parse::<StorageIndex>().expect("round trip"),
            si
        );
    }
    if let Ok(n) = extract::share_number(text) {
        assert_eq!(n.to_string().parse::<ShareNumber>().expect("round trip"), n);
    }
    if let Ok(h) = text.parse::<RootHash>() {
        assert_eq!(h.to_string(), text, "one spelling per root hash");
    }
});
