//! The scenarios: what load each runs (see the crate documentation) and what of it is measured,
//! each ending in a [`ScenarioReport`].

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use tokio::sync::Semaphore;
use xdm_sandbox::SandboxHandle;

use crate::calls::set_connect_down;
use crate::latency::{LatencySummary, Recorder};
use crate::load::{Ctx, Sent, Until, open_chats, prepare, send_inbound, send_outbound, settle};
use crate::measure::{Mark, RssSampler, Window, e2e_window, memory_use};
use crate::tracker::{Direction, Phase, Tracker, check_exactly_once};

// The paths these had when they were defined in this file.
pub use crate::options::{LoadOptions, Scenario, Target};
pub use crate::report::{CallUse, CpuUse, MachineUse, MemoryUse, ScenarioReport, ThreadSched};

/// Runs `scenario` against a bridge listening at `target` and wired to `sandbox` (which must be
/// otherwise unused: its webhook and SNS subscription are (re)registered here).
pub async fn run(
    scenario: Scenario,
    sandbox: &SandboxHandle,
    target: &Target,
    opts: &LoadOptions,
) -> anyhow::Result<ScenarioReport> {
    if opts.customers == 0 || opts.concurrency == 0 || opts.max_in_flight == 0 {
        bail!("customers, concurrency and max-in-flight must be at least 1");
    }
    if let Some(rate) = opts.rate
        && !(rate > 0.0 && rate.is_finite())
    {
        bail!("rate must be a positive number of messages per second");
    }
    let ctx = prepare(sandbox, target, opts).await?;
    match scenario {
        Scenario::Acks => acks(&ctx).await,
        Scenario::InboundE2e => inbound_e2e(&ctx).await,
        Scenario::OutboundE2e => outbound_e2e(&ctx).await,
        Scenario::ConnectDown => connect_down(&ctx).await,
        Scenario::Idle => idle(&ctx).await,
        Scenario::Floor => bail!("`floor` runs without a bridge: see `xdm_bench::floor::run`"),
    }
}

/// `acks`: webhook acknowledgement latency and rate. Delivery to Connect runs at the same time,
/// as in production; optionally the backlog is drained afterwards.
async fn acks(ctx: &Ctx) -> anyhow::Result<ScenarioReport> {
    let tracker = Tracker::new(Direction::Inbound);
    let listener = tracker.listen(&ctx.sandbox);
    let first = Mark::now(&ctx.sandbox, &ctx.target).await?;
    let mut warm = Sent::default();
    if !ctx.opts.warmup.is_zero() {
        warm = send_inbound(
            ctx,
            &tracker,
            Phase::Warmup,
            Until::Time(ctx.opts.warmup),
            None,
            None,
        )
        .await;
    }
    let acks = Arc::new(Recorder::new());
    let from = Mark::now(&ctx.sandbox, &ctx.target).await?;
    let rss = RssSampler::start(ctx.target.pid);
    let sent = send_inbound(
        ctx,
        &tracker,
        Phase::Measured,
        Until::Time(ctx.opts.duration),
        None,
        Some(&acks),
    )
    .await;
    let to = Mark::now(&ctx.sandbox, &ctx.target).await?;
    let sampled = rss.stop();
    let mut report = Window {
        scenario: Scenario::Acks,
        opts: &ctx.opts,
        target: &ctx.target,
        from: &from,
        to: &to,
        messages: sent.ok,
        sampled_rss: sampled,
    }
    .report(
        "webhook ack",
        acks.summary(),
        sent.elapsed,
        sent.ok,
        &tracker,
    )?;
    report.ack_errors = sent.errors + warm.errors;
    report.notes.push(format!(
        "delivery to Connect runs during the measured window ({} of {} measured messages arrived by its end)",
        tracker.delivered(Phase::Measured),
        sent.ok
    ));
    if ctx.opts.drain_acks {
        let all = warm.ok + sent.ok;
        let delivered = {
            let t = &tracker;
            let s = &ctx.sandbox;
            let timeout = ctx.opts.drain_timeout;
            let w = t.wait_delivered(s, Phase::Warmup, warm.ok, timeout).await;
            w && t.wait_delivered(s, Phase::Measured, sent.ok, timeout).await
        };
        let end = Mark::now(&ctx.sandbox, &ctx.target).await?;
        let last = tracker
            .last_arrival(Phase::Measured)
            .unwrap_or(end.at)
            .max(tracker.last_arrival(Phase::Warmup).unwrap_or(to.at));
        report.drain_s = Some(last.saturating_duration_since(to.at).as_secs_f64());
        report.calls = end.calls_since(&first, all);
        report.bridge_cpu_with_delivery = Some(end.bridge_cpu_since(&first, all));
        let exact = check_exactly_once(&tracker, &ctx.sandbox, Phase::Measured);
        report.exactness = Some(exact);
        report.chats = Some(ctx.sandbox.contacts().len());
        report.bridge_memory = memory_use(&ctx.target, sampled)?;
        if !delivered {
            report.notes.push(format!(
                "the backlog was not delivered within {} s",
                ctx.opts.drain_timeout.as_secs()
            ));
        }
        report.notes.push(format!(
            "with delivery: bridge CPU and platform calls from the first warm-up message until all {all} messages were in Connect"
        ));
    }
    listener.abort();
    Ok(report)
}

