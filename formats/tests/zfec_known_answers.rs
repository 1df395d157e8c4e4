//! swamp-formats' erasure coder against Python zfec 1.6's output
//! (`fixtures/zfec.txt`, made by `fixtures/make_zfec_fixtures.py`).

use sha2::{Digest, Sha256};
use swamp_formats::zfec::{Kernel, Zfec};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn byte_identical_to_python_zfec_and_decodable_from_any_k() {
    let fixtures = include_str!("fixtures/zfec.txt");
    let mut cases = 0;
    for line in fixtures.lines().filter(|l| !l.starts_with('#')) {
        let fields: Vec<&str> = line.split(' ').collect();
        let (k, n, len): (usize, usize, usize) = (
            fields[0].parse().unwrap(),
            fields[1].parse().unwrap(),
            fields[2].parse().unwrap(),
        );
        let pieces: Vec<Vec<u8>> = (0..k)
            .map(|c| {
                (0..len)
                    .map(|j| ((7 * c + 13 * j + k + 3 * n) % 256) as u8)
                    .collect()
            })
            .collect();
        let refs: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
        // Every kernel this CPU can run (the scalar loop, and SIMD where present).
        for kernel in [Kernel::Scalar, Kernel::Ssse3, Kernel::Avx2] {
            if !kernel.is_supported() {
                continue;
            }
            let code = Zfec::new(k, n).unwrap().with_kernel(kernel).unwrap();
            let shares = code.encode(&refs).unwrap();
            for (i, share) in shares.iter().enumerate() {
                assert_eq!(
                    hex(&Sha256::digest(share)),
                    fields[3 + i],
                    "{kernel:?}: k={k} n={n} len={len} share {i}"
                );
            }
            // Decode from the last k shares, in reverse order (the hardest case).
            let picked: Vec<(usize, &[u8])> = (n - k..n)
                .rev()
                .map(|i| (i, shares[i].as_slice()))
                .collect();
            assert_eq!(
                code.decode(&picked).unwrap(),
                pieces,
                "{kernel:?}: k={k} n={n}"
            );
        }
        cases += 1;
    }
    assert_eq!(cases, 42);
}
