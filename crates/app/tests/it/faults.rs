//! Fault-injection load: 1,000 DMs each way while the platforms fail transiently and throttle.
//! Every message must arrive exactly once, in order, and no transient failure may open a second
//! chat. The sandbox's fault PRNG is seeded, so a run's fault draws per operation repeat (which
//! call meets which draw still depends on scheduling).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use xdm_app::config::Config;
use xdm_core::jobs::{JobQueue, JobState};
use xdm_core::ports::Store;
use xdm_sandbox::{
    DmSpec, DropMode, FaultOp, FaultProfile, SandboxConfig, SandboxHandle, SandboxStats,
    SandboxUser, SignatureHeader,
};

use crate::helpers::*;

const CUSTOMERS: usize = 50;
const PER_CUSTOMER: usize = 20;
const SEED: u64 = 0x5EED_FA17;
/// How long a whole load phase may take before the test gives up (not a timing assertion: a
/// deadline that only turns a hang into a failure).
const LOAD_WAIT: Duration = Duration::from_secs(240);

/// Throttling bursts during the run: `BURSTS` bursts of `CONNECT_BURST_CALLS` SendMessage calls
/// (inbound) or `X_BURST_CALLS` DM sends (outbound); burst `k` (1-based) starts once
/// `k / (BURSTS + 1)` of the work is done, so each meets calls still to come.
const BURSTS: u32 = 3;
const CONNECT_BURST_CALLS: u32 = 15;
const X_BURST_CALLS: u32 = 10;
/// Inbound, StartChatContact is throttled this many times as the first chats open.
const FIRST_CHATS_BURST_CALLS: u32 = 5;

/// Retries fast and often enough that the injected faults cannot exhaust a job's attempts.
///
/// Inbound, one attempt fails when one of its Connect calls fails: a first message makes up to
/// four calls (StartChatContact, StartContactStreaming, CreateParticipantConnection,
/// SendMessage), so it fails with p ≤ 1 − 0.8⁴ ≈ 0.59; later messages make one (p = 0.2). The
/// SDK's own retries of participant calls only lower these. 50 attempts: 0.59⁵⁰ ≈ 4·10⁻¹² per
/// first message (×50 ≈ 2·10⁻¹⁰), 0.2⁵⁰ ≈ 10⁻³⁵ per other message. Each call of a throttling
/// burst can cost a job one more attempt: 50 + every burst's calls. Outbound, one X call per
/// attempt fails with p = 0.08, plus the burst calls: far fewer.
fn fast_delivery(config: &mut Config) {
    let d = &mut config.delivery;
    d.retry_base_ms = 10;
    d.retry_max_ms = 250;
    d.max_attempts = 50 + BURSTS * CONNECT_BURST_CALLS.max(X_BURST_CALLS) + FIRST_CHATS_BURST_CALLS;
    d.reorder_window_ms = 50;
    d.outbound_reorder_window_ms = 50;
    d.concurrency = 64;
}

