//! # xdm-sandbox
//!
//! A faithful emulator of **X (Twitter) Direct Messages** and **Amazon Connect Chat** (with SNS
//! message streaming) on one HTTP listener, so that the real xdm-connect bridge — its OAuth 1.0a X
//! client, its SigV4-signed Connect calls and the official `aws-sdk-connectparticipant` client —
//! talks to it unmodified. Wire formats follow `PROTOCOLS.md`; request checking (OAuth 1.0a
//! verification, CRC, webhook and SNS signatures) is written here from those formats, not borrowed
//! from the bridge, so that the sandbox checks the bridge.
//!
//! ## Use in-process
//!
//! ```no_run
//! # async fn demo() -> Result<(), xdm_sandbox::SandboxError> {
//! use xdm_sandbox::{DmSpec, Sandbox, SandboxConfig, SandboxUser};
//!
//! let sandbox = Sandbox::start(SandboxConfig::default()).await?;
//! // Point the bridge at it: XDM_X_API_URL = AWS_ENDPOINT_URL_CONNECT =
//! // AWS_ENDPOINT_URL_CONNECTPARTICIPANT = sandbox.base_url(),
//! // XDM_SNS_TRUSTED_CERT_URLS = sandbox.sns_cert_url(), XDM_CONNECT_TOPIC_ARN = sandbox.sns_topic_arn().
//! sandbox.add_user(SandboxUser::new("55125386", "Elizabeth Fuentes", "ElizabethFue12"));
//! sandbox.set_webhook("http://127.0.0.1:8080/webhooks/x").await?;
//! let sub = sandbox.subscribe("http://127.0.0.1:8080/webhooks/connect").await?;
//! sandbox.wait_confirmed(&sub.subscription_arn, std::time::Duration::from_secs(5)).await?;
//! sandbox.deliver_dm(DmSpec::text("55125386", "Hola")).await?;
//! # Ok(()) }
//! ```
//!
//! `SandboxConfig::default()` uses fixed development values: consumer key/secret
//! `sandbox-consumer-key` / `sandbox-consumer-secret`, access token/secret
//! `4337869213-sandbox-access-token` / `sandbox-access-token-secret`, business account
//! `4337869213` "Acme Support" `@AcmeSupport`, app `13090192` `AcmeSupportBridge`, Connect instance
//! `6f8c1a52-3b7e-4d2a-9c11-5a0e2b7d9f40`, contact flow `c2a9e4f7-8d13-4b6e-a5f2-0e7d3c9b1a68`,
//! region `us-east-1`, account `123456789012`, topic
//! `arn:aws:sns:us-east-1:123456789012:xdm-sandbox-chat`, SNS SignatureVersion 1.
//!
//! ## Emulated platform routes
//!
//! | route | what |
//! |---|---|
//! | `POST /2/dm_conversations/with/{participant_id}/messages` | X send DM (OAuth 1.0a user context) → 201 |
//! | `GET /2/users/{id}`, `GET /2/users/me` | X user lookup (OAuth 1.0a; `{id}` also any Bearer) |
//! | `PUT /contact/chat` | StartChatContact (SigV4 `connect`) |
//! | `POST /contact/start-streaming`, `/contact/stop-streaming`, `/contact/stop` | StartContactStreaming, StopContactStreaming, StopContact |
//! | `POST /participant/connection`, `/message`, `/event`, `/disconnect`, `/transcript` | participant service (`X-Amz-Bearer`) |
//! | `GET /sns/SimpleNotificationService-<hash>.pem` | the SNS signing certificate |
//! | `GET /sns/confirm?Action=ConfirmSubscription&TopicArn=…&Token=…` | SubscribeURL |
//! | `GET /sns/unsubscribe?Action=Unsubscribe&SubscriptionArn=…` | UnsubscribeURL |
//!
//! Every X response carries `x-rate-limit-limit/-remaining/-reset`; every Connect error carries
//! `x-amzn-ErrorType`, `{"__type","message"}` and `x-amzn-RequestId`.
//!
//! ## Control API (`/_sandbox`, JSON)
//!
//! | route | body → answer |
//! |---|---|
//! | `GET /_sandbox` | base URL, cert URL, topic, configuration |
//! | `GET /_sandbox/events?since=N` | logged [`SandboxEvent`]s with `seq > N` |
//! | `GET`/`POST /_sandbox/x/users` | [`SandboxUser`] → the user (201) |
//! | `GET`/`POST /_sandbox/x/webhook` | `{"url"}` → [`CrcOutcome`] (registers + CRC) |
//! | `POST /_sandbox/x/crc` | `{"url","crc_token"}` → [`CrcOutcome`] |
//! | `POST /_sandbox/x/dm` | [`DmSpec`] → [`WebhookDelivery`] |
//! | `POST /_sandbox/x/typing`, `/x/read` | `{"sender_id"}`, `{"sender_id","last_read_event_id"}` |
//! | `POST /_sandbox/x/raw` | `{"body":"…","signature":"valid"\|"omit"\|{"custom":"sha256=…"}}` |
//! | `GET /_sandbox/x/dms`, `/x/requests`, `/x/deliveries` | [`SentDm`]s, [`RequestRecord`]s, [`WebhookDelivery`]s |
//! | `GET /_sandbox/connect/contacts[/{id}]` | [`ContactView`]s |
//! | `POST /_sandbox/connect/contacts/{id}/accept` | `{"agent_name"}` |
//! | `POST …/{id}/message` | `{"content","content_type"?}` (default `text/markdown`) |
//! | `POST …/{id}/item` | [`ItemSpec`] |
//! | `POST …/{id}/typing`, `/read` `{"message_id"}`, `/leave`, `/end`, `/transfer` | |
//! | `POST …/{id}/system` | `{"text"}` |
//! | `POST /_sandbox/sns/subscribe` | `{"endpoint","topic_arn"?}` → [`SubscriptionView`] |
//! | `GET /_sandbox/sns/subscriptions`, `/sns/deliveries` | [`SubscriptionView`]s, [`SnsDelivery`]s |
//! | `POST /_sandbox/sns/redeliver` | `{"message_id"}` → attempts |
//! | `GET`/`POST`/`DELETE /_sandbox/faults` | `{"op":"SendMessage","count":2,"fault":{"status":429}}` |
//!
//! Control errors answer `{"error":"…"}` with 400/404/409/502/504.
//!
//! ```text
//! B=http://127.0.0.1:4566
//! curl -s -XPOST $B/_sandbox/x/users -d '{"id":"55125386","name":"Elizabeth","username":"eli"}'
//! curl -s -XPOST $B/_sandbox/x/webhook -d '{"url":"http://127.0.0.1:8080/webhooks/x"}'
//! curl -s -XPOST $B/_sandbox/x/dm -d '{"sender_id":"55125386","text":"Hola"}'
//! curl -s $B/_sandbox/connect/contacts | jq '.[0].contact_id'
//! curl -s -XPOST $B/_sandbox/connect/contacts/$CONTACT/accept -d '{"agent_name":"Enrique"}'
//! curl -s -XPOST $B/_sandbox/connect/contacts/$CONTACT/message -d '{"content":"Hi, how can I help?"}'
//! curl -s -XPOST $B/_sandbox/faults -d '{"op":"CreateDm","count":1,"fault":{"status":429,"rate_limit_reset":1893456000}}'
//! ```
//!
//! ## Behaviour worth knowing
//!
//! * OAuth 1.0a: consumer key and token must be the configured ones, HMAC-SHA1, timestamp within
//!   `oauth_max_clock_skew_secs`, nonces single-use for 15 minutes; the base URL is rebuilt from the
//!   request as received (`http`, `Host` header lower-cased, default port dropped). Query and
//!   form-urlencoded body parameters are signed; JSON bodies are not. Failures: X's 401 problem
//!   (the reason is kept in [`RequestRecord::rejection`]).
//! * Faults are consumed by calls that passed authentication (OAuth / SigV4 shape / bearer present).
//! * Chat streaming: items that exist when StartContactStreaming first attaches a topic (usually
//!   the initial message) are streamed to it too, in order, so the subscriber sees the whole chat;
//!   a topic stopped and started again only gets later items. Notifications are delivered per
//!   (subscription, contact) in item order, retried `SnsConfig::retries` times on non-2xx.
//! * CreateParticipantConnection with `ConnectParticipant: true` adds a customer
//!   `participant.joined` item. GetTranscript (customer view) omits AGENT-only items and typing.
//! * The webhook is validated by CRC when set; a webhook configured in `XConfig::webhook_url` (or
//!   one whose CRC failed) is re-checked before the next delivery, like X's periodic CRC.
//! * DMs to ids not in the registry are accepted; registered users with `accepts_dms: false` get 403.
//! * Not emulated: X media upload/TON download, Connect attachments, participant websockets (the
//!   `Websocket` URL of CreateParticipantConnection is not served).

