//! Generating the load: the scenario's set-up (customers, the webhook and its CRC check, the SNS
//! subscription), customers' DMs as signed webhook POSTs and agents' messages, each paced at a
//! rate or as fast as the concurrency and the messages in flight allow, and the chats opened
//! before measuring.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use xdm_sandbox::SandboxHandle;

use crate::latency::Recorder;
use crate::measure::Mark;
use crate::options::{LoadOptions, Target};
use crate::report::CallUse;
use crate::tracker::{Phase, Tracker, inbound_text, outbound_text};
use crate::webhook::{Customer, WebhookClient};

/// Everything a scenario works with.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) sandbox: SandboxHandle,
    pub(crate) target: Target,
    pub(crate) opts: LoadOptions,
    customers: Arc<Vec<Customer>>,
    client: Arc<WebhookClient>,
}

/// How long a sending phase lasts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Until {
    Time(Duration),
    Count(u64),
}

/// What a sending phase did.
#[derive(Debug, Default)]
pub(crate) struct Sent {
    /// Messages sent (acknowledged 200, for webhook deliveries).
    pub(crate) ok: u64,
    pub(crate) errors: u64,
    pub(crate) elapsed: Duration,
}

/// The pace of a sending phase: until when (or how many), and at which rate.
#[derive(Debug)]
pub(crate) struct Pace {
    start: Instant,
    until: Until,
    /// `None` for a phase of a given count.
    deadline: Option<Instant>,
    /// Messages per second; `None`: as fast as possible.
    rate: Option<f64>,
}

impl Pace {
    /// Starts now; a rate only paces a phase of a given length.
    pub(crate) fn start(until: Until, rate: Option<f64>) -> Self {
        let start = Instant::now();
        let deadline = match until {
            Until::Time(d) => Some(start + d),
            Until::Count(_) => None,
        };
        Self {
            start,
            until,
            deadline,
            rate: rate.filter(|_| matches!(until, Until::Time(_))),
        }
    }

    /// Waits for the turn of message `n`; false when the phase is over before it.
    pub(crate) async fn turn(&self, n: u64) -> bool {
        match self.until {
            Until::Count(c) if n >= c => return false,
            Until::Time(_) if self.deadline.is_some_and(|d| Instant::now() >= d) => return false,
            _ => {}
        }
        if let Some(rate) = self.rate {
            let at = scheduled(self.start, n, rate);
            if self.deadline.is_some_and(|d| at >= d) {
                return false;
            }
            tokio::time::sleep_until(at.into()).await;
        }
        true
    }
}

/// Registers the customers, the webhook (X's CRC) and the SNS subscription.
pub(crate) async fn prepare(
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
    let filter = opts
        .sns_filter
        .then_some(xdm_amazon_connect::sns::ECHO_FILTER_POLICY);
    let sub = sandbox
        .subscribe_filtered(
            None,
            &format!("{}/webhooks/connect", target.base_url),
            filter,
        )
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
pub(crate) async fn send_inbound(
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
    let pace = Pace::start(until, ctx.opts.rate);
    let customers = ctx.customers.len() as u64;
    let mut tasks = JoinSet::new();
    let mut n: u64 = 0;
    while pace.turn(n).await {
        if let Some(cap) = in_flight {
            match permit_until(cap, pace.deadline).await {
                Some(p) => p.forget(),
                None => break,
            }
        }
        let Some(permit) = permit_until(&concurrency, pace.deadline).await else {
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
        elapsed: pace.start.elapsed(),
    }
}

/// Agents answer in the open chats (`contacts[i]` of customer `i`), round-robin, at `rate` or
/// as fast as `in_flight` allows.
pub(crate) async fn send_outbound(
    ctx: &Ctx,
    tracker: &Arc<Tracker>,
    contacts: &[String],
    phase: Phase,
    until: Until,
    in_flight: &Arc<Semaphore>,
) -> anyhow::Result<Sent> {
    let pace = Pace::start(until, ctx.opts.rate);
    let mut n: u64 = 0;
    while pace.turn(n).await {
        match permit_until(in_flight, pace.deadline).await {
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
        elapsed: pace.start.elapsed(),
    })
}

/// One DM per customer; waits until every chat exists with the customer connected. Returns the
/// ContactId of each customer's chat, in customer order.
/// The chats opened before a scenario measures anything.
pub(crate) struct OpenedChats {
    /// Their ContactIds, one per customer.
    pub contacts: Vec<String>,
    /// The platform calls of opening them (a first DM into no chat, until it is in the
    /// transcript and the set-up has settled), per chat.
    pub calls: CallUse,
}

pub(crate) async fn open_chats(ctx: &Ctx, tracker: &Arc<Tracker>) -> anyhow::Result<OpenedChats> {
    let n = ctx.customers.len() as u64;
    let before = Mark::now(&ctx.sandbox, &ctx.target).await?;
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
    let after = Mark::now(&ctx.sandbox, &ctx.target).await?;
    Ok(OpenedChats {
        contacts,
        calls: after.calls_since(&before, n),
    })
}

/// Lets streamed items and retries of a set-up step finish before measuring.
pub(crate) async fn settle() {
    tokio::time::sleep(Duration::from_millis(600)).await;
}
