//! `POST /2/chat/conversations/{id}/typing` (no body) and `POST /2/chat/conversations/{id}/read`
//! (`{"seen_until_sequence_id"}`, a message of the conversation): answered
//! `{"data":{"success":true}}` and recorded for tests. docs/xchat.md documents no activity payload
//! for either, so nothing is delivered to subscribers.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use serde_json::json;

use crate::clock;
use crate::faults::FaultOp;
use crate::state::Shared;
use crate::sync::lock;
use crate::x::auth::Accept;
use crate::x::calls::{XRequest, admit_as, finish};
use crate::x::chat::body;
use crate::x::chat::conversation;
use crate::x::chat::records::{ChatEventKind, ChatIndicatorKind, ChatIndicatorRecord};
use crate::x::problem::XReply;
use crate::x::records::XOp;

pub(crate) async fn typing(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let req = XRequest::new(method, uri, headers);
    let reply = indicator_reply(&shared, &req, &id, ChatIndicatorKind::Typing, &[]).await;
    finish(&shared, XOp::ChatTyping, &req, reply)
}

pub(crate) async fn read(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = XRequest::new(method, uri, headers);
    let reply = indicator_reply(&shared, &req, &id, ChatIndicatorKind::Read, &body).await;
    finish(&shared, XOp::ChatRead, &req, reply)
}

async fn indicator_reply(
    shared: &Shared,
    req: &XRequest,
    id: &str,
    kind: ChatIndicatorKind,
    raw: &[u8],
) -> XReply {
    let op = match kind {
        ChatIndicatorKind::Typing => XOp::ChatTyping,
        ChatIndicatorKind::Read => XOp::ChatRead,
    };
    let (principal, rate) =
        match admit_as(shared, req, op, FaultOp::ChatIndicators, Accept::DM_WRITE).await {
            Ok(admitted) => admitted,
            Err(reply) => return reply,
        };
    let me = principal.user_id().unwrap_or_default();
    let conv = match conversation::resolve(me, id) {
        Ok(conv) => conv,
        Err(e) => return e.reply(rate, "id"),
    };
    let seen_until = match kind {
        ChatIndicatorKind::Typing => None,
        ChatIndicatorKind::Read => {
            let seen = body::object(raw).and_then(|obj| {
                body::required_str(&obj, "seen_until_sequence_id").map(str::to_owned)
            });
            match seen {
                Ok(seen) => Some(seen),
                Err(message) => return XReply::invalid_body(rate, message),
            }
        }
    };
    let mut x = lock(&shared.x);
    if let Some(seen) = &seen_until {
        let known = x.chat.events.iter().any(|e| {
            e.record.sequence_id == *seen
                && e.record.conversation_id == conv.id
                && e.record.kind == ChatEventKind::Message
        });
        if !known {
            return XReply::invalid_param(
                rate,
                "seen_until_sequence_id",
                seen,
                format!(
                    "seen_until_sequence_id {seen} is not a message of conversation {}",
                    conv.id
                ),
            );
        }
    }
    x.chat.indicators.push(ChatIndicatorRecord {
        kind,
        user_id: me.to_owned(),
        conversation_id: conv.id,
        seen_until_sequence_id: seen_until,
        at: clock::now_iso_ms(),
    });
    XReply::new(StatusCode::OK, json!({"data": {"success": true}}), rate)
}
