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

mod caption;
mod chat;
mod media;
mod model;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod vectors;

/// For reading sent DMs back (`crate::dm_events`): X's t.co links expanded to their URLs.
pub(crate) use caption::{MediaLink, agent_text};
pub(crate) use model::UrlEntity;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use xdm_core::ids::{XEventId, XUserId};
use xdm_core::inbound::{
    InboundBatch, InboundDm, InboundEvent, InboundMedia, Indicator, ReadUpTo, XChannel,
};
use xdm_core::profile::XProfile;

use crate::user::UserObject;
use model::{DmEvent, IndicatorEvent, UserEvent};

/// The event lists a delivery may carry (kept in this order in the batch).
const DM_EVENTS: &str = "direct_message_events";
const TYPING_EVENTS: &str = "direct_message_indicate_typing_events";
const READ_EVENTS: &str = "direct_message_mark_read_events";
const USER_EVENT: &str = "user_event";

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

/// Which of the two webhook formats a delivery used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryShape {
    AccountActivity,
    XActivity,
}

/// A delivery read: the events the bridge understood, and those it had to skip.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedDelivery {
    pub shape: DeliveryShape,
    /// The subscribed business account (`for_user_id`), when the delivery names one.
    pub business: Option<XUserId>,
    pub batch: InboundBatch,
    /// Events dropped because they were malformed (each already logged at WARN).
    pub skipped: Vec<SkippedEvent>,
}

/// An event left out of the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedEvent {
    /// The list it came from (`direct_message_events`, …).
    pub list: &'static str,
    /// Its position in that list.
    pub index: usize,
    /// Its id, when it had a valid one.
    pub event_id: Option<XEventId>,
    pub reason: &'static str,
}

/// Reads a verified webhook body (the exact bytes whose signature was checked).
pub fn parse_delivery(body: &[u8]) -> Result<ParsedDelivery, PayloadError> {
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
        let mut reader = Reader {
            business: business.clone(),
            users: None,
            events: Vec::new(),
            skipped: Vec::new(),
        };
        if chat::carries_a_message(event_type) {
            match chat::message(payload, business.clone()) {
                Ok(event) => reader.events.push(event),
                Err(reason) => reader.skip("payload", 0, (reason, None)),
            }
        } else {
            tracing::debug!(event_type, "X Chat event without a message ignored");
        }
        return Ok(ParsedDelivery {
            shape,
            business,
            batch: InboundBatch {
                events: reader.events,
            },
            skipped: reader.skipped,
        });
    }

    let mut reader = Reader {
        business: business.clone(),
        users: payload.get("users").and_then(Value::as_object),
        events: Vec::new(),
        skipped: Vec::new(),
    };
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
        reader.events.push(InboundEvent::Revoked { user_id });
    }

    Ok(ParsedDelivery {
        shape,
        business,
        batch: InboundBatch {
            events: reader.events,
        },
        skipped: reader.skipped,
    })
}

/// A skip: the reason, and the event id when known.
type Skip = (&'static str, Option<XEventId>);

struct Reader<'a> {
    business: Option<XUserId>,
    users: Option<&'a Map<String, Value>>,
    events: Vec<InboundEvent>,
    skipped: Vec<SkippedEvent>,
}

