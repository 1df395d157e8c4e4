//! A one-line progress display for long `put` and `get`, on stderr, only when stderr
//! is a terminal (scripts and pipes see Tahoe's plain output), only for files of at
//! least 1 MiB, redrawn at most ten times a second.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Smallest transfer that gets a progress line.
const MIN_BYTES: u64 = 1 << 20;
const REDRAW: Duration = Duration::from_millis(100);

/// A progress line: `label`, how much of `total` is done, and the rate.
pub struct Bar {
    label: &'static str,
    total: u64,
    done: AtomicU64,
    started: Instant,
    drawn: Mutex<Option<Instant>>,
    enabled: bool,
    /// How many times the work goes over the file (shown as one pass).
    passes: u64,
}

impl Bar {
    /// A bar for `total` bytes of work (shown only on a terminal).
    pub fn new(label: &'static str, total: u64) -> Self {
        Self::with_passes(label, total, 1)
    }

    /// A bar for work that reads a file of `len` bytes `passes` times, shown as the
    /// file's size.
    pub fn with_passes(label: &'static str, len: u64, passes: u64) -> Self {
        let total = len * passes;
        Self {
            passes: passes.max(1),
            label,
            total,
            done: AtomicU64::new(0),
            started: Instant::now(),
            drawn: Mutex::new(None),
            enabled: total >= MIN_BYTES && std::io::stderr().is_terminal(),
        }
    }

    /// `n` more bytes done.
    pub fn add(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        if !self.enabled {
            return;
        }
        let Ok(mut drawn) = self.drawn.lock() else {
            return;
        };
        if drawn.is_some_and(|at| at.elapsed() < REDRAW) {
            return;
        }
        *drawn = Some(Instant::now());
        let line = render(
            self.label,
            done / self.passes,
            self.total / self.passes,
            self.started.elapsed(),
        );
        let _ = write!(std::io::stderr(), "\r{line}");
    }

    /// Ends the line (if one was drawn).
    pub fn finish(&self) {
        if self.enabled && self.drawn.lock().is_ok_and(|d| d.is_some()) {
            let line = render(
                self.label,
                self.done.load(Ordering::Relaxed) / self.passes,
                self.total / self.passes,
                self.started.elapsed(),
            );
            let _ = writeln!(std::io::stderr(), "\r{line}");
        }
    }
}

/// `put   42%  42.0/100.0 MiB  85.3 MiB/s`
fn render(label: &str, done: u64, total: u64, elapsed: Duration) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    let done = done.min(total);
    let percent = (done * 100).checked_div(total).unwrap_or(100);
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        done as f64 / MIB / secs
    } else {
        0.0
    };
    format!(
        "{label:<4} {percent:>3}% {:>7.1}/{:.1} MiB {rate:>7.1} MiB/s",
        done as f64 / MIB,
        total as f64 / MIB
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_percent_sizes_and_rate() {
        let line = render("get", 50 << 20, 100 << 20, Duration::from_secs(2));
        assert_eq!(line, "get   50%    50.0/100.0 MiB    25.0 MiB/s");
        assert!(render("put", 5, 0, Duration::ZERO).contains("100%"));
        assert!(render("put", 200, 100, Duration::from_secs(1)).contains("100%"));
    }
}
