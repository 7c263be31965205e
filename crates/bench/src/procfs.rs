//! CPU time and memory of a process, from Linux `/proc` (no unsafe code, no libc).

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;

/// Clock ticks per second of `/proc/<pid>/stat` times: `getconf CLK_TCK`, 100 when that fails
/// (the value on every mainstream Linux).
pub fn clock_ticks_per_sec() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<u64>().ok())
            .filter(|t| *t > 0)
            .unwrap_or(100)
    })
}

/// User and system CPU time a process has used so far (all its threads).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CpuTimes {
    pub user_ticks: u64,
    pub system_ticks: u64,
}

impl CpuTimes {
    pub fn total(&self) -> Duration {
        ticks(self.user_ticks + self.system_ticks)
    }

    /// What was used between `earlier` and `self`.
    pub fn since(&self, earlier: &CpuTimes) -> CpuTimes {
        CpuTimes {
            user_ticks: self.user_ticks.saturating_sub(earlier.user_ticks),
            system_ticks: self.system_ticks.saturating_sub(earlier.system_ticks),
        }
    }

    pub fn user(&self) -> Duration {
        ticks(self.user_ticks)
    }

    pub fn system(&self) -> Duration {
        ticks(self.system_ticks)
    }
}

fn ticks(n: u64) -> Duration {
    let per_sec = clock_ticks_per_sec();
    Duration::from_micros(n.saturating_mul(1_000_000) / per_sec)
}

/// `utime` and `stime` (fields 14 and 15) of `/proc/<pid>/stat`.
pub fn cpu_times(pid: u32) -> anyhow::Result<CpuTimes> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    parse_stat(&stat).with_context(|| format!("unexpected {path}: {stat}"))
}

fn parse_stat(stat: &str) -> anyhow::Result<CpuTimes> {
    // The command name (field 2) is in parentheses and may contain spaces: count from the last `)`.
    let after = stat.rfind(')').map(|i| &stat[i + 1..]).context("no `)`")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // fields[0] is field 3 (state); utime is field 14, stime field 15.
    let field = |n: usize| -> anyhow::Result<u64> {
        let s = fields.get(n - 3).context("too few fields")?;
        Ok(s.parse()?)
    };
    Ok(CpuTimes {
        user_ticks: field(14)?,
        system_ticks: field(15)?,
    })
}

/// CPU time per thread name (`/proc/<pid>/task/*/comm`, threads of one name added up): where
/// the time goes, e.g. the async workers (`tokio-runtime-w`) against the SQLite thread
/// (`xdm-sqlite`). Threads that ended are not counted.
pub fn thread_cpu_times(pid: u32) -> BTreeMap<String, CpuTimes> {
    by_thread_name(pid, "stat", |total: &mut CpuTimes, stat| {
        if let Ok(t) = parse_stat(stat) {
            total.user_ticks += t.user_ticks;
            total.system_ticks += t.system_ticks;
        }
    })
}

/// Reads `/proc/<pid>/task/<tid>/<file>` of every thread and folds it into one total per thread
/// name (`comm`) with `add`. Threads that ended meanwhile are skipped.
fn by_thread_name<T: Default>(
    pid: u32,
    file: &str,
    mut add: impl FnMut(&mut T, &str),
) -> BTreeMap<String, T> {
    let mut by_name: BTreeMap<String, T> = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return by_name;
    };
    for task in tasks.flatten() {
        let dir = task.path();
        let (Ok(comm), Ok(content)) = (
            std::fs::read_to_string(dir.join("comm")),
            std::fs::read_to_string(dir.join(file)),
        ) else {
            continue;
        };
        add(by_name.entry(comm.trim().to_owned()).or_default(), &content);
    }
    by_name
}

/// Scheduler statistics of a thread (`/proc/<pid>/task/<tid>/schedstat`), threads of one name
/// added up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SchedStat {
    /// Time spent running on a CPU.
    pub run_ns: u64,
    /// Time spent runnable but waiting for a CPU (including the wake-up latency of an idle
    /// virtual CPU).
    pub wait_ns: u64,
    /// Times the thread was scheduled in.
    pub slices: u64,
}

impl std::ops::AddAssign for SchedStat {
    fn add_assign(&mut self, other: SchedStat) {
        self.run_ns += other.run_ns;
        self.wait_ns += other.wait_ns;
        self.slices += other.slices;
    }
}

