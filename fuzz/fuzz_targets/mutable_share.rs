//! Mutable (SDMF and MDMF) shares as a client reads them from a server: parse,
//! checkstring, verification (the fingerprint is taken from the share itself, so the
//! key and signature checks run), and decoding k copies of the share as if verified.
//! Nothing may panic or allocate by a size the bytes name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swamp_formats::hashutil;
use swamp_formats::mutable::{self, MutableShare};

fuzz_target!(|data: &[u8]| {
    let _ = mutable::parse_checkstring(data);
    let Ok(share) = MutableShare::parse(data) else {
        return;
    };
    let checkstring = share.checkstring();
    assert_eq!(checkstring.len(), mutable::checkstring_len(share.version));
    assert_eq!(
        mutable::parse_checkstring(checkstring),
        Some((share.seqnum, share.root_hash))
    );
    let fingerprint = hashutil::ssk_pubkey_fingerprint_hash(&share.verification_key);
    let _ = share.verify(0, &fingerprint);
    let k = usize::from(share.needed).clamp(1, 4);
    let copies: Vec<(usize, &MutableShare)> = (0..k).map(|n| (n, &share)).collect();
    let _ = mutable::decode(&[9; 16], &copies);
});
