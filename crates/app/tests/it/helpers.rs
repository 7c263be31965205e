//! `spawn_app()`: a sandbox and a bridge on port 0, wired like `demo`, one SQLite file each.

use std::sync::Arc;
use std::time::Duration;

use xdm_app::config::Config;
use xdm_app::sandbox_link::LinkedBridge;
use xdm_app::wiring::AppBridge;
use xdm_core::jobs::{JobQueue, JobState};
use xdm_core::ports::Store;
use xdm_sandbox::{
    ChatItem, ContactStatus, ContactView, DmSpec, ItemType, ParticipantRole, Sandbox,
    SandboxConfig, SandboxHandle, SandboxUser,
};

pub const CUSTOMER: &str = "3001969357";
pub const WAIT: Duration = Duration::from_secs(15);

/// X's documentation sample consumer secret: the CRC and signature vectors of docs/protocols.md A1
/// are computed with it.
pub const VECTOR_SECRET: &str = "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw";

pub struct TestApp {
    pub base: String,
    /// The admin listener (`/metrics`, `/healthz` details; bearer `SANDBOX_ADMIN_TOKEN`), unless
    /// the test turned it off.
    pub admin: Option<String>,
    pub sandbox: SandboxHandle,
    pub bridge: Arc<AppBridge>,
    pub http: reqwest::Client,
    running: Option<LinkedBridge>,
    _dir: tempfile::TempDir,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(SandboxConfig::default(), |_| {}).await
}

pub async fn spawn_app_with(
    sandbox_config: SandboxConfig,
    tweak: impl FnOnce(&mut Config),
) -> TestApp {
    let sandbox = Sandbox::start(sandbox_config).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("bridge.db").display());
    let running = Box::pin(LinkedBridge::start(&sandbox, &store, |config| {
        config.delivery.reorder_window_ms = 150;
        config.delivery.outbound_reorder_window_ms = 150;
        config.delivery.retry_base_ms = 50;
        tweak(config);
    }))
    .await
    .unwrap();
    sandbox.add_user(SandboxUser {
        followers_count: 22,
        ..SandboxUser::new(CUSTOMER, "Jordan Brinks", "furiouscamper")
    });
    running.link_x_webhook(&sandbox).await.unwrap();
    TestApp {
        base: running.base.clone(),
        admin: running.admin_base.clone(),
        bridge: Arc::clone(&running.bridge),
        sandbox,
        http: reqwest::Client::new(),
        running: Some(running),
        _dir: dir,
    }
}

impl TestApp {
    /// A test app around a bridge a test started itself (its own configuration).
    pub fn from_running(sandbox: SandboxHandle, running: LinkedBridge) -> Self {
        TestApp {
            base: running.base.clone(),
            admin: running.admin_base.clone(),
            bridge: Arc::clone(&running.bridge),
            sandbox,
            http: reqwest::Client::new(),
            running: Some(running),
            _dir: tempfile::tempdir().unwrap(),
        }
    }

