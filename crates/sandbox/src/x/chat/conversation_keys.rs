//! `POST /2/chat/conversations/{id}/keys` (docs/xchat.md §2.4–§2.6): a new conversation key
//! version, wrapped for every participant under one of their registered key versions, with the
//! signed key-change detail the backend persists. Stored as a relayed key-change `MessageEvent`;
//! the conversation's first key is announced to the other participant
//! (`chat.conversation.join`). The emulator cannot verify the action signature (it signs the
//! plaintext key, which only participants can unwrap); it checks everything else.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::clock;
use crate::faults::FaultOp;
use crate::ids;
use crate::state::Shared;
use crate::sync::lock;
use crate::x::auth::Accept;
use crate::x::calls::{XRequest, admit_as, finish};
use crate::x::chat::body::{self, Object};
use crate::x::chat::conversation::{self, Conversation};
use crate::x::chat::crypto;
use crate::x::chat::delivery::{self, CHAT_JOIN};
use crate::x::chat::records::{ChatEventKind, ChatEventRecord};
use crate::x::chat::state::StoredEvent;
use crate::x::chat::wire::{self, EventSignature, ParticipantKey};
use crate::x::problem::XReply;
use crate::x::records::XOp;
use crate::x::state::RateInfo;

/// ECIES output: ephemeral point (65) ‖ wrapped key (32) ‖ GCM tag (16).
const WRAPPED_KEY_LEN: usize = 113;
/// Raw `r‖s`.
const SIGNATURE_LEN: usize = 64;

pub(crate) async fn add(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = XRequest::new(method, uri, headers);
    let reply = add_reply(&shared, &req, &id, &body).await;
    finish(&shared, XOp::ChatAddConversationKeys, &req, reply)
}

/// An `AddConversationKeysRequest` that passed the schema and its own consistency checks.
#[derive(Debug)]
struct KeysRequest {
    version: String,
    keys: Vec<ParticipantKey>,
    message_id: String,
    /// The encoded `MessageEventDetail` (variant 3), as sent.
    detail: Vec<u8>,
    signature: EventSignature,
}

impl KeysRequest {
    /// What a retry with the same message id must repeat.
    fn fingerprint(&self) -> Vec<u8> {
        format!(
            "keys\n{}\n{}\n{}\n{}\n{}",
            self.version,
            STANDARD.encode(&self.detail),
            self.signature.signature,
            self.signature.public_key_version,
            self.signature.signature_version
        )
        .into_bytes()
    }
}

async fn add_reply(shared: &Arc<Shared>, req: &XRequest, id: &str, body: &[u8]) -> XReply {
    let (principal, rate) = match admit_as(
        shared,
        req,
        XOp::ChatAddConversationKeys,
        FaultOp::ChatAddKeys,
        Accept::DM_WRITE,
    )
    .await
    {
        Ok(admitted) => admitted,
        Err(reply) => return reply,
    };
    let me = principal.user_id().unwrap_or_default();
    let conv = match conversation::resolve(me, id) {
        Ok(conv) => conv,
        Err(e) => return e.reply(rate, "id"),
    };
    let request = match parse(body) {
        Ok(request) => request,
        Err(message) => return XReply::invalid_body(rate, message),
    };
    store(shared, rate, &conv, request)
}

