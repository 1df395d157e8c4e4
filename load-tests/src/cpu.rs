//! CPU time a process has used, from `/proc/<pid>/stat`, and the whole machine's, from
//! `/proc/stat` (Linux only).
//!
//! Fields 14 and 15 of a process's stat file are the user and system time of all its
//! threads, in clock ticks. The tick rate is `sysconf(_SC_CLK_TCK)`; without libc (and
//! with `unsafe` denied outside the two audited kernels of swamp-formats) we ask
//! `getconf CLK_TCK` once, and fall back to 100, the value on every mainstream Linux
//! architecture.

use std::path::PathBuf;
use std::process::Command;

use anyhow::Context;

/// Converts clock ticks to seconds.
#[derive(Clone, Copy, Debug)]
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
            .filter(|out| out.status.success())
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse::<f64>().ok())
            .filter(|&t| t > 0.0)
            .unwrap_or(100.0);
        Self {
            ticks_per_second: ticks,
        }
    }

    /// User plus system CPU seconds used so far by `process`.
    ///
    /// # Errors
    /// If the stat file cannot be read (the process is gone) or does not parse.
    pub fn seconds(&self, process: &Process) -> anyhow::Result<f64> {
        let text = std::fs::read_to_string(&process.stat)
            .with_context(|| format!("reading {}", process.stat.display()))?;
        let ticks = parse_stat_ticks(&text)
            .with_context(|| format!("parsing {}", process.stat.display()))?;
        Ok(ticks as f64 / self.ticks_per_second)
    }
}

/// The whole machine's CPU time so far.
#[derive(Clone, Copy, Debug, Default)]
pub struct MachineSeconds {
    /// Time any CPU spent working: user, nice, system, irq and softirq (not idle, iowait
    /// or steal).
    pub busy: f64,
    /// Time the hypervisor gave our virtual CPUs to someone else.
    pub steal: f64,
}

impl CpuClock {
    /// The machine's CPU time so far, from the first line of `/proc/stat`.
    ///
    /// # Errors
    /// If `/proc/stat` cannot be read or does not parse.
    pub fn machine(&self) -> anyhow::Result<MachineSeconds> {
        let text = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
        let (busy, steal) = parse_machine_ticks(&text).context("parsing /proc/stat")?;
        Ok(MachineSeconds {
            busy: busy as f64 / self.ticks_per_second,
            steal: steal as f64 / self.ticks_per_second,
        })
    }
}

/// (busy, steal) ticks from the `cpu` line: user nice system idle iowait irq softirq
/// steal ... (guest time is already inside user).
fn parse_machine_ticks(text: &str) -> anyhow::Result<(u64, u64)> {
    let line = text
        .lines()
        .find(|l| l.starts_with("cpu "))
        .context("no 'cpu' line")?;
    let fields = line
        .split_whitespace()
        .skip(1)
        .map(str::parse::<u64>)
        .collect::<Result<Vec<_>, _>>()
        .context("a field is not a number")?;
    anyhow::ensure!(
        fields.len() >= 8,
        "the 'cpu' line has {} fields, expected 8 or more",
        fields.len()
    );
    let busy = fields[0] + fields[1] + fields[2] + fields[5] + fields[6];
    Ok((busy, fields[7]))
}

/// A process whose CPU time we sample.
#[derive(Clone, Debug)]
pub struct Process {
    stat: PathBuf,
}

impl Process {
    /// Another process, by PID.
    pub fn pid(pid: u32) -> Self {
        Self {
            stat: PathBuf::from(format!("/proc/{pid}/stat")),
        }
    }

    /// This process (the load generator itself).
    pub fn current() -> Self {
        Self {
            stat: PathBuf::from("/proc/self/stat"),
        }
    }
}

/// utime + stime from the text of a stat file. The second field, the command name, is in
/// parentheses and may itself hold spaces or parentheses, so fields are counted from the
/// last `)`: after it come field 3 (state), ..., 14 (utime), 15 (stime).
fn parse_stat_ticks(text: &str) -> anyhow::Result<u64> {
    let (_, rest) = text
        .rsplit_once(')')
        .context("no ')' after the command name")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> anyhow::Result<u64> {
        let text = fields
            .get(n - 3)
            .with_context(|| format!("field {n} is missing"))?;
        text.parse()
            .with_context(|| format!("field {n} ({text:?}) is not a number"))
    };
    Ok(field(14)? + field(15)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_utime_and_stime_past_a_tricky_command_name() {
        let text = "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0 1 2 3\n";
        assert_eq!(parse_stat_ticks(text).expect("parses"), 325);
        assert!(parse_stat_ticks("4242 (x) S 1").is_err());
    }

    #[test]
    fn machine_ticks() {
        let text = "cpu  100 1 20 5000 7 2 3 40 0 0\ncpu0 50 0 10 2500 3 1 1 20 0 0\n";
        assert_eq!(parse_machine_ticks(text).expect("parses"), (126, 40));
        assert!(parse_machine_ticks("cpu  1 2 3\n").is_err());
    }

    #[test]
    fn reads_our_own_cpu_time() {
        let clock = CpuClock::detect();
        assert!(
            clock
                .seconds(&Process::current())
                .expect("our own stat file")
                >= 0.0
        );
    }
}
