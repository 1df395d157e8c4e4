//! Directory contents as a client decrypts them from a directory's backing file:
//! parsed with and without the write key. Whatever parses packs to contents that
//! parse to the same entries, up to what packing changes on purpose (Tahoe stores read
//! caps without an `ro.` prefix, and packing sorts by name).
#![no_main]

use libfuzzer_sys::fuzz_target;
use swamp_formats::dirnode::{self, Entry};

const WRITEKEY: [u8; 16] = [0x5a; 16];

/// What packing then parsing makes of parsed entries: read caps lose one `ro.` prefix
/// (as Tahoe strips it) and their spaces, and entries come sorted by name.
fn canonical(mut entries: Vec<Entry>) -> Vec<Entry> {
    for e in &mut entries {
        e.ro_uri = e.ro_uri.as_deref().and_then(|ro| {
            let ro = ro.strip_prefix("ro.").unwrap_or(ro).trim_matches(' ');
            (!ro.is_empty()).then(|| ro.to_string())
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    entries
}

fuzz_target!(|data: &[u8]| {
    let _ = dirnode::parse(data, None);
    let Ok(entries) = dirnode::parse(data, Some(&WRITEKEY)) else {
        return;
    };
    for e in &entries {
        let _ = e.cap();
    }
    let packed = dirnode::pack(&entries, &WRITEKEY);
    let again = dirnode::parse(&packed, Some(&WRITEKEY)).expect("packed contents parse");
    assert_eq!(again, canonical(entries));
});