/// Checks the request against the registered keys and the conversation, then stores it.
fn store(
    shared: &Arc<Shared>,
    rate: RateInfo,
    conv: &Conversation,
    request: KeysRequest,
) -> XReply {
    let mut x = lock(&shared.x);
    let chat = &mut x.chat;
    if let Some(existing) = chat.event_by_message_id(&request.message_id) {
        if existing.request == request.fingerprint()
            && existing.record.conversation_id == conv.id
            && existing.record.sender_id == conv.me
        {
            return answer(rate, &existing.record);
        }
        return body::conflict(
            rate,
            format!(
                "message_id {} was already used for another event",
                request.message_id
            ),
        );
    }
    for (i, key) in request.keys.iter().enumerate() {
        if !conv.has_participant(&key.user_id) {
            return body::refused(
                rate,
                "Invalid Request",
                format!(
                    "$.conversation_participant_keys[{i}].user_id: {} is not a participant of conversation {}",
                    key.user_id, conv.id
                ),
            );
        }
        if chat
            .registered_key(&key.user_id, &key.public_key_version)
            .is_none()
        {
            return body::refused(
                rate,
                "Invalid Request",
                format!(
                    "$.conversation_participant_keys[{i}].public_key_version: {} is not a registered public key version of user {}",
                    key.public_key_version, key.user_id
                ),
            );
        }
    }
    for participant in [&conv.me, &conv.peer] {
        if !request.keys.iter().any(|k| &k.user_id == participant) {
            return body::refused(
                rate,
                "Invalid Request",
                format!(
                    "$.conversation_participant_keys: no key for participant {participant} of conversation {}",
                    conv.id
                ),
            );
        }
    }
    let Some(signing) = chat.registered_key(&conv.me, &request.signature.public_key_version) else {
        return body::refused(
            rate,
            "INVALID_SENDER_SIGNATURE",
            format!(
                "$.action_signatures[0].message_event_signature.public_key_version: {} is not a registered public key version of user {}",
                request.signature.public_key_version, conv.me
            ),
        );
    };
    let signing_public_key = signing.signing_public_key.clone();
    if chat.key_change(&conv.id, &request.version).is_some() {
        return body::conflict(
            rate,
            format!(
                "conversation {} already has key version {}",
                conv.id, request.version
            ),
        );
    }
    let sequence_id = shared.snowflake.next();
    let created_at_msec = clock::now_unix_ms();
    let event = wire::message_event(wire::Envelope {
        sequence_id: &sequence_id,
        message_id: &request.message_id,
        sender_id: &conv.me,
        conversation_id: &conv.id,
        created_at_msec: &created_at_msec.to_string(),
        detail: &request.detail,
        signature: &wire::encode_event_signature(&request.signature),
    });
    let stored = StoredEvent {
        record: ChatEventRecord {
            sequence_id,
            message_id: request.message_id.clone(),
            sender_id: conv.me.clone(),
            conversation_id: conv.id.clone(),
            kind: ChatEventKind::KeyChange,
            conversation_key_version: request.version.clone(),
            encoded_event: STANDARD.encode(event),
            created_at_msec,
        },
        signature: request.signature.clone(),
        request: request.fingerprint(),
    };
    let reply = answer(rate, &stored.record);
    let first = chat.push_event(stored.clone(), || ids::short_code(3));
    tracing::info!(conversation_id = %conv.id, version = %request.version, first, "X Chat conversation key added");
    if first {
        let token = chat.token(&conv.id);
        let payload = delivery::payload(&stored, Some(&stored), Some(&signing_public_key), &token);
        let join = delivery::outgoing(CHAT_JOIN, &conv.peer, &stored.record, &conv.peer, payload);
        delivery::enqueue(shared, chat, vec![join]);
    }
    reply
}

/// `{"data":{"conversation_id","sequence_id"}}`.
fn answer(rate: RateInfo, record: &ChatEventRecord) -> XReply {
    XReply::new(
        StatusCode::OK,
        json!({"data": {"conversation_id": record.conversation_id, "sequence_id": record.sequence_id}}),
        rate,
    )
}

/// The body per `AddConversationKeysRequest` (§2.5), `action_signatures` required, the detail a
/// key change of the body's version and keys.
fn parse(raw: &[u8]) -> Result<KeysRequest, String> {
    let obj = body::object(raw)?;
    let version = body::required_str(&obj, "conversation_key_version")?;
    if !body::is_version(version) {
        return Err(format!(
            "$.conversation_key_version: [{version}] is not a decimal key version"
        ));
    }
    let items = body::required_array(&obj, "conversation_participant_keys")?;
    if items.is_empty() {
        return Err(
            "$.conversation_participant_keys: there must be a minimum of 1 items in the array"
                .into(),
        );
    }
    let mut keys = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        keys.push(participant_key(item, i)?);
    }
    let mut users: Vec<&str> = keys.iter().map(|k| k.user_id.as_str()).collect();
    users.sort_unstable();
    if users.windows(2).any(|w| w[0] == w[1]) {
        return Err("$.conversation_participant_keys: one key per user".into());
    }
    let actions = body::required_array(&obj, "action_signatures")?;
    let [action] = actions else {
        return Err(format!(
            "$.action_signatures: a 1:1 key change takes exactly 1 action signature, not {}",
            actions.len()
        ));
    };
    let Value::Object(action) = action else {
        return Err("$.action_signatures[0]: object expected".into());
    };
    let at = |e: String| e.replacen("$.", "$.action_signatures[0].", 1);
    let message_id = body::message_id(action, "message_id").map_err(at)?;
    let detail_b64 = body::required_str(action, "encoded_message_event_detail").map_err(at)?;
    let detail = crypto::decode_b64(detail_b64)
        .map_err(|e| format!("$.action_signatures[0].encoded_message_event_detail {e}"))?;
    let change = wire::parse_key_change_detail(&detail)
        .map_err(|e| format!("$.action_signatures[0].encoded_message_event_detail: {e}"))?;
    if change.version != version {
        return Err(format!(
            "$.action_signatures[0].encoded_message_event_detail: its conversation_key_version {} is not the request's {version}",
            change.version
        ));
    }
    let mut in_detail = change.keys.clone();
    let mut in_body = keys.clone();
    in_detail.sort();
    in_body.sort();
    if in_detail != in_body {
        return Err("$.action_signatures[0].encoded_message_event_detail: its participant keys are not the request's conversation_participant_keys".into());
    }
    let signature = body::required_object(action, "message_event_signature").map_err(at)?;
    let signature = event_signature(signature)?;
    Ok(KeysRequest {
        version: version.to_owned(),
        keys,
        message_id: message_id.to_owned(),
        detail,
        signature,
    })
}