impl Reader<'_> {
    /// Converts every item of `payload[list]` with `convert` (`Ok(None)`: ignored on purpose).
    fn read_list(
        &mut self,
        payload: &Map<String, Value>,
        list: &'static str,
        convert: impl Fn(&Self, &Value) -> Result<Option<InboundEvent>, Skip>,
    ) {
        let Some(value) = payload.get(list) else {
            return;
        };
        let Some(items) = value.as_array() else {
            self.skip(list, 0, ("the event list is not an array", None));
            return;
        };
        for (index, item) in items.iter().enumerate() {
            match convert(self, item) {
                Ok(Some(event)) => self.events.push(event),
                Ok(None) => {}
                Err(skip) => self.skip(list, index, skip),
            }
        }
    }

    fn skip(&mut self, list: &'static str, index: usize, (reason, event_id): Skip) {
        tracing::warn!(list, index, event_id = ?event_id, reason, "webhook event skipped");
        self.skipped.push(SkippedEvent {
            list,
            index,
            event_id,
            reason,
        });
    }

    fn business(&self, event_id: Option<&XEventId>) -> Result<XUserId, Skip> {
        self.business.clone().ok_or((
            "the delivery names no business account (for_user_id)",
            event_id.cloned(),
        ))
    }

    fn dm(&self, item: &Value) -> Result<Option<InboundEvent>, Skip> {
        let ev: DmEvent = value_as(item).ok_or(("the event is not an object", None))?;
        match ev.kind.as_deref() {
            Some("message_create") => {}
            None if ev.message_create.is_some() => {}
            _ => {
                tracing::debug!(kind = ?ev.kind, "DM event that is not a message_create ignored");
                return Ok(None);
            }
        }
        let raw_id = ev.id.ok_or(("the event has no id", None))?;
        let event_id =
            XEventId::parse(raw_id).map_err(|_| ("the event id is not 1 to 19 digits", None))?;
        let skip = |reason: &'static str| (reason, Some(event_id.clone()));
        let business = self.business(Some(&event_id))?;
        let created_ms = timestamp(ev.created_timestamp.as_deref())
            .ok_or_else(|| skip("created_timestamp is missing or not milliseconds"))?;
        let mc = ev
            .message_create
            .ok_or_else(|| skip("message_create is missing"))?;
        let sender = user_id(mc.sender_id.as_deref()).ok_or_else(|| skip("invalid sender_id"))?;
        let recipient = user_id(mc.target.and_then(|t| t.recipient_id).as_deref())
            .ok_or_else(|| skip("invalid target.recipient_id"))?;

        let data = mc.message_data.unwrap_or_default();
        let urls = data.entities.map(|e| e.urls).unwrap_or_default();
        let attached = data.attachment.and_then(|a| a.media);
        let (media, media_link) = match &attached {
            None => (None, None),
            Some(m) => {
                let chosen = media::choose(m)
                    .inspect_err(|reason| {
                        tracing::warn!(event_id = %event_id, reason, "DM attachment cannot be read: relayed without it");
                    })
                    .ok();
                let link = MediaLink {
                    url: m.url.as_deref(),
                    indices: m.indices,
                    strip: chosen.is_some(),
                };
                (chosen, Some(link))
            }
        };
        let text = agent_text(data.text.as_deref().unwrap_or(""), &urls, media_link);

        let sender_profile = self.profile(&sender);
        Ok(Some(InboundEvent::Message(InboundDm {
            business,
            event_id,
            sender,
            recipient,
            created_ms,
            text,
            source_app_id: mc.source_app_id.filter(|s| !s.is_empty()),
            sender_profile,
            media,
            channel: XChannel::Dm,
        })))
    }

    fn indicator(&self, item: &Value) -> Result<Option<Indicator>, Skip> {
        let ev: IndicatorEvent = value_as(item).ok_or(("the event is not an object", None))?;
        let business = self.business(None)?;
        let sender = user_id(ev.sender_id.as_deref()).ok_or(("invalid sender_id", None))?;
        let created_ms = timestamp(ev.created_timestamp.as_deref())
            .ok_or(("created_timestamp is missing or not milliseconds", None))?;
        Ok(Some(Indicator {
            business,
            sender,
            created_ms,
        }))
    }

    fn read_up_to(&self, item: &Value) -> Result<Option<ReadUpTo>, Skip> {
        let ev: IndicatorEvent = value_as(item).ok_or(("the event is not an object", None))?;
        let last_read_event_id = ev
            .last_read_event_id
            .as_deref()
            .and_then(|id| XEventId::parse(id).ok())
            .ok_or(("last_read_event_id is missing or not an event id", None))?;
        let Some(read) = self.indicator(item)? else {
            return Ok(None);
        };
        Ok(Some(ReadUpTo {
            business: read.business,
            sender: read.sender,
            last_read_event_id,
            created_ms: read.created_ms,
        }))
    }

    /// The sender's profile from the delivery's `users` map (either user shape).
    fn profile(&self, id: &XUserId) -> Option<XProfile> {
        let user: UserObject = value_as(self.users?.get(id.as_str())?)?;
        Some(user.into_profile(id.clone())).filter(XProfile::is_known)
    }
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

fn value_as<T: DeserializeOwned>(v: &Value) -> Option<T> {
    T::deserialize(v).ok()
}

fn id_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn user_id(s: Option<&str>) -> Option<XUserId> {
    XUserId::parse(s?).ok()
}

/// `created_timestamp`: milliseconds since the epoch, as a string of digits.
fn timestamp(s: Option<&str>) -> Option<i64> {
    let s = s?;
    if s.is_empty() || s.len() > 18 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}
