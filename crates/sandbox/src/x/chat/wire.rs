//! The X Chat Thrift structs the emulator reads and writes (docs/xchat.md §2.5, §3.4–§3.6): the
//! `MessageCreateEvent` a client sends (only its ciphertext and key version matter here), the
//! `MessageEventSignature`, the `MessageEventDetail` union of a key change, and the relayed
//! `MessageEvent` envelope the backend builds around them.

use crate::x::chat::thrift::{self, Struct, Value, Writer};

/// `MessageEventDetail` variant of a message.
const DETAIL_MESSAGE_CREATE: i16 = 1;
/// `MessageEventDetail` variant of a conversation key change.
const DETAIL_KEY_CHANGE: i16 = 3;

/// What the emulator reads of a `MessageCreateEvent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CreateEvent {
    /// Field 100: `nonce ‖ tag ‖ ciphertext` (never opened here).
    pub contents: Vec<u8>,
    /// Field 101; absent means an unencrypted message.
    pub key_version: Option<String>,
}

/// Parses a `MessageCreateEvent` (the `encoded_message_create_event` bytes).
pub(crate) fn parse_create_event(bytes: &[u8]) -> Result<CreateEvent, String> {
    let event = parse(bytes, "MessageCreateEvent")?;
    let contents = event
        .binary(100)
        .ok_or("MessageCreateEvent has no contents (field 100)")?
        .to_vec();
    let key_version = match event.get(101) {
        None => None,
        Some(_) => Some(
            event
                .string(101)
                .ok_or("MessageCreateEvent field 101 (conversation_key_version) is not a string")?
                .to_owned(),
        ),
    };
    Ok(CreateEvent {
        contents,
        key_version,
    })
}

/// `MessageEventSignature` fields 1–3 (4 and 5 are the server's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EventSignature {
    /// Standard base64 without padding of the raw `r‖s`.
    pub signature: String,
    pub public_key_version: String,
    pub signature_version: String,
}

/// Parses a `MessageEventSignature` (the `encoded_message_event_signature` bytes).
pub(crate) fn parse_event_signature(bytes: &[u8]) -> Result<EventSignature, String> {
    let sig = parse(bytes, "MessageEventSignature")?;
    let text = |id: i16, name: &str| -> Result<String, String> {
        sig.string(id)
            .map(str::to_owned)
            .ok_or_else(|| format!("MessageEventSignature has no {name} (field {id})"))
    };
    Ok(EventSignature {
        signature: text(1, "signature")?,
        public_key_version: text(2, "public_key_version")?,
        signature_version: text(3, "signature_version")?,
    })
}

/// The `MessageEventSignature` struct the envelope carries (fields 1–3, as the SDK writes them).
pub(crate) fn encode_event_signature(sig: &EventSignature) -> Vec<u8> {
    Writer::new()
        .string(1, &sig.signature)
        .string(2, &sig.public_key_version)
        .string(3, &sig.signature_version)
        .finish()
}

/// One `ConversationParticipantKey`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ParticipantKey {
    pub user_id: String,
    /// Standard padded base64 of the 113-byte ECIES output.
    pub encrypted_key: String,
    pub public_key_version: String,
}

/// A `ConversationKeyChangeEvent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyChange {
    pub version: String,
    pub keys: Vec<ParticipantKey>,
}

/// Parses an `encoded_message_event_detail`: a `MessageEventDetail` union that must be variant 3.
pub(crate) fn parse_key_change_detail(bytes: &[u8]) -> Result<KeyChange, String> {
    let union = parse(bytes, "MessageEventDetail")?;
    let [(variant, value)] = union.fields.as_slice() else {
        return Err(format!(
            "MessageEventDetail is a union: it must hold exactly one field, not {}",
            union.fields.len()
        ));
    };
    if *variant != DETAIL_KEY_CHANGE {
        return Err(format!(
            "MessageEventDetail variant {variant} is not a ConversationKeyChangeEvent (3)"
        ));
    }
    let Value::Struct(change) = value else {
        return Err("MessageEventDetail variant 3 is not a struct".into());
    };
    let version = change
        .string(1)
        .ok_or("ConversationKeyChangeEvent has no conversation_key_version (field 1)")?
        .to_owned();
    let items = change
        .list(2)
        .ok_or("ConversationKeyChangeEvent has no participant keys (field 2)")?;
    let mut keys = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Value::Struct(key) = item else {
            return Err(format!("participant key {i} is not a struct"));
        };
        let text = |id: i16, name: &str| -> Result<String, String> {
            key.string(id)
                .map(str::to_owned)
                .ok_or_else(|| format!("participant key {i} has no {name} (field {id})"))
        };
        keys.push(ParticipantKey {
            user_id: text(1, "user_id")?,
            encrypted_key: text(2, "encrypted_conversation_key")?,
            public_key_version: text(3, "public_key_version")?,
        });
    }
    Ok(KeyChange { version, keys })
}

/// The `MessageEventDetail` union of a message: variant 1 holding the create event's bytes.
pub(crate) fn message_create_detail(create_event: &[u8]) -> Vec<u8> {
    Writer::new()
        .encoded_struct(DETAIL_MESSAGE_CREATE, create_event)
        .finish()
}

