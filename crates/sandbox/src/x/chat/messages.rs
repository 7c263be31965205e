//! `POST /2/chat/conversations/{id}/messages` (docs/xchat.md §3.4–§3.7): an encrypted message
//! from a participant. The emulator checks what the backend can without the conversation key —
//! the create event names a key version of the conversation, and the sender's ECDSA signature
//! over `MessageCreateEvent,{message_id},{sender_id},{canonical id},{key version},{contents}`
//! verifies with the sender's registered signing key of the signature's key version — then relays
//! it as a `MessageEvent` (201 with the event), `chat.received` to the recipient and `chat.sent` to
//! the sender. The same `message_id` again answers the same event and delivers nothing.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use crate::clock;
use crate::faults::FaultOp;
use crate::state::Shared;
use crate::sync::lock;
use crate::x::auth::Accept;
use crate::x::calls::{XRequest, admit_as, finish};
use crate::x::chat::body;
use crate::x::chat::conversation::{self, Conversation};
use crate::x::chat::crypto::{self, PublicKey};
use crate::x::chat::delivery::{self, CHAT_RECEIVED, CHAT_SENT};
use crate::x::chat::records::{ChatEventKind, ChatEventRecord};
use crate::x::chat::state::StoredEvent;
use crate::x::chat::wire::{self, CreateEvent, EventSignature};
use crate::x::problem::XReply;
use crate::x::records::XOp;
use crate::x::state::RateInfo;

/// XSalsa20-Poly1305 nonce (24) and tag (16) in front of every ciphertext (§3.3).
const SEALED_OVERHEAD: usize = 40;
/// The title of a refused signature (X's `FailureType` name).
const INVALID_SENDER_SIGNATURE: &str = "INVALID_SENDER_SIGNATURE";

pub(crate) async fn send(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = XRequest::new(method, uri, headers);
    let reply = send_reply(&shared, &req, &id, &body).await;
    finish(&shared, XOp::ChatSendMessage, &req, reply)
}

/// A `SendChatMessageRequest` whose encoded parts parse.
#[derive(Debug)]
struct SendRequest {
    message_id: String,
    /// The `MessageCreateEvent` bytes, as sent.
    create_bytes: Vec<u8>,
    create: CreateEvent,
    signature: EventSignature,
}

impl SendRequest {
    /// What a retry with the same message id must repeat.
    fn fingerprint(&self) -> Vec<u8> {
        format!(
            "message\n{}\n{}\n{}\n{}",
            STANDARD.encode(&self.create_bytes),
            self.signature.signature,
            self.signature.public_key_version,
            self.signature.signature_version
        )
        .into_bytes()
    }
}

