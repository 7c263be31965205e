//! Human-readable rendering of scenario reports: a block per scenario and a Markdown summary
//! table (the format of `docs/performance.md`).

use std::fmt::Write as _;

use std::collections::BTreeMap;

use super::{AllocationUse, CallUse, CpuUse, ScenarioReport};
use crate::latency::{LatencySummary, fmt_micros};

#[allow(clippy::cast_precision_loss)]
fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_000_000.0)
}

fn percentiles(l: &LatencySummary) -> String {
    format!(
        "p50 {}  p95 {}  p99 {}  p99.9 {}  max {}  (n = {})",
        fmt_micros(l.p50_us),
        fmt_micros(l.p95_us),
        fmt_micros(l.p99_us),
        fmt_micros(l.p999_us),
        fmt_micros(l.max_us),
        l.count
    )
}

fn cpu(c: &CpuUse) -> String {
    format!(
        "{:.0} µs/msg  ({:.2} s user + {:.2} s system; {:.2} cores)",
        c.per_message_us, c.user_s, c.system_s, c.cores
    )
}

/// `312 allocations/msg, 41234 B/msg  (…)`, or why there are no figures.
fn allocations(a: &AllocationUse) -> String {
    match a {
        AllocationUse::Counted {
            allocations,
            bytes,
            per_message,
            bytes_per_message,
        } => format!(
            "{per_message:.0} allocations/msg, {bytes_per_message:.0} B/msg  ({allocations} allocations, {} over the window)",
            mb(*bytes)
        ),
        AllocationUse::NotAvailable(why) => why.clone(),
    }
}

/// The two Markdown cells: allocations and bytes per message.
fn allocation_cells(a: &AllocationUse) -> (String, String) {
    match a {
        AllocationUse::Counted {
            per_message,
            bytes_per_message,
            ..
        } => (
            format!("{per_message:.0}"),
            format!("{bytes_per_message:.0} B"),
        ),
        AllocationUse::NotAvailable(why) => (why.clone(), why.clone()),
    }
}

fn rate(r: Option<f64>) -> String {
    r.map_or_else(|| "max".to_owned(), |r| format!("{r:.0}/s"))
}

