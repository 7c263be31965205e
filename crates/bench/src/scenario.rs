//! The scenarios: what is sent, what is measured, and the report of one run.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};
use xdm_sandbox::SandboxHandle;

use crate::calls::{Calls, set_connect_down};
use crate::latency::{LatencySummary, Recorder};
use crate::procfs::{self, CpuTimes, Memory, SchedStat, SystemCpu};
use crate::tracker::{
    Direction, Exactness, Phase, Tracker, check_exactly_once, inbound_text, outbound_text,
};
use crate::webhook::{Customer, WebhookClient};

/// What to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// Customers' DMs POSTed to the webhook: acknowledgement latency and rate.
    Acks,
    /// DMs into open chats: from the webhook POST to the message in the Connect transcript.
    InboundE2e,
    /// Agents' messages in open chats: from the agent sending to the DM accepted by X.
    OutboundE2e,
    /// Connect down (every call 503) while customers keep sending: acknowledgement latency; then
    /// Connect up again: drain time and exactly-once delivery.
    ConnectDown,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Self::Acks => "acks",
            Self::InboundE2e => "inbound-e2e",
            Self::OutboundE2e => "outbound-e2e",
            Self::ConnectDown => "connect-down",
        }
    }
}

/// The bridge under test: where it listens and which process to measure.
#[derive(Debug, Clone)]
pub struct Target {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// The process whose CPU time and memory are reported (the bridge; in tests, the test itself).
    pub pid: u32,
}

/// How hard and how long.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Simulated customers (one chat each, one agent each).
    pub customers: usize,
    /// Webhook POSTs in flight at once.
    pub concurrency: usize,
    /// Messages per second (open loop); `None`: as fast as `concurrency` (and `max_in_flight`) allow.
    pub rate: Option<f64>,
    /// Length of the measured sending phase.
    pub duration: Duration,
    /// Sending before the measured phase, same pattern, not counted.
    pub warmup: Duration,
    /// End-to-end scenarios: messages sent but not yet arrived, at most (bounds the backlog when
    /// sending as fast as possible).
    pub max_in_flight: usize,
    /// How long to wait for the last message to arrive.
    pub drain_timeout: Duration,
    /// `acks`: after the measured phase, wait for every message to reach Connect and report the
    /// whole cost per message.
    pub drain_acks: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            customers: 50,
            concurrency: 32,
            rate: None,
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(2),
            max_in_flight: 1_000,
            drain_timeout: Duration::from_secs(300),
            drain_acks: true,
        }
    }
}

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
    #[allow(clippy::cast_precision_loss)]
    fn of(cpu: CpuTimes, wall: Duration, messages: u64) -> Self {
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

/// Calls to the platforms over the measured window.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CallUse {
    pub calls: Calls,
    pub connect_per_message: f64,
    pub x_per_message: f64,
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
    /// `connect-down`: from Connect up again to the last message arrived; `acks`: from the end of
    /// sending to the last message arrived.
    pub drain_s: Option<f64>,
    /// Bridge CPU over the measured window, per measured message.
    pub bridge_cpu: CpuUse,
    /// `acks` with drain: bridge CPU from the first warm-up message until everything was
    /// delivered, per message (accepting and delivering).
    pub bridge_cpu_with_delivery: Option<CpuUse>,
    /// Bridge CPU seconds over the measured window per thread name (`tokio-runtime-w`: the
    /// async workers; `xdm-sqlite`: the store's connection thread).
    pub bridge_threads: BTreeMap<String, f64>,
    /// Scheduling of the bridge's threads over the measured window.
    pub bridge_sched: BTreeMap<String, ThreadSched>,
    pub bridge_memory: MemoryUse,
    /// This process (the sandbox and the load generator) over the same window.
    pub bench_cpu: CpuUse,
    pub machine: MachineUse,
    pub calls: CallUse,
    /// Live events the tracker missed (the sandbox's broadcast buffer overflowed); arrival
    /// counts then come from the sandbox's state, without latency for the missed ones.
    pub lagged_events: u64,
    pub notes: Vec<String>,
}

/// A point in time: CPU of the bridge and of this process, and the platform calls.
#[derive(Debug, Clone)]
struct Mark {
    at: Instant,
    bridge: CpuTimes,
    bridge_threads: BTreeMap<String, CpuTimes>,
    bridge_sched: BTreeMap<String, SchedStat>,
    bench: CpuTimes,
    system: SystemCpu,
    calls: Calls,
}

