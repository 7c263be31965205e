//! What happens to a chat beyond its routes: an item added to the transcript (its event, and one
//! SNS message per streaming topic), the chat ended, chats past their duration swept, and the
//! lookup of a live chat for the agent-side controls.

use std::collections::BTreeMap;

use crate::clock;
use crate::connect::model::{
    ChatItem, ContactStatus, EndReason, Item, ItemType, MessageVisibility, content_types,
};
use crate::connect::state::{Agent, Chat, ConnectState, NewItem};
use crate::error::SandboxError;
use crate::events::SandboxEvent;
use crate::ids;
use crate::sns::delivery;
use crate::sns::message::MessageAttribute;
use crate::sns::state::ItemMessage;
use crate::state::Shared;
use crate::sync::lock;

/// Adds an item to chat `idx`: transcript, `ChatItem` event, and one SNS message per active
/// streaming topic — all under the caller's lock, so items are streamed in transcript order.
pub(crate) fn append_item(
    shared: &Shared,
    cs: &mut ConnectState,
    idx: usize,
    new: NewItem,
) -> Option<ChatItem> {
    let chat = cs.chats.get_mut(idx)?;
    let absolute_time = clock::now_iso_ms();
    let message_metadata = new
        .metadata
        .map(|m| m.at(&absolute_time, new.participant_id.as_deref()));
    let item = ChatItem {
        item: Item {
            absolute_time,
            attachments: new.attachments,
            content: new.content,
            content_type: new.content_type,
            id: ids::uuid(),
            item_type: new.item_type,
            participant_id: new.participant_id,
            display_name: new.display_name,
            participant_role: new.role,
            message_metadata,
            initial_contact_id: chat.initial_contact_id.clone(),
            contact_id: chat.contact_id.clone(),
        },
        visibility: new.visibility,
    };
    chat.transcript.push(item.clone());
    shared.events.emit(SandboxEvent::ChatItem {
        contact_id: chat.contact_id.clone(),
        initial_contact_id: chat.initial_contact_id.clone(),
        item: item.clone(),
    });
    for topic in chat.active_topics() {
        stream_item(shared, &topic, chat, &item);
    }
    Some(item)
}

/// Publishes `item` of `chat` to `topic_arn`, as Connect chat streaming does: the `Item` as the
/// message, with the contact's ids, role, type and visibility as message attributes. A receipt is
/// streamed as its GetTranscript `Item` (MESSAGEMETADATA, `Type` attribute `MESSAGEMETADATA`):
/// the streaming documentation describes no receipt (see [`Item`]).
pub(crate) fn stream_item(shared: &Shared, topic_arn: &str, chat: &Chat, item: &ChatItem) {
    let mut attributes = BTreeMap::new();
    let mut put = |k: &str, v: &str| {
        attributes.insert(k.to_owned(), MessageAttribute::string(v));
    };
    put("InitialContactId", &item.item.initial_contact_id);
    put("ContactId", &item.item.contact_id);
    if let Some(role) = item.item.participant_role {
        put("ParticipantRole", role.as_str());
    }
    put("InstanceId", &chat.instance_id);
    put("AccountId", &shared.cfg.connect.account_id);
    put("Type", item.item.item_type.as_str());
    // ATTACHMENT items have no top-level ContentType (docs/protocols.md B3: unconfirmed).
    if !item.item.content_type.is_empty() {
        put("ContentType", &item.item.content_type);
    }
    put("MessageVisibility", item.visibility.as_str());
    let message = ItemMessage {
        message: serde_json::to_string(&item.item).unwrap_or_default(),
        attributes,
        contact_id: item.item.contact_id.clone(),
        initial_contact_id: chat.initial_contact_id.clone(),
        item_id: item.item.id.clone(),
    };
    delivery::publish(shared, topic_arn, message);
}

/// Ends chat `idx` with a `chat.ended` event (no participant fields). `None` if it had ended.
pub(crate) fn end_chat(
    shared: &Shared,
    cs: &mut ConnectState,
    idx: usize,
    reason: EndReason,
) -> Option<ChatItem> {
    if cs.chats.get(idx)?.is_ended() {
        return None;
    }
    let ended = append_item(
        shared,
        cs,
        idx,
        NewItem {
            item_type: ItemType::Event,
            content_type: content_types::CHAT_ENDED.to_owned(),
            content: None,
            attachments: None,
            role: None,
            participant_id: None,
            display_name: None,
            visibility: MessageVisibility::All,
            metadata: None,
        },
    )?;
    let chat = cs.chats.get_mut(idx)?;
    chat.status = ContactStatus::Ended;
    chat.end_reason = Some(reason);
    chat.ended_at = Some(clock::now());
    for stream in &mut chat.streams {
        stream.active = false;
    }
    for participant in [&mut chat.agent, &mut chat.supervisor]
        .into_iter()
        .flatten()
    {
        participant.present = false;
    }
    tracing::info!(contact_id = %chat.contact_id, ?reason, "chat ended");
    shared.events.emit(SandboxEvent::ContactEnded {
        contact_id: chat.contact_id.clone(),
        initial_contact_id: chat.initial_contact_id.clone(),
        reason,
    });
    delivery::close_contact(shared, &chat.initial_contact_id);
    Some(ended)
}

/// Ends every chat whose `ChatDurationInMinutes` has elapsed.
pub(crate) fn end_expired_chats(shared: &Shared) {
    let now = clock::now();
    let mut cs = lock(&shared.connect);
    let expired: Vec<usize> = cs
        .chats
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.is_ended() && c.expires_at <= now)
        .map(|(i, _)| i)
        .collect();
    for idx in expired {
        end_chat(shared, &mut cs, idx, EndReason::Expired);
    }
}

/// Runs `f` on the live chat `contact_id` (any of its ContactIds) under the Connect lock.
pub(crate) fn with_live_chat<T>(
    shared: &Shared,
    contact_id: &str,
    f: impl FnOnce(&mut ConnectState, usize) -> Result<T, SandboxError>,
) -> Result<T, SandboxError> {
    let mut cs = lock(&shared.connect);
    let idx = cs
        .find(contact_id)
        .ok_or_else(|| SandboxError::UnknownContact(contact_id.to_owned()))?;
    if cs.chats.get(idx).is_none_or(|c| c.is_ended()) {
        return Err(SandboxError::ContactEnded(contact_id.to_owned()));
    }
    f(&mut cs, idx)
}

/// The agent present in chat `idx`.
pub(crate) fn present_agent(
    cs: &ConnectState,
    idx: usize,
    contact_id: &str,
) -> Result<Agent, SandboxError> {
    cs.chats
        .get(idx)
        .and_then(|c| c.agent.clone())
        .filter(|a| a.present)
        .ok_or_else(|| SandboxError::NoAgent(contact_id.to_owned()))
}
