//! The report of one scenario run ([`ScenarioReport`]): what was measured — latency, throughput,
//! arrival, the bridge's CPU, threads, scheduling, heap allocations and memory, this process's
//! CPU (the sandbox and the load generator) apart from the bridge's, the machine, the platform
//! calls and SNS notifications — summarised per message; `render` prints it.

mod render;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

pub use render::{markdown, render};

use crate::allocations::Reading;
use crate::calls::Calls;
use crate::latency::LatencySummary;
use crate::options::Scenario;
use crate::procfs::CpuTimes;
use crate::tracker::Exactness;

/// CPU used by a process over a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct CpuUse {
    pub user_s: f64,
    pub system_s: f64,
    /// (user + system) ÷ messages.
    pub per_message_us: f64,
    /// (user + system) ÷ wall time: 1.0 = one core busy.
    pub cores: f64,
}

impl CpuUse {
    /// `cpu` used over `wall` for `messages` messages.
    #[allow(clippy::cast_precision_loss)]
    pub fn of(cpu: CpuTimes, wall: Duration, messages: u64) -> Self {
        let total = cpu.total().as_secs_f64();
        Self {
            user_s: cpu.user().as_secs_f64(),
            system_s: cpu.system().as_secs_f64(),
            per_message_us: if messages == 0 {
                0.0
            } else {
                total * 1e6 / messages as f64
            },
            cores: if wall.is_zero() {
                0.0
            } else {
                total / wall.as_secs_f64()
            },
        }
    }
}

/// The bridge's heap allocations over a window, per message; or, for a bridge built without
/// `--features count-allocations` (or whose `/metrics` could not be read), why not: in JSON an
/// object, or the string `"n/a (…)"`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum AllocationUse {
    Counted {
        /// `alloc`, `alloc_zeroed` and `realloc` calls over the window.
        allocations: u64,
        /// Bytes they asked for (a `realloc` counts what it grows by).
        bytes: u64,
        per_message: f64,
        bytes_per_message: f64,
    },
    NotAvailable(String),
}

impl AllocationUse {
    /// From the readings at the start and the end of a window, for `messages` messages.
    pub fn of(from: &Reading, to: &Reading, messages: u64) -> Self {
        match (from, to) {
            (Reading::Counted(a), Reading::Counted(b)) => {
                let allocations = b.allocations.saturating_sub(a.allocations);
                let bytes = b.bytes.saturating_sub(a.bytes);
                Self::Counted {
                    allocations,
                    bytes,
                    per_message: ratio(allocations, messages),
                    bytes_per_message: ratio(bytes, messages),
                }
            }
            (Reading::NotAvailable(why), _) | (_, Reading::NotAvailable(why)) => {
                Self::NotAvailable(why.clone())
            }
        }
    }
}

/// Memory of the bridge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct MemoryUse {
    /// `VmHWM` at the end: the peak since the process started (start-up and earlier phases included).
    pub peak_rss_bytes: u64,
    /// The largest `VmRSS` sampled every 100 ms during the measured window.
    pub max_sampled_rss_bytes: u64,
    /// `VmRSS` at the end.
    pub rss_bytes: u64,
}

/// The whole machine over the measured window, in cores (1.0 = one CPU busy all the time).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct MachineUse {
    pub busy_cores: f64,
    /// Busy time not used by the bridge nor by this process: other processes (and the kernel's
    /// work for nobody in particular). Large values mean the numbers are disturbed.
    pub other_cores: f64,
    /// CPU time the hypervisor withheld.
    pub steal_cores: f64,
}

/// How one bridge thread name was scheduled over the measured window (`schedstat`), in threads
/// (1.0 = one thread all the time).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ThreadSched {
    pub running: f64,
    /// Runnable but not running: waiting for a CPU, or for an idle virtual CPU to wake up.
    pub waiting_for_cpu: f64,
    pub wakeups_per_s: f64,
    /// Average wait from becoming runnable to running.
    pub wait_per_wakeup_us: f64,
}

/// Calls to the platforms, and SNS notifications to the bridge, over the measured window.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CallUse {
    pub calls: Calls,
    pub connect_per_message: f64,
    pub x_per_message: f64,
    /// Per operation, ÷ messages.
    pub connect_ops_per_message: BTreeMap<String, f64>,
    pub x_ops_per_message: BTreeMap<String, f64>,
    /// SNS notifications POSTed to the bridge ÷ messages.
    pub sns_per_message: f64,
}

impl CallUse {
    /// `calls` made for `messages` messages.
    pub fn of(calls: Calls, messages: u64) -> Self {
        let per_op = |ops: &BTreeMap<String, u64>| {
            ops.iter()
                .map(|(op, n)| (op.clone(), ratio(*n, messages)))
                .collect()
        };
        Self {
            connect_per_message: ratio(calls.connect_total(), messages),
            x_per_message: ratio(calls.x_total(), messages),
            connect_ops_per_message: per_op(&calls.connect),
            x_ops_per_message: per_op(&calls.x),
            sns_per_message: ratio(calls.sns_notifications, messages),
            calls,
        }
    }
}

