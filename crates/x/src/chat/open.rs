//! A customer's X Chat message opened (docs/xchat.md §3.6 "Receive algorithm"), for
//! [`XApi::open_chat`](xdm_core::ports::XApi::open_chat):
//!
//! 1. the event is read, and must be the one the delivery named (sender, message id);
//! 2. the conversation key it names: the key change delivered with it (else the conversation's
//!    key changes read from X), its signature checked against its sender's signing key, the key
//!    unwrapped with this account's identity key (entries for another version of our key
//!    skipped);
//! 3. the message's signature checked against the sender's signing key of the version it names
//!    — before anything is decrypted;
//! 4. the contents decrypted and read (the text; other kinds of content read as no text).
//!
//! Any check that fails is `Unreadable` (never retried; the core shows the agent a note).

use http::Method;
use serde::Deserialize;
use xdm_core::ids::{XEventId, XUserId};
use xdm_core::inbound::ChatKeyChange;
use xdm_core::inbound::InboundChat;
use xdm_core::ports::{OpenedChat, XError};
use xdm_xchat::ConversationKey;
use xdm_xchat::events::{Detail, MessageEvent, parse_event};
use xdm_xchat::thrift::{message_attachments, message_text};

use crate::chat::media::inbound_media;

use crate::chat::key_change::open_key_change;
use crate::chat::public_keys::signing_key;
use crate::chat::{ChatIdentity, unreadable};
use crate::client::XClient;
use crate::error::unexpected_body;

/// The most pages of a conversation's history read to find a key change.
const MAX_HISTORY_PAGES: usize = 5;

/// [`XApi::open_chat`](xdm_core::ports::XApi::open_chat) over `client`.
pub(crate) async fn open(client: &XClient, chat: &InboundChat) -> Result<OpenedChat, XError> {
    let identity = client.chat_identity(&chat.business)?;
    let event = parse_event(&chat.encoded_event).map_err(|e| unreadable("the event", &e))?;
    if event.sender_id != chat.sender.as_str() || event.message_id != chat.message_id.as_str() {
        return Err(XError::Unreadable(
            "the event is not the message the delivery named".into(),
        ));
    }
    let Detail::Message { key_version, .. } = &event.detail else {
        // Not a message (a key change, typing, a read mark…): nothing to show.
        return Ok(OpenedChat {
            sequence_id: sequence_id(&event)?,
            text: String::new(),
            media: None,
            key: None,
        });
    };
    let (key, change) = conversation_key(client, &identity, chat, &event, key_version).await?;
    let signature_version = event
        .signature
        .as_ref()
        .map(|s| s.public_key_version.clone())
        .unwrap_or_default();
    let sender = signing_key(
        client,
        &identity,
        &chat.business,
        &chat.sender,
        &signature_version,
    )
    .await?;
    let plaintext = event
        .open_message(&sender, |v| (v == key_version).then(|| key.clone()))
        .map_err(|e| unreadable("the message", &e))?;
    let text = message_text(&plaintext)
        .map_err(|e| unreadable("the contents", &e))?
        .unwrap_or_default();
    let files = message_attachments(&plaintext).map_err(|e| unreadable("the contents", &e))?;
    // One file per message, as for DMs: the first photo, GIF or video.
    let media = files.iter().find_map(|f| inbound_media(f, &change));
    if files.len() > usize::from(media.is_some()) {
        tracing::warn!(
            files = files.len(),
            "X Chat message with files the bridge does not relay (audio, documents, more than one)"
        );
    }
    Ok(OpenedChat {
        sequence_id: sequence_id(&event)?,
        text,
        media,
        key: Some(change),
    })
}

fn sequence_id(event: &MessageEvent) -> Result<XEventId, XError> {
    XEventId::parse(event.sequence_id.clone())
        .map_err(|_| XError::Unreadable("the event's sequence id is not X's".into()))
}

/// The conversation key of `version`: from the key change delivered with the message, else
/// from the conversation's key changes on X.
async fn conversation_key(
    client: &XClient,
    identity: &ChatIdentity,
    chat: &InboundChat,
    message: &MessageEvent,
    version: &str,
) -> Result<(ConversationKey, ChatKeyChange), XError> {
    if let Some(encoded) = &chat.key_change_event {
        let change = parse_event(encoded).map_err(|e| unreadable("the key change", &e))?;
        if matches!(&change.detail, Detail::KeyChange { key_version, .. } if key_version == version)
        {
            return open_key_change(client, identity, &chat.business, &change, encoded).await;
        }
    }
    let peer = &chat.sender;
    for encoded in key_changes(client, &chat.business, peer).await? {
        let Ok(change) = parse_event(&encoded) else {
            continue;
        };
        if change.conversation_id == message.conversation_id
            && matches!(&change.detail, Detail::KeyChange { key_version, .. } if key_version == version)
        {
            return open_key_change(client, identity, &chat.business, &change, &encoded).await;
        }
    }
    Err(XError::Unreadable(format!(
        "no key change of version {version} for this conversation"
    )))
}

#[derive(Debug, Deserialize)]
struct EventsPage {
    #[serde(default)]
    meta: EventsMeta,
}

#[derive(Debug, Default, Deserialize)]
struct EventsMeta {
    #[serde(default)]
    conversation_key_events: Vec<String>,
    next_token: Option<String>,
}

/// The key changes of the conversation with `peer` as X lists them with its history
/// (`GET /2/chat/conversations/{peer}/events`, `meta.conversation_key_events`), a few pages.
async fn key_changes(
    client: &XClient,
    business: &XUserId,
    peer: &XUserId,
) -> Result<Vec<String>, XError> {
    let mut found = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..MAX_HISTORY_PAGES {
        let mut url = client.endpoint(&format!("/2/chat/conversations/{peer}/events"))?;
        url.query_pairs_mut().append_pair("max_results", "100");
        if let Some(t) = &token {
            url.query_pairs_mut().append_pair("pagination_token", t);
        }
        let answer = client
            .call::<()>(Method::GET, url, business, None)
            .await?
            .success()?;
        let page: EventsPage = serde_json::from_slice(&answer.body)
            .map_err(|_| unexpected_body("a conversation's events", &answer.body))?;
        found.extend(page.meta.conversation_key_events);
        match page.meta.next_token {
            Some(next) if !next.is_empty() => token = Some(next),
            _ => break,
        }
    }
    Ok(found)
}
