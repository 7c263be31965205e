//! What the X emulator records and reports: REST calls, sent DMs and their media, uploads,
//! webhooks, subscriptions, events, stream connections, replays, CRC checks and webhook
//! deliveries — with the ids they carry (conversation ids, media keys).

use serde::{Deserialize, Serialize};

use crate::clock;
use crate::x::dm_spec::MediaKind;

/// X REST operations (for records and events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum XOp {
    CreateDm,
    /// `GET /2/dm_conversations/with/:participant_id/dm_events`.
    ListDmEvents,
    GetUser,
    GetMe,
    /// `POST /2/media/upload/initialize`.
    MediaInitialize,
    /// `POST /2/media/upload/:id/append`.
    MediaAppend,
    /// `POST /2/media/upload/:id/finalize`.
    MediaFinalize,
    /// `GET /2/media/upload?command=STATUS`.
    MediaStatus,
    /// One-shot `POST /2/media/upload`.
    MediaUpload,
    /// `GET /1.1/ton/data/dm/…` (photo download).
    TonDownload,
    /// `GET /2/dm_events` (every conversation of the user).
    ListAllDmEvents,
    /// `GET /2/dm_conversations/media/…` (OAuth 2.0 DM media download).
    DmMediaDownload,
    /// `GET /i/oauth2/authorize`.
    OAuth2Authorize,
    /// `POST /2/oauth2/token`.
    OAuth2Token,
    /// `POST /2/oauth2/revoke`.
    OAuth2Revoke,
    /// `POST /2/webhooks`.
    CreateWebhook,
    /// `GET /2/webhooks`.
    ListWebhooks,
    /// `PUT /2/webhooks/:id` (CRC re-run).
    ValidateWebhook,
    /// `DELETE /2/webhooks/:id`.
    DeleteWebhook,
    /// `POST /2/webhooks/replay`.
    ReplayWebhook,
    /// `POST /2/activity/subscriptions`.
    CreateSubscription,
    /// `GET /2/activity/subscriptions`.
    ListSubscriptions,
    /// `PUT /2/activity/subscriptions/:id`.
    UpdateSubscription,
    /// `DELETE /2/activity/subscriptions/:id`.
    DeleteSubscription,
    /// `GET /2/activity/stream` (a connection attempt).
    ActivityStream,
    /// Any Account Activity API route (`/2/account_activity/…`).
    AccountActivity,
    /// X Chat `POST /2/users/:id/public_keys`.
    ChatAddPublicKeys,
    /// X Chat `GET /2/users/:id/public_keys` and `GET /2/users/public_keys?ids=`.
    ChatGetPublicKeys,
    /// X Chat `POST /2/chat/conversations/:id/keys`.
    ChatAddConversationKeys,
    /// X Chat `POST /2/chat/conversations/:id/messages`.
    ChatSendMessage,
    /// X Chat `GET /2/chat/conversations/:id/events`.
    ChatListEvents,
    /// X Chat `POST /2/chat/conversations/:id/typing`.
    ChatTyping,
    /// X Chat `POST /2/chat/conversations/:id/read`.
    ChatRead,
    /// X Chat `POST /2/chat/media/upload/initialize`.
    ChatMediaInitialize,
    /// X Chat `POST /2/chat/media/upload/:session_id/append`.
    ChatMediaAppend,
    /// X Chat `POST /2/chat/media/upload/:session_id/finalize`.
    ChatMediaFinalize,
    /// X Chat `GET /2/chat/media/:conversation_id/:media_hash_key`.
    ChatMediaDownload,
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
    /// What the attachment was (from its upload).
    pub media: Option<SentMedia>,
    pub created_timestamp_ms: i64,
    pub created_at: String,
}

/// The `dm_conversation_id` of two users: `"<lower id>-<higher id>"`, numerically ordered.
pub(crate) fn conversation_id(a: &str, b: &str) -> String {
    let (na, nb) = (a.parse::<u64>().unwrap_or(0), b.parse::<u64>().unwrap_or(0));
    if na <= nb {
        format!("{a}-{b}")
    } else {
        format!("{b}-{a}")
    }
}

