//! Measuring the bridge over a window: snapshots of CPU (the bridge's from `/proc/<pid>/stat`, per
//! thread, its scheduling; this process's — the sandbox and the load generator — from
//! `/proc/self/stat`, apart; the machine's), of the bridge's allocation counters (its admin
//! `/metrics`) and of the platform calls ([`Mark`]), the bridge's RSS sampled meanwhile
//! ([`RssSampler`]), and the report fields two marks give ([`Window`]).
//! When the bridge runs in this process (the smoke test), the two CPU figures are one and the same.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use xdm_sandbox::SandboxHandle;

use crate::allocations::Reading;
use crate::calls::Calls;
use crate::latency::LatencySummary;
use crate::options::{LoadOptions, Scenario, Target};
use crate::procfs::{self, CpuTimes, Memory, SchedStat, SystemCpu};
use crate::report::{
    AllocationUse, CallUse, CpuUse, IdleUse, MachineUse, MemoryUse, ScenarioReport, ThreadSched,
};
use crate::tracker::{Phase, Tracker};

/// A point in time: CPU and allocations of the bridge, CPU of this process, and the platform
/// calls.
#[derive(Debug, Clone)]
pub(crate) struct Mark {
    pub(crate) at: Instant,
    bridge: CpuTimes,
    bridge_allocations: Reading,
    bridge_threads: BTreeMap<String, CpuTimes>,
    bridge_sched: BTreeMap<String, SchedStat>,
    bench: CpuTimes,
    /// The bridge is this process: `bridge` and `bench` are the same times.
    in_process: bool,
    system: SystemCpu,
    pub(crate) calls: Calls,
}

impl Mark {
    pub(crate) async fn now(sandbox: &SandboxHandle, target: &Target) -> anyhow::Result<Self> {
        // First, so that the procfs readings below are taken as close together as possible (a
        // loopback round trip; the render's own allocations fall into the window that starts
        // here and out of the one that ends here).
        let bridge_allocations = Reading::of(target.admin.as_ref()).await;
        Ok(Self {
            at: Instant::now(),
            bridge_allocations,
            bridge: procfs::cpu_times(target.pid)?,
            bridge_threads: procfs::thread_cpu_times(target.pid),
            bridge_sched: procfs::thread_schedstats(target.pid),
            bench: procfs::cpu_times(std::process::id())?,
            in_process: target.pid == std::process::id(),
            system: procfs::system_cpu()?,
            calls: Calls::snapshot(sandbox),
        })
    }

    /// The bridge's CPU between `earlier` and `self`, for `messages` messages.
    pub(crate) fn bridge_cpu_since(&self, earlier: &Mark, messages: u64) -> CpuUse {
        CpuUse::of(
            self.bridge.since(&earlier.bridge),
            self.at.saturating_duration_since(earlier.at),
            messages,
        )
    }

    /// The bridge's allocations between `earlier` and `self`, for `messages` messages.
    pub(crate) fn bridge_allocations_since(&self, earlier: &Mark, messages: u64) -> AllocationUse {
        AllocationUse::of(
            &earlier.bridge_allocations,
            &self.bridge_allocations,
            messages,
        )
    }

    /// This process's CPU between `earlier` and `self`, for `messages` messages.
    fn bench_cpu_since(&self, earlier: &Mark, messages: u64) -> CpuUse {
        CpuUse::of(
            self.bench.since(&earlier.bench),
            self.at.saturating_duration_since(earlier.at),
            messages,
        )
    }

    /// The platform calls between `earlier` and `self`, for `messages` messages.
    pub(crate) fn calls_since(&self, earlier: &Mark, messages: u64) -> CallUse {
        CallUse::of(self.calls.since(&earlier.calls), messages)
    }

    /// The whole machine between `earlier` and `self`.
    fn machine_since(&self, earlier: &Mark) -> MachineUse {
        let wall = self.at.saturating_duration_since(earlier.at).as_secs_f64();
        if wall <= 0.0 {
            return MachineUse::default();
        }
        let system = self.system.since(&earlier.system);
        let busy = system.busy().as_secs_f64();
        let bench = self.bench.since(&earlier.bench).total().as_secs_f64();
        let ours = if self.in_process {
            bench
        } else {
            self.bridge.since(&earlier.bridge).total().as_secs_f64() + bench
        };
        MachineUse {
            busy_cores: busy / wall,
            other_cores: (busy - ours).max(0.0) / wall,
            steal_cores: system.steal().as_secs_f64() / wall,
        }
    }

    /// The bridge's CPU and wake-ups between `earlier` and `self`, summed over its threads' scheduler
    /// statistics (threads that ended meanwhile are not counted).
    pub(crate) fn bridge_idle_since(&self, earlier: &Mark) -> IdleUse {
        let wall = self.at.saturating_duration_since(earlier.at).as_secs_f64();
        let mut total = SchedStat::default();
        for (name, s) in &self.bridge_sched {
            total += s.since(&earlier.bridge_sched.get(name).copied().unwrap_or_default());
        }
        let SchedStat { run_ns, slices, .. } = total;
        if wall <= 0.0 {
            return IdleUse {
                cpu_ms_per_s: 0.0,
                percent_of_core: 0.0,
                wakeups_per_s: 0.0,
            };
        }
        #[allow(clippy::cast_precision_loss)]
        let cpu_s_per_s = run_ns as f64 / 1e9 / wall;
        #[allow(clippy::cast_precision_loss)]
        IdleUse {
            cpu_ms_per_s: cpu_s_per_s * 1e3,
            percent_of_core: cpu_s_per_s * 100.0,
            wakeups_per_s: slices as f64 / wall,
        }
    }

