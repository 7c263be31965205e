//! The crash test: the real binary is killed with SIGKILL at random moments of a steady stream
//! of traffic in both directions, and started again on the same port and SQLite file, ten
//! times. One sandbox outlives every restart and records what reached each side: every message a
//! customer got a 200 for must be in its chat exactly once and in order, every agent reply the
//! bridge accepted must reach X exactly once and in order, nothing else may be sent, and no job
//! may be failed.
//!
//! One more customer writes on encrypted X Chat, played by X's own Chat SDK
//! (`scripts/xchat_customer.py`): the same judgement holds for what the bridge opened into her
//! chat and for what X's SDK reads (signatures checked) of the replies the bridge sealed for her.
//! The bridge runs with its own crates' logs at TRACE, and the X Chat key blob must appear
//! nowhere in them.
//!
//! The kill schedule and the traffic's pacing come from a seeded PRNG; the seed is printed and
//! `XDM_CRASH_SEED=<seed>` runs the same schedule again (timings still vary from run to run).
//! Run it with `--nocapture` to see the rounds and the totals.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use tokio::task::JoinHandle;
use xdm_core::jobs::{JobQueue, JobState};
use xdm_core::ports::Store;
use xdm_sandbox::{
    ChatEventKind, DmSpec, Sandbox, SandboxConfig, SandboxHandle, SandboxUser, SnsDelivery,
    SnsMessageType,
};
use xdm_store::SqliteStore;

use crate::bridge_process::{BridgeLog, ServeOptions, free_port, serve_with, wait_healthy};
use crate::helpers::*;

const ROUNDS: usize = 10;
const CUSTOMERS: usize = 10;
/// How long each round's bridge runs before the kill, in ms (uniform).
const UPTIME_MS: (u64, u64) = (300, 1_500);
/// How long the bridge stays dead before it is started again, in ms (uniform).
const DOWNTIME_MS: (u64, u64) = (0, 300);
/// A customer's pause between two messages, in ms (uniform).
const CUSTOMER_PAUSE_MS: (u64, u64) = (150, 600);
/// An agent's pause between two replies, in ms (uniform).
const AGENT_PAUSE_MS: (u64, u64) = (300, 900);
/// The sandbox's SNS delivery retries a notification that got no 2xx (refused connection,
/// reset, error status) `retries` times `retry_delay_ms` apart (default 3 × 1 s; real SNS's
/// default policy: 3 retries 20 s apart), one chat's notifications in order, the later ones
/// waiting; then it gives up on it (`delivered: false`) and goes on. Here 8 retries 250 ms apart
/// outlast a restart; a notification that still runs out of them is redelivered by the test
/// (`SandboxHandle::redeliver`), as a longer SNS retry policy would.
const SNS_RETRIES: u32 = 8;
const SNS_RETRY_DELAY_MS: u64 = 250;
/// Give up on anything (a delivery getting its 200, the bridge settling) after this long.
const GIVE_UP: Duration = Duration::from_secs(60);
/// The store and the sandbox must stay unchanged this long before the final counts are taken.
const QUIET: Duration = Duration::from_secs(1);

/// SplitMix64: small, seedable, good enough to spread kill points.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, (lo, hi): (u64, u64)) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    fn fork(&mut self) -> Rng {
        Rng(self.next_u64())
    }
}

fn seed() -> u64 {
    match std::env::var("XDM_CRASH_SEED") {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("XDM_CRASH_SEED={s:?} is not a u64")),
        Err(_) => {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
            now.as_secs() ^ u64::from(now.subsec_nanos()).rotate_left(32)
        }
    }
}

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn customer_id(i: usize) -> String {
    format!("40000000{i:02}")
}

/// The customer on X Chat: after the DM customers.
const CHAT: usize = CUSTOMERS;
/// Her pause between two messages (each is a run of X's SDK: a few hundred ms of its own).
const CHAT_PAUSE_MS: (u64, u64) = (100, 400);

fn sleep_ms(ms: u64) -> tokio::time::Sleep {
    tokio::time::sleep(Duration::from_millis(ms))
}

