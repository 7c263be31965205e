//! Webhook deliveries → [`InboundBatch`] (docs/protocols.md A2).
//!
//! Two shapes are read:
//! * **Account Activity** — top-level `for_user_id`, `direct_message_events`,
//!   `direct_message_indicate_typing_events`, `direct_message_mark_read_events`, `user_event.revoke`,
//!   `users` (legacy users), `apps`, and the event lists the bridge ignores (`tweet_create_events`…).
//! * **X Activity API** — `{"data":{"event_type","filter":{"user_id"},"payload":{…}}}` whose `payload`
//!   carries the same DM lists and a `users` map of v2 users (`users[id].data{…}`). The business
//!   account is `payload.for_user_id`, else a top-level `for_user_id`, else `data.filter.user_id`.
//!
//! What is judged where:
//! * The delivery as a whole: not JSON, not an object, neither shape, or a business id
//!   (`for_user_id` / `filter.user_id`) that is present but not 1–19 digits ⇒ [`PayloadError`]
//!   (the HTTP layer answers 400 with its one-line message).
//! * One event: a missing or invalid id, sender, recipient or timestamp, or no business account to
//!   attribute it to ⇒ that event is **skipped** and reported in [`ParsedDelivery::skipped`] (and
//!   logged at WARN without any message text); the rest of the delivery is kept. Answering 400 for
//!   the whole delivery would only make X redeliver the same bad event and hold back the good ones.
//! * Unknown keys, unknown event lists and DM events other than `message_create` are ignored.
//! * A malformed attachment does not cost the message: it arrives without media, and the media's
//!   t.co link stays in the text so the agent still sees that something was attached.
//!
//! Nothing here panics on any input.
//!
//! Layout: [`parse_delivery`] tries `typed.rs` (ordinary text-DM deliveries, read straight from the
//! bytes into strict structs) and otherwise reads the body forgivingly here, through a
//! `serde_json::Value` tree; both hand their events to `reader.rs` (one event at a time into the
//! batch, the skips, the profiles), and give the same answer. `delivery.rs` holds what a read
//! returns; `model.rs` the forgiving serde models; `caption.rs`, `media.rs` and `chat.rs` the text,
//! the attachment and X Chat payloads.

mod caption;
mod chat;
mod delivery;
mod media;
mod model;
mod reader;
mod typed;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod vectors;

/// For reading sent DMs back (`crate::dm_events`): X's t.co links expanded to their URLs.
pub(crate) use caption::{MediaLink, agent_text};
pub use delivery::{DeliveryShape, ParsedDelivery, SkippedEvent};
pub(crate) use model::UrlEntity;

use serde_json::{Map, Value};
use xdm_core::ids::XUserId;
use xdm_core::inbound::{InboundEvent, InboundMedia};

use model::UserEvent;
use reader::{DM_EVENTS, READ_EVENTS, Reader, TYPING_EVENTS, USER_EVENT, Users, value_as};

/// Top-level keys that make a JSON object an Account Activity delivery.
const ACCOUNT_ACTIVITY_KEYS: &[&str] = &[
    "for_user_id",
    DM_EVENTS,
    TYPING_EVENTS,
    READ_EVENTS,
    USER_EVENT,
    "tweet_create_events",
    "tweet_delete_events",
    "favorite_events",
    "follow_events",
    "block_events",
    "mute_events",
    "user_has_blocked",
    "replay_job_status",
    "users",
    "apps",
];

/// Why a delivery cannot be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The body is not JSON (the parser's position, never the body itself).
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    #[error("the body is not a JSON object")]
    NotObject,
    #[error("the body is neither an Account Activity nor an X Activity API delivery")]
    UnrecognisedShape,
    #[error("the delivery's {field} is not an X user id (1 to 19 digits)")]
    InvalidBusinessId { field: &'static str },
}

/// Reads a verified webhook body (the exact bytes whose signature was checked).
pub fn parse_delivery(body: &[u8]) -> Result<ParsedDelivery, PayloadError> {
    match typed::parse(body) {
        Some(parsed) => Ok(parsed),
        None => read_forgiving(body),
    }
}