/// The relayed `MessageEvent` (fields 1, 2, 3, 4, 6, 7, 9 — what the backend fills for a 1:1
/// message or key change).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Envelope<'a> {
    pub sequence_id: &'a str,
    pub message_id: &'a str,
    pub sender_id: &'a str,
    /// The canonical id: verifiers use it verbatim.
    pub conversation_id: &'a str,
    pub created_at_msec: &'a str,
    /// An encoded `MessageEventDetail` union (checked by the caller).
    pub detail: &'a [u8],
    /// An encoded `MessageEventSignature`.
    pub signature: &'a [u8],
}

pub(crate) fn message_event(env: Envelope<'_>) -> Vec<u8> {
    Writer::new()
        .string(1, env.sequence_id)
        .string(2, env.message_id)
        .string(3, env.sender_id)
        .string(4, env.conversation_id)
        .string(6, env.created_at_msec)
        .encoded_struct(7, env.detail)
        .encoded_struct(9, env.signature)
        .finish()
}

fn parse(bytes: &[u8], what: &str) -> Result<Struct, String> {
    thrift::parse_struct(bytes).map_err(|e| format!("{what} is not a Thrift struct: {e}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde_json::Value as Json;

    use super::*;

    fn vectors() -> Json {
        serde_json::from_str(include_str!("../../../../../testdata/xchat-vectors.json")).unwrap()
    }

    fn b64(v: &Json) -> Vec<u8> {
        STANDARD.decode(v.as_str().unwrap()).unwrap()
    }

    /// The relayed events of testdata/xchat-vectors.json (which chatxdk 0.5.2 verified and
    /// decrypted) are rebuilt byte for byte from the client's request and the server's fields.
    #[test]
    fn rebuilds_the_vectors_relayed_events() {
        let v = vectors();
        let msg = &v["message"];
        let body = &msg["send_message_request"];
        let create = b64(&body["encoded_message_create_event"]);
        let sig = parse_event_signature(&b64(&body["encoded_message_event_signature"])).unwrap();
        let parsed = parse_create_event(&create).unwrap();
        assert_eq!(
            parsed.key_version.as_deref(),
            msg["send_payload"]["conversation_key_version"].as_str()
        );
        assert_eq!(
            STANDARD.encode(&parsed.contents),
            STANDARD.encode(hex(msg["contents_hex"].as_str().unwrap()))
        );
        let decoded = &msg["server_event_decoded"];
        let event = message_event(Envelope {
            sequence_id: decoded["1"].as_str().unwrap(),
            message_id: body["message_id"].as_str().unwrap(),
            sender_id: decoded["3"].as_str().unwrap(),
            conversation_id: decoded["4"].as_str().unwrap(),
            created_at_msec: decoded["6"].as_str().unwrap(),
            detail: &message_create_detail(&create),
            signature: &encode_event_signature(&sig),
        });
        assert_eq!(
            STANDARD.encode(event),
            msg["server_event_b64"].as_str().unwrap()
        );

        let conv = &v["conversation"];
        let keys_body = &conv["add_conversation_keys_request"];
        let action = &keys_body["action_signatures"][0];
        let detail = b64(&action["encoded_message_event_detail"]);
        let change = parse_key_change_detail(&detail).unwrap();
        assert_eq!(change.version, keys_body["conversation_key_version"]);
        assert_eq!(change.keys.len(), 2);
        assert_eq!(
            change.keys[0].encrypted_key,
            keys_body["conversation_participant_keys"][0]["encrypted_conversation_key"]
        );
        let signature = &action["message_event_signature"];
        let decoded = &conv["key_change_server_event_decoded"];
        let event = message_event(Envelope {
            sequence_id: decoded["1"].as_str().unwrap(),
            message_id: action["message_id"].as_str().unwrap(),
            sender_id: decoded["3"].as_str().unwrap(),
            conversation_id: decoded["4"].as_str().unwrap(),
            created_at_msec: decoded["6"].as_str().unwrap(),
            detail: &detail,
            signature: &encode_event_signature(&EventSignature {
                signature: signature["signature"].as_str().unwrap().to_owned(),
                public_key_version: signature["public_key_version"].as_str().unwrap().to_owned(),
                signature_version: signature["signature_version"].as_str().unwrap().to_owned(),
            }),
        });
        assert_eq!(
            STANDARD.encode(event),
            conv["key_change_server_event_b64"].as_str().unwrap()
        );
    }

    #[test]
    fn a_message_detail_is_not_a_key_change() {
        let create = Writer::new().binary(100, b"x").finish();
        let err = parse_key_change_detail(&message_create_detail(&create)).unwrap_err();
        assert!(err.contains("variant 1"), "{err}");
        let two = Writer::new()
            .encoded_struct(3, &Writer::new().finish())
            .encoded_struct(1, &create)
            .finish();
        assert!(
            parse_key_change_detail(&two)
                .unwrap_err()
                .contains("exactly one")
        );
        assert!(parse_create_event(&Writer::new().string(101, "1").finish()).is_err());
        let unencrypted = parse_create_event(&create).unwrap();
        assert_eq!(unencrypted.key_version, None);
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