/// The fault seed: `SEED`, or `XDM_TEST_FAULT_SEED` to explore other draws.
fn seed() -> u64 {
    std::env::var("XDM_TEST_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEED)
}

fn seeded() -> SandboxConfig {
    SandboxConfig {
        fault_seed: seed(),
        ..SandboxConfig::default()
    }
}

fn customer_id(c: usize) -> String {
    format!("41000000{c:02}")
}

fn add_customers(sandbox: &SandboxHandle) -> Vec<String> {
    (0..CUSTOMERS)
        .map(|c| {
            let id = customer_id(c);
            sandbox.add_user(SandboxUser::new(
                &id,
                format!("Customer {c:02}"),
                format!("customer{c:02}"),
            ));
            id
        })
        .collect()
}

fn inbound_text(c: usize, j: usize) -> String {
    format!("customer {c:02} message {j:02}")
}

fn reply_text(c: usize, j: usize) -> String {
    format!("reply {j:02} to customer {c:02}")
}

/// One webhook delivery carrying several DMs of one customer (X batches events at times).
fn batch_body(business: &str, sender: &str, dms: &[(String, i64, String)]) -> Vec<u8> {
    let events: Vec<_> = dms
        .iter()
        .map(|(id, ts, text)| {
            json!({
                "type": "message_create",
                "id": id,
                "created_timestamp": ts.to_string(),
                "message_create": {
                    "target": {"recipient_id": business},
                    "sender_id": sender,
                    "message_data": {
                        "text": text,
                        "entities": {"hashtags": [], "symbols": [], "user_mentions": [], "urls": []}
                    }
                }
            })
        })
        .collect();
    serde_json::to_vec(&json!({"for_user_id": business, "direct_message_events": events})).unwrap()
}

/// Sets `BURSTS` throttling bursts of `calls` calls on `op`, burst `k` once `progress()` reaches
/// `k · total / (BURSTS + 1)` and the previous burst is used up. Counts the bursts set in
/// `issued`.
fn spawn_bursts(
    sandbox: SandboxHandle,
    op: FaultOp,
    calls: u32,
    reset_after_secs: u64,
    total: u64,
    progress: impl Fn(&SandboxStats) -> u64 + Send + 'static,
    issued: Arc<AtomicU32>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        for k in 1..=BURSTS {
            let threshold = u64::from(k) * total / u64::from(BURSTS + 1);
            // A new burst replaces one still in force: wait for the last one to be used up.
            while progress(&sandbox.stats()) < threshold
                || sandbox.throttle_bursts().iter().any(|b| b.op == op)
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            sandbox.throttle_burst(op, calls, reset_after_secs);
            issued.fetch_add(1, Ordering::SeqCst);
        }
    })
}

/// Stops the burst task (a run that went wrong may never reach its thresholds; the count of
/// bursts issued is asserted instead).
async fn stop_bursts(task: tokio::task::JoinHandle<()>) {
    task.abort();
    if let Err(e) = task.await {
        assert!(e.is_cancelled(), "burst task: {e}");
    }
}

/// Every job of `queue`, by state.
async fn job_states(app: &TestApp, queue: JobQueue) -> BTreeMap<&'static str, usize> {
    let mut states = BTreeMap::new();
    for job in app.bridge.store().jobs(queue, None, 10_000).await.unwrap() {
        *states.entry(job.state.as_str()).or_insert(0) += 1;
    }
    states
}