    /// CPU seconds per bridge thread name between `earlier` and `self` (names under 1 % of the
    /// total left out).
    fn threads_since(&self, earlier: &Mark) -> BTreeMap<String, f64> {
        let used: Vec<(String, f64)> = self
            .bridge_threads
            .iter()
            .map(|(name, t)| {
                let before = earlier
                    .bridge_threads
                    .get(name)
                    .copied()
                    .unwrap_or_default();
                (name.clone(), t.since(&before).total().as_secs_f64())
            })
            .collect();
        let total: f64 = used.iter().map(|(_, s)| s).sum();
        used.into_iter()
            .filter(|(_, s)| *s > 0.0 && *s >= total * 0.01)
            .collect()
    }

    /// Scheduling of each bridge thread name between `earlier` and `self`.
    fn sched_since(&self, earlier: &Mark) -> BTreeMap<String, ThreadSched> {
        let wall = self.at.saturating_duration_since(earlier.at).as_secs_f64();
        self.bridge_sched
            .iter()
            .filter_map(|(name, s)| {
                let before = earlier.bridge_sched.get(name).copied().unwrap_or_default();
                let d = s.since(&before);
                (d.slices > 0 && wall > 0.0).then(|| {
                    #[allow(clippy::cast_precision_loss)]
                    let sched = ThreadSched {
                        running: d.run_ns as f64 / 1e9 / wall,
                        waiting_for_cpu: d.wait_ns as f64 / 1e9 / wall,
                        wakeups_per_s: d.slices as f64 / wall,
                        wait_per_wakeup_us: d.wait_ns as f64 / 1e3 / d.slices as f64,
                    };
                    (name.clone(), sched)
                })
            })
            .collect()
    }
}

/// Samples the bridge's RSS every 100 ms; `stop` returns the largest sample.
#[derive(Debug)]
pub(crate) struct RssSampler {
    max: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl RssSampler {
    pub(crate) fn start(pid: u32) -> Self {
        let max = Arc::new(AtomicU64::new(0));
        let m = Arc::clone(&max);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tick.tick().await;
                if let Ok(mem) = procfs::memory(pid) {
                    m.fetch_max(mem.rss_bytes, Ordering::Relaxed);
                }
            }
        });
        Self { max, task }
    }

    pub(crate) fn stop(self) -> u64 {
        self.task.abort();
        self.max.load(Ordering::Relaxed)
    }
}

/// The report fields every scenario fills the same way: `messages` measured between `from` and
/// `to`.
pub(crate) struct Window<'a> {
    pub(crate) scenario: Scenario,
    pub(crate) opts: &'a LoadOptions,
    pub(crate) target: &'a Target,
    pub(crate) from: &'a Mark,
    pub(crate) to: &'a Mark,
    pub(crate) messages: u64,
    /// The largest RSS the [`RssSampler`] saw.
    pub(crate) sampled_rss: u64,
}

impl Window<'_> {
    /// The report, with `latency` of `latency_kind` and the throughput of `throughput_messages`
    /// over `window`; the fields only some scenarios fill are left empty.
    pub(crate) fn report(
        self,
        latency_kind: &'static str,
        latency: LatencySummary,
        window: Duration,
        throughput_messages: u64,
        tracker: &Tracker,
    ) -> anyhow::Result<ScenarioReport> {
        Ok(ScenarioReport {
            scenario: self.scenario,
            customers: self.opts.customers,
            concurrency: self.opts.concurrency,
            rate: self.opts.rate,
            messages: self.messages,
            ack_errors: 0,
            window_s: window.as_secs_f64(),
            throughput_per_s: per_second(throughput_messages, window),
            latency_kind,
            latency,
            ack_latency: None,
            exactness: None,
            chats: None,
            new_chat_calls: None,
            drain_s: None,
            bridge_in_process: self.to.in_process,
            bridge_cpu: self.to.bridge_cpu_since(self.from, self.messages),
            bridge_cpu_with_delivery: None,
            bridge_allocations: self.to.bridge_allocations_since(self.from, self.messages),
            bridge_threads: self.to.threads_since(self.from),
            bridge_sched: self.to.sched_since(self.from),
            bridge_memory: memory_use(self.target, self.sampled_rss)?,
            bench_cpu: self.to.bench_cpu_since(self.from, self.messages),
            machine: self.to.machine_since(self.from),
            calls: self.to.calls_since(self.from, self.messages),
            lagged_events: tracker.lagged(),
            idle: None,
            notes: Vec::new(),
        })
    }
}

/// Bridge memory now plus the sampled maximum.
pub(crate) fn memory_use(target: &Target, sampled_max: u64) -> anyhow::Result<MemoryUse> {
    let Memory {
        rss_bytes,
        peak_rss_bytes,
    } = procfs::memory(target.pid)?;
    Ok(MemoryUse {
        peak_rss_bytes,
        max_sampled_rss_bytes: sampled_max.max(rss_bytes),
        rss_bytes,
    })
}

/// The window of an end-to-end scenario: from the first measured message sent to the last one
/// arrived (the marks when there is none).
pub(crate) fn e2e_window(tracker: &Tracker, from: &Mark, to: &Mark) -> Duration {
    let first = tracker.first_sent(Phase::Measured).unwrap_or(from.at);
    let last = tracker.last_arrival(Phase::Measured).unwrap_or(to.at);
    last.saturating_duration_since(first)
}

#[allow(clippy::cast_precision_loss)]
fn per_second(n: u64, d: Duration) -> f64 {
    if d.is_zero() {
        0.0
    } else {
        n as f64 / d.as_secs_f64()
    }
}
