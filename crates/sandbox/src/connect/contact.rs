//! The Amazon Connect control plane the bridge calls (`connect`, SigV4): StartChatContact,
//! StartContactStreaming, StopContactStreaming, StopContact (docs/protocols.md B1); contact
//! attributes are `contact_attributes.rs`'s.
//!
//! StartChatContact's persistent chat (`PersistentChat`): `RehydrationType` required, the source
//! contact must exist and have ended, a source continues into one chat only (a second
//! StartChatContact naming it is 400 `InvalidRequestException`, unless it replays the first one's
//! ClientToken), and `RelatedContactId` cannot come with it. `CustomerId` (1–128) is kept on the
//! contact ([`crate::ContactView::customer_id`]).
//!
//! SigV4 is checked for presence and shape ([`crate::connect::admission`]) — the signature itself is
//! not recomputed.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{post, put};
use serde::Deserialize;
use serde_json::{Value, json};
use time::Duration;

use crate::clock;
use crate::connect::admission::{admit_contact_call, check_instance};
use crate::connect::chat::{append_item, end_chat, stream_item};
use crate::connect::contact_attributes::check_attributes;
use crate::connect::errors::{AwsError, Service, parse, respond};
use crate::connect::model::{
    ChatMessage, ContactStatus, EndReason, ParticipantRole, content_types,
};
use crate::connect::state::{Chat, Customer, NewItem, Stream};
use crate::events::SandboxEvent;
use crate::faults::FaultOp;
use crate::ids;
use crate::state::Shared;
use crate::sync::lock;

/// At most this many SNS topics stream one contact (AG-STREAM).
const MAX_TOPICS_PER_CONTACT: usize = 2;
const DEFAULT_CHAT_DURATION_MINUTES: u32 = 1500;
/// `CustomerId` (`CustomerIdNonEmpty`): 1–128 characters.
const MAX_CUSTOMER_ID_CHARS: usize = 128;

const SUPPORTED_MESSAGING_TYPES: &[&str] = &[
    content_types::TEXT_PLAIN,
    content_types::TEXT_MARKDOWN,
    content_types::APPLICATION_JSON,
    content_types::INTERACTIVE,
    content_types::INTERACTIVE_RESPONSE,
];

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/contact/chat", put(start_chat_contact))
        .route("/contact/start-streaming", post(start_contact_streaming))
        .route("/contact/stop-streaming", post(stop_contact_streaming))
        .route("/contact/stop", post(stop_contact))
}