/// What the drivers did, as X and the agents see it.
#[derive(Default)]
struct Ledger {
    /// Per customer: the texts X got a 200 for, in the order they were sent.
    accepted: Vec<Vec<String>>,
    /// Webhook POSTs, and those not answered 200 (refused connection, reset, error status).
    posts: u64,
    unanswered_posts: u64,
    /// Messages that needed more than one POST.
    retried_messages: u64,
    /// Per customer: the agent's replies in the customer's chat (chat item Id, text), in order.
    replies: Vec<Vec<(String, String)>>,
    /// SNS notifications the test redelivered after the sandbox's retries ran out.
    redeliveries: Vec<String>,
    /// When each bridge process started answering (`/healthz` 200) and when it was killed, in
    /// Unix ms: process `n` (1-based) ran from `starts[n-1]` to `kills[n-1]`.
    starts: Vec<i64>,
    kills: Vec<i64>,
}

impl Ledger {
    fn new() -> Self {
        Self {
            accepted: vec![Vec::new(); CUSTOMERS + 1],
            replies: vec![Vec::new(); CUSTOMERS + 1],
            ..Self::default()
        }
    }

    /// Where `at_ms` (Unix ms, e.g. when X recorded a DM) falls among the bridge's starts
    /// (`/healthz` 200; a process resumes its predecessor's jobs just before) and kills.
    fn when(&self, at_ms: i64) -> String {
        let mut timeline: Vec<(i64, String)> = self
            .starts
            .iter()
            .enumerate()
            .map(|(n, t)| (*t, format!("process {} was healthy", n + 1)))
            .chain(
                self.kills
                    .iter()
                    .enumerate()
                    .map(|(n, t)| (*t, format!("kill -9 of process {}", n + 1))),
            )
            .collect();
        timeline.sort();
        let before = timeline.iter().rev().find(|(t, _)| *t <= at_ms);
        let after = timeline.iter().find(|(t, _)| *t > at_ms);
        let mut parts = Vec::new();
        if let Some((t, what)) = before {
            parts.push(format!("{} ms after {what}", at_ms - t));
        }
        if let Some((t, what)) = after {
            parts.push(format!("{} ms before {what}", t - at_ms));
        }
        parts.join(", ")
    }
}

type Shared = Arc<Mutex<Ledger>>;

/// One customer DMing the business: numbered messages, each POSTed again (same event, same
/// payload, as X retries) until the bridge answers 200, the next one only after that.
async fn customer(
    i: usize,
    sandbox: SandboxHandle,
    stop: Arc<AtomicBool>,
    ledger: Shared,
    mut rng: Rng,
) {
    let id = customer_id(i);
    let mut last_ts = 0;
    for n in 1.. {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let text = format!("c{i} #{n}");
        let ts = now_ms().max(last_ts + 1);
        last_ts = ts;
        let mut event_id: Option<String> = None;
        let started = Instant::now();
        let mut posts = 0;
        loop {
            let mut spec = DmSpec::text(&id, &text).with_timestamp_ms(ts);
            if let Some(e) = &event_id {
                spec = spec.with_event_id(e);
            }
            let d = sandbox.deliver_dm(spec).await.unwrap();
            posts += 1;
            if event_id.is_none() {
                event_id = d.event_id.clone();
            }
            if d.status == Some(200) {
                break;
            }
            assert!(
                started.elapsed() < GIVE_UP,
                "gave up: {posts} deliveries of {text:?} were never answered 200 (last: {:?} {:?})",
                d.status,
                d.error
            );
            sleep_ms(50).await;
        }
        {
            let mut l = ledger.lock().unwrap();
            l.accepted[i].push(text);
            l.posts += posts;
            l.unanswered_posts += posts - 1;
            if posts > 1 {
                l.retried_messages += 1;
            }
        }
        sleep_ms(rng.range(CUSTOMER_PAUSE_MS)).await;
    }
}