impl Mark {
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

    fn now(sandbox: &SandboxHandle, target: &Target) -> anyhow::Result<Self> {
        Ok(Self {
            at: Instant::now(),
            bridge: procfs::cpu_times(target.pid)?,
            bridge_threads: procfs::thread_cpu_times(target.pid),
            bridge_sched: procfs::thread_schedstats(target.pid),
            bench: procfs::cpu_times(std::process::id())?,
            system: procfs::system_cpu()?,
            calls: Calls::snapshot(sandbox),
        })
    }
}

/// Samples the bridge's RSS every 100 ms; `stop` returns the largest sample.
#[derive(Debug)]
struct RssSampler {
    max: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl RssSampler {
    fn start(pid: u32) -> Self {
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

    fn stop(self) -> u64 {
        self.task.abort();
        self.max.load(Ordering::Relaxed)
    }
}

/// Everything a scenario works with.
#[derive(Debug)]
struct Ctx {
    sandbox: SandboxHandle,
    target: Target,
    opts: LoadOptions,
    customers: Arc<Vec<Customer>>,
    client: Arc<WebhookClient>,
}

/// How long a sending phase lasts.
#[derive(Debug, Clone, Copy)]
enum Until {
    Time(Duration),
    Count(u64),
}

/// What a sending phase did.
#[derive(Debug, Default)]
struct Sent {
    /// Messages sent (acknowledged 200, for webhook deliveries).
    ok: u64,
    errors: u64,
    elapsed: Duration,
}

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
    }
}

/// Registers the customers, the webhook (X's CRC) and the SNS subscription.
async fn prepare(
    sandbox: &SandboxHandle,
    target: &Target,
    opts: &LoadOptions,
) -> anyhow::Result<Ctx> {
    let customers: Vec<Customer> = (0..opts.customers)
        .map(|i| Customer::register(sandbox, i))
        .collect();
    let webhook = format!("{}/webhooks/x", target.base_url);
    let crc = sandbox.set_webhook(&webhook).await?;
    if !crc.ok {
        bail!(
            "the bridge failed X's CRC check: {}",
            crc.error.unwrap_or_default()
        );
    }
    let sub = sandbox
        .subscribe(&format!("{}/webhooks/connect", target.base_url))
        .await?;
    sandbox
        .wait_confirmed(&sub.subscription_arn, Duration::from_secs(10))
        .await
        .context("the bridge did not confirm the SNS subscription")?;
    let client = WebhookClient::new(sandbox, &webhook, opts.concurrency)?;
    Ok(Ctx {
        sandbox: sandbox.clone(),
        target: target.clone(),
        opts: opts.clone(),
        customers: Arc::new(customers),
        client: Arc::new(client),
    })
}

/// The instant `n` messages into a phase at `rate` per second.
fn scheduled(start: Instant, n: u64, rate: f64) -> Instant {
    #[allow(clippy::cast_precision_loss)]
    let offset = n as f64 / rate;
    start + Duration::from_secs_f64(offset)
}

/// Waits for a permit until `deadline` (none: forever); `None` when the deadline passed.
async fn permit_until(
    sem: &Arc<Semaphore>,
    deadline: Option<Instant>,
) -> Option<tokio::sync::OwnedSemaphorePermit> {
    let acquire = Arc::clone(sem).acquire_owned();
    match deadline {
        Some(d) => tokio::time::timeout_at(d.into(), acquire).await.ok()?.ok(),
        None => acquire.await.ok(),
    }
}