fn require<'a>(value: &'a Option<String>, name: &str) -> Result<&'a str, AwsError> {
    match value.as_deref() {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(AwsError::invalid_parameter(format!("{name} is required"))),
    }
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StartChatContactRequest {
    instance_id: Option<String>,
    contact_flow_id: Option<String>,
    attributes: Option<BTreeMap<String, String>>,
    participant_details: Option<ParticipantDetails>,
    initial_message: Option<InitialMessage>,
    client_token: Option<String>,
    chat_duration_in_minutes: Option<i64>,
    supported_messaging_content_types: Option<Vec<String>>,
    persistent_chat: Option<PersistentChat>,
    related_contact_id: Option<String>,
    /// The customer's identification number (e.g. a Customer Profiles ProfileId); sensitive.
    customer_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ParticipantDetails {
    display_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InitialMessage {
    content_type: Option<String>,
    content: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PersistentChat {
    rehydration_type: Option<String>,
    source_contact_id: Option<String>,
}

/// Field constraints of StartChatContact that need no state.
fn validate_start(shared: &Shared, req: &StartChatContactRequest) -> Result<(), AwsError> {
    let instance_id = require(&req.instance_id, "InstanceId")?;
    let flow_id = require(&req.contact_flow_id, "ContactFlowId")?;
    let display_name = req
        .participant_details
        .as_ref()
        .and_then(|p| p.display_name.as_deref())
        .ok_or_else(|| AwsError::invalid_parameter("ParticipantDetails.DisplayName is required"))?;
    if !(1..=256).contains(&chars(display_name)) {
        return Err(AwsError::invalid_parameter(
            "ParticipantDetails.DisplayName must be 1 to 256 characters",
        ));
    }
    let max_chars = shared.cfg.connect.max_message_chars;
    if let Some(message) = &req.initial_message {
        let content_type = message.content_type.as_deref().unwrap_or("");
        if content_type != content_types::TEXT_PLAIN && content_type != content_types::TEXT_MARKDOWN
        {
            return Err(AwsError::invalid_parameter(format!(
                "InitialMessage.ContentType must be text/plain or text/markdown, not '{content_type}'"
            )));
        }
        let length = chars(message.content.as_deref().unwrap_or(""));
        if !(1..=max_chars).contains(&length) {
            return Err(AwsError::invalid_parameter(format!(
                "InitialMessage.Content must be 1 to {max_chars} characters; it has {length}"
            )));
        }
    }
    if let Some(types) = &req.supported_messaging_content_types {
        if !types.iter().any(|t| t == content_types::TEXT_PLAIN) {
            return Err(AwsError::invalid_parameter(
                "SupportedMessagingContentTypes must contain text/plain",
            ));
        }
        if let Some(bad) = types
            .iter()
            .find(|t| !SUPPORTED_MESSAGING_TYPES.contains(&t.as_str()))
        {
            return Err(AwsError::invalid_parameter(format!(
                "SupportedMessagingContentTypes contains an unsupported type: {bad}"
            )));
        }
    }
    if let Some(attributes) = &req.attributes {
        check_attributes(attributes)?;
    }
    if let Some(minutes) = req.chat_duration_in_minutes
        && !(60..=10_080).contains(&minutes)
    {
        return Err(AwsError::invalid_parameter(
            "ChatDurationInMinutes must be between 60 and 10080",
        ));
    }
    if req.client_token.as_deref().is_some_and(|t| chars(t) > 500) {
        return Err(AwsError::invalid_parameter(
            "ClientToken must be at most 500 characters",
        ));
    }
    if req
        .customer_id
        .as_deref()
        .is_some_and(|id| !(1..=MAX_CUSTOMER_ID_CHARS).contains(&chars(id)))
    {
        return Err(AwsError::invalid_parameter(format!(
            "CustomerId must be 1 to {MAX_CUSTOMER_ID_CHARS} characters"
        )));
    }
    if req.persistent_chat.is_some() && req.related_contact_id.is_some() {
        return Err(AwsError::invalid_request(
            "PersistentChat and RelatedContactId cannot be used together",
        ));
    }
    check_instance(shared, instance_id)?;
    // The instance's flows (the configured one, unless a control removed it, and any added).
    let flow_exists = lock(&shared.connect)
        .flows(&shared.cfg.connect.contact_flow_id)
        .contains_key(flow_id);
    if !flow_exists {
        return Err(AwsError::not_found(format!(
            "Contact flow with id {flow_id} does not exist"
        )));
    }
    Ok(())
}

async fn start_chat_contact(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(start_chat_contact_inner(&shared, &headers, &body).await)
}

async fn start_chat_contact_inner(
    shared: &Shared,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, AwsError> {
    admit_contact_call(shared, headers, FaultOp::StartChatContact).await?;
    let req: StartChatContactRequest = parse(Service::Connect, body)?;
    validate_start(shared, &req)?;

    let mut cs = lock(&shared.connect);
    if let Some(token) = &req.client_token
        && let Some((_, response)) = cs.start_tokens.get(token)
    {
        return Ok(response.clone());
    }
    let continued_from = match &req.persistent_chat {
        None => None,
        Some(p) => {
            let rehydration = p.rehydration_type.as_deref().unwrap_or("");
            if rehydration != "ENTIRE_PAST_SESSION" && rehydration != "FROM_SEGMENT" {
                return Err(AwsError::invalid_parameter(
                    "PersistentChat.RehydrationType must be ENTIRE_PAST_SESSION or FROM_SEGMENT",
                ));
            }
            let source = require(&p.source_contact_id, "PersistentChat.SourceContactId")?;
            let idx = cs
                .find(source)
                .ok_or_else(|| AwsError::not_found(format!("Contact {source} does not exist")))?;
            if cs.chats.get(idx).is_some_and(|c| !c.is_ended()) {
                return Err(AwsError::invalid_request(
                    "Only chats that have ended can be rehydrated (PersistentChat.SourceContactId)",
                ));
            }
            if let Some(continued_by) = cs.persistent_sources.get(source) {
                return Err(AwsError::invalid_request(format!(
                    "PersistentChat.SourceContactId {source} has already been used for a persistent chat (contact {continued_by}); a contact can be continued only once"
                )));
            }
            Some(source.to_owned())
        }
    };
    if let Some(related) = &req.related_contact_id
        && cs.find(related).is_none()
    {
        return Err(AwsError::not_found(format!(
            "Contact {related} does not exist"
        )));
    }

    let now = clock::now();
    let duration = req
        .chat_duration_in_minutes
        .and_then(|m| u32::try_from(m).ok())
        .unwrap_or(DEFAULT_CHAT_DURATION_MINUTES);
    let contact_id = ids::uuid();
    let initial_message = req.initial_message.as_ref().map(|m| ChatMessage {
        content_type: m.content_type.clone().unwrap_or_default(),
        content: m.content.clone().unwrap_or_default(),
    });
    let chat = Chat {
        initial_contact_id: contact_id.clone(),
        contact_id: contact_id.clone(),
        previous_contact_ids: Vec::new(),
        instance_id: shared.cfg.connect.instance_id.clone(),
        contact_flow_id: req.contact_flow_id.clone().unwrap_or_default(),
        attributes: req.attributes.clone().unwrap_or_default(),
        customer: Customer {
            participant_id: ids::uuid(),
            display_name: req
                .participant_details
                .as_ref()
                .and_then(|p| p.display_name.clone())
                .unwrap_or_default(),
            participant_token: ids::bearer_token(),
            connected: false,
        },
        agent: None,
        supervisor: None,
        client_token: req.client_token.clone(),
        customer_id: req.customer_id.clone(),
        initial_message: initial_message.clone(),
        supported_types: req
            .supported_messaging_content_types
            .clone()
            .unwrap_or_else(|| vec![content_types::TEXT_PLAIN.to_owned()]),
        duration_minutes: duration,
        continued_from: continued_from.clone(),
        status: ContactStatus::Started,
        end_reason: None,
        streams: Vec::new(),
        streaming_tokens: Default::default(),
        item_tokens: Default::default(),
        attachment_tokens: Default::default(),
        complete_tokens: Default::default(),
        attachments: Vec::new(),
        transcript: Vec::new(),
        created_at: now,
        expires_at: now + Duration::minutes(i64::from(duration)),
        ended_at: None,
    };
    let customer = chat.customer.clone();
    let view = chat.view();
    let idx = cs.insert(chat);
    if let Some(source) = &continued_from {
        cs.persistent_sources
            .insert(source.clone(), contact_id.clone());
    }
    tracing::info!(contact_id = %contact_id, "chat contact started");
    shared.events.emit(SandboxEvent::ContactStarted {
        contact: Box::new(view),
    });
    if let Some(message) = &initial_message {
        append_item(
            shared,
            &mut cs,
            idx,
            NewItem::message(
                &message.content_type,
                &message.content,
                ParticipantRole::Customer,
                &customer.participant_id,
                &customer.display_name,
            ),
        );
    }
    let mut response = json!({
        "ContactId": contact_id,
        "ParticipantId": customer.participant_id,
        "ParticipantToken": customer.participant_token,
    });
    if let (Some(source), Value::Object(obj)) = (continued_from, &mut response) {
        obj.insert("ContinuedFromContactId".into(), Value::String(source));
    }
    if let Some(token) = &req.client_token {
        cs.start_tokens
            .insert(token.clone(), (idx, response.clone()));
    }
    Ok(response)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StartContactStreamingRequest {
    instance_id: Option<String>,
    contact_id: Option<String>,
    chat_streaming_configuration: Option<ChatStreamingConfiguration>,
    client_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ChatStreamingConfiguration {
    streaming_endpoint_arn: Option<String>,
}

/// `arn:aws:sns:<region>:<account>:<topic>` → (region, topic name).
fn parse_topic_arn(arn: &str) -> Option<(&str, &str)> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", partition, "sns", region, account, name]
            if partition.starts_with("aws")
                && !region.is_empty()
                && account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && !name.is_empty() =>
        {
            Some((region, name))
        }
        _ => None,
    }
}

async fn start_contact_streaming(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(start_contact_streaming_inner(&shared, &headers, &body).await)
}

async fn start_contact_streaming_inner(
    shared: &Shared,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, AwsError> {
    admit_contact_call(shared, headers, FaultOp::StartContactStreaming).await?;
    let req: StartContactStreamingRequest = parse(Service::Connect, body)?;
    let instance_id = require(&req.instance_id, "InstanceId")?;
    let contact_id = require(&req.contact_id, "ContactId")?;
    let arn = req
        .chat_streaming_configuration
        .as_ref()
        .and_then(|c| c.streaming_endpoint_arn.as_deref())
        .filter(|a| (1..=350).contains(&a.len()))
        .ok_or_else(|| {
            AwsError::invalid_parameter(
                "ChatStreamingConfiguration.StreamingEndpointArn is required (1..350)",
            )
        })?;
    let (region, name) = parse_topic_arn(arn)
        .ok_or_else(|| AwsError::invalid_parameter(format!("{arn} is not an SNS topic ARN")))?;
    if region != shared.cfg.connect.region {
        return Err(AwsError::invalid_request(format!(
            "The SNS topic must be in the instance's Region ({}), not {region}",
            shared.cfg.connect.region
        )));
    }
    if name.ends_with(".fifo") {
        return Err(AwsError::invalid_request(
            "FIFO SNS topics are not supported for chat streaming",
        ));
    }
    check_instance(shared, instance_id)?;

    let mut cs = lock(&shared.connect);
    let idx = cs
        .find(contact_id)
        .ok_or_else(|| AwsError::not_found(format!("Contact {contact_id} does not exist")))?;
    let Some(chat) = cs.chats.get_mut(idx) else {
        return Err(AwsError::not_found(format!(
            "Contact {contact_id} does not exist"
        )));
    };
    if chat.is_ended() {
        return Err(AwsError::invalid_request(format!(
            "Contact {contact_id} is not active"
        )));
    }
    if let Some(token) = &req.client_token
        && let Some(id) = chat.streaming_tokens.get(token)
    {
        return Ok(json!({"StreamingId": id}));
    }
    if let Some(stream) = chat.streams.iter().find(|s| s.active && s.topic_arn == arn) {
        return Ok(json!({"StreamingId": stream.streaming_id}));
    }
    if chat.active_topics().len() >= MAX_TOPICS_PER_CONTACT {
        return Err(AwsError::limit_exceeded(format!(
            "A contact can stream to at most {MAX_TOPICS_PER_CONTACT} topics"
        )));
    }
    // Items that exist before the first StartContactStreaming for a topic (the initial message,
    // typically) are streamed too, so the subscriber sees the whole chat. A topic that was stopped
    // and started again only gets what comes after the restart.
    let backlog = !chat.streams.iter().any(|s| s.topic_arn == arn);
    let streaming_id = ids::uuid();
    chat.streams.push(Stream {
        streaming_id: streaming_id.clone(),
        topic_arn: arn.to_owned(),
        active: true,
    });
    if let Some(token) = &req.client_token {
        chat.streaming_tokens
            .insert(token.clone(), streaming_id.clone());
    }
    let chat = &cs.chats[idx];
    if backlog {
        for item in &chat.transcript {
            stream_item(shared, arn, chat, item);
        }
    }
    shared.events.emit(SandboxEvent::StreamingStarted {
        contact_id: chat.contact_id.clone(),
        topic_arn: arn.to_owned(),
        streaming_id: streaming_id.clone(),
    });
    Ok(json!({"StreamingId": streaming_id}))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StopContactStreamingRequest {
    instance_id: Option<String>,
    contact_id: Option<String>,
    streaming_id: Option<String>,
}

async fn stop_contact_streaming(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(stop_contact_streaming_inner(&shared, &headers, &body).await)
}

async fn stop_contact_streaming_inner(
    shared: &Shared,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, AwsError> {
    admit_contact_call(shared, headers, FaultOp::StopContactStreaming).await?;
    let req: StopContactStreamingRequest = parse(Service::Connect, body)?;
    check_instance(shared, require(&req.instance_id, "InstanceId")?)?;
    let contact_id = require(&req.contact_id, "ContactId")?;
    let streaming_id = require(&req.streaming_id, "StreamingId")?;
    let mut cs = lock(&shared.connect);
    let stream = cs
        .find(contact_id)
        .and_then(|idx| cs.chats.get_mut(idx))
        .and_then(|chat| {
            chat.streams
                .iter_mut()
                .find(|s| s.streaming_id == streaming_id)
        })
        .ok_or_else(|| {
            AwsError::not_found(format!(
                "Streaming {streaming_id} of contact {contact_id} does not exist"
            ))
        })?;
    stream.active = false;
    Ok(json!({}))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StopContactRequest {
    instance_id: Option<String>,
    contact_id: Option<String>,
}

async fn stop_contact(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(stop_contact_inner(&shared, &headers, &body).await)
}

async fn stop_contact_inner(
    shared: &Shared,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, AwsError> {
    admit_contact_call(shared, headers, FaultOp::StopContact).await?;
    let req: StopContactRequest = parse(Service::Connect, body)?;
    check_instance(shared, require(&req.instance_id, "InstanceId")?)?;
    let contact_id = require(&req.contact_id, "ContactId")?;
    let mut cs = lock(&shared.connect);
    let idx = cs
        .find(contact_id)
        .ok_or_else(|| AwsError::not_found(format!("Contact {contact_id} does not exist")))?;
    if end_chat(shared, &mut cs, idx, EndReason::StopContact).is_none() {
        return Err(AwsError::new(
            StatusCode::GONE,
            "ContactNotFoundException",
            format!("Contact {contact_id} not found or already ended"),
        ));
    }
    Ok(json!({}))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn topic_arns() {
        assert_eq!(
            parse_topic_arn("arn:aws:sns:us-east-1:123456789012:chat"),
            Some(("us-east-1", "chat"))
        );
        assert!(parse_topic_arn("arn:aws:sqs:us-east-1:123456789012:chat").is_none());
        assert!(parse_topic_arn("arn:aws:sns:us-east-1:1234:chat").is_none());
        assert!(parse_topic_arn("chat").is_none());
    }
}
