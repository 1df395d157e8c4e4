//! NURLs and SPKI hashes: whatever parses formats to a NURL that parses to the same
//! value and formats to the same text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swamp_proto::{Nurl, SpkiHash};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(nurl) = text.parse::<Nurl>() {
        let formatted = nurl.to_string();
        let again: Nurl = formatted.parse().expect("a formatted NURL parses");
        assert!(again == nurl, "{formatted} parses to another NURL");
        assert_eq!(again.to_string(), formatted);
        assert!(nurl.base_url().starts_with("https://"));
    }
    if let Ok(hash) = text.parse::<SpkiHash>() {
        assert_eq!(
            hash.to_string().parse::<SpkiHash>().expect("round trip"),
            hash
        );
    }
});