/// Customers DM the business: signed webhook POSTs, round-robin over customers, `concurrency`
/// at a time, at `rate` or as fast as possible, each optionally holding an in-flight permit
/// until it arrives in Connect.
async fn send_inbound(
    ctx: &Ctx,
    tracker: &Arc<Tracker>,
    phase: Phase,
    until: Until,
    in_flight: Option<&Arc<Semaphore>>,
    acks: Option<&Arc<Recorder>>,
) -> Sent {
    let concurrency = Arc::new(Semaphore::new(ctx.opts.concurrency));
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = match until {
        Until::Time(d) => Some(start + d),
        Until::Count(_) => None,
    };
    let customers = ctx.customers.len() as u64;
    let mut tasks = JoinSet::new();
    let mut n: u64 = 0;
    loop {
        match until {
            Until::Count(c) if n >= c => break,
            Until::Time(_) if deadline.is_some_and(|d| Instant::now() >= d) => break,
            _ => {}
        }
        if let Some(rate) = ctx.opts.rate.filter(|_| matches!(until, Until::Time(_))) {
            let at = scheduled(start, n, rate);
            if deadline.is_some_and(|d| at >= d) {
                break;
            }
            tokio::time::sleep_until(at.into()).await;
        }
        if let Some(cap) = in_flight {
            match permit_until(cap, deadline).await {
                Some(p) => p.forget(),
                None => break,
            }
        }
        let Some(permit) = permit_until(&concurrency, deadline).await else {
            if let Some(cap) = in_flight {
                cap.add_permits(1);
            }
            break;
        };
        let seq = phase.seq(n);
        let customer = usize::try_from(n % customers).unwrap_or(0);
        let body = ctx
            .client
            .dm_body(&ctx.customers[customer], &inbound_text(seq));
        let client = Arc::clone(&ctx.client);
        let tracker = Arc::clone(tracker);
        let (ok, errors) = (Arc::clone(&ok), Arc::clone(&errors));
        let acks = acks.cloned();
        let cap = in_flight.cloned();
        tasks.spawn(async move {
            tracker.sent(seq, Instant::now());
            let ack = client.post(body).await;
            drop(permit);
            if ack.status == Some(200) {
                ok.fetch_add(1, Ordering::Relaxed);
                if let Some(acks) = acks {
                    acks.record(ack.latency);
                }
            } else {
                errors.fetch_add(1, Ordering::Relaxed);
                tracker.forget(seq);
                if let Some(cap) = cap {
                    cap.add_permits(1);
                }
                tracing::warn!(status = ?ack.status, "webhook delivery not acknowledged");
            }
        });
        n += 1;
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    Sent {
        ok: ok.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        elapsed: start.elapsed(),
    }
}

/// Agents answer in the open chats (`contacts[i]` of customer `i`), round-robin, at `rate` or
/// as fast as `in_flight` allows.
async fn send_outbound(
    ctx: &Ctx,
    tracker: &Arc<Tracker>,
    contacts: &[String],
    phase: Phase,
    until: Until,
    in_flight: &Arc<Semaphore>,
) -> anyhow::Result<Sent> {
    let start = Instant::now();
    let deadline = match until {
        Until::Time(d) => Some(start + d),
        Until::Count(_) => None,
    };
    let mut n: u64 = 0;
    loop {
        match until {
            Until::Count(c) if n >= c => break,
            Until::Time(_) if deadline.is_some_and(|d| Instant::now() >= d) => break,
            _ => {}
        }
        if let Some(rate) = ctx.opts.rate {
            let at = scheduled(start, n, rate);
            if deadline.is_some_and(|d| at >= d) {
                break;
            }
            tokio::time::sleep_until(at.into()).await;
        }
        match permit_until(in_flight, deadline).await {
            Some(p) => p.forget(),
            None => break,
        }
        let seq = phase.seq(n);
        let contact = &contacts[usize::try_from(n % contacts.len() as u64).unwrap_or(0)];
        tracker.sent(seq, Instant::now());
        ctx.sandbox
            .agent_send(contact, &outbound_text(seq), "text/markdown")
            .with_context(|| format!("agent message in {contact}"))?;
        n += 1;
        if n.is_multiple_of(16) {
            tokio::task::yield_now().await;
        }
    }
    Ok(Sent {
        ok: n,
        errors: 0,
        elapsed: start.elapsed(),
    })
}

/// One DM per customer; waits until every chat exists with the customer connected. Returns the
/// ContactId of each customer's chat, in customer order.
async fn open_chats(ctx: &Ctx, tracker: &Arc<Tracker>) -> anyhow::Result<Vec<String>> {
    let n = ctx.customers.len() as u64;
    let sent = send_inbound(ctx, tracker, Phase::Open, Until::Count(n), None, None).await;
    if sent.errors > 0 {
        bail!(
            "{} of the chat-opening DMs were not acknowledged",
            sent.errors
        );
    }
    let ids: Vec<String> = ctx.customers.iter().map(|c| c.id.clone()).collect();
    let contacts = ctx
        .sandbox
        .wait_until("every customer's chat", Duration::from_secs(60), |s| {
            let contacts = s.contacts();
            ids.iter()
                .map(|id| {
                    contacts
                        .iter()
                        .find(|c| {
                            c.customer_connected && c.attributes.get("customerId") == Some(id)
                        })
                        .map(|c| c.contact_id.clone())
                })
                .collect::<Option<Vec<String>>>()
        })
        .await
        .context("the chats were not opened")?;
    if !tracker
        .wait_delivered(&ctx.sandbox, Phase::Open, n, Duration::from_secs(30))
        .await
    {
        bail!("the chat-opening messages did not all arrive");
    }
    settle().await;
    Ok(contacts)
}

/// Lets streamed items and retries of a set-up step finish before measuring.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(600)).await;
}

