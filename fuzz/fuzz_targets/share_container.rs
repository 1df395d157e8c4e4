//! Share container files as found on disk: Tahoe's immutable container (header, data,
//! lease records at the end, read through a real file as the server does) and mutable
//! container (magic, write enabler, offsets, leases). Whatever parses must be
//! self-consistent: reads stay inside the file, and lease records round-trip.
#![no_main]

use std::fs::File;
use std::io::Write as _;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use swamp_server::testing::immutable;
use swamp_server::testing::lease::{IMMUTABLE_LEASE_SIZE, Lease, MUTABLE_LEASE_SIZE};
use swamp_server::testing::mutable::{Container, DATA_OFFSET};

/// One scratch file for the whole run, rewritten for each input.
fn scratch() -> &'static File {
    static FILE: OnceLock<File> = OnceLock::new();
    FILE.get_or_init(|| tempfile::tempfile().expect("a scratch file"))
}

/// The scratch file, holding exactly `data`.
fn load(data: &[u8]) -> &'static File {
    let mut file = scratch();
    file.set_len(0).expect("truncate the scratch file");
    std::os::unix::fs::FileExt::write_all_at(file, data, 0).expect("write the scratch file");
    file.flush().expect("flush");
    file
}

fn immutable_file(data: &[u8], file: &File) {
    let Ok(header) = immutable::parse_header(data) else {
        return;
    };
    let read = immutable::read_header(file).expect("the header parsed from the same bytes");
    assert_eq!(read.num_leases, header.num_leases);
    if let Ok(len) = immutable::data_length(file, &header) {
        assert!(immutable::DATA_OFFSET + len <= data.len() as u64);
        let leases = immutable::read_leases(file, &header).expect("leases inside the file");
        assert_eq!(leases.len() as u64, u64::from(header.num_leases));
        let start = (immutable::DATA_OFFSET + len) as usize;
        for (i, lease) in leases.iter().enumerate() {
            let at = start + i * IMMUTABLE_LEASE_SIZE;
            assert_eq!(
                lease.to_immutable().as_slice(),
                &data[at..at + IMMUTABLE_LEASE_SIZE]
            );
        }
    }
}

fn mutable_file(data: &[u8], file: &File) {
    let Ok(container) = Container::open(file.try_clone().expect("clone")) else {
        return;
    };
    let len = container.data_length();
    assert!(DATA_OFFSET + len <= data.len() as u64);
    assert!(container.file_len() >= data.len() as u64);
    let prefix = container
        .data_prefix(u64::MAX)
        .expect("the data lies inside the file");
    assert_eq!(prefix.len() as u64, len);
    assert_eq!(
        &prefix[..],
        &data[DATA_OFFSET as usize..(DATA_OFFSET + len) as usize]
    );
    for lease in container.leases() {
        let record = lease.to_mutable();
        assert_eq!(Lease::from_mutable(&record), Some(lease));
    }
    for (at, bytes) in container.lease_bytes() {
        assert_eq!(&data[at as usize..at as usize + bytes.len()], bytes);
    }
}

fuzz_target!(|data: &[u8]| {
    let file = load(data);
    immutable_file(data, file);
    mutable_file(data, file);
    if let Some(record) = data.first_chunk::<MUTABLE_LEASE_SIZE>()
        && let Some(lease) = Lease::from_mutable(record)
    {
        assert_eq!(&lease.to_mutable(), record);
    }
    if let Some(record) = data.first_chunk::<IMMUTABLE_LEASE_SIZE>() {
        assert_eq!(&Lease::from_immutable(record).to_immutable(), record);
    }
});