    /// `GET path` on the admin listener, with the admin token.
    pub async fn admin_get(&self, path: &str) -> reqwest::Response {
        let admin = self.admin.as_deref().expect("the admin listener is on");
        self.http
            .get(format!("{admin}{path}"))
            .bearer_auth(xdm_app::sandbox_link::SANDBOX_ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
    }

    /// A customer DM delivered by the sandbox (as X does); asserts X got its 200.
    pub async fn dm(&self, text: &str) -> String {
        self.dm_spec(DmSpec::text(CUSTOMER, text)).await
    }

    pub async fn dm_spec(&self, spec: DmSpec) -> String {
        let d = self.sandbox.deliver_dm(spec).await.unwrap();
        assert_eq!(d.status, Some(200), "webhook answer: {d:?}");
        d.event_id.unwrap()
    }

    /// The customer's contacts, oldest first.
    pub fn contacts(&self) -> Vec<ContactView> {
        self.sandbox
            .contacts()
            .into_iter()
            .filter(|c| c.attributes.get("customerId").map(String::as_str) == Some(CUSTOMER))
            .collect()
    }

    /// Waits until some contact's customer messages satisfy `f`; returns the contact.
    pub async fn wait_contact(
        &self,
        what: &str,
        f: impl Fn(&ContactView, &[String]) -> bool,
    ) -> ContactView {
        let this = self;
        self.sandbox
            .wait_until(what, WAIT, |_| {
                this.contacts()
                    .into_iter()
                    .find(|c| f(c, &customer_messages(c)))
            })
            .await
            .unwrap()
    }

    /// Waits for the customer's first chat to exist and carry `text`; returns it.
    pub async fn open_chat(&self, text: &str) -> ContactView {
        self.dm(text).await;
        self.wait_contact("the first chat", |c, m| {
            m.iter().any(|t| t == text) && c.customer_connected
        })
        .await
    }

    /// DM texts the sandbox X received, in order.
    pub fn dm_texts(&self) -> Vec<String> {
        self.sandbox
            .sent_dms()
            .into_iter()
            .filter_map(|d| d.text)
            .collect()
    }

    pub async fn wait_dms(&self, n: usize) -> Vec<String> {
        let this = self;
        self.sandbox
            .wait_until(&format!("{n} DMs"), WAIT, |_| {
                let t = this.dm_texts();
                (t.len() >= n).then_some(t)
            })
            .await
            .unwrap()
    }

    /// Waits until the bridge has nothing in hand and every SNS message reached it.
    pub async fn settle(&self) {
        self.settle_within(WAIT).await;
    }

    /// Waits up to `limit` (load tests wait longer) until no job is pending or processing and
    /// every SNS message reached the bridge, for 300 ms in a row.
    pub async fn settle_within(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        let mut quiet = 0;
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let mut open = 0;
            for q in JobQueue::ALL {
                for s in [JobState::Pending, JobState::Processing] {
                    open += self
                        .bridge
                        .store()
                        .jobs(q, Some(s), 10)
                        .await
                        .unwrap()
                        .len();
                }
            }
            let undelivered = self
                .sandbox
                .sns_deliveries()
                .iter()
                .filter(|d| !d.delivered)
                .count();
            if open == 0 && undelivered == 0 {
                quiet += 1;
                if quiet >= 6 {
                    return;
                }
            } else {
                quiet = 0;
            }
        }
        panic!("the bridge did not settle within {limit:?}");
    }

    /// The customer's connection token the bridge holds for a chat (to speak the participant
    /// protocol directly in a test).
    pub async fn bridge_connection_token(&self, initial_contact_id: &str) -> String {
        let id = xdm_core::ids::InitialContactId::parse(initial_contact_id.to_owned()).unwrap();
        let session = self
            .bridge
            .store()
            .session_by_initial_contact(&id)
            .await
            .unwrap()
            .unwrap();
        session.connection.unwrap().token.expose().to_owned()
    }

    /// Serves one more business account: see `LinkedBridge::add_business_account`.
    pub async fn add_business_account(&self, user_id: &str) {
        self.running
            .as_ref()
            .unwrap()
            .add_business_account(&self.sandbox, user_id)
            .await
            .unwrap();
    }

    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await.unwrap();
        }
        self.sandbox.shutdown();
    }
}

/// Texts the customer wrote into a chat (initial message and SendMessage), in transcript order.
pub fn customer_messages(c: &ContactView) -> Vec<String> {
    c.transcript
        .iter()
        .filter(|i| is_customer_message(i))
        .filter_map(|i| i.item.content.clone())
        .collect()
}

fn is_customer_message(i: &ChatItem) -> bool {
    i.item.item_type == ItemType::Message
        && i.item.participant_role == Some(ParticipantRole::Customer)
}

pub fn is_open(c: &ContactView) -> bool {
    c.status != ContactStatus::Ended
}

/// `sha256=<base64 HMAC-SHA256(secret, body)>`, computed here from the primitive (pinned by the
/// docs/protocols.md A1.2 vectors, which the tests also check).
pub fn x_signature(secret: &str, body: &[u8]) -> String {
    use base64::Engine;
    use hmac::{KeyInit, Mac};
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!(
        "sha256={}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

/// The captured API Gateway delivery (docs/protocols.md A1.2): its raw body.
pub fn captured_body() -> String {
    let raw = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/apigw-x-webhook-text-dm.json"
    ))
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&raw).unwrap();
    v["body"].as_str().unwrap().to_owned()
}

/// A sandbox whose app secrets (consumer and OAuth 2.0 client) are the vector secret: the CRC
/// answer and both signature headers are then the published values.
pub fn vector_sandbox() -> SandboxConfig {
    let mut cfg = SandboxConfig::default();
    cfg.x.consumer_secret = VECTOR_SECRET.to_owned();
    cfg.x.client_secret = VECTOR_SECRET.to_owned();
    cfg
}

