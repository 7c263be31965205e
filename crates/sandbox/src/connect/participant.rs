//! The Amazon Connect participant service (`connectparticipant`, docs/protocols.md B2), authenticated by
//! `X-Amz-Bearer` (a ParticipantToken for CreateParticipantConnection, a ConnectionToken otherwise).
//! The SigV4 `Authorization` header the AWS SDK adds anyway is accepted and ignored.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use serde::Deserialize;
use serde_json::{Value, json};
use time::Duration;

use crate::clock;
use crate::connect::admission::{
    admit_participant_call, chat_for_connection, no_access, terminated,
};
use crate::connect::chat::{append_item, end_chat};
use crate::connect::errors::{AwsError, Service, parse, respond};
use crate::connect::model::{ContactStatus, EndReason, ParticipantRole, content_types};
use crate::connect::state::{Chat, NewItem, ReceiptKind};
use crate::events::SandboxEvent;
use crate::faults::FaultOp;
use crate::ids;
use crate::state::Shared;
use crate::sync::lock;

/// `application/json` messages may be longer than text ones (docs/protocols.md B2 field limits).
const MAX_JSON_CHARS: usize = 12_000;
const DEFAULT_TRANSCRIPT_PAGE: usize = 10;
const MAX_TRANSCRIPT_PAGE: usize = 100;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/participant/connection",
            post(create_participant_connection),
        )
        .route("/participant/message", post(send_message))
        .route("/participant/event", post(send_event))
        .route("/participant/disconnect", post(disconnect_participant))
        .route("/participant/transcript", post(get_transcript))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateParticipantConnectionRequest {
    #[serde(rename = "Type")]
    connection_types: Option<Vec<String>>,
    connect_participant: Option<bool>,
}

async fn create_participant_connection(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(create_participant_connection_inner(&shared, &headers, &body).await)
}

