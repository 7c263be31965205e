//! X Chat events as X delivers them (`encoded_event`, `conversation_key_change_event`: a Thrift
//! `MessageEvent`, docs/xchat.md §3.6) and the messages the bridge sends (§3.7): verified before
//! anything is decrypted, and signed over the same strings X's SDK signs.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::errors::XChatError;
use crate::keys::ChatKeys;
use crate::seal::ConversationKey;
use crate::signatures::{self, SIGNATURE_VERSION};
use crate::thrift::{self, Value};
use crate::wrap;

/// Signature versions whose signed strings a recipient can rebuild (older ones are refused).
const MIN_SIGNATURE_VERSION: u32 = 6;

/// A `MessageEvent`, as far as the bridge reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageEvent {
    /// Assigned by X (unsigned): what reads, reactions and deletes refer to.
    pub sequence_id: String,
    /// The sender's id for the event (signed): deduplicate on it.
    pub message_id: String,
    pub sender_id: String,
    /// As written in the event: signatures cover it verbatim.
    pub conversation_id: String,
    pub created_at_ms: Option<i64>,
    pub detail: Detail,
    pub signature: Option<EventSignature>,
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Detail {
    /// A message: sealed contents under the conversation key of `key_version`.
    Message {
        contents: Vec<u8>,
        key_version: String,
        should_notify: bool,
    },
    /// A new conversation key, wrapped for each participant.
    KeyChange {
        key_version: String,
        participants: Vec<ParticipantKey>,
    },
    /// Another kind (typing, read, delete, group change…): its variant number.
    Other(i16),
}

/// A conversation key wrapped for one participant's identity key of `public_key_version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantKey {
    pub user_id: String,
    pub wrapped_key: Vec<u8>,
    pub public_key_version: String,
}

/// `MessageEventSignature`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSignature {
    /// Raw `r ‖ s`, base64 without padding.
    pub signature: String,
    /// The version of the sender's signing key it was made with.
    pub public_key_version: String,
    pub signature_version: String,
}

fn text(v: Option<&Value>, what: &str) -> Result<String, XChatError> {
    v.and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| XChatError::Thrift(format!("no {what}")))
}

/// Reads a `MessageEvent` from its base64 form.
pub fn parse_event(encoded: &str) -> Result<MessageEvent, XChatError> {
    let bytes = STANDARD
        .decode(encoded.trim())
        .map_err(|e| XChatError::Thrift(format!("not base64: {e}")))?;
    let event = thrift::read_struct(&bytes)?;
    let detail = match event.field(7) {
        Some(Value::Struct(variant)) => match variant.first() {
            Some((1, create)) => Detail::Message {
                contents: create
                    .field(100)
                    .and_then(Value::as_bytes)
                    .map(<[u8]>::to_vec)
                    .ok_or_else(|| XChatError::Thrift("a message without contents".into()))?,
                key_version: text(create.field(101), "conversation key version")?,
                should_notify: create.field(102).and_then(Value::as_bool).unwrap_or(true),
            },
            Some((3, change)) => Detail::KeyChange {
                key_version: text(change.field(1), "conversation key version")?,
                participants: match change.field(2) {
                    Some(Value::List(items)) => items
                        .iter()
                        .map(|p| {
                            Ok(ParticipantKey {
                                user_id: text(p.field(1), "participant")?,
                                wrapped_key: STANDARD
                                    .decode(text(p.field(2), "wrapped key")?)
                                    .map_err(|e| XChatError::Thrift(format!("wrapped key: {e}")))?,
                                public_key_version: text(p.field(3), "public key version")
                                    .unwrap_or_default(),
                            })
                        })
                        .collect::<Result<_, XChatError>>()?,
                    _ => Vec::new(),
                },
            },
            Some((other, _)) => Detail::Other(*other),
            None => return Err(XChatError::Thrift("an empty event detail".into())),
        },
        _ => return Err(XChatError::Thrift("no event detail".into())),
    };
    let signature = match event.field(9) {
        Some(s) => Some(EventSignature {
            signature: text(s.field(1), "signature")?,
            public_key_version: text(s.field(2), "signing key version").unwrap_or_default(),
            signature_version: text(s.field(3), "signature version")?,
        }),
        None => None,
    };
    Ok(MessageEvent {
        sequence_id: text(event.field(1), "sequence id").unwrap_or_default(),
        message_id: text(event.field(2), "message id")?,
        sender_id: text(event.field(3), "sender")?,
        conversation_id: text(event.field(4), "conversation id")?,
        created_at_ms: event.field(6).and_then(|v| {
            v.as_int()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        }),
        detail,
        signature,
    })
}

impl MessageEvent {
    /// The signature, if its version can be checked by a recipient.
    fn checkable_signature(&self) -> Result<&EventSignature, XChatError> {
        let signature = self.signature.as_ref().ok_or(XChatError::Signature)?;
        let version: u32 = signature
            .signature_version
            .parse()
            .map_err(|_| XChatError::Signature)?;
        if version < MIN_SIGNATURE_VERSION {
            return Err(XChatError::Signature);
        }
        Ok(signature)
    }