/// The customer on X Chat: each message sealed and sent by X's SDK (X stores it), then delivered
/// to the bridge again (as X retries) until it answers 200 — the bridge may have been down when
/// X first delivered it.
async fn chat_customer(
    state: String,
    business: String,
    sandbox: SandboxHandle,
    stop: Arc<AtomicBool>,
    ledger: Shared,
    mut rng: Rng,
) {
    for n in 1.. {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let text = format!("x #{n}");
        let sent = chatxdk_customer(&[
            "send", "--state", &state, "--to", &business, "--text", &text,
        ])
        .await
        .unwrap();
        let message_id = sent["message_id"].as_str().unwrap().to_owned();
        let events = sandbox.chat_events();
        let message = events.iter().find(|e| e.message_id == message_id).unwrap();
        let key_change = events
            .iter()
            .find(|e| {
                e.kind == ChatEventKind::KeyChange
                    && e.conversation_key_version == message.conversation_key_version
            })
            .unwrap();
        let payload = serde_json::json!({
            "id": message.message_id, "sender_id": message.sender_id,
            "created_at_msec": message.created_at_msec.to_string(),
            "conversation_id": message.conversation_id, "encoded_event": message.encoded_event,
            "conversation_key_version": message.conversation_key_version,
            "conversation_key_change_event": key_change.encoded_event,
        });
        let started = Instant::now();
        let mut posts = 0;
        loop {
            let d = sandbox
                .deliver_chat_raw(&business, "chat.received", payload.clone())
                .await
                .unwrap();
            posts += 1;
            if d.status == Some(200) {
                break;
            }
            assert!(
                started.elapsed() < GIVE_UP,
                "gave up: {text:?} was never answered 200 ({:?} {:?})",
                d.status,
                d.error
            );
            sleep_ms(50).await;
        }
        {
            let mut l = ledger.lock().unwrap();
            l.accepted[CHAT].push(text);
            l.posts += posts;
            l.unanswered_posts += posts - 1;
            if posts > 1 {
                l.retried_messages += 1;
            }
        }
        sleep_ms(rng.range(CHAT_PAUSE_MS)).await;
    }
}

