//! Empty mutable files, as real Tahoe 1.20 writes them for a new directory: the
//! version has no segments at all (fixtures from
//! `tests/interop/make_empty_dir_fixtures.py`).
#![allow(clippy::unwrap_used)]

use swamp_proto::cap::Cap;
use swamp_proto::dirnode;
use swamp_proto::mutable::{MutableShare, decode};

fn fixture(name: &str) -> (Cap, Vec<u8>) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/empty/");
    let cap = std::fs::read_to_string(format!("{dir}{name}.cap")).unwrap();
    let share = std::fs::read(format!("{dir}{name}.share")).unwrap();
    (cap.trim().parse().unwrap(), share)
}

#[test]
fn empty_sdmf_and_mdmf_directories_verify_and_decode_to_no_children() {
    for name in ["empty_sdmf_dir", "empty_mdmf_dir"] {
        let (cap, bytes) = fixture(name);
        let Cap::Dir(inner) = cap else {
            panic!("{name}: not a dircap")
        };
        let Cap::Mutable(file) = *inner else {
            panic!("{name}: not mutable")
        };
        let share = MutableShare::parse(&bytes).unwrap();
        assert_eq!(share.data_length, 0, "{name}");
        assert!(
            share.blocks.is_empty(),
            "{name}: an empty version has no segments"
        );
        share.verify(0, &file.fingerprint).unwrap();
        let plaintext = decode(&file.readkey().unwrap(), &[(0, &share)]).unwrap();
        assert!(plaintext.is_empty());
        assert!(
            dirnode::parse(&plaintext, file.writekey().as_ref())
                .unwrap()
                .is_empty()
        );
    }
}