    /// A key change's conversation key: unwrapped with `keys` (entries for another version of
    /// our identity key skipped when `our_key_version` is known), then checked against the
    /// sender's signing key `signer`. Returns the key and its version.
    pub fn open_key_change(
        &self,
        keys: &ChatKeys,
        our_user_id: &str,
        our_key_version: Option<&str>,
        signer: &p256::PublicKey,
    ) -> Result<(String, ConversationKey), XChatError> {
        let Detail::KeyChange {
            key_version,
            participants,
        } = &self.detail
        else {
            return Err(XChatError::Thrift("not a key change".into()));
        };
        let key = participants
            .iter()
            .filter(|p| p.user_id == our_user_id)
            .filter(|p| our_key_version.is_none_or(|v| p.public_key_version == v))
            .find_map(|p| wrap::unwrap(keys, &p.wrapped_key).ok())
            .ok_or(XChatError::Unwrap)?;
        let signature = self.checkable_signature()?;
        let payload = signatures::key_change_payload(
            &self.message_id,
            &self.sender_id,
            &self.conversation_id,
            key_version,
            &key,
        )?;
        signatures::verify(signer, &payload, &signature.signature)?;
        Ok((key_version.clone(), key))
    }

    /// A message's Thrift plaintext: its signature checked against the sender's signing key
    /// `signer` first, then opened with the conversation key of its version (`key_for`).
    pub fn open_message(
        &self,
        signer: &p256::PublicKey,
        key_for: impl FnOnce(&str) -> Option<ConversationKey>,
    ) -> Result<Vec<u8>, XChatError> {
        let Detail::Message {
            contents,
            key_version,
            ..
        } = &self.detail
        else {
            return Err(XChatError::Thrift("not a message".into()));
        };
        let signature = self.checkable_signature()?;
        let payload = signatures::message_payload(
            &self.message_id,
            &self.sender_id,
            &self.conversation_id,
            key_version,
            contents,
        )?;
        signatures::verify(signer, &payload, &signature.signature)?;
        let key = key_for(key_version).ok_or(XChatError::Unwrap)?;
        key.open(contents)
    }
}

/// The body of `POST /2/chat/conversations/{id}/messages`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    pub message_id: String,
    /// Base64 of the Thrift `MessageCreateEvent`.
    pub encoded_message_create_event: String,
    /// Base64 of the Thrift `MessageEventSignature`.
    pub encoded_message_event_signature: String,
}

/// What a sent message is made of besides the text.
#[derive(Debug, Clone, Copy)]
pub struct Sender<'a> {
    pub keys: &'a ChatKeys,
    pub user_id: &'a str,
    /// The version X registered our signing key under.
    pub public_key_version: &'a str,
}

/// A text message for `conversation_id` (canonical `A:B`), sealed with `key` of `key_version`
/// and signed. `message_id` must be unique (a UUID) and reused unchanged by a retry, as must the
/// whole request: [`text_message_with`] with the same nonce.
pub fn text_message_with(
    sender: Sender<'_>,
    conversation_id: &str,
    key_version: &str,
    key: &ConversationKey,
    message_id: &str,
    text: &str,
    nonce: [u8; 24],
) -> Result<OutgoingMessage, XChatError> {
    message_with(
        sender,
        conversation_id,
        key_version,
        key,
        message_id,
        &thrift::text_message(text),
        nonce,
    )
}

/// A message of any contents (`plaintext`: a Thrift `MessageEntryHolder`, e.g.
/// [`thrift::text_message`] or [`thrift::attachment_message`]), sealed and signed.
pub fn message_with(
    sender: Sender<'_>,
    conversation_id: &str,
    key_version: &str,
    key: &ConversationKey,
    message_id: &str,
    plaintext: &[u8],
    nonce: [u8; 24],
) -> Result<OutgoingMessage, XChatError> {
    let sealed = key.seal_with_nonce(plaintext, nonce);
    let payload = signatures::message_payload(
        message_id,
        sender.user_id,
        conversation_id,
        key_version,
        &sealed,
    )?;
    let signature = signatures::sign(sender.keys, &payload);
    Ok(OutgoingMessage {
        message_id: message_id.to_owned(),
        encoded_message_create_event: STANDARD.encode(thrift::message_create_event(
            &sealed,
            key_version,
            true,
        )),
        encoded_message_event_signature: STANDARD.encode(thrift::message_event_signature(
            &signature,
            sender.public_key_version,
            SIGNATURE_VERSION,
        )),
    })
}

/// The body of `POST /2/chat/conversations/{id}/keys` (docs/xchat.md §2.5), as fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyChangeRequest {
    pub conversation_key_version: String,
    pub participants: Vec<thrift::WrappedKey>,
    /// The action signature: its message id, the encoded detail and the signature.
    pub message_id: String,
    /// Base64 (padded) of the Thrift `MessageEventDetail`.
    pub encoded_message_event_detail: String,
    /// Raw `r ‖ s`, base64 without padding.
    pub signature: String,
    pub public_key_version: String,
    pub signature_version: &'static str,
}

/// A new conversation key `key` of `key_version` for `conversation_id` (canonical), already
/// wrapped for each participant ([`crate::wrap::wrap`], the sender included), signed by the
/// sender over the key change's string (which names the key itself: never log it).
pub fn key_change_with(
    sender: Sender<'_>,
    conversation_id: &str,
    key_version: &str,
    key: &ConversationKey,
    message_id: &str,
    participants: Vec<thrift::WrappedKey>,
) -> Result<KeyChangeRequest, XChatError> {
    let payload = signatures::key_change_payload(
        message_id,
        sender.user_id,
        conversation_id,
        key_version,
        key,
    )?;
    let signature = signatures::sign(sender.keys, &payload);
    Ok(KeyChangeRequest {
        conversation_key_version: key_version.to_owned(),
        encoded_message_event_detail: STANDARD
            .encode(thrift::key_change_detail(key_version, &participants)),
        participants,
        message_id: message_id.to_owned(),
        signature,
        public_key_version: sender.public_key_version.to_owned(),
        signature_version: SIGNATURE_VERSION,
    })
}