/// What X's SDK reads of the business's messages to the X Chat customer (signatures checked),
/// in order.
async fn chat_replies(state: &str, business: &str) -> Vec<String> {
    let read = chatxdk_customer(&["receive", "--state", state, "--peer", business])
        .await
        .unwrap();
    assert_eq!(
        read["errors"],
        serde_json::json!({}),
        "X's SDK refused: {read}"
    );
    read["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["sender_id"] == business)
        .map(|m| {
            assert_eq!(m["verified"], true, "{m}");
            m["text"].as_str().unwrap_or_default().to_owned()
        })
        .collect()
}

/// The bridge's messages on X Chat.
fn chat_sent(sandbox: &SandboxHandle, business: &str) -> usize {
    sandbox
        .chat_events()
        .iter()
        .filter(|e| e.kind == ChatEventKind::Message && e.sender_id == business)
        .count()
}

/// The agent of customer `i`'s chat: accepts it once it exists, then replies at its own pace.
async fn agent(
    i: usize,
    sandbox: SandboxHandle,
    stop: Arc<AtomicBool>,
    ledger: Shared,
    mut rng: Rng,
) {
    let Some(contact_id) =
        accept_when_open(&sandbox, &customer_id(i), &format!("Agent {i}"), &stop).await
    else {
        return;
    };
    for k in 1.. {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let text = format!("a{i} #{k}");
        let item = sandbox
            .agent_send(&contact_id, &text, "text/plain")
            .unwrap();
        ledger.lock().unwrap().replies[i].push((item.item.id.clone(), text));
        sleep_ms(rng.range(AGENT_PAUSE_MS)).await;
    }
}

fn is_notification(d: &SnsDelivery) -> bool {
    d.message_type == SnsMessageType::Notification
}

/// Redelivers every notification whose retries ran out without a 2xx, until `done`.
async fn sns_redeliverer(sandbox: SandboxHandle, done: Arc<AtomicBool>, ledger: Shared) {
    let spent = usize::try_from(SNS_RETRIES).unwrap() + 1;
    while !done.load(Ordering::SeqCst) {
        let exhausted: Vec<SnsDelivery> = sandbox
            .sns_deliveries()
            .into_iter()
            .filter(|d| is_notification(d) && !d.delivered && d.attempts.len() >= spent)
            .collect();
        for d in exhausted {
            let attempts = sandbox.redeliver(&d.message_id).await.unwrap();
            ledger.lock().unwrap().redeliveries.push(format!(
                "{} (item {:?}): {:?}",
                d.message_id,
                d.item_id,
                attempts.last().map(|a| a.status)
            ));
        }
        sleep_ms(200).await;
    }
}

/// Customer messages per customer as they are in Connect: one list per chat of that customer.
fn connect_messages(sandbox: &SandboxHandle) -> BTreeMap<String, Vec<Vec<String>>> {
    let mut by_customer: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
    for c in sandbox.contacts() {
        let customer = c
            .attributes
            .get("customerId")
            .cloned()
            .unwrap_or_else(|| format!("(no customerId: contact {})", c.contact_id));
        by_customer
            .entry(customer)
            .or_default()
            .push(customer_messages(&c));
    }
    by_customer
}

/// DM texts X accepted, per recipient, in order.
fn x_messages(sandbox: &SandboxHandle) -> BTreeMap<String, Vec<String>> {
    let mut by_recipient: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for dm in sandbox.sent_dms() {
        by_recipient
            .entry(dm.recipient_id.clone())
            .or_default()
            .push(dm.text.clone().unwrap_or_else(|| "(no text)".to_owned()));
    }
    by_recipient
}

/// How many of the agent's replies the bridge accepted (some SNS attempt got a 2xx).
fn replies_accepted(sandbox: &SandboxHandle, ledger: &Shared) -> usize {
    let delivered: HashSet<String> = sandbox
        .sns_deliveries()
        .into_iter()
        .filter(|d| is_notification(d) && d.delivered)
        .filter_map(|d| d.item_id)
        .collect();
    let l = ledger.lock().unwrap();
    l.replies
        .iter()
        .flatten()
        .filter(|(id, _)| delivered.contains(id))
        .count()
}

/// How `got` differs from `expected` (each expected entry once, in that order).
#[derive(Debug, Default, PartialEq, Eq)]
struct Comparison {
    delivered: usize,
    missing: Vec<String>,
    duplicates: Vec<String>,
    out_of_order: Vec<String>,
    unexpected: Vec<String>,
}

impl Comparison {
    fn of(expected: &[String], got: &[String]) -> Self {
        let position: HashMap<&str, usize> = expected
            .iter()
            .enumerate()
            .map(|(n, t)| (t.as_str(), n))
            .collect();
        let mut c = Comparison::default();
        let mut seen = HashSet::new();
        let mut last: Option<usize> = None;
        for text in got {
            let Some(&p) = position.get(text.as_str()) else {
                c.unexpected.push(text.clone());
                continue;
            };
            if !seen.insert(p) {
                c.duplicates.push(text.clone());
                continue;
            }
            if last.is_some_and(|l| p < l) {
                c.out_of_order.push(text.clone());
            }
            last = Some(last.map_or(p, |l| l.max(p)));
        }
        c.delivered = seen.len();
        c.missing = expected
            .iter()
            .enumerate()
            .filter(|(n, _)| !seen.contains(n))
            .map(|(_, t)| t.clone())
            .collect();
        c
    }

    fn add(&mut self, c: &Comparison) {
        self.delivered += c.delivered;
        self.missing.extend(c.missing.iter().cloned());
        self.duplicates.extend(c.duplicates.iter().cloned());
        self.out_of_order.extend(c.out_of_order.iter().cloned());
        self.unexpected.extend(c.unexpected.iter().cloned());
    }

    fn is_exact(&self) -> bool {
        self.missing.is_empty()
            && self.duplicates.is_empty()
            && self.out_of_order.is_empty()
            && self.unexpected.is_empty()
    }
}

/// Counts that must stop changing before the end state is judged.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Progress {
    in_connect: usize,
    on_x: usize,
    sns_undelivered: usize,
    open_jobs: usize,
    failed_jobs: usize,
}