async fn send_reply(shared: &Arc<Shared>, req: &XRequest, id: &str, body: &[u8]) -> XReply {
    let (principal, rate) = match admit_as(
        shared,
        req,
        XOp::ChatSendMessage,
        FaultOp::ChatSendMessage,
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
    store(shared, rate, &conv, &request)
}

fn store(
    shared: &Arc<Shared>,
    rate: RateInfo,
    conv: &Conversation,
    request: &SendRequest,
) -> XReply {
    let mut x = lock(&shared.x);
    let chat = &mut x.chat;
    if let Some(existing) = chat.event_by_message_id(&request.message_id) {
        if existing.request == request.fingerprint()
            && existing.record.conversation_id == conv.id
            && existing.record.sender_id == conv.me
        {
            tracing::info!(message_id = %request.message_id, "X Chat message resent: same event, no delivery");
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
    let Some(key_version) = request.create.key_version.clone() else {
        return body::refused(
            rate,
            "Invalid Request",
            "encoded_message_create_event has no conversation_key_version (field 101): unencrypted messages are not accepted",
        );
    };
    let versions = chat.key_versions(&conv.id);
    if !versions.contains(&key_version) {
        let known = if versions.is_empty() {
            "none yet: add one with POST /2/chat/conversations/{id}/keys".to_owned()
        } else {
            versions.join(", ")
        };
        return body::refused(
            rate,
            "Invalid Request",
            format!(
                "conversation_key_version {key_version} is not a key version of conversation {} (it has: {known})",
                conv.id
            ),
        );
    }
    let sig = &request.signature;
    let Some(signing) = chat.registered_key(&conv.me, &sig.public_key_version) else {
        return body::refused(
            rate,
            INVALID_SENDER_SIGNATURE,
            format!(
                "the signature's public_key_version {} is not a registered public key version of user {}",
                sig.public_key_version, conv.me
            ),
        );
    };
    let signing_public_key = signing.signing_public_key.clone();
    let signed = format!(
        "MessageCreateEvent,{},{},{},{key_version},{}",
        request.message_id,
        conv.me,
        conv.id,
        crypto::b64_no_pad(&request.create.contents)
    );
    let verifies = match (
        PublicKey::from_b64(&signing_public_key),
        crypto::decode_b64(&sig.signature),
    ) {
        (Ok(key), Ok(raw)) => key.verifies(signed.as_bytes(), &raw),
        _ => false,
    };
    if !verifies {
        return body::refused(
            rate,
            INVALID_SENDER_SIGNATURE,
            format!(
                "the message signature does not verify with the signing key of user {} version {} over \"MessageCreateEvent,{},{},{},{key_version},<contents>\"",
                conv.me, sig.public_key_version, request.message_id, conv.me, conv.id
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
        detail: &wire::message_create_detail(&request.create_bytes),
        signature: &wire::encode_event_signature(sig),
    });
    let stored = StoredEvent {
        record: ChatEventRecord {
            sequence_id,
            message_id: request.message_id.clone(),
            sender_id: conv.me.clone(),
            conversation_id: conv.id.clone(),
            kind: ChatEventKind::Message,
            conversation_key_version: key_version.clone(),
            encoded_event: STANDARD.encode(event),
            created_at_msec,
        },
        signature: sig.clone(),
        request: request.fingerprint(),
    };
    let key_change = chat.key_change(&conv.id, &key_version).cloned();
    let token = chat.token(&conv.id);
    chat.push_event(stored.clone(), String::new);
    let payload = delivery::payload(
        &stored,
        key_change.as_ref(),
        Some(&signing_public_key),
        &token,
    );
    let deliveries = vec![
        delivery::outgoing(
            CHAT_RECEIVED,
            &conv.peer,
            &stored.record,
            &conv.peer,
            payload.clone(),
        ),
        delivery::outgoing(CHAT_SENT, &conv.me, &stored.record, &conv.peer, payload),
    ];
    delivery::enqueue(shared, chat, deliveries);
    tracing::info!(message_id = %stored.record.message_id, sequence_id = %stored.record.sequence_id, conversation_id = %conv.id, "X Chat message relayed");
    answer(rate, &stored.record)
}

/// 201 `{"data":{"encoded_message_event"}}`.
fn answer(rate: RateInfo, record: &ChatEventRecord) -> XReply {
    XReply::new(
        StatusCode::CREATED,
        json!({"data": {"encoded_message_event": record.encoded_event}}),
        rate,
    )
}

/// The body per `SendChatMessageRequest`; the signature, optional in the schema, is required
/// (recipients reject unsigned messages).
fn parse(raw: &[u8]) -> Result<SendRequest, String> {
    let obj = body::object(raw)?;
    let message_id = body::message_id(&obj, "message_id")?;
    let create_b64 = body::required_str(&obj, "encoded_message_create_event")?;
    let signature_b64 = body::required_str(&obj, "encoded_message_event_signature")?;
    body::optional_str(&obj, "conversation_token")?;
    let create_bytes = crypto::decode_b64(create_b64)
        .map_err(|e| format!("$.encoded_message_create_event {e}"))?;
    let create = wire::parse_create_event(&create_bytes)
        .map_err(|e| format!("$.encoded_message_create_event: {e}"))?;
    if create.contents.len() < SEALED_OVERHEAD {
        return Err(format!(
            "$.encoded_message_create_event: contents of {} bytes cannot be a sealed message (nonce and tag alone take {SEALED_OVERHEAD})",
            create.contents.len()
        ));
    }
    let signature_bytes = crypto::decode_b64(signature_b64)
        .map_err(|e| format!("$.encoded_message_event_signature {e}"))?;
    let signature = wire::parse_event_signature(&signature_bytes)
        .map_err(|e| format!("$.encoded_message_event_signature: {e}"))?;
    if !body::is_signature_version(&signature.signature_version) {
        return Err(format!(
            "$.encoded_message_event_signature: signature_version [{}] is not 2 or more",
            signature.signature_version
        ));
    }
    Ok(SendRequest {
        message_id: message_id.to_owned(),
        create_bytes,
        create,
        signature,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn vector_body() -> Value {
        let v: Value =
            serde_json::from_str(include_str!("../../../../../testdata/xchat-vectors.json"))
                .unwrap();
        v["message"]["send_message_request"].clone()
    }

    #[test]
    fn chatxdk_send_body_parses() {
        let request = parse(vector_body().to_string().as_bytes()).unwrap();
        assert_eq!(request.message_id, "6cd0b7b0-9b98-4741-95ef-d3bebb84caff");
        assert_eq!(request.create.key_version.as_deref(), Some("1796529804488"));
        assert_eq!(request.signature.public_key_version, "1765382634817");
    }

    #[test]
    fn malformed_send_bodies_are_refused() {
        for (field, value) in [
            ("message_id", json!("")),
            ("encoded_message_create_event", json!("%%%")),
            ("encoded_message_create_event", json!("AAAA")),
            ("encoded_message_event_signature", json!(null)),
            // A create event whose contents are too short to be sealed.
            ("encoded_message_create_event", json!("CwBkAAAAAzEyMwA=")),
            ("conversation_token", json!(5)),
        ] {
            let mut body = vector_body();
            body[field] = value;
            assert!(parse(body.to_string().as_bytes()).is_err(), "{field}");
        }
    }
}
