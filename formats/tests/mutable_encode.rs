#![allow(clippy::unwrap_used)]
//! Swamp's mutable encoder against real Tahoe 1.20 shares (`fixtures/mutable/`): given
//! the same key, seqnum, salts and plaintext it writes the same bytes, except the
//! RSA-PSS signature, which is randomized (and must verify). Also: fresh files
//! round-trip through encode, parse, verify and decode.

use swamp_formats::cap::{Cap, MutableCap, MutableFormat};
use swamp_formats::mutable::{MutableShare, decode, signed_share_len};
use swamp_formats::mutable_encode::{MutableParams, encode, encode_with_salts};
use swamp_formats::mutable_key::MutableKey;

fn plaintext(size: usize) -> Vec<u8> {
    (0..size).map(|j| ((j * 37 + size) % 256) as u8).collect()
}

/// Where the signature lies in a share: `(offset, length)`.
fn signature_range(share: &[u8]) -> (usize, usize) {
    let be = |at: usize, len: usize| {
        share[at..at + len]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    if share[0] == 0 {
        (be(75, 4), be(79, 4) - be(75, 4))
    } else {
        (be(75, 8), be(83, 8) - be(75, 8))
    }
}

fn reencode(name: &str, cap: &str, size: &str, tahoe: [&[u8]; 2]) {
    let Cap::Mutable(cap) = cap.trim().parse::<Cap>().unwrap() else {
        panic!("{name}: not a mutable cap")
    };
    let size: usize = size.trim().parse().unwrap();
    let parsed = MutableShare::parse(tahoe[0]).unwrap();
    let key = MutableKey::from_encrypted(&parsed.encrypted_private_key, &cap.writekey().unwrap())
        .unwrap();
    assert_eq!(
        key.write_cap(cap.format),
        cap,
        "{name}: the key makes the cap"
    );
    let salts: Vec<[u8; 16]> = match parsed.sdmf_salt {
        Some(salt) => vec![salt],
        None => parsed.blocks.iter().map(|(salt, _)| *salt).collect(),
    };
    // Tahoe's own shares decode (empty files included).
    let theirs: Vec<MutableShare> = tahoe
        .iter()
        .map(|b| MutableShare::parse(b).unwrap())
        .collect();
    let decoded = decode(&cap.readkey().unwrap(), &[(0, &theirs[0]), (1, &theirs[1])]).unwrap();
    assert!(decoded == plaintext(size), "{name}: Tahoe's shares decode");
    let params = MutableParams::new(cap.format, parsed.needed, parsed.total).unwrap();
    let mine = encode_with_salts(
        &key,
        params,
        parsed.seqnum,
        &plaintext(size),
        &salts,
        &mut rand::rng(),
    )
    .unwrap();
    assert_eq!(mine.root_hash, parsed.root_hash, "{name}: root hash");
    assert_eq!(mine.shares.len(), usize::from(parsed.total));
    for (shnum, theirs) in tahoe.iter().enumerate() {
        let ours = &mine.shares[shnum];
        assert_eq!(ours.len(), theirs.len(), "{name} share {shnum}: length");
        let (at, len) = signature_range(theirs);
        assert_eq!(signature_range(ours), (at, len), "{name} share {shnum}");
        assert_eq!(len, 256);
        let differ = (0..ours.len())
            .filter(|&i| !(at..at + len).contains(&i) && ours[i] != theirs[i])
            .collect::<Vec<_>>();
        assert!(
            differ.is_empty(),
            "{name} share {shnum}: {} bytes differ outside the signature, first at {:?}",
            differ.len(),
            differ.first()
        );
        MutableShare::parse(ours)
            .unwrap()
            .verify(shnum, &cap.fingerprint)
            .unwrap_or_else(|e| panic!("{name} share {shnum}: {e}"));
    }
}

macro_rules! fixture {
    ($test:ident, $dir:literal) => {
        #[test]
        fn $test() {
            reencode(
                $dir,
                include_str!(concat!("fixtures/mutable/", $dir, "/cap.txt")),
                include_str!(concat!("fixtures/mutable/", $dir, "/size.txt")),
                [
                    include_bytes!(concat!("fixtures/mutable/", $dir, "/0.share")),
                    include_bytes!(concat!("fixtures/mutable/", $dir, "/1.share")),
                ],
            );
        }
    };
}

fixture!(sdmf_matches_tahoe, "sdmf");
fixture!(mdmf_two_segments_match_tahoe, "mdmf");
fixture!(empty_sdmf_matches_tahoe, "sdmf-empty");
fixture!(empty_mdmf_matches_tahoe, "mdmf-empty");

fn round_trip(key: &MutableKey, format: MutableFormat, k: u8, n: u8, size: usize) {
    let cap: MutableCap = key.write_cap(format);
    let data: Vec<u8> = (0..size).map(|i| (i * 7 + 3) as u8).collect();
    let params = MutableParams::new(format, k, n).unwrap();
    let version = encode(key, params, 5, &data, &mut rand::rng()).unwrap();
    assert_eq!(version.shares.len(), usize::from(n));
    let parsed: Vec<MutableShare> = version
        .shares
        .iter()
        .map(|s| MutableShare::parse(s).unwrap())
        .collect();
    for (shnum, share) in parsed.iter().enumerate() {
        share.verify(shnum, &cap.fingerprint).unwrap();
        let bytes = &version.shares[shnum];
        assert_eq!(
            signed_share_len(bytes, &cap.fingerprint).unwrap(),
            bytes.len() as u64,
            "{format:?} {k}-of-{n}, {size} bytes"
        );
        assert_eq!(share.seqnum, 5);
        assert_eq!(share.root_hash, version.root_hash);
    }
    // Any k shares will do: take the last k, in reverse.
    let last: Vec<(usize, &MutableShare)> =
        parsed.iter().enumerate().rev().take(k.into()).collect();
    let decoded = decode(&cap.readkey().unwrap(), &last).unwrap();
    assert!(decoded == data, "{format:?} {k}-of-{n}, {size} bytes");
    // A header naming more data than the segments hold is an error, not a short
    // file (found by the mutable_share fuzz target).
    let mut longer: Vec<MutableShare> = parsed.clone();
    for share in &mut longer {
        share.data_length += 1 << 20;
    }
    let some: Vec<(usize, &MutableShare)> = longer.iter().enumerate().take(k.into()).collect();
    assert!(decode(&cap.readkey().unwrap(), &some).is_err());
}

#[test]
fn fresh_files_round_trip() {
    let key = MutableKey::generate(&mut rand::rng()).unwrap();
    for format in [MutableFormat::Sdmf, MutableFormat::Mdmf] {
        for size in [0, 1, 55, 1000, 131_073, 131_074, 300_001] {
            round_trip(&key, format, 3, 10, size);
        }
        round_trip(&key, format, 1, 1, 2000);
        round_trip(&key, format, 2, 3, 262_144);
    }
}
