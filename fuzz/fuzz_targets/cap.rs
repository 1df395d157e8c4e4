//! Capability strings, from users and from directories: whatever parses formats to a
//! cap that parses to the same value and text; unknown kinds are kept verbatim; the
//! keys and storage index a cap implies never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swamp_formats::cap::Cap;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cap) = Cap::parse_strict(text) {
        let formatted = cap.to_string();
        let again = Cap::parse_strict(&formatted).expect("a formatted cap parses");
        assert_eq!(again, cap);
        assert_eq!(again.to_string(), formatted);
        let _ = cap.storage_index();
        let ro = cap.read_only();
        assert!(!ro.is_writable());
        assert_eq!(ro.storage_index(), cap.storage_index());
        assert_eq!(
            Cap::parse_strict(&ro.to_string()).expect("read-only parses"),
            ro
        );
    }
    match Cap::parse_lenient(text) {
        Ok(Cap::Unknown(kept)) => assert_eq!(kept, text),
        Ok(cap) => assert_eq!(Cap::parse_strict(text).ok(), Some(cap)),
        Err(_) => {}
    }
});