/// Reads any delivery through a `serde_json::Value` tree, forgiving every member that does not
/// fit (see the module's notes); [`typed::parse`] reads the ordinary ones faster and alike.
fn read_forgiving(body: &[u8]) -> Result<ParsedDelivery, PayloadError> {
    let root: Value = serde_json::from_slice(body)
        .map_err(|e| PayloadError::NotJson(format!("line {} column {}", e.line(), e.column())))?;
    let Value::Object(root) = root else {
        return Err(PayloadError::NotObject);
    };

    let xaa_data = root.get("data").and_then(Value::as_object).filter(|d| {
        ["payload", "event_type", "filter"]
            .iter()
            .any(|k| d.contains_key(*k))
    });

    let empty = Map::new();
    let event_type = xaa_data
        .and_then(|d| d.get("event_type"))
        .and_then(Value::as_str);
    let (shape, payload, business) = if let Some(data) = xaa_data {
        let payload = data
            .get("payload")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let filter_user = data
            .get("filter")
            .and_then(|f| f.get("user_id"))
            .map(|v| ("data.filter.user_id", v));
        let business = payload
            .get("for_user_id")
            .map(|v| ("data.payload.for_user_id", v))
            .or_else(|| root.get("for_user_id").map(|v| ("for_user_id", v)))
            .or(filter_user);
        (DeliveryShape::XActivity, payload, business)
    } else if ACCOUNT_ACTIVITY_KEYS.iter().any(|k| root.contains_key(*k)) {
        let business = root.get("for_user_id").map(|v| ("for_user_id", v));
        (DeliveryShape::AccountActivity, &root, business)
    } else {
        return Err(PayloadError::UnrecognisedShape);
    };

    let business = match business {
        None | Some((_, Value::Null)) => None,
        Some((field, v)) => Some(
            id_string(v)
                .and_then(|s| XUserId::parse(s).ok())
                .ok_or(PayloadError::InvalidBusinessId { field })?,
        ),
    };

    if let Some(event_type) = event_type.filter(|t| t.starts_with("chat.")) {
        // X Chat: one message per delivery, or an event without one (ignored).
        let mut reader = Reader::new(business.clone(), Users::None);
        if chat::carries_a_message(event_type) {
            let message = chat::message(payload, business).map_err(|reason| (reason, None));
            reader.keep("payload", 0, message.map(Some));
        } else {
            tracing::debug!(event_type, "X Chat event without a message ignored");
        }
        return Ok(reader.into_delivery(shape));
    }

    let users = payload
        .get("users")
        .and_then(Value::as_object)
        .map_or(Users::None, Users::Values);
    let mut reader = Reader::new(business, users);
    reader.read_list(payload, DM_EVENTS, Reader::dm);
    reader.read_list(payload, TYPING_EVENTS, |r, e| {
        r.indicator(e).map(|i| i.map(InboundEvent::Typing))
    });
    reader.read_list(payload, READ_EVENTS, |r, e| {
        r.read_up_to(e).map(|i| i.map(InboundEvent::Read))
    });
    if let Some(user_event) = payload.get(USER_EVENT).and_then(value_as::<UserEvent>)
        && let Some(revoke) = user_event.revoke
    {
        let raw = revoke.source.and_then(|s| s.user_id);
        let user_id = raw.as_deref().and_then(|s| XUserId::parse(s).ok());
        if raw.is_some() && user_id.is_none() {
            tracing::warn!("revoke event with an invalid user id: the account is unknown");
        }
        reader.keep(USER_EVENT, 0, Ok(Some(InboundEvent::Revoked { user_id })));
    }
    Ok(reader.into_delivery(shape))
}

/// An API v2 `includes.media` object (`media_key`, `type`, `url`, `variants[]`, as
/// `GET /2/dm_events` expands `attachments.media_keys`) → the file to download, chosen as for
/// webhook deliveries (photo → `url`; video, GIF → the best mp4 variant); `Err` says why not.
pub(crate) fn v2_media(value: &Value) -> Result<InboundMedia, &'static str> {
    #[derive(serde::Deserialize)]
    struct V2Media {
        #[serde(default, deserialize_with = "crate::lenient::string")]
        media_key: Option<String>,
        #[serde(rename = "type", default, deserialize_with = "crate::lenient::string")]
        kind: Option<String>,
        #[serde(default, deserialize_with = "crate::lenient::string")]
        url: Option<String>,
        #[serde(default, deserialize_with = "crate::lenient::list")]
        variants: Vec<model::Variant>,
    }
    let v2: V2Media = value_as(value).ok_or("the media is not an object")?;
    // `3_1585321400000000000`: the media id follows the type prefix.
    let id = v2
        .media_key
        .as_deref()
        .map(|k| k.rsplit_once('_').map_or(k, |(_, id)| id).to_owned());
    let legacy = model::Media {
        id_str: id,
        kind: v2.kind,
        media_url_https: v2.url,
        video_info: Some(model::VideoInfo {
            variants: v2.variants,
        }),
        ..model::Media::default()
    };
    media::choose(&legacy)
}

fn id_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
