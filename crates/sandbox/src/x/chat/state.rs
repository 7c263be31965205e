//! The X Chat emulator's memory (a part of `XState`, behind its lock): registered public keys per
//! user, the conversations with their key versions, every relayed event, media uploads, typing /
//! read calls, and the queue that delivers chat events in order. Plain data and lookups.

use std::collections::{BTreeMap, HashMap};

use crate::x::chat::queue::DeliveryQueue;
use crate::x::chat::records::{
    ChatEventKind, ChatEventRecord, ChatIndicatorRecord, ChatMediaRecord, ChatPublicKeyRecord,
};
use crate::x::chat::wire::EventSignature;

#[derive(Debug, Default)]
pub(crate) struct ChatState {
    /// Per user, one row per key version, in numeric version order.
    pub public_keys: BTreeMap<String, Vec<ChatPublicKeyRecord>>,
    /// By canonical id.
    pub conversations: HashMap<String, ConversationState>,
    /// Every relayed event, in sequence order.
    pub events: Vec<StoredEvent>,
    /// Uploads by session, oldest first.
    pub media: Vec<MediaUpload>,
    pub indicators: Vec<ChatIndicatorRecord>,
    /// Started with the first delivery.
    pub queue: Option<DeliveryQueue>,
}

/// A conversation that has at least one key.
#[derive(Debug)]
pub(crate) struct ConversationState {
    /// The opaque `conversation_token` of its payloads.
    pub token: String,
    /// Key changes in the order they were added: (version, index into `events`).
    pub key_changes: Vec<(String, usize)>,
}

/// A relayed event and what the emulator needs to answer for it again.
#[derive(Debug, Clone)]
pub(crate) struct StoredEvent {
    pub record: ChatEventRecord,
    pub signature: EventSignature,
    /// The request that made it (a retry with the same message id must match).
    pub request: Vec<u8>,
}

/// An X Chat media upload session and, once finalized, its blob.
#[derive(Debug)]
pub(crate) struct MediaUpload {
    pub record: ChatMediaRecord,
    /// Appended segments by `segment_index`.
    pub parts: BTreeMap<u32, Vec<u8>>,
    /// The ciphertext, after `finalize`.
    pub blob: Option<Vec<u8>>,
}

/// `a <= b` for decimal version strings (by length, then text).
pub(crate) fn version_order(a: &str, b: &str) -> std::cmp::Ordering {
    (a.len(), a).cmp(&(b.len(), b))
}

impl ChatState {
    /// Adds a key row, replacing the row of the same version.
    pub(crate) fn register_key(&mut self, row: ChatPublicKeyRecord) {
        let rows = self.public_keys.entry(row.user_id.clone()).or_default();
        rows.retain(|r| r.public_key_version != row.public_key_version);
        rows.push(row);
        rows.sort_by(|a, b| version_order(&a.public_key_version, &b.public_key_version));
    }

    /// `user_id`'s key row of `version`.
    pub(crate) fn registered_key(
        &self,
        user_id: &str,
        version: &str,
    ) -> Option<&ChatPublicKeyRecord> {
        self.public_keys
            .get(user_id)?
            .iter()
            .find(|r| r.public_key_version == version)
    }

    /// The key versions of a conversation, in the order they were added.
    pub(crate) fn key_versions(&self, conversation_id: &str) -> Vec<String> {
        self.conversations
            .get(conversation_id)
            .map(|c| c.key_changes.iter().map(|(v, _)| v.clone()).collect())
            .unwrap_or_default()
    }

    /// The key change event of `version` in a conversation.
    pub(crate) fn key_change(&self, conversation_id: &str, version: &str) -> Option<&StoredEvent> {
        let conv = self.conversations.get(conversation_id)?;
        let (_, at) = conv.key_changes.iter().find(|(v, _)| v == version)?;
        self.events.get(*at)
    }