#[allow(clippy::cast_precision_loss)]
fn per_second(n: u64, d: Duration) -> f64 {
    if d.is_zero() {
        0.0
    } else {
        n as f64 / d.as_secs_f64()
    }
}

#[allow(clippy::cast_precision_loss)]
fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Bridge memory now plus the sampled maximum.
fn memory_use(target: &Target, sampled_max: u64) -> anyhow::Result<MemoryUse> {
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

fn machine_use(from: &Mark, to: &Mark) -> MachineUse {
    let wall = to.at.saturating_duration_since(from.at).as_secs_f64();
    if wall <= 0.0 {
        return MachineUse::default();
    }
    let system = to.system.since(&from.system);
    let busy = system.busy().as_secs_f64();
    let ours = to.bridge.since(&from.bridge).total().as_secs_f64()
        + to.bench.since(&from.bench).total().as_secs_f64();
    MachineUse {
        busy_cores: busy / wall,
        other_cores: (busy - ours).max(0.0) / wall,
        steal_cores: system.steal().as_secs_f64() / wall,
    }
}

fn call_use(calls: Calls, messages: u64) -> CallUse {
    CallUse {
        connect_per_message: ratio(calls.connect_total(), messages),
        x_per_message: ratio(calls.x_total(), messages),
        calls,
    }
}

/// The report fields every scenario fills the same way.
struct Window<'a> {
    ctx: &'a Ctx,
    scenario: Scenario,
    from: &'a Mark,
    to: &'a Mark,
    messages: u64,
    sampled_rss: u64,
}

impl Window<'_> {
    fn report(
        self,
        latency_kind: &'static str,
        latency: LatencySummary,
        window: Duration,
        throughput_messages: u64,
        tracker: &Tracker,
    ) -> anyhow::Result<ScenarioReport> {
        let wall = self.to.at.saturating_duration_since(self.from.at);
        Ok(ScenarioReport {
            scenario: self.scenario,
            customers: self.ctx.opts.customers,
            concurrency: self.ctx.opts.concurrency,
            rate: self.ctx.opts.rate,
            messages: self.messages,
            ack_errors: 0,
            window_s: window.as_secs_f64(),
            throughput_per_s: per_second(throughput_messages, window),
            latency_kind,
            latency,
            ack_latency: None,
            exactness: None,
            chats: None,
            drain_s: None,
            bridge_cpu: CpuUse::of(self.to.bridge.since(&self.from.bridge), wall, self.messages),
            bridge_cpu_with_delivery: None,
            bridge_threads: self.to.threads_since(self.from),
            bridge_sched: self.to.sched_since(self.from),
            bridge_memory: memory_use(&self.ctx.target, self.sampled_rss)?,
            bench_cpu: CpuUse::of(self.to.bench.since(&self.from.bench), wall, self.messages),
            machine: machine_use(self.from, self.to),
            calls: call_use(self.to.calls.since(&self.from.calls), self.messages),
            lagged_events: tracker.lagged(),
            notes: Vec::new(),
        })
    }
}