/// The uploaded media a sent DM carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentMedia {
    pub media_id: String,
    pub media_key: String,
    pub category: MediaCategory,
    /// The `media_type` given at `initialize` (e.g. `image/png`).
    pub media_type: String,
    pub size: u64,
    /// SHA-256 of the uploaded bytes, lower-case hex.
    pub sha256: String,
    /// The stored upload (`SandboxHandle::file`).
    pub file_id: String,
}

/// X's DM media categories (`media_category`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaCategory {
    DmImage,
    DmGif,
    DmVideo,
}

impl MediaCategory {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "dm_image" => Some(Self::DmImage),
            "dm_gif" => Some(Self::DmGif),
            "dm_video" => Some(Self::DmVideo),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::DmImage => "dm_image",
            Self::DmGif => "dm_gif",
            Self::DmVideo => "dm_video",
        }
    }

    /// docs/protocols.md A5: images 5 MB, GIFs 15 MB, videos 512 MB.
    pub fn max_bytes(self) -> u64 {
        const MB: u64 = 1024 * 1024;
        match self {
            Self::DmImage => 5 * MB,
            Self::DmGif => 15 * MB,
            Self::DmVideo => 512 * MB,
        }
    }

    /// Whether the media is processed after `finalize` (GIFs and videos) or ready at once.
    pub fn is_processed(self) -> bool {
        !matches!(self, Self::DmImage)
    }

    /// The category of DM media of `kind`.
    pub(crate) fn of(kind: MediaKind) -> Self {
        match kind {
            MediaKind::Photo => Self::DmImage,
            MediaKind::AnimatedGif => Self::DmGif,
            MediaKind::Video => Self::DmVideo,
        }
    }

    /// How a DM shows media of this category (`photo`, `animated_gif`, `video`).
    pub(crate) fn kind(self) -> MediaKind {
        match self {
            Self::DmImage => MediaKind::Photo,
            Self::DmGif => MediaKind::AnimatedGif,
            Self::DmVideo => MediaKind::Video,
        }
    }

    /// X's `media_key` of media `media_id`: the category's prefix (3 image, 16 GIF, 7 video), `_`,
    /// the id.
    pub(crate) fn media_key(self, media_id: &str) -> String {
        let prefix = match self {
            Self::DmImage => 3,
            Self::DmGif => 16,
            Self::DmVideo => 7,
        };
        format!("{prefix}_{media_id}")
    }
}

/// `processing_info.state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessingState {
    Pending,
    InProgress,
    Succeeded,
    Failed,
}

impl ProcessingState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::InProgress => "in_progress",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

/// A media upload (X media upload v2) as the sandbox reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadedMedia {
    pub media_id: String,
    pub media_key: String,
    pub category: MediaCategory,
    pub media_type: String,
    pub total_bytes: u64,
    /// Bytes appended so far.
    pub received_bytes: u64,
    /// Segments appended (the next expected `segment_index`).
    pub segments: u32,
    pub finalized: bool,
    /// `None` before `finalize`; images are `succeeded` at once.
    pub state: Option<ProcessingState>,
    /// STATUS calls answered.
    pub status_polls: u32,
    /// STATUS calls that came before the `check_after_secs` of the previous answer.
    pub early_polls: u32,
    /// After `finalize`: the stored file, its size and SHA-256.
    pub file_id: Option<String>,
    pub sha256: Option<String>,
    /// The uploading user (the access token's).
    pub owner_id: String,
    pub created_at: String,
}

/// The media of a delivered DM: what the bridge should fetch and what it should get.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveredMedia {
    pub kind: MediaKind,
    pub media_id: String,
    /// The t.co link appended to the text (to be stripped from captions).
    pub tco_url: String,
    /// The URL of `file_id`: the photo's TON URL, the highest-bitrate mp4, the GIF's mp4.
    pub url: String,
    pub file_id: String,
    pub size: u64,
    pub sha256: String,
    pub content_type: String,
    /// Every URL in the payload with the file it serves (variants, playlist, preview).
    pub urls: Vec<(String, String)>,
}

