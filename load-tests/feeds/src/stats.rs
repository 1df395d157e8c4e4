//! Numbers: a lock-free latency histogram, and a process's memory and CPU from `/proc`.

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;

/// Sub-buckets per power of two: values are kept within 1/64 (1.6 %).
const SUB: u64 = 64;
/// Powers of two covered (microseconds up to 2^40, about 12 days).
const OCTAVES: u64 = 40;

/// A histogram of microsecond values that many tasks record into at once.
pub struct Histogram {
    buckets: Vec<AtomicU64>,
    max: AtomicU64,
    count: AtomicU64,
    sum: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            buckets: (0..SUB * (OCTAVES + 1))
                .map(|_| AtomicU64::new(0))
                .collect(),
            max: AtomicU64::new(0),
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
        }
    }
}

fn bucket_of(v: u64) -> u64 {
    if v < SUB {
        return v;
    }
    // v >> octave is in [64, 128).
    let octave = 63 - u64::from(v.leading_zeros()) - 6;
    ((octave + 1) * SUB + (v >> octave) - SUB).min(SUB * (OCTAVES + 1) - 1)
}

fn lowest_of(bucket: u64) -> u64 {
    if bucket < SUB {
        return bucket;
    }
    let octave = bucket / SUB - 1;
    (bucket % SUB + SUB) << octave
}

impl Histogram {
    /// Records one value (microseconds).
    pub fn record(&self, micros: u64) {
        let b = bucket_of(micros) as usize;
        self.buckets[b].fetch_add(1, Ordering::Relaxed);
        self.max.fetch_max(micros, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(micros, Ordering::Relaxed);
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The largest value (exact).
    pub fn max(&self) -> u64 {
        self.max.load(Ordering::Relaxed)
    }

    /// The mean.
    pub fn mean(&self) -> f64 {
        let n = self.count();
        if n == 0 {
            0.0
        } else {
            self.sum.load(Ordering::Relaxed) as f64 / n as f64
        }
    }

    /// The value at quantile `q` (0..=1), to within 1.6 % (the bucket's middle).
    pub fn quantile(&self, q: f64) -> u64 {
        let n = self.count();
        if n == 0 {
            return 0;
        }
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0;
        for (b, counter) in self.buckets.iter().enumerate() {
            seen += counter.load(Ordering::Relaxed);
            if seen >= rank {
                let low = lowest_of(b as u64);
                let high = lowest_of(b as u64 + 1);
                return ((low + high) / 2).min(self.max());
            }
        }
        self.max()
    }
}

/// A process's memory, from `/proc/<pid>/status` (KiB).
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Memory {
    /// Resident set size.
    pub rss_kib: u64,
    /// Of which anonymous (heap, stacks).
    pub anon_kib: u64,
}

/// Reads VmRSS and RssAnon of `pid`.
///
/// # Errors
/// If the process is gone or the file does not parse.
pub fn memory(pid: u32) -> anyhow::Result<Memory> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .with_context(|| format!("{name} in {path}"))
    };
    Ok(Memory {
        rss_kib: field("VmRSS:")?,
        anon_kib: field("RssAnon:").unwrap_or(0),
    })
}

/// CPU seconds (user + system) of a process.
pub struct CpuClock {
    ticks_per_second: f64,
}

impl CpuClock {
    /// Asks `getconf CLK_TCK`, falling back to 100.
    pub fn detect() -> Self {
        let ticks = Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|t| t.trim().parse::<f64>().ok())
            .filter(|&t| t > 0.0)
            .unwrap_or(100.0);
        Self {
            ticks_per_second: ticks,
        }
    }

    /// CPU seconds used so far by `pid` (`None`: this process).
    pub fn seconds(&self, pid: Option<u32>) -> Option<f64> {
        let path = match pid {
            Some(pid) => format!("/proc/{pid}/stat"),
            None => "/proc/self/stat".to_string(),
        };
        let text = std::fs::read_to_string(path).ok()?;
        // Fields after the command name (which may hold spaces) in parentheses.
        let rest = &text[text.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        Some((utime + stime) as f64 / self.ticks_per_second)
    }
}

impl CpuClock {
    /// CPU seconds the whole machine spent working so far (user, nice, system, irq,
    /// softirq from the first line of `/proc/stat`).
    pub fn machine_busy(&self) -> Option<f64> {
        let text = std::fs::read_to_string("/proc/stat").ok()?;
        let line = text.lines().find(|l| l.starts_with("cpu "))?;
        let f: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|v| v.parse().ok())
            .collect();
        let busy = f.first()? + f.get(1)? + f.get(2)? + f.get(5)? + f.get(6)?;
        Some(busy as f64 / self.ticks_per_second)
    }
}

/// CPU use over a window: the server's, this generator's, and everything else's.
pub struct CpuWindow {
    clock: CpuClock,
    pid: Option<u32>,
    start: std::time::Instant,
    server: Option<f64>,
    this: Option<f64>,
    machine: Option<f64>,
}

/// CPU use over a window, in cores (1.0 = one core busy all the time).
#[derive(Clone, Copy, Debug)]
pub struct CpuUse {
    /// Wall-clock seconds.
    pub seconds: f64,
    /// The server process.
    pub server: Option<f64>,
    /// This generator.
    pub generator: Option<f64>,
    /// Every other process on the machine (noise).
    pub others: Option<f64>,
}

impl CpuWindow {
    /// Starts a window.
    pub fn start(pid: Option<u32>) -> Self {
        let clock = CpuClock::detect();
        Self {
            server: pid.and_then(|p| clock.seconds(Some(p))),
            this: clock.seconds(None),
            machine: clock.machine_busy(),
            start: std::time::Instant::now(),
            pid,
            clock,
        }
    }

    /// Ends it.
    pub fn end(&self) -> CpuUse {
        let seconds = self.start.elapsed().as_secs_f64().max(1e-9);
        let delta = |now: Option<f64>, then: Option<f64>| now.zip(then).map(|(b, a)| b - a);
        let server = delta(
            self.pid.and_then(|p| self.clock.seconds(Some(p))),
            self.server,
        );
        let generator = delta(self.clock.seconds(None), self.this);
        let machine = delta(self.clock.machine_busy(), self.machine);
        let others =
            machine.map(|m| (m - server.unwrap_or(0.0) - generator.unwrap_or(0.0)).max(0.0));
        CpuUse {
            seconds,
            server: server.map(|s| s / seconds),
            generator: generator.map(|s| s / seconds),
            others: others.map(|s| s / seconds),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_close() {
        let h = Histogram::default();
        for v in 1..=100_000u64 {
            h.record(v);
        }
        for (q, want) in [(0.5, 50_000.0), (0.99, 99_000.0), (0.999, 99_900.0)] {
            let got = h.quantile(q) as f64;
            assert!((got - want).abs() / want < 0.02, "q{q}: {got} vs {want}");
        }
        assert_eq!(h.max(), 100_000);
        assert_eq!(h.quantile(0.0001), 10);
        for v in [0, 1, 63, 64, 65, 127, 128, 1000, 123_456_789] {
            let b = bucket_of(v);
            assert!(lowest_of(b) <= v && v < lowest_of(b + 1), "{v}");
        }
    }

    #[test]
    fn reads_own_memory() {
        let m = memory(std::process::id()).expect("status");
        assert!(m.rss_kib > 0);
        assert!(CpuClock::detect().seconds(None).is_some());
    }
}