/// `acks`: webhook acknowledgement latency and rate. Delivery to Connect runs at the same time,
/// as in production; optionally the backlog is drained afterwards.
async fn acks(ctx: &Ctx) -> anyhow::Result<ScenarioReport> {
    let tracker = Tracker::new(Direction::Inbound);
    let listener = tracker.listen(&ctx.sandbox);
    let first = Mark::now(&ctx.sandbox, &ctx.target)?;
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
    let from = Mark::now(&ctx.sandbox, &ctx.target)?;
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
    let to = Mark::now(&ctx.sandbox, &ctx.target)?;
    let sampled = rss.stop();
    let mut report = Window {
        ctx,
        scenario: Scenario::Acks,
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
        let end = Mark::now(&ctx.sandbox, &ctx.target)?;
        let last = tracker
            .last_arrival(Phase::Measured)
            .unwrap_or(end.at)
            .max(tracker.last_arrival(Phase::Warmup).unwrap_or(to.at));
        report.drain_s = Some(last.saturating_duration_since(to.at).as_secs_f64());
        report.calls = call_use(end.calls.since(&first.calls), all);
        report.bridge_cpu_with_delivery = Some(CpuUse::of(
            end.bridge.since(&first.bridge),
            end.at.saturating_duration_since(first.at),
            all,
        ));
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
    open_chats(ctx, &tracker).await?;
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
    let from = Mark::now(&ctx.sandbox, &ctx.target)?;
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
    let to = Mark::now(&ctx.sandbox, &ctx.target)?;
    let sampled = rss.stop();
    let exact = check_exactly_once(tracker, &ctx.sandbox, Phase::Measured);
    let window = window(tracker, from, &to);
    let mut report = Window {
        ctx,
        scenario,
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

/// From the first measured message sent to the last one arrived.
fn window(tracker: &Tracker, from: &Mark, to: &Mark) -> Duration {
    let first = tracker.first_sent(Phase::Measured).unwrap_or(from.at);
    let last = tracker.last_arrival(Phase::Measured).unwrap_or(to.at);
    last.saturating_duration_since(first)
}

/// `outbound-e2e`: agents' messages, from `agent_send` to the DM accepted by the X API.
async fn outbound_e2e(ctx: &Ctx) -> anyhow::Result<ScenarioReport> {
    let opener = Tracker::new(Direction::Inbound);
    let open_listener = opener.listen(&ctx.sandbox);
    let contacts = open_chats(ctx, &opener).await?;
    open_listener.abort();
    for contact in &contacts {
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
            &contacts,
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
    let from = Mark::now(&ctx.sandbox, &ctx.target)?;
    let rss = RssSampler::start(ctx.target.pid);
    let sent = send_outbound(
        ctx,
        &tracker,
        &contacts,
        Phase::Measured,
        Until::Time(ctx.opts.duration),
        &in_flight,
    )
    .await?;
    let mut report = e2e_report(ctx, &tracker, Scenario::OutboundE2e, &from, rss, sent.ok).await?;
    report.chats = Some(ctx.sandbox.contacts().len());
    report.notes.push(
        "each DM sent is echoed by the sandbox X to the webhook (as X does); the bridge drops the echoes"
            .to_owned(),
    );
    listener.abort();
    Ok(report)
}

/// `connect-down`: every Connect call fails while customers keep sending; then Connect is back.
async fn connect_down(ctx: &Ctx) -> anyhow::Result<ScenarioReport> {
    let tracker = Tracker::new(Direction::Inbound);
    let listener = tracker.listen(&ctx.sandbox);
    open_chats(ctx, &tracker).await?;
    let acks = Arc::new(Recorder::new());
    let from = Mark::now(&ctx.sandbox, &ctx.target)?;
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
    let down = Mark::now(&ctx.sandbox, &ctx.target)?;
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
    let to = Mark::now(&ctx.sandbox, &ctx.target)?;
    let sampled = rss.stop();
    let exact = check_exactly_once(&tracker, &ctx.sandbox, Phase::Measured);
    let mut report = Window {
        ctx,
        scenario: Scenario::ConnectDown,
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
    let last = tracker.last_arrival(Phase::Measured).unwrap_or(to.at);
    report.drain_s = Some(last.saturating_duration_since(up_at).as_secs_f64());
    let while_down = down.calls.since(&from.calls);
    let after = to.calls.since(&down.calls);
    report.calls = call_use(to.calls.since(&from.calls), sent.ok);
    report.bridge_cpu_with_delivery = Some(CpuUse::of(
        to.bridge.since(&from.bridge),
        to.at.saturating_duration_since(from.at),
        sent.ok,
    ));
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