/// `inbound-e2e`: DMs into open chats, from the webhook POST to the Connect transcript.
async fn inbound_e2e(ctx: &Ctx) -> anyhow::Result<ScenarioReport> {
    let tracker = Tracker::new(Direction::Inbound);
    let listener = tracker.listen(&ctx.sandbox);
    let opened = open_chats(ctx, &tracker).await?;
    let in_flight = Arc::new(Semaphore::new(ctx.opts.max_in_flight));
    tracker.set_in_flight(Some(Arc::clone(&in_flight)));
    if !ctx.opts.warmup.is_zero() {
        let warm = send_inbound(
            ctx,
            &tracker,
            Phase::Warmup,
            Until::Time(ctx.opts.warmup),
            Some(&in_flight),
            None,
        )
        .await;
        tracker
            .wait_delivered(&ctx.sandbox, Phase::Warmup, warm.ok, ctx.opts.drain_timeout)
            .await;
        settle().await;
    }
    let acks = Arc::new(Recorder::new());
    let from = Mark::now(&ctx.sandbox, &ctx.target).await?;
    let rss = RssSampler::start(ctx.target.pid);
    let sent = send_inbound(
        ctx,
        &tracker,
        Phase::Measured,
        Until::Time(ctx.opts.duration),
        Some(&in_flight),
        Some(&acks),
    )
    .await;
    let mut report = e2e_report(ctx, &tracker, Scenario::InboundE2e, &from, rss, sent.ok).await?;
    report.ack_errors = sent.errors;
    report.ack_latency = Some(acks.summary());
    report.chats = Some(ctx.sandbox.contacts().len());
    report.new_chat_calls = Some(opened.calls);
    listener.abort();
    Ok(report)
}

/// The end of an end-to-end scenario: waits for the measured messages to arrive, then reports
/// their latency, exactly-once arrival and the bridge's cost over the window.
async fn e2e_report(
    ctx: &Ctx,
    tracker: &Tracker,
    scenario: Scenario,
    from: &Mark,
    rss: RssSampler,
    sent: u64,
) -> anyhow::Result<ScenarioReport> {
    let all = tracker
        .wait_delivered(&ctx.sandbox, Phase::Measured, sent, ctx.opts.drain_timeout)
        .await;
    let to = Mark::now(&ctx.sandbox, &ctx.target).await?;
    let sampled = rss.stop();
    let exact = check_exactly_once(tracker, &ctx.sandbox, Phase::Measured);
    let window = e2e_window(tracker, from, &to);
    let mut report = Window {
        scenario,
        opts: &ctx.opts,
        target: &ctx.target,
        from,
        to: &to,
        messages: sent,
        sampled_rss: sampled,
    }
    .report(
        "end-to-end",
        tracker.e2e.summary(),
        window,
        exact.delivered,
        tracker,
    )?;
    report.exactness = Some(exact);
    if !all {
        report.notes.push(format!(
            "not every message arrived within {} s",
            ctx.opts.drain_timeout.as_secs()
        ));
    }
    Ok(report)
}

/// `outbound-e2e`: agents' messages, from `agent_send` to the DM accepted by the X API.
async fn outbound_e2e(ctx: &Ctx) -> anyhow::Result<ScenarioReport> {
    let opener = Tracker::new(Direction::Inbound);
    let open_listener = opener.listen(&ctx.sandbox);
    let opened = open_chats(ctx, &opener).await?;
    open_listener.abort();
    for contact in &opened.contacts {
        ctx.sandbox
            .agent_accept(contact, "Load Agent")
            .with_context(|| format!("accepting {contact}"))?;
    }
    settle().await;
    let tracker = Tracker::new(Direction::Outbound);
    let listener = tracker.listen(&ctx.sandbox);
    let in_flight = Arc::new(Semaphore::new(ctx.opts.max_in_flight));
    tracker.set_in_flight(Some(Arc::clone(&in_flight)));
    if !ctx.opts.warmup.is_zero() {
        let warm = send_outbound(
            ctx,
            &tracker,
            &opened.contacts,
            Phase::Warmup,
            Until::Time(ctx.opts.warmup),
            &in_flight,
        )
        .await?;
        tracker
            .wait_delivered(&ctx.sandbox, Phase::Warmup, warm.ok, ctx.opts.drain_timeout)
            .await;
        settle().await;
    }
    let from = Mark::now(&ctx.sandbox, &ctx.target).await?;
    let rss = RssSampler::start(ctx.target.pid);
    let sent = send_outbound(
        ctx,
        &tracker,
        &opened.contacts,
        Phase::Measured,
        Until::Time(ctx.opts.duration),
        &in_flight,
    )
    .await?;
    let mut report = e2e_report(ctx, &tracker, Scenario::OutboundE2e, &from, rss, sent.ok).await?;
    report.chats = Some(ctx.sandbox.contacts().len());
    report.new_chat_calls = Some(opened.calls);
    let x = &ctx.sandbox.config().x;
    report.notes.push(if x.account_activity_api && x.echo_outbound {
        "each DM sent is echoed by the sandbox X to the webhook (as the Account Activity API does); the bridge drops the echoes"
    } else {
        "no echo of the DMs sent: the bridge's X Activity API subscriptions are `dm.received`, `dm.read` and `dm.indicate_typing`, not `dm.sent`"
    }.to_owned());
    listener.abort();
    Ok(report)
}

