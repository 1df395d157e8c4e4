//! SHA-256 throughput, one stream against two interleaved ([`update_pair`]), in MiB/s
//! of hashed bytes over 512 KiB messages (a 2-of-3 block of a 1 MiB segment):
//! `cargo bench -p swamp-formats --bench sha256`.
//!
//! Dependency-free, like the zfec bench: each case runs for about `SECS` seconds, the
//! cases take turns within each of `REPS` rounds, and the best and median are printed.

use std::hint::black_box;
use std::time::{Duration, Instant};

use swamp_formats::sha256::{Sha256, update_pair};

const MESSAGE: usize = 512 * 1024;
const REPS: usize = 5;
const SECS: f64 = 0.3;

/// MiB/s of hashed bytes for `op`, which hashes `bytes` per call.
fn rate(bytes: usize, mut op: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut calls = 0u64;
    while start.elapsed() < Duration::from_secs_f64(SECS) {
        op();
        calls += 1;
    }
    (calls as f64 * bytes as f64) / start.elapsed().as_secs_f64() / (1 << 20) as f64
}

fn main() {
    let a: Vec<u8> = (0..MESSAGE as u32).map(|i| ((i * 7) >> 3) as u8).collect();
    let b: Vec<u8> = (0..MESSAGE as u32).map(|i| ((i * 13) >> 5) as u8).collect();
    if !std::env::args().any(|x| x == "--bench") {
        return; // `cargo test --benches`: nothing to time.
    }
    let (mut one, mut two) = (Vec::new(), Vec::new());
    for _ in 0..REPS {
        one.push(rate(MESSAGE, || {
            black_box(Sha256::digest(black_box(&a)));
        }));
        two.push(rate(2 * MESSAGE, || {
            let (mut ha, mut hb) = (Sha256::new(), Sha256::new());
            update_pair(&mut ha, black_box(&a), &mut hb, black_box(&b));
            black_box((ha.finalize(), hb.finalize()));
        }));
    }
    for (name, mut xs) in [("one stream", one), ("two interleaved", two)] {
        xs.sort_by(f64::total_cmp);
        println!(
            "{name:<16} {:>7.0} / {:>7.0} MiB/s",
            xs[REPS - 1],
            xs[REPS / 2]
        );
    }
}
