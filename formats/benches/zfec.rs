//! zfec throughput per kernel (scalar against SIMD), in MB/s of segment data, for
//! Tahoe-sized 128 KiB segments: `cargo bench -p swamp-formats --bench zfec`.
//!
//! Dependency-free: each measurement runs the operation for about `SECS` seconds, and
//! the kernels take turns within each of `REPS` rounds, so on a busy machine they see
//! the same noise. The best and the median round are printed.

use std::hint::black_box;
use std::time::{Duration, Instant};

use swamp_formats::zfec::{Kernel, Zfec};

const SEGMENT: usize = 128 * 1024;
const REPS: usize = 5;
const SECS: f64 = 0.3;

/// MB/s of segment data for `op`, which handles one segment per call.
fn rate(mut op: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut calls = 0u64;
    while start.elapsed() < Duration::from_secs_f64(SECS) {
        op();
        calls += 1;
    }
    (calls as f64 * SEGMENT as f64) / start.elapsed().as_secs_f64() / 1e6
}

fn main() {
    // `cargo test --benches` runs this with `--bench`-less args; keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let kernels: Vec<Kernel> = [Kernel::Scalar, Kernel::Ssse3, Kernel::Avx2]
        .into_iter()
        .filter(|k| k.is_supported())
        .collect();
    println!(
        "zfec, {} KiB segments, MB/s of segment data, best / median of {REPS} rounds (best kernel here: {:?})",
        SEGMENT / 1024,
        Kernel::best()
    );
    println!("{:<28} {:>8} {:>16}", "case", "kernel", "MB/s");
    for (k, n) in [(3, 10), (2, 3)] {
        let piece = SEGMENT.div_ceil(k);
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let pieces: Vec<Vec<u8>> = (0..k)
            .map(|_| {
                (0..piece)
                    .map(|_| {
                        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                        (seed >> 56) as u8
                    })
                    .collect()
            })
            .collect();
        let refs: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
        let codes: Vec<Zfec> = kernels
            .iter()
            .map(|&kernel| {
                Zfec::new(k, n)
                    .and_then(|c| c.with_kernel(kernel))
                    .expect("supported kernel")
            })
            .collect();
        let shares = codes[0].encode(&refs).expect("encode");
        // Decode from the last k shares: as many parity shares as possible.
        let last: Vec<(usize, &[u8])> = (n - k..n).map(|i| (i, shares[i].as_slice())).collect();
        for code in &codes {
            assert_eq!(code.encode(&refs).expect("encode"), shares);
            assert_eq!(code.decode(&last).expect("decode"), pieces);
        }
        if quick {
            continue;
        }
        let mut enc = vec![Vec::new(); codes.len()];
        let mut dec = vec![Vec::new(); codes.len()];
        for _ in 0..REPS {
            for (i, code) in codes.iter().enumerate() {
                enc[i].push(rate(|| {
                    black_box(code.encode(black_box(&refs)).expect("encode"));
                }));
                dec[i].push(rate(|| {
                    black_box(code.decode(black_box(&last)).expect("decode"));
                }));
            }
        }
        for (what, table) in [("encode", &mut enc), ("decode from last k", &mut dec)] {
            for (i, rates) in table.iter_mut().enumerate() {
                rates.sort_by(f64::total_cmp);
                println!(
                    "{:<28} {:>8} {:>7.0} / {:>6.0}",
                    format!("{k}-of-{n} {what}"),
                    format!("{:?}", kernels[i]),
                    rates[REPS - 1],
                    rates[REPS / 2]
                );
            }
        }
    }
}
