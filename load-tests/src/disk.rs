//! `swamp-load disk-sync`: the disk's own price of a durable small write, the floor
//! under a read-test-write with one writer.
//!
//! Why: a read-test-write is acknowledged only after its journal record is synced, so
//! with one writer every operation waits for one `fdatasync`, and Python's server,
//! which never syncs, is the wrong yardstick. The target compares the server with the
//! disk instead: its one-writer p50 against this loop's p50, measured in the same run
//! on the same file system. The loop does what the journal does: it writes `write_size`
//! bytes at the next offset of a file whose space was allocated and zero-filled ahead
//! (so the sync needs no metadata update), then `fdatasync`s.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt as _;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// Bytes allocated ahead for the loop; the writes wrap around inside them.
const AREA: u64 = 16 << 20;

/// The loop's result.
#[derive(Debug, Serialize, Deserialize)]
pub struct DiskSync {
    /// Always `disk-sync`, so result files can mix it with scenario lines.
    pub scenario: String,
    /// Writes timed.
    pub count: usize,
    /// Bytes per write.
    pub write_size: u64,
    /// Median time of one write plus its sync, in milliseconds.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
}

/// Times `count` writes of `write_size` bytes, each followed by `fdatasync`, in a
/// scratch file under `dir` that is removed afterwards.
///
/// # Errors
/// If the file cannot be made, written or synced.
pub fn measure(dir: &Path, count: usize, write_size: u64) -> anyhow::Result<DiskSync> {
    anyhow::ensure!(count > 0, "--count must be at least 1");
    anyhow::ensure!(
        (1..=AREA).contains(&write_size),
        "--write-size must be between 1 byte and {AREA}"
    );
    let scratch = tempfile_in(dir)?;
    let result = time_syncs(&scratch.file, count, write_size);
    drop(scratch);
    let mut times = result?;
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    Ok(DiskSync {
        scenario: "disk-sync".into(),
        count,
        write_size,
        p50_ms: at(0.50),
        p90_ms: at(0.90),
        p99_ms: at(0.99),
    })
}

fn time_syncs(file: &File, count: usize, write_size: u64) -> anyhow::Result<Vec<f64>> {
    let zeros = vec![0u8; 1 << 20];
    for offset in (0..AREA).step_by(zeros.len()) {
        file.write_all_at(&zeros, offset).context("zero-filling")?;
    }
    file.sync_all().context("syncing the zero-filled file")?;
    let data = vec![0xa5u8; usize::try_from(write_size)?];
    let slots = AREA / write_size;
    let mut times = Vec::with_capacity(count);
    for i in 0..count as u64 {
        let started = Instant::now();
        file.write_all_at(&data, (i % slots) * write_size)
            .context("writing")?;
        file.sync_data().context("fdatasync")?;
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    Ok(times)
}

/// A file under `dir` that is removed when dropped.
struct Scratch {
    file: File,
    path: std::path::PathBuf,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn tempfile_in(dir: &Path) -> anyhow::Result<Scratch> {
    let path = dir.join(format!("swamp-load-disk-sync.{}", std::process::id()));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    Ok(Scratch { file, path })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_and_cleans_up() {
        let dir = std::env::temp_dir().join(format!("disk-sync-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let r = measure(&dir, 20, 1024).unwrap();
        assert_eq!((r.count, r.write_size), (20, 1024));
        assert!(r.p50_ms > 0.0 && r.p50_ms <= r.p90_ms && r.p90_ms <= r.p99_ms);
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "scratch file left"
        );
        std::fs::remove_dir(&dir).unwrap();
        assert!(measure(&dir, 0, 1024).is_err());
    }
}
