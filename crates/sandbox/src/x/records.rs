//! What the X emulator records and reports: REST calls, sent DMs, CRC checks and webhook deliveries.

use serde::{Deserialize, Serialize};

/// X REST operations (for records and events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum XOp {
    CreateDm,
    GetUser,
    GetMe,
    /// A path the emulator does not implement.
    Unknown,
}

/// One X REST call as answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub op: XOp,
    pub method: String,
    pub path: String,
    pub status: u16,
    /// Why the call was refused, when the sandbox knows more than the response says
    /// (e.g. the OAuth base string it expected).
    pub rejection: Option<String>,
    pub at: String,
}

/// A DM accepted by `POST /2/dm_conversations/with/:participant_id/messages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentDm {
    pub dm_event_id: String,
    pub dm_conversation_id: String,
    /// The business account (the access token's user).
    pub sender_id: String,
    pub recipient_id: String,
    pub text: Option<String>,
    /// `media_id`s of the attachments (at most one).
    pub attachments: Vec<String>,
    pub created_timestamp_ms: i64,
    pub created_at: String,
}

/// The webhook the sandbox delivers to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookRegistration {
    pub url: String,
    /// Whether the last CRC check passed (events are only delivered to a valid webhook).
    pub valid: bool,
}

/// The result of one CRC check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrcOutcome {
    pub url: String,
    pub crc_token: String,
    /// HTTP status of the answer (`None` when there was no answer).
    pub status: Option<u16>,
    /// The answer's body, when there was one.
    pub body: Option<String>,
    /// `sha256=<base64 HMAC-SHA256(consumer_secret, crc_token)>`.
    pub expected_response_token: String,
    /// 200 with a JSON `response_token` equal to the expected one.
    pub ok: bool,
    /// Why the check failed, in words.
    pub error: Option<String>,
}

/// Kinds of webhook POSTs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryKind {
    /// `direct_message_events` from a customer (`deliver_dm`).
    Dm,
    /// `direct_message_events` echoing a DM sent through the API.
    Echo,
    Typing,
    Read,
    /// Caller-supplied bytes (`deliver_raw`).
    Raw,
}

/// One event POST to the webhook and its answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDelivery {
    pub kind: DeliveryKind,
    /// The DM event id (DM and echo deliveries).
    pub event_id: Option<String>,
    pub url: String,
    /// The exact bytes sent (UTF-8 JSON for everything but raw deliveries of non-UTF-8 bytes).
    pub payload: String,
    /// The `x-twitter-webhooks-signature` header sent, if any.
    pub signature: Option<String>,
    /// HTTP status of the answer; `None` when there was none (see `error`).
    pub status: Option<u16>,
    pub response_body: String,
    pub error: Option<String>,
    pub at: String,
}