#[allow(clippy::cast_precision_loss)]
fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// The result of one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    pub scenario: Scenario,
    pub customers: usize,
    pub concurrency: usize,
    /// Requested rate; `None` = as fast as possible.
    pub rate: Option<f64>,
    /// Measured messages sent (and acknowledged 200, for webhook deliveries).
    pub messages: u64,
    /// Webhook POSTs answered otherwise than 200 (or not at all).
    pub ack_errors: u64,
    /// Length of the measured window in seconds: the sending phase (acks, connect-down), or from
    /// the first message sent to the last one arrived (end-to-end).
    pub window_s: f64,
    /// Messages per second over the window (acknowledged, or arrived).
    pub throughput_per_s: f64,
    /// `webhook ack` or `end-to-end`.
    pub latency_kind: &'static str,
    pub latency: LatencySummary,
    /// Webhook acknowledgement latency of inbound end-to-end scenarios.
    pub ack_latency: Option<LatencySummary>,
    /// Arrival check of the measured messages (sandbox state: transcripts or sent DMs).
    pub exactness: Option<Exactness>,
    /// Chats in the sandbox at the end (one per customer expected).
    pub chats: Option<usize>,
    /// Platform calls of opening those chats (each customer's first DM into no chat), per chat;
    /// before the measured window.
    pub new_chat_calls: Option<CallUse>,
    /// `connect-down`: from Connect up again to the last message arrived; `acks`: from the end of
    /// sending to the last message arrived.
    pub drain_s: Option<f64>,
    /// The bridge ran inside this process (the smoke test), not as a separate one: `bridge_cpu`
    /// and `bench_cpu` are then both the CPU of bridge, sandbox and load generator together.
    pub bridge_in_process: bool,
    /// Bridge CPU over the measured window, per measured message (`/proc/<bridge pid>/stat`).
    pub bridge_cpu: CpuUse,
    /// `acks` with drain: bridge CPU from the first warm-up message until everything was
    /// delivered, per message (accepting and delivering).
    pub bridge_cpu_with_delivery: Option<CpuUse>,
    /// Bridge heap allocations over the measured window, per measured message (its admin
    /// `/metrics`, with `--features count-allocations`).
    pub bridge_allocations: AllocationUse,
    /// Bridge CPU seconds over the measured window per thread name (`tokio-runtime-w`: the
    /// async workers; `xdm-sqlite`: the store's connection thread).
    pub bridge_threads: BTreeMap<String, f64>,
    /// Scheduling of the bridge's threads over the measured window.
    pub bridge_sched: BTreeMap<String, ThreadSched>,
    pub bridge_memory: MemoryUse,
    /// This process (the sandbox and the load generator, `/proc/self/stat`) over the same
    /// window, per measured message: the generator's own cost, apart from the bridge's.
    pub bench_cpu: CpuUse,
    pub machine: MachineUse,
    pub calls: CallUse,
    /// Live events the tracker missed (the sandbox's broadcast buffer overflowed); arrival
    /// counts then come from the sandbox's state, without latency for the missed ones.
    pub lagged_events: u64,
    /// `idle`: the bridge's CPU while nothing happens.
    pub idle: Option<IdleUse>,
    pub notes: Vec<String>,
}

/// The bridge's CPU over a window without traffic, summed over its threads from the kernel's
/// per-thread scheduler statistics (nanoseconds; `/proc/<pid>/stat` counts 10 ms ticks, too
/// coarse for a process that should be asleep).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct IdleUse {
    /// CPU milliseconds per second of wall time.
    pub cpu_ms_per_s: f64,
    /// The same as a share of one core, in percent.
    pub percent_of_core: f64,
    /// Times a bridge thread was scheduled in, per second.
    pub wakeups_per_s: f64,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::allocations::{Allocated, NOT_BUILT};

    #[test]
    fn allocations_per_message_from_two_readings_or_why_not() {
        let at = |allocations, bytes| Reading::Counted(Allocated { allocations, bytes });
        let used = AllocationUse::of(&at(1_000, 50_000), &at(5_000, 450_000), 100);
        assert_eq!(
            used,
            AllocationUse::Counted {
                allocations: 4_000,
                bytes: 400_000,
                per_message: 40.0,
                bytes_per_message: 4_000.0
            }
        );
        let json = serde_json::to_value(&used).unwrap();
        assert_eq!(json["per_message"], 40.0);

        let not_built = Reading::NotAvailable(NOT_BUILT.to_owned());
        for (from, to) in [(&not_built, &at(1, 1)), (&at(1, 1), &not_built)] {
            let used = AllocationUse::of(from, to, 100);
            assert_eq!(used, AllocationUse::NotAvailable(NOT_BUILT.to_owned()));
            // In the JSON too: the reason, not a number.
            assert_eq!(serde_json::to_value(&used).unwrap(), NOT_BUILT);
        }
    }
}
