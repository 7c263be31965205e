//! Inbound events (X → Connect) in the bridge's own terms, independent of the webhook shape
//! (Account Activity or X Activity API) they arrived in.

use serde::{Deserialize, Serialize};

use crate::ids::{ChatMessageId, XEventId, XUserId};
use crate::profile::XProfile;

/// Everything one webhook delivery carried that the bridge cares about.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InboundBatch {
    pub events: Vec<InboundEvent>,
}

/// One event of a webhook delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
// Events live briefly in one delivery's Vec; boxing the common variant would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum InboundEvent {
    /// A direct message (from the customer, or an echo of one the business sent).
    Message(InboundDm),
    /// A message on X Chat (end-to-end encrypted), still sealed (from the customer, or an echo).
    Chat(InboundChat),
    /// The customer is typing.
    Typing(Indicator),
    /// The customer read the conversation up to an event.
    Read(ReadUpTo),
    /// The business account revoked the app's access: nothing more will be delivered for it.
    Revoked { user_id: Option<XUserId> },
}

/// A direct message as the bridge sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundDm {
    /// The subscribed business account this delivery is for (`for_user_id`).
    pub business: XUserId,
    pub event_id: XEventId,
    pub sender: XUserId,
    pub recipient: XUserId,
    /// `created_timestamp`, milliseconds since the epoch.
    pub created_ms: i64,
    /// The text to show the agent: the media t.co link already removed, every other link kept.
    pub text: String,
    /// Set when the message was sent through an API app (X's `source_app_id`).
    pub source_app_id: Option<String>,
    /// The sender's profile when the delivery carried it inline (`users` map).
    pub sender_profile: Option<XProfile>,
    /// The attached photo, GIF or video, if any.
    pub media: Option<InboundMedia>,
    /// Which of X's two kinds of direct message it came as.
    #[serde(default)]
    pub channel: XChannel,
}

/// X's two kinds of direct message: legacy DMs, and X Chat (end-to-end encrypted), which X
/// moves conversations to once both sides have registered chat keys. One customer keeps one
/// Connect chat across both (contact attribute `x_channel`: where their chat started).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum XChannel {
    #[default]
    Dm,
    Chat,
}

impl XChannel {
    pub fn as_str(self) -> &'static str {
        match self {
            XChannel::Dm => "dm",
            XChannel::Chat => "chat",
        }
    }
}

impl InboundDm {
    /// An echo is a DM the business account itself sent (through us, another app or X's own UI):
    /// it must never be relayed to Connect as if the customer wrote it.
    pub fn is_echo(&self) -> bool {
        self.sender == self.business
    }
}

/// A message on X Chat as X delivered it (`chat.received`, `chat.sent`): sealed. It is
/// accepted as it came — nothing here has been verified or decrypted — and opened (the sender's
/// signature checked, then the contents decrypted) when it is delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundChat {
    /// The subscribed business account the delivery is for (`filter.user_id`).
    pub business: XUserId,
    pub sender: XUserId,
    /// The sender's id for the message (`payload.id`, a UUID the sender signs): the dedup key.
    pub message_id: ChatMessageId,
    /// As X gives it (`A:B`, the two user ids in numeric order).
    pub conversation_id: String,
    /// `created_at_msec`.
    pub created_ms: i64,
    /// The message: base64 of X Chat's Thrift `MessageEvent`.
    pub encoded_event: String,
    /// The key change that made the conversation key the message is sealed with, when X sent it
    /// along (`conversation_key_change_event`).
    pub key_change_event: Option<String>,
    /// The sender's profile when the delivery carried it (`includes.users`).
    pub sender_profile: Option<XProfile>,
}

impl InboundChat {
    /// A message the business account itself sent (`chat.sent`): never relayed to Connect.
    pub fn is_echo(&self) -> bool {
        self.sender == self.business
    }
}

/// The media attached to a DM, with the file already chosen (photo URL, best mp4 variant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundMedia {
    pub kind: MediaKind,
    /// X's media id.
    pub media_id: String,
    /// The file to download.
    pub url: String,
    /// MIME type when the payload states it (video variants do).
    pub content_type: Option<String>,
    /// X Chat: the file is sealed with the conversation key of this key change (`media_id` is
    /// its `media_hash_key`, `url` empty: X Chat serves it by conversation and key).
    #[serde(default)]
    pub sealed: Option<ChatKeyChange>,
}

/// A conversation key of X Chat as X delivers it: the key change that made it, wrapped for each
/// participant (opened only with the business account's private key; never the key itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatKeyChange {
    /// As X writes it in events (`A:B`).
    pub conversation_id: String,
    /// The key's version (X Chat's `conversation_key_version`, a millisecond timestamp).
    pub key_version: String,
    /// Base64 of the key change's Thrift `MessageEvent`.
    pub encoded_event: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    Photo,
    AnimatedGif,
    Video,
}

impl MediaKind {
    /// How a person would name it in a sentence ("a photo").
    pub fn with_article(self) -> &'static str {
        match self {
            MediaKind::Photo => "a photo",
            MediaKind::AnimatedGif => "a GIF",
            MediaKind::Video => "a video",
        }
    }
}

/// A typing or read indicator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Indicator {
    pub business: XUserId,
    pub sender: XUserId,
    pub created_ms: i64,
}

/// The customer read the conversation up to a DM (`direct_message_mark_read_events`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadUpTo {
    pub business: XUserId,
    /// Who read: the customer.
    pub sender: XUserId,
    /// The last DM read (`last_read_event_id`): it and every earlier one are read.
    pub last_read_event_id: XEventId,
    pub created_ms: i64,
}