/// `connect-down`: every Connect call fails while customers keep sending; then Connect is back.
async fn connect_down(ctx: &Ctx) -> anyhow::Result<ScenarioReport> {
    let tracker = Tracker::new(Direction::Inbound);
    let listener = tracker.listen(&ctx.sandbox);
    let opened = open_chats(ctx, &tracker).await?;
    let acks = Arc::new(Recorder::new());
    let from = Mark::now(&ctx.sandbox, &ctx.target).await?;
    let rss = RssSampler::start(ctx.target.pid);
    set_connect_down(&ctx.sandbox, true);
    let sent = send_inbound(
        ctx,
        &tracker,
        Phase::Measured,
        Until::Time(ctx.opts.duration),
        None,
        Some(&acks),
    )
    .await;
    let down = Mark::now(&ctx.sandbox, &ctx.target).await?;
    let arrived_while_down = tracker.delivered(Phase::Measured);
    set_connect_down(&ctx.sandbox, false);
    let up_at = Instant::now();
    let all = tracker
        .wait_delivered(
            &ctx.sandbox,
            Phase::Measured,
            sent.ok,
            ctx.opts.drain_timeout,
        )
        .await;
    let to = Mark::now(&ctx.sandbox, &ctx.target).await?;
    let sampled = rss.stop();
    let exact = check_exactly_once(&tracker, &ctx.sandbox, Phase::Measured);
    let mut report = Window {
        scenario: Scenario::ConnectDown,
        opts: &ctx.opts,
        target: &ctx.target,
        from: &from,
        to: &down,
        messages: sent.ok,
        sampled_rss: sampled,
    }
    .report(
        "webhook ack",
        acks.summary(),
        sent.elapsed,
        sent.ok,
        &tracker,
    )?;
    report.ack_errors = sent.errors;
    report.exactness = Some(exact);
    report.chats = Some(ctx.sandbox.contacts().len());
    report.new_chat_calls = Some(opened.calls);
    let last = tracker.last_arrival(Phase::Measured).unwrap_or(to.at);
    report.drain_s = Some(last.saturating_duration_since(up_at).as_secs_f64());
    let while_down = down.calls.since(&from.calls);
    let after = to.calls.since(&down.calls);
    report.calls = to.calls_since(&from, sent.ok);
    report.bridge_cpu_with_delivery = Some(to.bridge_cpu_since(&from, sent.ok));
    report.notes.push(format!(
        "while down: {} Connect calls refused (503), {} messages arrived; after: {} Connect calls to drain",
        while_down.connect_total(),
        arrived_while_down,
        after.connect_total()
    ));
    report.notes.push(
        "with delivery: bridge CPU from Connect going down until every message was in Connect"
            .to_owned(),
    );
    if !all {
        report.notes.push(format!(
            "not every message arrived within {} s of Connect coming back",
            ctx.opts.drain_timeout.as_secs()
        ));
    }
    listener.abort();
    Ok(report)
}

/// `idle`: one chat opened per customer, then `--warmup` seconds to settle and `--duration`
/// seconds of nothing: the bridge's CPU and wake-ups while it waits (dispatchers' polls, timers,
/// the store's housekeeping).
async fn idle(ctx: &Ctx) -> anyhow::Result<ScenarioReport> {
    let tracker = Tracker::new(Direction::Inbound);
    let listener = tracker.listen(&ctx.sandbox);
    let opened = open_chats(ctx, &tracker).await?;
    tokio::time::sleep(ctx.opts.warmup).await;
    let from = Mark::now(&ctx.sandbox, &ctx.target).await?;
    let rss = RssSampler::start(ctx.target.pid);
    tokio::time::sleep(ctx.opts.duration).await;
    let to = Mark::now(&ctx.sandbox, &ctx.target).await?;
    let sampled = rss.stop();
    let mut report = Window {
        scenario: Scenario::Idle,
        opts: &ctx.opts,
        target: &ctx.target,
        from: &from,
        to: &to,
        messages: 0,
        sampled_rss: sampled,
    }
    .report(
        "none",
        LatencySummary::default(),
        to.at.saturating_duration_since(from.at),
        0,
        &tracker,
    )?;
    let idle = to.bridge_idle_since(&from);
    report.chats = Some(ctx.sandbox.contacts().len());
    report.new_chat_calls = Some(opened.calls);
    report.notes.push(
        "idle: the bridge's CPU summed over its threads' scheduler statistics (nanoseconds)"
            .to_owned(),
    );
    report.idle = Some(idle);
    listener.abort();
    Ok(report)
}
