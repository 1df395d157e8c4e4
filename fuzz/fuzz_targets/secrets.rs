//! The secrets headers: `X-Tahoe-Authorization` (one value per line of the input, the
//! first byte choosing which secrets the endpoint requires) and `Authorization`.
//! Whatever parses must hold exactly the required secrets, and formatting them again
//! must parse to the same secrets.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swamp_proto::secrets::{PresentedSecrets, SecretKind, Swissnum, format_secret_header};

const KINDS: [SecretKind; 4] = [
    SecretKind::LeaseRenew,
    SecretKind::LeaseCancel,
    SecretKind::Upload,
    SecretKind::WriteEnabler,
];

fn headers(p: &PresentedSecrets) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(s) = &p.lease_renew {
        out.push(format_secret_header(SecretKind::LeaseRenew, s.expose()));
    }
    if let Some(s) = &p.lease_cancel {
        out.push(format_secret_header(SecretKind::LeaseCancel, s.expose()));
    }
    if let Some(s) = &p.upload {
        out.push(format_secret_header(SecretKind::Upload, s.expose()));
    }
    if let Some(s) = &p.write_enabler {
        out.push(format_secret_header(SecretKind::WriteEnabler, s.expose()));
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let required: Vec<SecretKind> = KINDS
        .into_iter()
        .enumerate()
        .filter(|(i, _)| flags >> i & 1 == 1)
        .map(|(_, k)| k)
        .collect();
    let values: Vec<&[u8]> = rest.split(|&b| b == b'\n').collect();
    if let Ok(parsed) = PresentedSecrets::parse(values.iter().copied(), &required) {
        let again = headers(&parsed);
        assert_eq!(again.len(), required.len(), "exactly the required secrets");
        let reparsed = PresentedSecrets::parse(again.iter().map(|h| h.as_bytes()), &required)
            .expect("formatted secrets parse");
        assert_eq!(headers(&reparsed), again);
    }

    let swissnum = Swissnum::new("fuzz-swissnum").expect("a valid swissnum");
    let _ = swissnum.matches_header(rest);
    if let Ok(text) = std::str::from_utf8(rest)
        && let Ok(s) = Swissnum::new(text)
    {
        assert!(s.matches_header(s.authorization_header().as_bytes()));
        assert_eq!(format!("{s:?}"), "Swissnum(<redacted>)");
    }
});