/// Points the sandbox at the bridge listening on `base`: registers its X webhook (the CRC must
/// pass) and subscribes `/webhooks/connect` to the chat topic, waiting for the confirmation.
pub async fn link_sandbox(sandbox: &SandboxHandle, base: &str) {
    let crc = sandbox
        .set_webhook(&format!("{base}/webhooks/x"))
        .await
        .unwrap();
    assert!(crc.ok, "CRC failed: {crc:?}");
    let sub = sandbox
        .subscribe(&format!("{base}/webhooks/connect"))
        .await
        .unwrap();
    sandbox
        .wait_confirmed(&sub.subscription_arn, WAIT)
        .await
        .unwrap();
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// `body`, an SNS notification of a chat item as the sandbox posted it, made into another item
/// of the same chat (`id`, `text`, a new MessageId): to be signed again with
/// `SandboxHandle::sns_resigned`, since only SNS (here the sandbox) can sign.
pub fn as_other_item(body: &str, id: &str, text: &str) -> String {
    let mut envelope: serde_json::Value = serde_json::from_str(body).unwrap();
    let mut item: serde_json::Value =
        serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
    item["Id"] = id.into();
    item["Content"] = text.into();
    envelope["Message"] = item.to_string().into();
    envelope["MessageId"] = format!("00000000-0000-4000-8000-{:0>12x}", fxhash(id)).into();
    envelope.to_string()
}

fn fxhash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    }) & 0xffff_ffff_ffff
}

/// POSTs an SNS body to the bridge's `/webhooks/connect`: the status and the answer.
pub async fn post_sns(app: &TestApp, body: String) -> (u16, String) {
    let r = app
        .http
        .post(format!("{}/webhooks/connect", app.base))
        .header("content-type", "text/plain; charset=UTF-8")
        .header("x-amz-sns-message-type", "Notification")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// An X webhook body with its DMs dated a second ago: a captured delivery as X would send it
/// now (the captured DMs are older than the age bound, `XDM_X_MAX_EVENT_AGE_HOURS`, which
/// acknowledges such DMs without delivering them).
pub fn redated(body: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(body).unwrap();
    for dm in v["direct_message_events"].as_array_mut().unwrap() {
        dm["created_timestamp"] = (now_ms() - 1_000).to_string().into();
    }
    v.to_string()
}

/// Waits until the chat of the customer `customer_id` (the contact attribute `customerId`) is
/// open with the customer connected, then accepts it as `agent`; `None` when `stop` is set first.
pub async fn accept_when_open(
    sandbox: &SandboxHandle,
    customer_id: &str,
    agent: &str,
    stop: &std::sync::atomic::AtomicBool,
) -> Option<String> {
    loop {
        if stop.load(std::sync::atomic::Ordering::SeqCst) {
            return None;
        }
        let chat = sandbox.contacts().into_iter().find(|c| {
            c.attributes.get("customerId").map(String::as_str) == Some(customer_id)
                && is_open(c)
                && c.customer_connected
        });
        match chat {
            Some(c) => {
                sandbox.agent_accept(&c.contact_id, agent).unwrap();
                return Some(c.contact_id);
            }
            None => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// A Lambda invocation deadline 30 s away.
pub fn far_deadline() -> i64 {
    now_ms() + 30_000
}

/// The SQS message that wakes the Lambda worker for one lane.
pub fn wake(lane: &str) -> serde_json::Value {
    serde_json::json!({"Records":[{"messageId":"m-1","receiptHandle":"r","body":serde_json::json!({"lane":lane}).to_string(),
        "attributes":{},"messageAttributes":{},"md5OfBody":"x","eventSource":"aws:sqs",
        "eventSourceARN":"arn:aws:sqs:us-east-1:123456789012:xdm-inbound.fifo","awsRegion":"us-east-1"}]})
}

/// The OAuth 2.0 scopes of an X Chat client.
pub const CHAT_SCOPES: [&str; 5] = [
    "dm.read",
    "dm.write",
    "tweet.read",
    "users.read",
    "media.write",
];

/// Runs `scripts/xchat_customer.py` (an X Chat customer on X's own Chat SDK, `chatxdk`, in
/// `./.venv`) with `args`: its JSON answer, or its error output.
pub async fn chatxdk_customer(args: &[&str]) -> Result<serde_json::Value, String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join(".venv/bin/python");
    assert!(
        python.is_file(),
        "this test needs X's chatxdk in ./.venv: run ./scripts/venv.sh"
    );
    let output = tokio::process::Command::new(python)
        .arg(root.join("scripts/xchat_customer.py"))
        .args(args)
        .output()
        .await
        .unwrap();
    if output.status.success() {
        Ok(serde_json::from_slice(&output.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}