fn participant_key(item: &Value, i: usize) -> Result<ParticipantKey, String> {
    let Value::Object(obj) = item else {
        return Err(format!(
            "$.conversation_participant_keys[{i}]: object expected"
        ));
    };
    let at = |e: String| e.replacen("$.", &format!("$.conversation_participant_keys[{i}]."), 1);
    let user_id = body::required_str(obj, "user_id").map_err(at)?;
    let encrypted_key = body::required_str(obj, "encrypted_conversation_key").map_err(at)?;
    let public_key_version = body::required_str(obj, "public_key_version").map_err(at)?;
    if !body::is_version(user_id) || !body::is_version(public_key_version) {
        return Err(format!(
            "$.conversation_participant_keys[{i}]: user_id and public_key_version must be decimal strings"
        ));
    }
    let wrapped = crypto::decode_b64(encrypted_key).map_err(|e| {
        format!("$.conversation_participant_keys[{i}].encrypted_conversation_key {e}")
    })?;
    if wrapped.len() != WRAPPED_KEY_LEN {
        return Err(format!(
            "$.conversation_participant_keys[{i}].encrypted_conversation_key: {} bytes, expected {WRAPPED_KEY_LEN} (ECIES: ephemeral point, key, tag)",
            wrapped.len()
        ));
    }
    Ok(ParticipantKey {
        user_id: user_id.to_owned(),
        encrypted_key: encrypted_key.to_owned(),
        public_key_version: public_key_version.to_owned(),
    })
}

fn event_signature(obj: &Object) -> Result<EventSignature, String> {
    let at = |e: String| e.replacen("$.", "$.action_signatures[0].message_event_signature.", 1);
    let signature = body::required_str(obj, "signature").map_err(at)?;
    let public_key_version = body::required_str(obj, "public_key_version").map_err(at)?;
    let signature_version = body::required_str(obj, "signature_version").map_err(at)?;
    let raw = crypto::decode_b64(signature)
        .map_err(|e| format!("$.action_signatures[0].message_event_signature.signature {e}"))?;
    if raw.len() != SIGNATURE_LEN {
        return Err(format!(
            "$.action_signatures[0].message_event_signature.signature: {} bytes, expected a raw r||s of {SIGNATURE_LEN}",
            raw.len()
        ));
    }
    if !body::is_version(public_key_version) || !body::is_signature_version(signature_version) {
        return Err("$.action_signatures[0].message_event_signature: public_key_version must be a decimal string and signature_version 2 or more".into());
    }
    Ok(EventSignature {
        signature: signature.to_owned(),
        public_key_version: public_key_version.to_owned(),
        signature_version: signature_version.to_owned(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn vector_body() -> Value {
        let v: Value =
            serde_json::from_str(include_str!("../../../../../testdata/xchat-vectors.json"))
                .unwrap();
        v["conversation"]["add_conversation_keys_request"].clone()
    }

    fn parsed(body: &Value) -> Result<KeysRequest, String> {
        parse(body.to_string().as_bytes())
    }

    #[test]
    fn chatxdk_key_change_is_accepted() {
        let request = parsed(&vector_body()).unwrap();
        assert_eq!(request.version, "1796529804488");
        assert_eq!(request.keys.len(), 2);
        assert_eq!(request.signature.signature_version, "7");
        assert_eq!(request.message_id, "755d348f-dd76-40a7-9a72-775f68587029");
    }

    #[test]
    fn inconsistent_or_incomplete_bodies_are_refused() {
        let mut no_sigs = vector_body();
        no_sigs.as_object_mut().unwrap().remove("action_signatures");
        assert!(
            parsed(&no_sigs)
                .unwrap_err()
                .contains("$.action_signatures: is missing")
        );
        let mut other_version = vector_body();
        other_version["conversation_key_version"] = json!("1796529804489");
        assert!(
            parsed(&other_version)
                .unwrap_err()
                .contains("not the request's")
        );
        let mut other_key = vector_body();
        other_key["conversation_participant_keys"][0]["public_key_version"] = json!("1");
        assert!(parsed(&other_key).unwrap_err().contains("participant keys"));
        let mut short_key = vector_body();
        short_key["conversation_participant_keys"][0]["encrypted_conversation_key"] = json!("AAAA");
        assert!(parsed(&short_key).unwrap_err().contains("expected 113"));
        let mut comma = vector_body();
        comma["action_signatures"][0]["message_id"] = json!("a,b");
        assert!(parsed(&comma).unwrap_err().contains("comma"));
        let mut old = vector_body();
        old["action_signatures"][0]["message_event_signature"]["signature_version"] = json!("1");
        assert!(parsed(&old).unwrap_err().contains("signature_version"));
    }
}
