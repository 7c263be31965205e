//! Shared pieces of the integration tests: a sandbox, request helpers, and a stand-in "bridge"
//! HTTP server that answers CRCs, receives webhook events and SNS messages, and confirms
//! subscriptions.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use xdm_sandbox::{Sandbox, SandboxConfig, SandboxHandle};

pub const WAIT: Duration = Duration::from_secs(10);

pub async fn sandbox() -> SandboxHandle {
    sandbox_with(SandboxConfig::default()).await
}

pub async fn sandbox_with(cfg: SandboxConfig) -> SandboxHandle {
    Sandbox::start(cfg).await.expect("sandbox starts")
}

pub fn http() -> reqwest::Client {
    reqwest::Client::new()
}

/// A SigV4 `Authorization` header of the shape aws-sigv4 produces (the sandbox checks the shape).
pub fn sigv4(region: &str) -> [(&'static str, String); 2] {
    sigv4_for(region, "connect")
}

/// [`sigv4`] scoped to another signing name (`profile`: Customer Profiles).
pub fn sigv4_for(region: &str, service: &str) -> [(&'static str, String); 2] {
    [
        (
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261125/{region}/{service}/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
            ),
        ),
        ("x-amz-date", "20261125T120000Z".to_owned()),
    ]
}

/// A control-plane call with a valid-looking SigV4 header.
pub async fn connect_call(
    sb: &SandboxHandle,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> (u16, HeaderMap, Value) {
    let mut req = http()
        .request(method, format!("{}{path}", sb.base_url()))
        .json(&body);
    for (k, v) in sigv4(&sb.config().connect.region) {
        req = req.header(k, v);
    }
    let resp = req.send().await.expect("connect call");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let json = resp.json().await.unwrap_or(Value::Null);
    (status, headers, json)
}

pub fn start_chat_body(sb: &SandboxHandle, display_name: &str, message: &str) -> Value {
    json!({
        "InstanceId": sb.config().connect.instance_id,
        "ContactFlowId": sb.config().connect.contact_flow_id,
        "Attributes": {"Channel": "X", "customerId": "55125386", "customerName": display_name},
        "ParticipantDetails": {"DisplayName": display_name},
        "InitialMessage": {"ContentType": "text/plain", "Content": message},
        "SupportedMessagingContentTypes": ["text/plain", "text/markdown"],
    })
}

/// StartChatContact → (ContactId, ParticipantToken).
pub async fn start_chat(sb: &SandboxHandle, message: &str) -> (String, String) {
    let (status, _, body) = connect_call(
        sb,
        reqwest::Method::PUT,
        "/contact/chat",
        start_chat_body(sb, "Elizabeth Fuentes", message),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    (
        body["ContactId"].as_str().expect("ContactId").to_owned(),
        body["ParticipantToken"]
            .as_str()
            .expect("ParticipantToken")
            .to_owned(),
    )
}

/// A participant call with `X-Amz-Bearer`.
pub async fn participant_call(
    sb: &SandboxHandle,
    path: &str,
    token: &str,
    body: Value,
) -> (u16, HeaderMap, Value) {
    let resp = http()
        .post(format!("{}{path}", sb.base_url()))
        .header("x-amz-bearer", token)
        .json(&body)
        .send()
        .await
        .expect("participant call");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.json().await.unwrap_or(Value::Null))
}

/// CreateParticipantConnection(ConnectParticipant=true) → ConnectionToken.
pub async fn connect_customer(sb: &SandboxHandle, participant_token: &str) -> String {
    let (status, _, body) = participant_call(
        sb,
        "/participant/connection",
        participant_token,
        json!({"Type": ["CONNECTION_CREDENTIALS"], "ConnectParticipant": true}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["ConnectionCredentials"]["ConnectionToken"]
        .as_str()
        .expect("ConnectionToken")
        .to_owned()
}

pub fn hmac_b64(key: &str, msg: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("hmac key");
    mac.update(msg);
    STANDARD.encode(mac.finalize().into_bytes())
}

/// What the stand-in bridge received.
#[derive(Debug, Default)]
pub struct Inbox {
    pub crc_tokens: Vec<String>,
    pub webhook_posts: Vec<(HeaderMap, String)>,
    pub sns_posts: Vec<(HeaderMap, String)>,
    /// Statuses to answer the next SNS POSTs with (then 200).
    pub sns_statuses: VecDeque<u16>,
    /// Answer CRCs with a wrong token.
    pub wrong_crc: bool,
    /// Do not fetch the SubscribeURL of confirmations.
    pub ignore_confirmations: bool,
}

/// A small HTTP server standing in for the bridge's webhook endpoints.
#[derive(Clone)]
pub struct Receiver {
    pub base: String,
    /// Key of webhook signatures (`x-twitter-webhooks-signature`).
    secret: String,
    /// Key of CRC answers.
    crc_secret: String,
    pub inbox: Arc<Mutex<Inbox>>,
}

impl Receiver {
    /// A receiver keyed like a bridge configured for `sb` (CRC with its `crc_key`, signatures
    /// checked with the consumer secret).
    pub async fn for_sandbox(sb: &SandboxHandle) -> Self {
        let x = &sb.config().x;
        Self::with_keys(&x.consumer_secret, x.crc_key()).await
    }

    pub async fn start(consumer_secret: &str) -> Self {
        Self::with_keys(consumer_secret, consumer_secret).await
    }

    pub async fn with_keys(consumer_secret: &str, crc_secret: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let receiver = Receiver {
            base,
            secret: consumer_secret.to_owned(),
            crc_secret: crc_secret.to_owned(),
            inbox: Arc::default(),
        };
        let app = Router::new()
            .route("/webhooks/x", get(crc).post(webhook_event))
            .route("/webhooks/connect", axum::routing::post(sns_post))
            .with_state(receiver.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        receiver
    }

    pub fn webhook_url(&self) -> String {
        format!("{}/webhooks/x", self.base)
    }

    pub fn sns_url(&self) -> String {
        format!("{}/webhooks/connect", self.base)
    }

    pub fn inbox(&self) -> std::sync::MutexGuard<'_, Inbox> {
        self.inbox.lock().expect("inbox")
    }

    /// Parsed SNS bodies of type Notification, in arrival order.
    pub fn notifications(&self) -> Vec<Value> {
        self.inbox()
            .sns_posts
            .iter()
            .filter_map(|(_, body)| serde_json::from_str::<Value>(body).ok())
            .filter(|v| v["Type"] == "Notification")
            .collect()
    }

    /// The chat items carried by the notifications received so far.
    pub fn streamed_items(&self) -> Vec<Value> {
        self.notifications()
            .iter()
            .filter_map(|n| serde_json::from_str(n["Message"].as_str()?).ok())
            .collect()
    }
}

async fn crc(
    State(r): State<Receiver>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let Some(token) = q.get("crc_token") else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    // Like the bridge: only opaque base64 tokens are signed (signing-oracle defence).
    if !token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"+/=-_".contains(&b))
    {
        return StatusCode::BAD_REQUEST.into_response();
    }
    let wrong = {
        let mut inbox = r.inbox();
        inbox.crc_tokens.push(token.clone());
        inbox.wrong_crc
    };
    let key = if wrong {
        "not-the-secret"
    } else {
        r.crc_secret.as_str()
    };
    axum::Json(json!({"response_token": format!("sha256={}", hmac_b64(key, token.as_bytes()))}))
        .into_response()
}

async fn webhook_event(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let expected = format!("sha256={}", hmac_b64(&r.secret, &body));
    let valid = headers
        .get("x-twitter-webhooks-signature")
        .and_then(|v| v.to_str().ok())
        == Some(expected.as_str());
    r.inbox()
        .webhook_posts
        .push((headers, String::from_utf8_lossy(&body).into_owned()));
    if valid {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    }
}

async fn sns_post(State(r): State<Receiver>, headers: HeaderMap, body: String) -> StatusCode {
    let (status, confirm) = {
        let mut inbox = r.inbox();
        inbox.sns_posts.push((headers, body.clone()));
        let status = inbox.sns_statuses.pop_front().unwrap_or(200);
        (status, !inbox.ignore_confirmations)
    };
    let parsed: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    if confirm
        && parsed["Type"] == "SubscriptionConfirmation"
        && let Some(url) = parsed["SubscribeURL"].as_str()
    {
        let resp = reqwest::get(url).await.expect("confirm subscription");
        assert_eq!(resp.status(), 200);
    }
    StatusCode::from_u16(status).unwrap_or(StatusCode::OK)
}

/// The sandbox's own X credentials (those the bridge is configured with).
pub fn x_creds(sb: &SandboxHandle) -> xdm_sandbox::x::oauth_verify::Credentials<'_> {
    let x = &sb.config().x;
    xdm_sandbox::x::oauth_verify::Credentials {
        consumer_key: &x.consumer_key,
        consumer_secret: &x.consumer_secret,
        token: &x.access_token,
        token_secret: &x.access_token_secret,
    }
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// An OAuth 1.0a `Authorization` header for `method url` (query signed, body not).
pub fn x_auth(
    creds: xdm_sandbox::x::oauth_verify::Credentials<'_>,
    method: &str,
    url: &str,
) -> String {
    let url = url::Url::parse(url).expect("url");
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    xdm_sandbox::x::oauth_verify::authorization_header(method, &url, &[], creds, &nonce, unix_now())
}

/// A sandbox with a registered, CRC-valid webhook (needed to deliver DMs).
pub async fn sandbox_with_webhook() -> (SandboxHandle, Receiver) {
    let sb = sandbox().await;
    let rx = Receiver::for_sandbox(&sb).await;
    let crc = sb.set_webhook(&rx.webhook_url()).await.expect("webhook");
    assert!(crc.ok, "{crc:?}");
    (sb, rx)
}

/// The project's `./.venv` Python (X's and AWS's own clients, installed by `./scripts/venv.sh`),
/// and the path of a script of this directory; the test fails saying what to run when it is
/// missing.
pub fn venv_python(script: &str, needs: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = manifest.join("../../.venv/bin/python");
    assert!(
        python.is_file(),
        "this test needs {needs}: run ./scripts/venv.sh"
    );
    (python, manifest.join("tests/it").join(script))
}
