//! X Chat events of the X Activity API (`chat.received`, `chat.sent`; docs/xchat.md §3.8):
//! `payload` names the message (`id`, `sender_id`, `conversation_id`, `created_at_msec`) and
//! carries it sealed (`encoded_event`) with the key change of its conversation key
//! (`conversation_key_change_event`). Nothing is verified or decrypted here: the message is
//! accepted as it came and opened when it is delivered. A typing indicator (an event whose detail
//! is X Chat's typing variant: neither sealed nor signed) is read at once, as a DM's typing
//! event. Other `chat.*` events (a conversation joined, group changes) carry no message and are
//! ignored.

use serde::Deserialize;
use serde_json::{Map, Value};
use xdm_core::ids::{ChatMessageId, XUserId};
use xdm_core::inbound::{InboundChat, InboundEvent, Indicator};
use xdm_xchat::events::{Detail, parse_event};

/// `MessageEventDetail` variant 6, `messageTypingEvent` (X Chat's Thrift schema, docs/xchat.md
/// §3.6).
const TYPING_DETAIL: i16 = 6;

/// The event types that carry a message.
pub(super) fn carries_a_message(event_type: &str) -> bool {
    matches!(event_type, "chat.received" | "chat.sent")
}

#[derive(Debug, Deserialize)]
struct ChatPayload {
    #[serde(default, deserialize_with = "crate::lenient::string")]
    id: Option<String>,
    #[serde(default)]
    sender_id: Option<Value>,
    #[serde(default, deserialize_with = "crate::lenient::string")]
    conversation_id: Option<String>,
    #[serde(default)]
    created_at_msec: Option<Value>,
    #[serde(default, deserialize_with = "crate::lenient::string")]
    encoded_event: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::string")]
    conversation_key_change_event: Option<String>,
}

/// The message of a `chat.received` / `chat.sent` payload for `business`; `Err`: why it is
/// skipped.
pub(super) fn message(
    payload: &Map<String, Value>,
    business: Option<XUserId>,
) -> Result<InboundEvent, &'static str> {
    let p = ChatPayload::deserialize(&Value::Object(payload.clone()))
        .map_err(|_| "the chat payload is not readable")?;
    let business = business.ok_or("the delivery names no business account (filter.user_id)")?;
    let sender = p
        .sender_id
        .as_ref()
        .and_then(digits)
        .and_then(|s| XUserId::parse(s).ok())
        .ok_or("invalid sender_id")?;
    let created_ms = p
        .created_at_msec
        .as_ref()
        .and_then(digits)
        .and_then(|s| s.parse::<i64>().ok())
        .filter(|ms| *ms > 0)
        .ok_or("created_at_msec is missing or not milliseconds")?;
    let encoded_event = p
        .encoded_event
        .filter(|e| !e.is_empty())
        .ok_or("the chat message has no encoded_event")?;
    // A typing indicator is neither sealed nor signed: shown as the customer typing, as for DMs.
    if let Ok(event) = parse_event(&encoded_event)
        && event.detail == Detail::Other(TYPING_DETAIL)
    {
        return Ok(InboundEvent::Typing(Indicator {
            business,
            sender,
            created_ms,
        }));
    }
    let message_id =
        p.id.and_then(|id| ChatMessageId::parse(id).ok())
            .ok_or("the chat message has no valid id")?;
    Ok(InboundEvent::Chat(InboundChat {
        business,
        sender,
        message_id,
        conversation_id: p.conversation_id.unwrap_or_default(),
        created_ms,
        encoded_event,
        key_change_event: p.conversation_key_change_event.filter(|e| !e.is_empty()),
        sender_profile: None,
    }))
}

/// A string or a number, as text (X writes ids and times either way).
fn digits(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
