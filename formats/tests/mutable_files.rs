#![allow(clippy::unwrap_used)]
//! SDMF and MDMF files written by real Tahoe 1.20 (`fixtures/mutable/`, made by
//! `tests/interop/make_mutable_fixtures.py`) verify and decode byte-exact.

use swamp_formats::cap::Cap;
use swamp_formats::mutable::{MutableShare, decode, signed_share_len};

fn check(name: &str, cap: &str, size: usize, shares: [&[u8]; 2]) {
    let Cap::Mutable(cap) = cap.trim().parse::<Cap>().unwrap() else {
        panic!("{name}: not a mutable cap")
    };
    let parsed: Vec<MutableShare> = shares
        .iter()
        .map(|b| MutableShare::parse(b).unwrap())
        .collect();
    for (shnum, share) in parsed.iter().enumerate() {
        share
            .verify(shnum, &cap.fingerprint)
            .unwrap_or_else(|e| panic!("{name} share {shnum}: {e}"));
    }
    let plaintext = decode(&cap.readkey().unwrap(), &[(1, &parsed[1]), (0, &parsed[0])]).unwrap();
    let expected: Vec<u8> = (0..size).map(|j| ((j * 37 + size) % 256) as u8).collect();
    assert!(plaintext == expected, "{name}: plaintext differs");
    // A flipped byte in a block is caught.
    let mut damaged = shares[0].to_vec();
    let data_offset = if damaged[0] == 0 {
        u32::from_be_bytes(damaged[87..91].try_into().unwrap()) as usize
    } else {
        u64::from_be_bytes(damaged[99..107].try_into().unwrap()) as usize + 16
    };
    damaged[data_offset + 5] ^= 1;
    let damaged = MutableShare::parse(&damaged).unwrap();
    assert!(
        damaged.verify(0, &cap.fingerprint).is_err(),
        "{name}: damage detected"
    );
    // Verifying against another file's fingerprint fails.
    assert!(parsed[0].verify(0, &[0; 32]).is_err());
    // A reader learns a share's length from its first bytes, once they are the
    // cap's, and only within what the signed sizes allow.
    for share in shares {
        assert_eq!(
            signed_share_len(share, &cap.fingerprint).unwrap(),
            share.len() as u64,
            "{name}"
        );
        assert!(signed_share_len(share, &[0; 32]).is_err(), "{name}");
        let mut huge = share.to_vec();
        let eof = if huge[0] == 0 { 99 } else { 59 + 7 * 8 };
        huge[eof..eof + 8].copy_from_slice(&(1u64 << 50).to_be_bytes());
        let err = signed_share_len(&huge, &cap.fingerprint).unwrap_err();
        assert!(err.to_string().contains("allow at most"), "{name}: {err}");
        let mut forged = share.to_vec();
        let data_length = if share[0] == 0 { 67 } else { 51 };
        forged[data_length + 1] ^= 0x40; // a signed size changed: the signature fails
        assert!(
            signed_share_len(&forged, &cap.fingerprint).is_err(),
            "{name}"
        );
    }
}

#[test]
fn sdmf_written_by_tahoe() {
    check(
        "sdmf",
        include_str!("fixtures/mutable/sdmf/cap.txt"),
        include_str!("fixtures/mutable/sdmf/size.txt")
            .trim()
            .parse()
            .unwrap(),
        [
            include_bytes!("fixtures/mutable/sdmf/0.share"),
            include_bytes!("fixtures/mutable/sdmf/1.share"),
        ],
    );
}

#[test]
fn mdmf_written_by_tahoe() {
    check(
        "mdmf",
        include_str!("fixtures/mutable/mdmf/cap.txt"),
        include_str!("fixtures/mutable/mdmf/size.txt")
            .trim()
            .parse()
            .unwrap(),
        [
            include_bytes!("fixtures/mutable/mdmf/0.share"),
            include_bytes!("fixtures/mutable/mdmf/1.share"),
        ],
    );
}
