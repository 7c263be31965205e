//! `GET /2/chat/conversations/{id}/events` (docs/xchat.md §3.8 "History"): a participant reads
//! the conversation's messages, newest first, `max_results` (1–100, default 10) per page with
//! `pagination_token`; every page's `meta.conversation_key_events` lists all of the
//! conversation's key changes (oldest first), so one page is enough to decrypt what it holds.

use std::sync::Arc;

use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use crate::clock;
use crate::faults::FaultOp;
use crate::state::Shared;
use crate::sync::lock;
use crate::x::auth::Accept;
use crate::x::calls::{XRequest, admit_as, finish};
use crate::x::chat::conversation;
use crate::x::chat::state::StoredEvent;
use crate::x::problem::XReply;
use crate::x::records::XOp;

const DEFAULT_MAX_RESULTS: usize = 10;
const MAX_RESULTS: usize = 100;

pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let req = XRequest::new(method, uri, headers);
    let reply = list_reply(&shared, &req, &id).await;
    finish(&shared, XOp::ChatListEvents, &req, reply)
}

async fn list_reply(shared: &Shared, req: &XRequest, id: &str) -> XReply {
    let (principal, rate) = match admit_as(
        shared,
        req,
        XOp::ChatListEvents,
        FaultOp::ChatEvents,
        Accept::DM_READ,
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
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(req.uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let max_results = match param("max_results") {
        None => DEFAULT_MAX_RESULTS,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_RESULTS).contains(&n) => n,
            _ => {
                return XReply::invalid_param(
                    rate,
                    "max_results",
                    v,
                    format!(
                        "The `max_results` query parameter value [{v}] is not between 1 and {MAX_RESULTS}"
                    ),
                );
            }
        },
    };
    let x = lock(&shared.x);
    let mut messages = x.chat.messages(&conv.id);
    messages.reverse();
    // A token is the sequence id of the first event of its page.
    let start = match param("pagination_token") {
        None => 0,
        Some(token) => match messages.iter().position(|e| e.record.sequence_id == token) {
            Some(at) => at,
            None => {
                return XReply::invalid_param(
                    rate,
                    "pagination_token",
                    token,
                    format!("The `pagination_token` query parameter value [{token}] is not valid"),
                );
            }
        },
    };
    let page: Vec<Value> = messages
        .iter()
        .enumerate()
        .skip(start)
        .take(max_results)
        .map(|(at, event)| event_json(event, messages.get(at + 1).copied()))
        .collect();
    let next = messages.get(start + max_results);
    let key_events: Vec<&str> = x
        .chat
        .key_changes(&conv.id)
        .iter()
        .map(|e| e.record.encoded_event.as_str())
        .collect();
    let mut meta = json!({
        "conversation_key_events": key_events,
        "result_count": page.len(),
        "has_more": next.is_some(),
    });
    if let (Some(next), Value::Object(obj)) = (next, &mut meta) {
        obj.insert("next_token".into(), json!(next.record.sequence_id));
    }
    XReply::new(StatusCode::OK, json!({"data": page, "meta": meta}), rate)
}

/// A `ChatMessageEvent`: `id` is the event's sequence id (`previous_id` the one before it in
/// the conversation); the client's message id is inside `encoded_event`.
fn event_json(event: &StoredEvent, previous: Option<&StoredEvent>) -> Value {
    let r = &event.record;
    let mut out = json!({
        "id": r.sequence_id,
        "sender_id": r.sender_id,
        "conversation_id": r.conversation_id,
        "created_at": clock::iso_ms(clock::from_unix_ms(r.created_at_msec)),
        "encoded_event": r.encoded_event,
        "message_event_signature": {
            "signature": event.signature.signature,
            "public_key_version": event.signature.public_key_version,
            "signature_version": event.signature.signature_version,
        },
    });
    if let (Some(previous), Value::Object(obj)) = (previous, &mut out) {
        obj.insert("previous_id".into(), json!(previous.record.sequence_id));
    }
    out
}
