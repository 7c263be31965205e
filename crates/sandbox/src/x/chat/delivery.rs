//! X Chat events to subscribers (docs/xchat.md §3.8): the `chat.received` / `chat.sent` /
//! `chat.conversation.join` payload of a relayed event, handed to the X Activity API machinery
//! ([`dispatch`]: log, activity streams, signed webhook POSTs) by one worker per sandbox, so
//! subscribers get the events in the order they were stored; and raw payloads for negative tests.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::error::SandboxError;
use crate::state::Shared;
use crate::x::chat::queue::DeliveryQueue;
use crate::x::chat::records::ChatEventRecord;
use crate::x::chat::state::{ChatState, StoredEvent};
use crate::x::dispatch::dispatch;
use crate::x::dm_spec::PayloadShape;
use crate::x::outgoing::Outgoing;
use crate::x::payloads::Activity;
use crate::x::records::{DeliveryKind, WebhookDelivery};
use crate::x::subscriptions::EVENT_TYPES;

/// A message, to the recipient's subscriptions.
pub(crate) const CHAT_RECEIVED: &str = "chat.received";
/// A message, to the sender's subscriptions.
pub(crate) const CHAT_SENT: &str = "chat.sent";
/// A conversation's first key, to the other participant's subscriptions.
pub(crate) const CHAT_JOIN: &str = "chat.conversation.join";

/// The payload of `event` (§3.8): its ids, the `encoded_event`, the key change of its key version
/// (`conversation_key_change_event`) and the signature with the sender's registered signing key.
pub(crate) fn payload(
    event: &StoredEvent,
    key_change: Option<&StoredEvent>,
    signing_public_key: Option<&str>,
    conversation_token: &str,
) -> Value {
    let r = &event.record;
    let mut signature = json!({
        "public_key_version": event.signature.public_key_version,
        "signature": event.signature.signature,
        "signature_version": event.signature.signature_version,
    });
    if let (Some(key), Value::Object(obj)) = (signing_public_key, &mut signature) {
        obj.insert("signing_public_key".into(), json!(key));
    }
    let mut payload = json!({
        "conversation_token": conversation_token,
        "id": r.message_id,
        "created_at_msec": r.created_at_msec.to_string(),
        "sender_id": r.sender_id,
        "conversation_id": r.conversation_id,
        "conversation_key_version": r.conversation_key_version,
        "encoded_event": r.encoded_event,
        "message_event_signature": signature,
    });
    if let (Some(change), Value::Object(obj)) = (key_change, &mut payload) {
        obj.insert(
            "conversation_key_change_event".into(),
            json!(change.record.encoded_event),
        );
    }
    payload
}

/// `payload` as event `event_type` for the subscriptions of `user_id`.
pub(crate) fn outgoing(
    event_type: &str,
    user_id: &str,
    record: &ChatEventRecord,
    recipient_id: &str,
    payload: Value,
) -> Outgoing {
    Outgoing {
        kind: DeliveryKind::Chat,
        user_id: user_id.to_owned(),
        activity: Activity::Chat {
            event_type: event_type.to_owned(),
            sender_id: record.sender_id.clone(),
            recipient_id: recipient_id.to_owned(),
            payload,
        },
        event_id: Some(record.message_id.clone()),
        aaa_shape: PayloadShape::Xaa,
        include_users: false,
        media: None,
    }
}

/// Queues `items` behind every earlier chat delivery (the worker starts with the first).
pub(crate) fn enqueue(shared: &Arc<Shared>, chat: &mut ChatState, items: Vec<Outgoing>) {
    let queue = chat.queue.get_or_insert_with(|| {
        let (tx, mut rx) = mpsc::unbounded_channel::<Outgoing>();
        let worker = Arc::clone(shared);
        shared.spawn(async move {
            while let Some(out) = rx.recv().await {
                let event_id = out.event_id.clone().unwrap_or_default();
                if let Err(e) = dispatch(&worker, out).await {
                    tracing::warn!(error = %e, message_id = %event_id, "X Chat event not delivered");
                }
            }
        });
        DeliveryQueue::new(tx)
    });
    for item in items {
        if queue.send(item).is_err() {
            tracing::warn!("X Chat delivery worker stopped: event dropped");
        }
    }
}

/// Delivers `payload` as-is as event `event_type` (one of X's `chat.*` types) to the
/// subscriptions of `user_id`, now; the first webhook delivery (or one without status).
pub(crate) async fn deliver_raw(
    shared: &Shared,
    user_id: &str,
    event_type: &str,
    payload: Value,
) -> Result<WebhookDelivery, SandboxError> {
    if !event_type.starts_with("chat.") || !EVENT_TYPES.contains(&event_type) {
        return Err(SandboxError::invalid(
            "event_type",
            format!("{event_type} is not an X Activity API chat event type"),
        ));
    }
    if !payload.is_object() {
        return Err(SandboxError::invalid(
            "chat payload",
            "the payload must be a JSON object",
        ));
    }
    let text = |field: &str| {
        payload
            .get(field)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let sender_id = text("sender_id").unwrap_or_default();
    let event_id = text("id");
    let out = Outgoing {
        kind: DeliveryKind::Chat,
        user_id: user_id.to_owned(),
        activity: Activity::Chat {
            event_type: event_type.to_owned(),
            sender_id,
            recipient_id: user_id.to_owned(),
            payload,
        },
        event_id,
        aaa_shape: PayloadShape::Xaa,
        include_users: false,
        media: None,
    };
    dispatch(shared, out).await
}