async fn create_participant_connection_inner(
    shared: &Shared,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, AwsError> {
    let token =
        admit_participant_call(shared, headers, FaultOp::CreateParticipantConnection).await?;
    let req: CreateParticipantConnectionRequest = parse(Service::Participant, body)?;
    let types = req.connection_types.unwrap_or_default();
    let connect_participant = req.connect_participant.unwrap_or(false);
    if types.is_empty() && !connect_participant {
        return Err(AwsError::validation(
            "Type must contain at least one connection type",
        ));
    }
    if let Some(bad) = types.iter().find(|t| {
        !matches!(
            t.as_str(),
            "WEBSOCKET" | "CONNECTION_CREDENTIALS" | "WEBRTC_CONNECTION"
        )
    }) {
        return Err(AwsError::validation(format!(
            "Type '{bad}' is not one of WEBSOCKET, CONNECTION_CREDENTIALS, WEBRTC_CONNECTION"
        )));
    }

    let mut cs = lock(&shared.connect);
    let idx = cs.by_participant_token(&token).ok_or_else(no_access)?;
    let (contact_id, initial_contact_id, customer) = match cs.chats.get(idx) {
        Some(chat) if chat.is_ended() => return Err(terminated(&chat.contact_id)),
        Some(chat) => (
            chat.contact_id.clone(),
            chat.initial_contact_id.clone(),
            chat.customer.clone(),
        ),
        None => return Err(no_access()),
    };
    let now = clock::now();
    let expiry = now
        + Duration::seconds(
            i64::try_from(shared.cfg.connect.connection_token_lifetime_secs)
                .unwrap_or(i64::MAX / 2),
        );
    let mut response = serde_json::Map::new();
    if types.iter().any(|t| t == "CONNECTION_CREDENTIALS") {
        let connection_token = ids::bearer_token();
        cs.add_connection_token(idx, connection_token.clone(), expiry);
        response.insert(
            "ConnectionCredentials".into(),
            json!({"ConnectionToken": connection_token, "Expiry": clock::iso_ms(expiry)}),
        );
    }
    if types.iter().any(|t| t == "WEBSOCKET") {
        // The sandbox streams through SNS only; this URL is handed out but not served.
        let ws_base = shared.base_url.replacen("http://", "ws://", 1);
        response.insert(
            "Websocket".into(),
            json!({
                "Url": format!("{ws_base}/participant/websocket/{}", ids::uuid()),
                "ConnectionExpiry": clock::iso_ms(expiry),
            }),
        );
    }
    if connect_participant && !customer.connected {
        if let Some(chat) = cs.chats.get_mut(idx) {
            chat.customer.connected = true;
            chat.status = ContactStatus::Connected;
        }
        tracing::info!(contact_id = %contact_id, "customer connected");
        shared.events.emit(SandboxEvent::CustomerConnected {
            contact_id,
            initial_contact_id,
        });
        append_item(
            shared,
            &mut cs,
            idx,
            NewItem::event(
                content_types::PARTICIPANT_JOINED,
                ParticipantRole::Customer,
                &customer.participant_id,
                &customer.display_name,
            ),
        );
    }
    Ok(Value::Object(response))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SendRequest {
    content_type: Option<String>,
    content: Option<String>,
    client_token: Option<String>,
}

/// Content-type and length rules of SendMessage.
fn validate_message(content_type: &str, content: &str, max_chars: usize) -> Result<(), AwsError> {
    let limit = match content_type {
        content_types::TEXT_PLAIN | content_types::TEXT_MARKDOWN => max_chars,
        content_types::APPLICATION_JSON | content_types::INTERACTIVE_RESPONSE => MAX_JSON_CHARS,
        other => {
            return Err(AwsError::validation(format!(
                "ContentType '{other}' is not supported for SendMessage"
            )));
        }
    };
    let length = content.chars().count();
    if !(1..=limit).contains(&length) {
        return Err(AwsError::validation(format!(
            "Content of type {content_type} must be 1 to {limit} characters; it has {length}"
        )));
    }
    Ok(())
}

/// Adds a customer item for a ConnectionToken, honouring ClientToken idempotency: the answer,
/// and whether an item was added (false for a ClientToken replay). `admit` may refuse the call
/// given the chat's state (checked after a replay is recognised, before anything is added).
fn add_customer_item(
    shared: &Shared,
    token: &str,
    client_token: Option<&str>,
    admit: impl FnOnce(&Chat) -> Result<(), AwsError>,
    build: impl FnOnce(&str, &str) -> NewItem,
) -> Result<(Value, bool), AwsError> {
    let mut cs = lock(&shared.connect);
    let idx = chat_for_connection(&cs, token)?;
    let Some(chat) = cs.chats.get(idx) else {
        return Err(no_access());
    };
    if let Some(previous) = client_token.and_then(|t| chat.item_tokens.get(t)) {
        let previous = previous.clone();
        drop(cs);
        lock(&shared.faults).stats.client_token_replays += 1;
        return Ok((previous, false));
    }
    admit(chat)?;
    let new = build(&chat.customer.participant_id, &chat.customer.display_name);
    let item = append_item(shared, &mut cs, idx, new).ok_or_else(no_access)?;
    let response = json!({"Id": item.item.id, "AbsoluteTime": item.item.absolute_time});
    if let (Some(t), Some(chat)) = (client_token, cs.chats.get_mut(idx)) {
        chat.item_tokens.insert(t.to_owned(), response.clone());
    }
    Ok((response, true))
}

async fn send_message(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(send_message_inner(&shared, &headers, &body).await)
}

async fn send_message_inner(
    shared: &Shared,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, AwsError> {
    let token = admit_participant_call(shared, headers, FaultOp::SendMessage).await?;
    let req: SendRequest = parse(Service::Participant, body)?;
    let content_type = req.content_type.unwrap_or_default();
    let content = req.content.unwrap_or_default();
    validate_message(
        &content_type,
        &content,
        shared.cfg.connect.max_message_chars,
    )?;
    let (response, created) = add_customer_item(
        shared,
        &token,
        req.client_token.as_deref(),
        |_| Ok(()),
        |id, name| NewItem::message(&content_type, &content, ParticipantRole::Customer, id, name),
    )?;
    if created {
        lock(&shared.faults).stats.messages_created += 1;
    }
    Ok(response)
}

async fn send_event(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(send_event_inner(&shared, &headers, &body).await)
}

async fn send_event_inner(
    shared: &Shared,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, AwsError> {
    let token = admit_participant_call(shared, headers, FaultOp::SendEvent).await?;
    let req: SendRequest = parse(Service::Participant, body)?;
    let content_type = req.content_type.unwrap_or_default();
    // A receipt: its kind and the `messageId` it is about.
    let receipt = match content_type.as_str() {
        content_types::TYPING => None,
        content_types::MESSAGE_READ | content_types::MESSAGE_DELIVERED => {
            let message_id = req
                .content
                .as_deref()
                .and_then(|c| serde_json::from_str::<Value>(c).ok())
                .and_then(|v| {
                    v.get("messageId")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .ok_or_else(|| {
                    AwsError::validation(
                        "Content must be a JSON object with a messageId for receipts",
                    )
                })?;
            ReceiptKind::of(&content_type).map(|kind| (kind, message_id))
        }
        content_types::CONNECTION_ACKNOWLEDGED => {
            return Err(AwsError::validation(
                "connection.acknowledged is no longer supported; use CreateParticipantConnection with ConnectParticipant",
            ));
        }
        other => {
            return Err(AwsError::validation(format!(
                "ContentType '{other}' is not a supported event type"
            )));
        }
    };
    let content = req.content;
    // Receipts are refused (409, nothing added) while more than two participants are active;
    // typing is not. A receipt for an id that is no message of this chat is accepted: the API
    // reference documents no error for it.
    let admit = |chat: &Chat| {
        if receipt.is_some() && !chat.takes_receipts() {
            return Err(AwsError::conflict(
                "Message receipts are not supported when there are more than two active participants in the chat.",
            ));
        }
        Ok(())
    };
    add_customer_item(
        shared,
        &token,
        req.client_token.as_deref(),
        admit,
        |id, name| {
            let new = match &receipt {
                Some((kind, message_id)) => {
                    NewItem::receipt(*kind, message_id, ParticipantRole::Customer, id, name)
                }
                None => NewItem::event(&content_type, ParticipantRole::Customer, id, name),
            };
            new.with_content(content)
        },
    )
    .map(|(response, _)| response)
}

async fn disconnect_participant(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(disconnect_participant_inner(&shared, &headers, &body).await)
}

async fn disconnect_participant_inner(
    shared: &Shared,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, AwsError> {
    let token = admit_participant_call(shared, headers, FaultOp::DisconnectParticipant).await?;
    let _: Value = parse(Service::Participant, body)?;
    let mut cs = lock(&shared.connect);
    let idx = chat_for_connection(&cs, &token)?;
    let customer = cs
        .chats
        .get(idx)
        .map(|c| c.customer.clone())
        .ok_or_else(no_access)?;
    append_item(
        shared,
        &mut cs,
        idx,
        NewItem::event(
            content_types::PARTICIPANT_LEFT,
            ParticipantRole::Customer,
            &customer.participant_id,
            &customer.display_name,
        ),
    );
    end_chat(shared, &mut cs, idx, EndReason::CustomerDisconnected);
    Ok(json!({}))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetTranscriptRequest {
    contact_id: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
    scan_direction: Option<String>,
    sort_order: Option<String>,
    start_position: Option<StartPosition>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StartPosition {
    id: Option<String>,
    absolute_time: Option<String>,
    most_recent: Option<i64>,
}

/// A page of a transcript: `(indices, next start)` for items `0..len` scanned from `start`.
fn page(
    len: usize,
    start: usize,
    forward: bool,
    size: usize,
) -> (std::ops::Range<usize>, Option<usize>) {
    if len == 0 {
        return (0..0, None);
    }
    if forward {
        let start = start.min(len);
        let end = (start + size).min(len);
        (start..end, (end < len).then_some(end))
    } else {
        // `start` is the newest index included.
        let end = start.min(len - 1) + 1;
        let begin = end.saturating_sub(size);
        (begin..end, (begin > 0).then(|| begin - 1))
    }
}

async fn get_transcript(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(get_transcript_inner(&shared, &headers, &body).await)
}

async fn get_transcript_inner(
    shared: &Shared,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, AwsError> {
    let token = admit_participant_call(shared, headers, FaultOp::GetTranscript).await?;
    let req: GetTranscriptRequest = parse(Service::Participant, body)?;
    let size = match req.max_results {
        None | Some(0) => DEFAULT_TRANSCRIPT_PAGE,
        Some(n) => usize::try_from(n)
            .ok()
            .filter(|n| *n <= MAX_TRANSCRIPT_PAGE)
            .ok_or_else(|| AwsError::validation("MaxResults must be between 0 and 100"))?,
    };
    let forward = match req.scan_direction.as_deref() {
        None | Some("BACKWARD") => false,
        Some("FORWARD") => true,
        Some(other) => {
            return Err(AwsError::validation(format!(
                "ScanDirection '{other}' is invalid"
            )));
        }
    };
    let descending = match req.sort_order.as_deref() {
        None | Some("ASCENDING") => false,
        Some("DESCENDING") => true,
        Some(other) => {
            return Err(AwsError::validation(format!(
                "SortOrder '{other}' is invalid"
            )));
        }
    };

    let cs = lock(&shared.connect);
    let idx = chat_for_connection(&cs, &token)?;
    let chat = cs.chats.get(idx).ok_or_else(no_access)?;
    if let Some(id) = &req.contact_id
        && *id != chat.contact_id
        && !chat.previous_contact_ids.contains(id)
    {
        return Err(AwsError::validation(format!(
            "ContactId {id} is not part of this chat"
        )));
    }
    // What the customer participant sees: its visibility, and no ephemeral typing indicators.
    let visible: Vec<_> = chat
        .transcript
        .iter()
        .filter(|i| i.visibility.customer_sees() && i.item.content_type != content_types::TYPING)
        .map(|i| &i.item)
        .collect();
    let len = visible.len();
    let start = if let Some(token) = &req.next_token {
        decode_next_token(token, forward)?
    } else if let Some(position) = &req.start_position {
        if let Some(id) = &position.id {
            visible
                .iter()
                .position(|i| i.id == *id)
                .ok_or_else(|| AwsError::validation(format!("StartPosition.Id {id} not found")))?
        } else if let Some(time) = &position.absolute_time {
            // ISO-8601 strings of one format order like the instants they name.
            if forward {
                visible
                    .iter()
                    .position(|i| i.absolute_time >= *time)
                    .unwrap_or(len)
            } else {
                visible
                    .iter()
                    .rposition(|i| i.absolute_time <= *time)
                    .unwrap_or(0)
            }
        } else if let Some(n) = position.most_recent {
            let n = usize::try_from(n).unwrap_or(0);
            len.saturating_sub(1).saturating_sub(n)
        } else {
            return Err(AwsError::validation(
                "StartPosition needs Id, AbsoluteTime or MostRecent",
            ));
        }
    } else if forward {
        0
    } else {
        len.saturating_sub(1)
    };
    let (range, next) = page(len, start, forward, size);
    let mut items: Vec<Value> = visible
        .get(range)
        .unwrap_or_default()
        .iter()
        .map(|i| serde_json::to_value(i).unwrap_or(Value::Null))
        .collect();
    if descending {
        items.reverse();
    }
    let mut response = json!({"InitialContactId": chat.initial_contact_id, "Transcript": items});
    if let (Some(next), Value::Object(obj)) = (next, &mut response) {
        obj.insert(
            "NextToken".into(),
            Value::String(encode_next_token(next, forward)),
        );
    }
    Ok(response)
}

fn encode_next_token(position: usize, forward: bool) -> String {
    use base64::Engine as _;
    let dir = if forward { "F" } else { "B" };
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{dir}:{position}"))
}

fn decode_next_token(token: &str, forward: bool) -> Result<usize, AwsError> {
    use base64::Engine as _;
    let invalid = || AwsError::validation("NextToken is invalid");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| invalid())?;
    let text = String::from_utf8(raw).map_err(|_| invalid())?;
    let (dir, position) = text.split_once(':').ok_or_else(invalid)?;
    if (dir == "F") != forward {
        return Err(AwsError::validation(
            "NextToken was issued for the other ScanDirection",
        ));
    }
    position.parse().map_err(|_| invalid())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn message_limits_count_characters() {
        let ok = "é".repeat(1024);
        assert!(validate_message("text/plain", &ok, 1024).is_ok());
        let long = "é".repeat(1025);
        assert_eq!(
            validate_message("text/plain", &long, 1024)
                .unwrap_err()
                .code,
            "ValidationException"
        );
        assert!(validate_message("text/markdown", "", 1024).is_err());
        assert!(validate_message("image/png", "x", 1024).is_err());
    }

    #[test]
    fn pages_forward_and_backward() {
        assert_eq!(page(5, 0, true, 2), (0..2, Some(2)));
        assert_eq!(page(5, 4, true, 2), (4..5, None));
        assert_eq!(page(5, 4, false, 2), (3..5, Some(2)));
        assert_eq!(page(5, 1, false, 2), (0..2, None));
        assert_eq!(page(0, 0, false, 2), (0..0, None));
    }

    #[test]
    fn next_tokens_round_trip() {
        let token = encode_next_token(7, false);
        assert_eq!(decode_next_token(&token, false).unwrap(), 7);
        assert!(decode_next_token(&token, true).is_err());
        assert!(decode_next_token("%%%", false).is_err());
    }
}
