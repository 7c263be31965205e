//! Serde models of the DM-related parts of a webhook delivery (docs/protocols.md A2). Every field is
//! optional and forgiving (see `crate::lenient`): what is missing or malformed is judged when the
//! event is converted, so one bad event is skipped without costing the rest of the delivery.

use serde::Deserialize;

use crate::lenient;

/// An item of `direct_message_events`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct DmEvent {
    #[serde(rename = "type", default, deserialize_with = "lenient::string")]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub created_timestamp: Option<String>,
    #[serde(default, deserialize_with = "lenient::object")]
    pub message_create: Option<MessageCreate>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct MessageCreate {
    #[serde(default, deserialize_with = "lenient::object")]
    pub target: Option<Target>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub sender_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub source_app_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::object")]
    pub message_data: Option<MessageData>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Target {
    #[serde(default, deserialize_with = "lenient::string")]
    pub recipient_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct MessageData {
    #[serde(default, deserialize_with = "lenient::string")]
    pub text: Option<String>,
    #[serde(default, deserialize_with = "lenient::object")]
    pub entities: Option<Entities>,
    #[serde(default, deserialize_with = "lenient::object")]
    pub attachment: Option<Attachment>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Entities {
    #[serde(default, deserialize_with = "lenient::list")]
    pub urls: Vec<UrlEntity>,
}

/// `entities.urls[]`.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct UrlEntity {
    #[serde(default, deserialize_with = "lenient::string")]
    pub url: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub expanded_url: Option<String>,
    #[serde(default, deserialize_with = "lenient::indices")]
    pub indices: Option<(usize, usize)>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Attachment {
    #[serde(default, deserialize_with = "lenient::object")]
    pub media: Option<Media>,
}

/// `message_data.attachment.media`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Media {
    #[serde(default, deserialize_with = "lenient::string")]
    pub id_str: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub id: Option<String>,
    #[serde(rename = "type", default, deserialize_with = "lenient::string")]
    pub kind: Option<String>,
    /// The t.co link to the media inside the text.
    #[serde(default, deserialize_with = "lenient::string")]
    pub url: Option<String>,
    #[serde(default, deserialize_with = "lenient::indices")]
    pub indices: Option<(usize, usize)>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub media_url_https: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub media_url: Option<String>,
    #[serde(default, deserialize_with = "lenient::object")]
    pub video_info: Option<VideoInfo>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct VideoInfo {
    #[serde(default, deserialize_with = "lenient::list")]
    pub variants: Vec<Variant>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub(super) struct Variant {
    /// `bitrate` in v1.1 payloads, `bit_rate` in API v2 `includes.media`.
    #[serde(default, alias = "bit_rate", deserialize_with = "lenient::unsigned")]
    pub bitrate: Option<u64>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub content_type: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub url: Option<String>,
}

/// An item of `direct_message_indicate_typing_events` or `direct_message_mark_read_events`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct IndicatorEvent {
    #[serde(default, deserialize_with = "lenient::string")]
    pub created_timestamp: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub sender_id: Option<String>,
    /// Read events only.
    #[serde(default, deserialize_with = "lenient::string")]
    pub last_read_event_id: Option<String>,
}

/// `user_event`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct UserEvent {
    #[serde(default, deserialize_with = "lenient::object")]
    pub revoke: Option<Revoke>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Revoke {
    #[serde(default, deserialize_with = "lenient::object")]
    pub source: Option<RevokeSource>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct RevokeSource {
    #[serde(default, deserialize_with = "lenient::string")]
    pub user_id: Option<String>,
}