async fn failed_jobs(app: &TestApp, queue: JobQueue) -> Vec<(String, Option<String>)> {
    app.bridge
        .store()
        .jobs(queue, Some(JobState::Failed), 20)
        .await
        .unwrap()
        .into_iter()
        .map(|j| (j.key.into(), j.last_error))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_dms_reach_connect_once_in_order_through_transient_failures_and_throttling() {
    let app = spawn_app_with(seeded(), fast_delivery).await;
    let customers = add_customers(&app.sandbox);
    let business = app.sandbox.config().x.business.id.clone();

    // 20 % of every Connect call the bridge makes fails: 10 % 5xx, 6 % ThrottlingException, 4 %
    // connection dropped after Connect acted (only the ClientToken stops the retry from acting
    // twice).
    let connect_ops = [
        FaultOp::StartChatContact,
        FaultOp::StartContactStreaming,
        FaultOp::CreateParticipantConnection,
        FaultOp::SendMessage,
    ];
    for op in connect_ops {
        let profile = FaultProfile::errors(0.10)
            .with_throttle_rate(0.06)
            .with_drops(0.04, DropMode::After)
            .with_seed(seed());
        app.sandbox.set_fault_profile(op, profile).unwrap();
    }
    // First chats meet a burst at once; SendMessage meets three during the run.
    app.sandbox
        .throttle_burst(FaultOp::StartChatContact, FIRST_CHATS_BURST_CALLS, 1);
    let issued = Arc::new(AtomicU32::new(0));
    let messages = (CUSTOMERS * (PER_CUSTOMER - 1)) as u64;
    let bursts = spawn_bursts(
        app.sandbox.clone(),
        FaultOp::SendMessage,
        CONNECT_BURST_CALLS,
        1,
        messages,
        |s| s.connect.messages_created,
        Arc::clone(&issued),
    );

    let started = Instant::now();
    let base_ts = xdm_now_ms();
    let mut senders = tokio::task::JoinSet::new();
    for (c, customer) in customers.iter().enumerate() {
        let sandbox = app.sandbox.clone();
        let customer = customer.clone();
        let business = business.clone();
        senders.spawn(async move {
            let dm = |j: usize| {
                (
                    format!("{}", 1_950_000_000_000_000_000_i64 + (c * 100 + j) as i64),
                    base_ts + (j as i64) * 10 + c as i64,
                    inbound_text(c, j),
                )
            };
            let mut j = 0;
            while j < PER_CUSTOMER {
                // Every fifth customer's messages 5–7 come in one delivery, 12–13 in another.
                let batch = match j {
                    5 if c % 5 == 0 => 3,
                    12 if c % 5 == 0 => 2,
                    _ => 1,
                };
                let status = if batch == 1 {
                    let (id, ts, text) = dm(j);
                    let spec = DmSpec::text(customer.clone(), text)
                        .with_event_id(id)
                        .with_timestamp_ms(ts);
                    sandbox.deliver_dm(spec).await.unwrap().status
                } else {
                    let dms: Vec<_> = (j..j + batch).map(dm).collect();
                    let body = batch_body(&business, &customer, &dms);
                    sandbox
                        .deliver_raw(body, SignatureHeader::Valid)
                        .await
                        .unwrap()
                        .status
                };
                assert_eq!(status, Some(200), "delivery of {customer}'s message {j}");
                j += batch;
            }
        });
    }
    while let Some(done) = senders.join_next().await {
        done.unwrap();
    }
    let accepted = started.elapsed();

    // Everything delivered (or parked) under the faults, then faults off and idle.
    app.settle_within(LOAD_WAIT).await;
    let delivered = started.elapsed();
    stop_bursts(bursts).await;
    let pending_bursts = app.sandbox.throttle_bursts();
    let stats = app.sandbox.stats();
    app.sandbox.clear_fault_profiles();
    app.sandbox.clear_throttle_bursts();
    app.settle_within(LOAD_WAIT).await;

    let per_op: Vec<String> = connect_ops
        .iter()
        .map(|op| {
            let s = stats.op(*op);
            format!(
                "{op:?}: {} calls, {} errors, {} throttled, {} dropped after",
                s.calls, s.faults.errors, s.faults.throttled, s.faults.dropped_after
            )
        })
        .collect();
    eprintln!(
        "inbound under faults (seed {}): {} DMs accepted in {accepted:?}, delivered in {delivered:?}; {}; \
         {} SendMessage ClientToken replays; {} messages created; jobs {:?}",
        seed(),
        CUSTOMERS * PER_CUSTOMER,
        per_op.join("; "),
        stats.connect.client_token_replays,
        stats.connect.messages_created,
        job_states(&app, JobQueue::Inbound).await,
    );

    // One chat per customer: a transient failure never opened a second one.
    let contacts = app.sandbox.contacts();
    let mut by_customer: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for contact in &contacts {
        let customer = contact.attributes.get("customerId").cloned();
        by_customer
            .entry(customer.unwrap_or_default())
            .or_default()
            .push(contact);
    }
    for (customer, chats) in &by_customer {
        assert_eq!(
            chats.len(),
            1,
            "customer {customer} has {} chats: {:?}",
            chats.len(),
            chats
                .iter()
                .map(|c| (&c.contact_id, &c.client_token, customer_messages(c).len()))
                .collect::<Vec<_>>()
        );
    }
    assert_eq!(contacts.len(), CUSTOMERS, "one chat per customer");
    // Each chat holds exactly its customer's 20 texts, each once, in order.
    for (c, customer) in customers.iter().enumerate() {
        let chat = by_customer
            .get(customer)
            .and_then(|chats| chats.first())
            .unwrap_or_else(|| panic!("no chat for {customer}"));
        let expected: Vec<String> = (0..PER_CUSTOMER).map(|j| inbound_text(c, j)).collect();
        assert_eq!(customer_messages(chat), expected, "chat of {customer}");
        assert!(chat.customer_connected && is_open(chat));
    }
    // The store agrees: every inbound job done, none failed.
    assert_eq!(failed_jobs(&app, JobQueue::Inbound).await, vec![]);
    assert_eq!(
        job_states(&app, JobQueue::Inbound).await,
        BTreeMap::from([("done", CUSTOMERS * PER_CUSTOMER)])
    );
    // The first message of each chat is its initial message; the other 950 went by SendMessage,
    // each creating one item whatever the retries.
    assert_eq!(stats.connect.messages_created, messages);

    // The faults really happened.
    let sum = |f: fn(&xdm_sandbox::OpStats) -> u64| -> u64 {
        connect_ops.iter().map(|op| f(&stats.op(*op))).sum()
    };
    let calls = sum(|s| s.calls);
    let errors = sum(|s| s.faults.errors);
    let throttled = sum(|s| s.faults.throttled);
    let dropped_after = sum(|s| s.faults.dropped_after);
    assert!(calls >= 1_100, "{calls} Connect calls");
    assert!(errors >= 60, "{errors} 5xx injected");
    let burst_calls = u64::from(FIRST_CHATS_BURST_CALLS + BURSTS * CONNECT_BURST_CALLS);
    assert!(
        throttled >= burst_calls + 30,
        "{throttled} throttled; bursts alone: {burst_calls}"
    );
    assert!(dropped_after >= 15, "{dropped_after} dropped after acting");
    assert!(
        stats.connect.client_token_replays >= 1,
        "drops after SendMessage acted were retried with their ClientToken"
    );
    assert_eq!(issued.load(Ordering::SeqCst), BURSTS);
    assert!(
        pending_bursts.is_empty(),
        "every throttling burst was consumed: {pending_bursts:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_agent_replies_reach_x_once_in_order_through_429_bursts_and_5xx() {
    let app = spawn_app_with(seeded(), fast_delivery).await;
    let customers = add_customers(&app.sandbox);

    // 50 chats, opened without faults.
    let mut openers = tokio::task::JoinSet::new();
    for customer in &customers {
        let sandbox = app.sandbox.clone();
        let spec = DmSpec::text(customer.clone(), "hello");
        openers.spawn(async move { sandbox.deliver_dm(spec).await.unwrap().status });
    }
    while let Some(status) = openers.join_next().await {
        assert_eq!(status.unwrap(), Some(200));
    }
    let chats: Vec<String> = app
        .sandbox
        .wait_until("50 connected chats", LOAD_WAIT, |sb| {
            let by_customer: BTreeMap<String, String> = sb
                .contacts()
                .into_iter()
                .filter(|c| c.customer_connected)
                .filter_map(|c| Some((c.attributes.get("customerId")?.clone(), c.contact_id)))
                .collect();
            customers
                .iter()
                .map(|id| by_customer.get(id).cloned())
                .collect::<Option<Vec<_>>>()
        })
        .await
        .unwrap();
    for (c, chat) in chats.iter().enumerate() {
        app.sandbox
            .agent_accept(chat, &format!("Agent {c:02}"))
            .unwrap();
    }
    app.settle_within(LOAD_WAIT).await;
    assert_eq!(app.sandbox.contacts().len(), CUSTOMERS);
    assert!(app.sandbox.sent_dms().is_empty());
    app.sandbox.reset_stats();

    // X: 8 % of the DM sends answer 503; three bursts of 429 with a reset one second away. (No
    // drops after X acted: X has no idempotency key, that window is covered elsewhere.)
    app.sandbox
        .set_fault_profile(
            FaultOp::CreateDm,
            FaultProfile::errors(0.08).with_seed(seed()),
        )
        .unwrap();
    let total = (CUSTOMERS * PER_CUSTOMER) as u64;
    let issued = Arc::new(AtomicU32::new(0));
    let bursts = spawn_bursts(
        app.sandbox.clone(),
        FaultOp::CreateDm,
        X_BURST_CALLS,
        1,
        total,
        |s| s.x.dms_created,
        Arc::clone(&issued),
    );

    // The agents answer: 20 replies per chat, round by round across the chats.
    let started = Instant::now();
    for j in 0..PER_CUSTOMER {
        for (c, chat) in chats.iter().enumerate() {
            app.sandbox
                .agent_send(chat, &reply_text(c, j), "text/plain")
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sent = started.elapsed();
    let total_usize = CUSTOMERS * PER_CUSTOMER;
    app.sandbox
        .wait_until("1,000 DMs", LOAD_WAIT, |sb| {
            (sb.sent_dms().len() >= total_usize).then_some(())
        })
        .await
        .unwrap();
    app.settle_within(LOAD_WAIT).await;
    let delivered = started.elapsed();
    stop_bursts(bursts).await;
    let pending_bursts = app.sandbox.throttle_bursts();
    let stats = app.sandbox.stats();
    app.sandbox.clear_fault_profiles();
    app.sandbox.clear_throttle_bursts();
    app.settle_within(LOAD_WAIT).await;

    let op = stats.op(FaultOp::CreateDm);
    eprintln!(
        "outbound under faults (seed {}): {total} replies sent by agents in {sent:?}, delivered in \
         {delivered:?}; CreateDm: {} calls, {} 503s injected, {} 429s ({} throttled); {} DMs; \
         SNS deliveries {}; jobs {:?}",
        seed(),
        op.calls,
        op.faults.errors,
        op.status_429,
        op.faults.throttled,
        stats.x.dms_created,
        app.sandbox.sns_deliveries().len(),
        job_states(&app, JobQueue::Outbound).await,
    );

    // Each reply exactly once, to the right customer, in per-chat order.
    let dms = app.sandbox.sent_dms();
    let mut by_customer: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for dm in &dms {
        by_customer
            .entry(dm.recipient_id.clone())
            .or_default()
            .push(dm.text.clone().unwrap_or_default());
    }
    for (c, customer) in customers.iter().enumerate() {
        let expected: Vec<String> = (0..PER_CUSTOMER).map(|j| reply_text(c, j)).collect();
        assert_eq!(
            by_customer.get(customer),
            Some(&expected),
            "DMs to {customer}"
        );
    }
    assert_eq!(dms.len(), total_usize, "no other DM was sent");
    // Every outbound job done.
    assert_eq!(failed_jobs(&app, JobQueue::Outbound).await, vec![]);
    assert_eq!(
        job_states(&app, JobQueue::Outbound).await,
        BTreeMap::from([("done", total_usize)])
    );
    assert!(
        app.sandbox.sns_deliveries().iter().all(|d| d.delivered),
        "SNS lost nothing"
    );

    // The faults really happened.
    let burst_calls = u64::from(BURSTS * X_BURST_CALLS);
    assert_eq!(issued.load(Ordering::SeqCst), BURSTS);
    assert!(
        pending_bursts.is_empty(),
        "every 429 burst was consumed: {pending_bursts:?}"
    );
    assert_eq!(op.faults.throttled, burst_calls);
    assert_eq!(op.status_429, burst_calls);
    assert!(op.faults.errors >= 40, "{} 503s injected", op.faults.errors);
    assert_eq!(stats.x.dms_created, total);
    assert_eq!(op.calls, total + op.faults.total());
    app.stop().await;
}

fn xdm_now_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(now.as_millis()).unwrap()
}