    /// The key change events of a conversation, oldest first.
    pub(crate) fn key_changes(&self, conversation_id: &str) -> Vec<&StoredEvent> {
        self.conversations
            .get(conversation_id)
            .map(|c| {
                c.key_changes
                    .iter()
                    .filter_map(|(_, at)| self.events.get(*at))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The message events of a conversation, oldest first.
    pub(crate) fn messages(&self, conversation_id: &str) -> Vec<&StoredEvent> {
        self.events
            .iter()
            .filter(|e| {
                e.record.conversation_id == conversation_id
                    && e.record.kind == ChatEventKind::Message
            })
            .collect()
    }

    /// The event (message or key change) with this client message id.
    pub(crate) fn event_by_message_id(&self, message_id: &str) -> Option<&StoredEvent> {
        self.events
            .iter()
            .find(|e| e.record.message_id == message_id)
    }

    /// Stores an event; a key change also becomes a key version of its conversation (which is
    /// created with `token` if new). Returns whether the conversation is new.
    pub(crate) fn push_event(
        &mut self,
        event: StoredEvent,
        token: impl FnOnce() -> String,
    ) -> bool {
        let at = self.events.len();
        let conversation_id = event.record.conversation_id.clone();
        let version = event.record.conversation_key_version.clone();
        let is_key_change = event.record.kind == ChatEventKind::KeyChange;
        self.events.push(event);
        if !is_key_change {
            return false;
        }
        let mut created = false;
        let conv = self
            .conversations
            .entry(conversation_id)
            .or_insert_with(|| {
                created = true;
                ConversationState {
                    token: token(),
                    key_changes: Vec::new(),
                }
            });
        conv.key_changes.push((version, at));
        created
    }

    /// The conversation's payload token (empty before its first key).
    pub(crate) fn token(&self, conversation_id: &str) -> String {
        self.conversations
            .get(conversation_id)
            .map(|c| c.token.clone())
            .unwrap_or_default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn row(user: &str, version: &str) -> ChatPublicKeyRecord {
        ChatPublicKeyRecord {
            user_id: user.into(),
            public_key_version: version.into(),
            public_key: "k".into(),
            signing_public_key: "s".into(),
            identity_public_key_signature: "b".into(),
            signing_public_key_signature: "r".into(),
            public_key_fingerprint: None,
            registration_method: None,
            registered_at: String::new(),
        }
    }

    #[test]
    fn key_rows_are_kept_per_version_in_numeric_order() {
        let mut chat = ChatState::default();
        chat.register_key(row("1", "100"));
        chat.register_key(row("1", "99"));
        let mut again = row("1", "100");
        again.public_key = "k2".into();
        chat.register_key(again);
        let versions: Vec<&str> = chat.public_keys["1"]
            .iter()
            .map(|r| r.public_key_version.as_str())
            .collect();
        assert_eq!(versions, ["99", "100"]);
        assert_eq!(chat.registered_key("1", "100").unwrap().public_key, "k2");
        assert!(chat.registered_key("2", "100").is_none());
    }

    #[test]
    fn key_changes_become_versions_of_their_conversation() {
        let mut chat = ChatState::default();
        let event = |kind, version: &str, mid: &str| StoredEvent {
            record: ChatEventRecord {
                sequence_id: mid.into(),
                message_id: mid.into(),
                sender_id: "1".into(),
                conversation_id: "1:2".into(),
                kind,
                conversation_key_version: version.into(),
                encoded_event: String::new(),
                created_at_msec: 0,
            },
            signature: EventSignature {
                signature: String::new(),
                public_key_version: String::new(),
                signature_version: "7".into(),
            },
            request: Vec::new(),
        };
        assert!(chat.push_event(event(ChatEventKind::KeyChange, "5", "a"), || "t".into()));
        assert!(!chat.push_event(event(ChatEventKind::Message, "5", "b"), || "u".into()));
        assert!(!chat.push_event(event(ChatEventKind::KeyChange, "6", "c"), || "u".into()));
        assert_eq!(chat.key_versions("1:2"), ["5", "6"]);
        assert_eq!(chat.token("1:2"), "t");
        assert_eq!(chat.key_change("1:2", "6").unwrap().record.message_id, "c");
        assert_eq!(chat.messages("1:2").len(), 1);
        assert_eq!(
            chat.event_by_message_id("b").unwrap().record.kind,
            ChatEventKind::Message
        );
    }
}