impl SchedStat {
    pub fn since(&self, earlier: &SchedStat) -> SchedStat {
        SchedStat {
            run_ns: self.run_ns.saturating_sub(earlier.run_ns),
            wait_ns: self.wait_ns.saturating_sub(earlier.wait_ns),
            slices: self.slices.saturating_sub(earlier.slices),
        }
    }
}

/// `schedstat` per thread name of process `pid` (empty when the kernel does not provide it).
pub fn thread_schedstats(pid: u32) -> BTreeMap<String, SchedStat> {
    by_thread_name(pid, "schedstat", |total: &mut SchedStat, stat| {
        let v: Vec<u64> = stat
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if let [run_ns, wait_ns, slices] = v[..] {
            *total += SchedStat {
                run_ns,
                wait_ns,
                slices,
            };
        }
    })
}

/// The whole machine's CPU time so far (first line of `/proc/stat`), in clock ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SystemCpu {
    /// user + nice + system + irq + softirq + steal.
    pub busy_ticks: u64,
    /// Time the hypervisor gave to other guests while this one wanted to run.
    pub steal_ticks: u64,
}

impl SystemCpu {
    pub fn since(&self, earlier: &SystemCpu) -> SystemCpu {
        SystemCpu {
            busy_ticks: self.busy_ticks.saturating_sub(earlier.busy_ticks),
            steal_ticks: self.steal_ticks.saturating_sub(earlier.steal_ticks),
        }
    }

    pub fn busy(&self) -> Duration {
        ticks(self.busy_ticks)
    }

    pub fn steal(&self) -> Duration {
        ticks(self.steal_ticks)
    }
}

pub fn system_cpu() -> anyhow::Result<SystemCpu> {
    let stat = std::fs::read_to_string("/proc/stat").context("cannot read /proc/stat")?;
    parse_system_stat(&stat).context("unexpected /proc/stat")
}

fn parse_system_stat(stat: &str) -> anyhow::Result<SystemCpu> {
    let line = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .context("no cpu line")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice: already in user/nice]
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    Ok(SystemCpu {
        busy_ticks: at(0) + at(1) + at(2) + at(5) + at(6) + at(7),
        steal_ticks: at(7),
    })
}

/// Resident memory of a process, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss_bytes: u64,
    /// `VmHWM`: the peak resident size since the process started.
    pub peak_rss_bytes: u64,
}

pub fn memory(pid: u32) -> anyhow::Result<Memory> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    parse_status(&status).with_context(|| format!("unexpected {path}"))
}

fn parse_status(status: &str) -> anyhow::Result<Memory> {
    let kib = |key: &str| -> anyhow::Result<u64> {
        for line in status.lines() {
            if let Some(rest) = line.strip_prefix(key) {
                let n = rest
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .with_context(|| format!("{key} {rest}"))?;
                return Ok(n * 1024);
            }
        }
        bail!("no {key}")
    };
    Ok(Memory {
        rss_bytes: kib("VmRSS:")?,
        peak_rss_bytes: kib("VmHWM:")?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_spaces_in_the_name() {
        let stat = "4242 (xdm connect) S 1 4242 4242 0 -1 4194560 1000 0 0 0 1234 567 0 0 20 0 9 0 100 0 0";
        let t = parse_stat(stat).unwrap();
        assert_eq!(t.user_ticks, 1234);
        assert_eq!(t.system_ticks, 567);
    }

    #[test]
    fn parses_system_stat() {
        let stat = "cpu  100 5 50 1000 20 3 2 7 0 0\ncpu0 50 2 25 500 10 1 1 3 0 0\n";
        let s = parse_system_stat(stat).unwrap();
        assert_eq!(s.busy_ticks, 100 + 5 + 50 + 3 + 2 + 7);
        assert_eq!(s.steal_ticks, 7);
    }

    #[test]
    fn parses_status() {
        let status = "Name:\txdm-connect\nVmHWM:\t   23456 kB\nVmRSS:\t   12345 kB\n";
        let m = parse_status(status).unwrap();
        assert_eq!(m.rss_bytes, 12345 * 1024);
        assert_eq!(m.peak_rss_bytes, 23456 * 1024);
    }

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        assert!(memory(pid).unwrap().peak_rss_bytes > 0);
        cpu_times(pid).unwrap();
        assert!(!thread_cpu_times(pid).is_empty());
        system_cpu().unwrap();
        let _ = thread_schedstats(pid);
        assert!(clock_ticks_per_sec() > 0);
    }
}