/// A registered webhook (`/2/webhooks`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookRegistration {
    /// X's webhook id (digits).
    #[serde(default)]
    pub id: String,
    pub url: String,
    /// Whether the last CRC check passed (events are only delivered to a valid webhook).
    pub valid: bool,
    #[serde(default)]
    pub created_at: String,
    /// Outage switch: deliveries are attempted and recorded as failed without reaching the URL.
    #[serde(default)]
    pub outage: bool,
}

/// An X Activity API subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivitySubscription {
    pub subscription_id: String,
    pub event_type: String,
    pub filter: SubscriptionFilter,
    pub tag: Option<String>,
    pub webhook_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl ActivitySubscription {
    /// Subscription `subscription_id`, created (and last updated) now.
    pub(crate) fn new(
        subscription_id: String,
        event_type: String,
        filter: SubscriptionFilter,
        tag: Option<String>,
        webhook_id: Option<String>,
    ) -> Self {
        let now = clock::now_iso_ms();
        Self {
            subscription_id,
            event_type,
            filter,
            tag,
            webhook_id,
            created_at: now.clone(),
            updated_at: now,
        }
    }
}

/// The `filter` of a subscription.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SubscriptionFilter {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyword: Option<String>,
}

impl SubscriptionFilter {
    /// The events of user `user_id`.
    pub(crate) fn user(user_id: impl Into<String>) -> Self {
        Self {
            user_id: Some(user_id.into()),
            ..Self::default()
        }
    }
}

/// One X event rendered for one subscription (what webhooks, streams and replays carry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct XEventRecord {
    /// Increasing from 1.
    pub seq: u64,
    /// `dm.received`, `dm.sent`, `dm.indicate_typing`, `dm.read`, `chat.received`, `chat.sent`,
    /// `chat.conversation.join`.
    pub event_type: String,
    /// The subscribed user (`filter.user_id`).
    pub user_id: String,
    pub subscription_id: String,
    /// Where it went at the time (none: stream only).
    pub webhook_id: Option<String>,
    /// The DM event id (DM events); the message id (`payload.id`) of X Chat events.
    pub event_id: Option<String>,
    /// The exact envelope bytes (UTF-8 JSON).
    pub body: String,
    pub at_ms: i64,
    pub at: String,
}

/// An activity stream connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamConnection {
    pub id: u64,
    pub backfill_minutes: u32,
    pub opened_at: String,
    /// Events written so far (backfill included; keep-alives not).
    pub events_sent: u64,
}

/// State of a `POST /2/webhooks/replay` job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplayState {
    Running,
    Complete,
}

/// A replay job and its progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayJob {
    pub job_id: String,
    pub webhook_id: String,
    /// `yyyymmddhhmm` UTC, inclusive.
    pub from_date: String,
    pub to_date: String,
    pub state: ReplayState,
    /// Events re-POSTed so far.
    pub events_replayed: u64,
    /// Of those, answered 2xx.
    pub events_delivered: u64,
    pub created_at: String,
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
    /// An XAA `dm.sent` event for a DM sent through the API.
    Sent,
    /// A re-POST by a replay job.
    Replay,
    /// An X Chat event (`chat.received`, `chat.sent`, `chat.conversation.join`, or a raw one
    /// from `deliver_chat_raw`).
    Chat,
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
    /// The `x-twitter-webhooks-signature-oauth2` header sent, if any.
    #[serde(default)]
    pub signature_oauth2: Option<String>,
    /// HTTP status of the answer; `None` when there was none (see `error`).
    pub status: Option<u16>,
    pub response_body: String,
    pub error: Option<String>,
    /// The media of a DM delivery.
    pub media: Option<DeliveredMedia>,
    pub at: String,
    /// Activity stream connections the event was also written to (`deliver_dm` & co.).
    #[serde(default)]
    pub stream_connections: usize,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn conversation_ids_are_ordered_numerically() {
        assert_eq!(
            conversation_id("4337869213", "55125386"),
            "55125386-4337869213"
        );
        assert_eq!(conversation_id("1", "2"), "1-2");
    }

    #[test]
    fn media_keys_have_the_category_prefix() {
        assert_eq!(MediaCategory::DmImage.media_key("1"), "3_1");
        assert_eq!(MediaCategory::DmVideo.media_key("1"), "7_1");
        assert_eq!(MediaCategory::DmGif.media_key("1"), "16_1");
    }
}