/// A readable block for one scenario.
pub fn render(r: &ScenarioReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "== {}: {} customers, concurrency {}, rate {}",
        r.scenario.name(),
        r.customers,
        r.concurrency,
        rate(r.rate)
    );
    let _ = writeln!(
        s,
        "  messages      {} measured{}",
        r.messages,
        if r.ack_errors > 0 {
            format!(", {} webhook POSTs not acknowledged", r.ack_errors)
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        s,
        "  throughput    {:.0} msg/s over {:.2} s",
        r.throughput_per_s, r.window_s
    );
    if r.latency.count > 0 {
        let _ = writeln!(
            s,
            "  {:<13} {}",
            format!("{} latency", short_kind(r.latency_kind)),
            percentiles(&r.latency)
        );
    }
    if let Some(a) = &r.ack_latency {
        let _ = writeln!(s, "  ack latency   {}", percentiles(a));
    }
    if let Some(e) = &r.exactness {
        let _ = writeln!(
            s,
            "  arrival       {} of {} arrived, {} missing, {} duplicated{}",
            e.delivered,
            e.sent,
            e.missing,
            e.duplicated,
            if e.exactly_once() {
                " — exactly once"
            } else {
                ""
            }
        );
    }
    if let Some(i) = &r.idle {
        let _ = writeln!(
            s,
            "  idle          {:.3} ms of CPU per second ({:.4} % of a core), {:.1} wake-ups/s",
            i.cpu_ms_per_s, i.percent_of_core, i.wakeups_per_s
        );
    }
    if let Some(c) = r.chats {
        let _ = writeln!(s, "  chats         {c}");
    }
    if let Some(c) = &r.new_chat_calls {
        let _ = writeln!(
            s,
            "  new chat      Connect calls/chat {:.2}: {}; X calls/chat {:.2}: {}",
            c.connect_per_message,
            per_op(&c.connect_ops_per_message),
            c.x_per_message,
            per_op(&c.x_ops_per_message)
        );
    }
    if let Some(d) = r.drain_s {
        let _ = writeln!(s, "  drain         {d:.2} s");
    }
    if r.bridge_in_process {
        let _ = writeln!(
            s,
            "  CPU           {}  (bridge in-process: bridge + sandbox + load generator combined)",
            cpu(&r.bridge_cpu)
        );
    } else {
        let _ = writeln!(s, "  bridge CPU    {}", cpu(&r.bridge_cpu));
    }
    if let Some(c) = &r.bridge_cpu_with_delivery {
        let _ = writeln!(s, "    with delivery {}", cpu(c));
    }
    if !r.bridge_threads.is_empty() {
        let total: f64 = r.bridge_threads.values().sum();
        let mut threads: Vec<(&String, &f64)> = r.bridge_threads.iter().collect();
        threads.sort_by(|a, b| b.1.total_cmp(a.1));
        let parts: Vec<String> = threads
            .iter()
            .map(|(name, secs)| format!("{name} {:.0} %", **secs * 100.0 / total))
            .collect();
        let _ = writeln!(s, "    by thread   {}", parts.join(", "));
    }
    for (name, t) in &r.bridge_sched {
        if t.running < 0.01 {
            continue;
        }
        let _ = writeln!(
            s,
            "    sched       {name}: running {:.2}, waiting for a CPU {:.2} (threads); {:.0} wake-ups/s, {:.0} µs wait each",
            t.running, t.waiting_for_cpu, t.wakeups_per_s, t.wait_per_wakeup_us
        );
    }
    let _ = writeln!(
        s,
        "  {:<13} {}{}",
        if r.bridge_in_process {
            "allocations"
        } else {
            "bridge allocs"
        },
        allocations(&r.bridge_allocations),
        if r.bridge_in_process && matches!(r.bridge_allocations, AllocationUse::Counted { .. }) {
            "  (bridge in-process: combined)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        s,
        "  bridge RSS    peak {} (VmHWM since start), max sampled {}, now {}",
        mb(r.bridge_memory.peak_rss_bytes),
        mb(r.bridge_memory.max_sampled_rss_bytes),
        mb(r.bridge_memory.rss_bytes)
    );
    s.push_str(&calls(&r.calls));
    if !r.bridge_in_process {
        let _ = writeln!(
            s,
            "  generator CPU {}  (this process: sandbox + load generator)",
            cpu(&r.bench_cpu)
        );
    }
    let _ = writeln!(
        s,
        "  machine       {:.2} cores busy, {:.2} of them other processes, {:.2} stolen",
        r.machine.busy_cores, r.machine.other_cores, r.machine.steal_cores
    );
    if r.lagged_events > 0 {
        let _ = writeln!(
            s,
            "  note          {} live events missed; arrivals counted from the sandbox state",
            r.lagged_events
        );
    }
    for note in &r.notes {
        let _ = writeln!(s, "  note          {note}");
    }
    s
}

fn per_op(ops: &BTreeMap<String, f64>) -> String {
    if ops.is_empty() {
        return "none".to_owned();
    }
    ops.iter()
        .map(|(op, n)| format!("{op} {n:.2}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `X calls/msg 1.00: CreateDm 1.00`, the same for Connect, and the SNS notifications.
fn calls(c: &CallUse) -> String {
    format!(
        "  X calls/msg        {:.2}: {}\n  Connect calls/msg  {:.2}: {}\n  SNS deliveries/msg {:.2}\n",
        c.x_per_message,
        per_op(&c.x_ops_per_message),
        c.connect_per_message,
        per_op(&c.connect_ops_per_message),
        c.sns_per_message
    )
}

fn short_kind(kind: &str) -> &str {
    match kind {
        "webhook ack" => "ack",
        "end-to-end" => "e2e",
        other => other,
    }
}

/// A Markdown table with one row per report.
pub fn markdown(reports: &[ScenarioReport]) -> String {
    let mut s = String::new();
    s.push_str("| scenario | rate | msgs | throughput | latency p50 / p95 / p99 / max | bridge CPU / msg | bridge allocations / msg | bridge bytes allocated / msg | generator CPU / msg | bridge peak RSS | Connect calls / msg | X calls / msg | SNS deliveries / msg |\n");
    s.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in reports {
        let (allocs, bytes) = allocation_cells(&r.bridge_allocations);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.0}/s | {} {} / {} / {} / {} | {:.0} µs{} | {allocs} | {bytes} | {} | {} | {:.2} | {:.2} | {:.2} |",
            r.scenario.name(),
            rate(r.rate),
            r.messages,
            r.throughput_per_s,
            short_kind(r.latency_kind),
            fmt_micros(r.latency.p50_us),
            fmt_micros(r.latency.p95_us),
            fmt_micros(r.latency.p99_us),
            fmt_micros(r.latency.max_us),
            r.bridge_cpu.per_message_us,
            r.bridge_cpu_with_delivery
                .map(|c| format!(" ({:.0} µs with delivery)", c.per_message_us))
                .unwrap_or_default(),
            if r.bridge_in_process {
                "combined".to_owned()
            } else {
                format!("{:.0} µs", r.bench_cpu.per_message_us)
            },
            mb(r.bridge_memory.peak_rss_bytes),
            r.calls.connect_per_message,
            r.calls.x_per_message,
            r.calls.sns_per_message,
        );
    }
    s
}