async fn progress(sandbox: &SandboxHandle, store: &SqliteStore, business: &str) -> Progress {
    let mut open_jobs = 0;
    let mut failed_jobs = 0;
    for q in JobQueue::ALL {
        for s in [JobState::Pending, JobState::Processing] {
            open_jobs += store.jobs(q, Some(s), 100_000).await.unwrap().len();
        }
        failed_jobs += store
            .jobs(q, Some(JobState::Failed), 100_000)
            .await
            .unwrap()
            .len();
    }
    Progress {
        in_connect: connect_messages(sandbox)
            .values()
            .flatten()
            .map(Vec::len)
            .sum(),
        on_x: sandbox.sent_dms().len() + chat_sent(sandbox, business),
        sns_undelivered: sandbox
            .sns_deliveries()
            .iter()
            .filter(|d| !d.delivered)
            .count(),
        open_jobs,
        failed_jobs,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_points_loses_doubles_and_reorders_nothing() {
    let seed = seed();
    println!("crash test: seed {seed} (XDM_CRASH_SEED={seed} runs this kill schedule again)");
    let mut rng = Rng(seed);

    let mut sandbox_config = SandboxConfig::default();
    sandbox_config.sns.retries = SNS_RETRIES;
    sandbox_config.sns.retry_delay_ms = SNS_RETRY_DELAY_MS;
    let sandbox = Sandbox::start(sandbox_config).await.unwrap();
    for i in 0..CUSTOMERS {
        sandbox.add_user(SandboxUser::new(
            customer_id(i),
            format!("Customer {i}"),
            format!("customer{i}"),
        ));
    }
    sandbox.add_user(SandboxUser::new(
        customer_id(CHAT),
        "Customer on X Chat",
        "chat_customer",
    ));
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bridge.db");
    let log = BridgeLog::new(dir.path().join("bridge.log"));
    let port = free_port();
    let business = sandbox.config().x.business.id.clone();
    let (chat_keys, chat_key_version) = register_chat_keys(&sandbox, &business).await;
    let env = [
        ("XDM_RETRY_BASE_MS", "20"),
        ("XDM_REORDER_WINDOW_MS", "50"),
        ("XDM_X_CHAT_KEYS", chat_keys.as_str()),
        ("XDM_X_CHAT_KEY_VERSION", chat_key_version.as_str()),
        // Every line the bridge's own code logs, to look for key material in.
        (
            "RUST_LOG",
            "info,xdm_x=trace,xdm_core=trace,xdm_app=trace,xdm_xchat=trace,xdm_store=trace",
        ),
    ];
    let options = ServeOptions {
        env: &env,
        log: Some(log.path()),
    };

    let ledger: Shared = Arc::new(Mutex::new(Ledger::new()));
    log.mark("start 1");
    let mut bridge = serve_with(&sandbox, port, &db, &options);
    wait_healthy(port).await;
    ledger.lock().unwrap().starts.push(now_ms());
    let base = format!("http://127.0.0.1:{port}");
    link_sandbox(&sandbox, &base).await;
    let webhook = sandbox.webhooks().into_iter().next().unwrap();
    sandbox
        .subscribe_activity("chat.received", &business, Some(&webhook.id), None)
        .unwrap();
    let chat_state = dir.path().join("chat-customer.json");
    let chat_state = chat_state.to_str().unwrap().to_owned();
    let token = sandbox
        .issue_oauth2_token(&customer_id(CHAT), &CHAT_SCOPES)
        .access_token;
    chatxdk_customer(&[
        "init",
        "--api",
        &sandbox.base_url(),
        "--token",
        &token,
        "--user-id",
        &customer_id(CHAT),
        "--state",
        &chat_state,
    ])
    .await
    .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let settled = Arc::new(AtomicBool::new(false));
    let mut drivers: Vec<JoinHandle<()>> = Vec::new();
    for i in 0..CUSTOMERS {
        drivers.push(tokio::spawn(customer(
            i,
            sandbox.clone(),
            Arc::clone(&stop),
            Arc::clone(&ledger),
            rng.fork(),
        )));
        drivers.push(tokio::spawn(agent(
            i,
            sandbox.clone(),
            Arc::clone(&stop),
            Arc::clone(&ledger),
            rng.fork(),
        )));
    }
    drivers.push(tokio::spawn(chat_customer(
        chat_state.clone(),
        business.clone(),
        sandbox.clone(),
        Arc::clone(&stop),
        Arc::clone(&ledger),
        rng.fork(),
    )));
    drivers.push(tokio::spawn(agent(
        CHAT,
        sandbox.clone(),
        Arc::clone(&stop),
        Arc::clone(&ledger),
        rng.fork(),
    )));
    let redeliverer = tokio::spawn(sns_redeliverer(
        sandbox.clone(),
        Arc::clone(&settled),
        Arc::clone(&ledger),
    ));

    for round in 1..=ROUNDS {
        let uptime = rng.range(UPTIME_MS);
        let downtime = rng.range(DOWNTIME_MS);
        sleep_ms(uptime).await;
        bridge.kill_9();
        log.mark(&format!("kill -9 {round} after {uptime} ms"));
        let (accepted, replies) = {
            let mut l = ledger.lock().unwrap();
            l.kills.push(now_ms());
            (
                l.accepted.iter().map(Vec::len).sum::<usize>(),
                l.replies.iter().map(Vec::len).sum::<usize>(),
            )
        };
        let in_connect: usize = connect_messages(&sandbox)
            .values()
            .flatten()
            .map(Vec::len)
            .sum();
        println!(
            "round {round:>2}: seed {seed}, killed {uptime:>4} ms after healthy, down {downtime:>3} ms; \
             inbound accepted {accepted:>4} (in Connect {in_connect:>4}); \
             outbound sent {replies:>4}, accepted {:>4} (on X {:>4})",
            replies_accepted(&sandbox, &ledger),
            sandbox.sent_dms().len() + chat_sent(&sandbox, &business),
        );
        sleep_ms(downtime).await;
        log.mark(&format!("start {}", round + 1));
        bridge = serve_with(&sandbox, port, &db, &options);
        wait_healthy(port).await;
        ledger.lock().unwrap().starts.push(now_ms());
    }

    // The traffic stops (each driver finishes the message in hand); the bridge stays up.
    stop.store(true, Ordering::SeqCst);
    for d in drivers {
        d.await.unwrap();
    }
    let (expected_in, expected_out) = {
        let l = ledger.lock().unwrap();
        (
            l.accepted.clone(),
            l.replies
                .iter()
                .map(|r| r.iter().map(|(_, t)| t.clone()).collect::<Vec<_>>())
                .collect::<Vec<_>>(),
        )
    };
    let total_in: usize = expected_in.iter().map(Vec::len).sum();
    let total_out: usize = expected_out.iter().map(Vec::len).sum();

    // Settled: everything expected arrived, nothing is open, and nothing changed for QUIET.
    let store = SqliteStore::open(&db).await.unwrap();
    let started = Instant::now();
    let mut last: Option<(Progress, Instant)> = None;
    let final_progress = loop {
        let p = progress(&sandbox, &store, &business).await;
        let complete = p.in_connect >= total_in
            && p.on_x >= total_out
            && p.open_jobs == 0
            && p.sns_undelivered == 0;
        match &last {
            Some((q, since)) if *q == p && complete && since.elapsed() >= QUIET => break Some(p),
            Some((q, _)) if *q == p => {}
            _ => last = Some((p.clone(), Instant::now())),
        }
        if started.elapsed() > GIVE_UP {
            println!("gave up waiting for the bridge to settle after {GIVE_UP:?}: {p:?}");
            break None;
        }
        sleep_ms(100).await;
    };
    settled.store(true, Ordering::SeqCst);
    redeliverer.await.unwrap();

    // Judge against the sandbox's records.
    let in_connect = connect_messages(&sandbox);
    let on_x = x_messages(&sandbox);
    let mut problems = Vec::new();
    let mut inbound_total = Comparison::default();
    let mut outbound_total = Comparison::default();
    for i in 0..CUSTOMERS {
        let id = customer_id(i);
        let chats = in_connect.get(&id).cloned().unwrap_or_default();
        if chats.len() != 1 {
            problems.push(format!(
                "customer {i} has {} chats, expected 1",
                chats.len()
            ));
        }
        let got: Vec<String> = chats.into_iter().flatten().collect();
        let c = Comparison::of(&expected_in[i], &got);
        if !c.is_exact() {
            problems.push(format!("inbound, customer {i}: {c:?}"));
        }
        inbound_total.add(&c);

        let got = on_x.get(&id).cloned().unwrap_or_default();
        let c = Comparison::of(&expected_out[i], &got);
        if !c.is_exact() {
            problems.push(format!("outbound, customer {i}: {c:?}"));
        }
        outbound_total.add(&c);
    }
    {
        // The customer on X Chat: her chat as for the others; the replies as X's SDK reads them.
        let id = customer_id(CHAT);
        let chats = in_connect.get(&id).cloned().unwrap_or_default();
        if chats.len() != 1 {
            problems.push(format!(
                "the X Chat customer has {} chats, expected 1",
                chats.len()
            ));
        }
        let got: Vec<String> = chats.into_iter().flatten().collect();
        let c = Comparison::of(&expected_in[CHAT], &got);
        if !c.is_exact() {
            problems.push(format!("inbound, X Chat customer: {c:?}"));
        }
        inbound_total.add(&c);
        let got = chat_replies(&chat_state, &business).await;
        println!(
            "X Chat: the customer sent {}, her chat holds {}; the agent sent {}, X's SDK read {}",
            expected_in[CHAT].len(),
            c.delivered,
            expected_out[CHAT].len(),
            got.len()
        );
        let c = Comparison::of(&expected_out[CHAT], &got);
        if !c.is_exact() {
            problems.push(format!("outbound, X Chat customer: {c:?}"));
        }
        outbound_total.add(&c);
        if on_x.contains_key(&id) {
            problems.push(format!("DMs to the X Chat customer: {:?}", on_x[&id]));
        }
    }
    let logged = std::fs::read_to_string(log.path()).unwrap_or_default();
    let blob = base64::engine::general_purpose::STANDARD
        .decode(&chat_keys)
        .unwrap();
    let scalar_hex: String = blob[..32].iter().map(|b| format!("{b:02x}")).collect();
    if logged.contains(&chat_keys) || logged.contains(&scalar_hex) {
        problems.push("the X Chat key blob is in the bridge's log".to_owned());
    }
    if !logged.contains("sending an X Chat message") {
        problems.push("the bridge's log has no X Chat send: were its DEBUG lines on?".to_owned());
    }
    let customers: HashSet<String> = (0..=CUSTOMERS).map(customer_id).collect();
    for (who, chats) in &in_connect {
        if !customers.contains(who) {
            problems.push(format!("chats of an unknown customer {who}: {chats:?}"));
        }
    }
    for (who, dms) in &on_x {
        if !customers.contains(who) {
            problems.push(format!("DMs to an unknown recipient {who}: {dms:?}"));
        }
    }
    let mut failed = Vec::new();
    for q in JobQueue::ALL {
        for job in store
            .jobs(q, Some(JobState::Failed), 100_000)
            .await
            .unwrap()
        {
            failed.push(format!("{q:?} {} ({:?})", job.key, job.last_error));
        }
    }
    if !failed.is_empty() {
        problems.push(format!("failed jobs: {failed:?}"));
    }
    let accepted_out = replies_accepted(&sandbox, &ledger);
    if accepted_out != total_out {
        problems.push(format!(
            "the bridge accepted {accepted_out} of the agent's {total_out} replies"
        ));
    }
    if final_progress.is_none() {
        problems.push(format!(
            "the bridge did not settle within {GIVE_UP:?} after the traffic stopped"
        ));
    }

    let sns_failed_attempts: usize = sandbox
        .sns_deliveries()
        .iter()
        .filter(|d| is_notification(d))
        .flat_map(|d| &d.attempts)
        .filter(|a| !a.status.is_some_and(|s| (200..300).contains(&s)))
        .count();
    let l = ledger.lock().unwrap();
    let unanswered_posts = l.unanswered_posts;
    println!(
        "crash test, seed {seed}: {ROUNDS} kill -9 rounds, {CUSTOMERS} customers on DMs and one on X Chat\n\
         inbound:  sent {total_in}, accepted (answered 200) {total_in}, in Connect {} \
         ({} webhook POSTs, {} not answered 200, {} messages needed a retry)\n\
         outbound: sent {total_out}, accepted by the bridge {}, on X {} \
         ({sns_failed_attempts} SNS attempts failed, {} redeliveries after the retries ran out)\n\
         duplicates {} (inbound {}, outbound {}), out of order {} (inbound {}, outbound {}), \
         missing {}, unexpected {}, failed jobs {}",
        inbound_total.delivered,
        l.posts,
        l.unanswered_posts,
        l.retried_messages,
        accepted_out,
        outbound_total.delivered,
        l.redeliveries.len(),
        inbound_total.duplicates.len() + outbound_total.duplicates.len(),
        inbound_total.duplicates.len(),
        outbound_total.duplicates.len(),
        inbound_total.out_of_order.len() + outbound_total.out_of_order.len(),
        inbound_total.out_of_order.len(),
        outbound_total.out_of_order.len(),
        inbound_total.missing.len() + outbound_total.missing.len(),
        inbound_total.unexpected.len() + outbound_total.unexpected.len(),
        failed.len(),
    );
    if !l.redeliveries.is_empty() {
        println!("redelivered: {:?}", l.redeliveries);
    }
    if !outbound_total.duplicates.is_empty() {
        println!(
            "outbound duplicates: when X recorded each copy (a request in flight at a kill is \
             recorded by X up to a few ms after it):"
        );
        let item_ids: HashMap<&str, &str> = l
            .replies
            .iter()
            .flatten()
            .map(|(id, text)| (text.as_str(), id.as_str()))
            .collect();
        let dms = sandbox.sent_dms();
        for text in &outbound_total.duplicates {
            let copies: Vec<String> = dms
                .iter()
                .filter(|d| d.text.as_deref() == Some(text.as_str()))
                .map(|d| l.when(d.created_timestamp_ms))
                .collect();
            println!(
                "  {text:?} (chat item {}): {}",
                item_ids.get(text.as_str()).unwrap_or(&"?"),
                copies.join("; ")
            );
        }
    }
    drop(l);
    assert!(
        problems.is_empty(),
        "the crash test found (seed {seed}):\n{}",
        problems.join("\n")
    );
    // The kills hit traffic in both directions (else the test above proves nothing).
    assert!(total_in > 0 && total_out > 0, "no traffic was sent");
    assert!(
        !expected_in[CHAT].is_empty() && !expected_out[CHAT].is_empty(),
        "no X Chat traffic was sent"
    );
    assert!(
        unanswered_posts > 0,
        "no webhook delivery ever went unanswered: the kills missed the inbound stream"
    );
    assert!(
        sns_failed_attempts > 0,
        "no SNS attempt ever failed: the kills missed the outbound stream"
    );

    bridge.kill_9();
    sandbox.shutdown();
}

/// The business account's X Chat keys, made and registered with the sandbox's X as
/// `x chat-keys init` does: (blob, version) for `XDM_X_CHAT_KEYS` / `XDM_X_CHAT_KEY_VERSION`.
async fn register_chat_keys(sandbox: &SandboxHandle, business: &str) -> (String, String) {
    use base64::Engine;
    let config =
        xdm_app::sandbox_link::bridge_config(sandbox, "127.0.0.1:0", "sqlite::memory:").unwrap();
    let client = xdm_app::wiring::x_client(&config, None).unwrap();
    let keys = xdm_xchat::ChatKeys::generate();
    let business = xdm_core::ids::XUserId::parse(business.to_owned()).unwrap();
    let version =
        xdm_x::chat::register_public_keys(&client, &business, &keys, &now_ms().to_string())
            .await
            .unwrap();
    (
        base64::engine::general_purpose::STANDARD.encode(keys.to_blob()),
        version,
    )
}

/// The judge itself: each way a stream can go wrong is reported.
#[test]
fn comparison_reports_missing_duplicate_reordered_and_unexpected_messages() {
    let s = |v: &[&str]| v.iter().map(|t| (*t).to_owned()).collect::<Vec<_>>();
    let expected = s(&["1", "2", "3", "4"]);
    assert!(Comparison::of(&expected, &expected).is_exact());
    let c = Comparison::of(&expected, &s(&["1", "3", "2", "3", "x"]));
    assert_eq!(
        c,
        Comparison {
            delivered: 3,
            missing: s(&["4"]),
            duplicates: s(&["3"]),
            out_of_order: s(&["2"]),
            unexpected: s(&["x"]),
        }
    );
    assert!(!c.is_exact());
}