mod clock;
pub mod config;
pub mod connect;
mod control;
pub mod error;
pub mod events;
pub mod faults;
mod handle;
mod ids;
mod server;
pub mod sns;
mod state;
pub mod x;

pub use config::{
    BusinessAccount, ConnectConfig, RateLimit, SandboxConfig, SignatureVersion, SnsConfig, XApp,
    XConfig,
};
pub use connect::model::{
    AgentView, ChatItem, ChatMessage, ContactStatus, ContactView, EndReason, Item, ItemSpec,
    ItemType, MessageVisibility, ParticipantRole, StreamingView, content_types,
};
pub use error::SandboxError;
pub use events::{LoggedEvent, SandboxEvent};
pub use faults::{Fault, FaultOp, PendingFault};
pub use handle::SandboxHandle;
pub use sns::delivery::{SnsAttempt, SnsDelivery, SnsMessageType, SubscriptionView};
pub use x::payloads::{DmSpec, MediaKind, MediaSpec, PayloadShape, UrlSpec};
pub use x::records::{
    CrcOutcome, DeliveryKind, RequestRecord, SentDm, WebhookDelivery, WebhookRegistration, XOp,
};
pub use x::users::SandboxUser;
pub use x::webhook_client::SignatureHeader;

/// Entry point: `Sandbox::start(config)`.
#[derive(Debug)]
pub struct Sandbox;

impl Sandbox {
    /// Binds `config.listen`, generates the SNS signing identity and serves every emulated API.
    pub async fn start(config: SandboxConfig) -> Result<SandboxHandle, SandboxError> {
        server::start(config).await
    }
}
