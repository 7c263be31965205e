//! Chat attachments, the participant side (docs/protocols.md B2, B3): StartAttachmentUpload hands
//! out a pre-signed upload URL with its `HeadersToInclude` → the client PUTs the file there →
//! CompleteAttachmentUpload → ATTACHMENT item (scanned: IN_PROGRESS → APPROVED | REJECTED);
//! GetAttachment hands out a pre-signed download URL. The URLs themselves (the `/s3/…` routes) are
//! emulated in [`crate::connect::s3`]; agents send attachments through [`crate::connect::agent`].

use std::sync::Arc;
use std::time::Duration as StdDuration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::routing::post;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::clock;
use crate::config::{AttachmentScan, ScanVerdict};
use crate::connect::admission::{admit_participant_call, chat_for_connection, no_access};
use crate::connect::chat::append_item;
use crate::connect::errors::{AwsError, Service, parse, respond};
use crate::connect::model::{ArtifactStatus, ParticipantRole};
use crate::connect::s3::{content_disposition, presign, s3_path};
use crate::connect::state::{Attachment, Chat, ConnectState};
use crate::events::SandboxEvent;
use crate::faults::FaultOp;
use crate::ids;
use crate::state::Shared;
use crate::sync::lock;

/// GetAttachment `UrlExpiryInSeconds` bounds and default.
const MIN_URL_EXPIRY: i64 = 5;
const MAX_URL_EXPIRY: i64 = 300;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/participant/start-attachment-upload",
            post(start_attachment_upload),
        )
        .route(
            "/participant/complete-attachment-upload",
            post(complete_attachment_upload),
        )
        .route("/participant/attachment", post(get_attachment))
}

/// MIME type without parameters, lower case.
fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// `HeadersToInclude` as Connect hands them out (amazon-connect-chatjs#188).
fn headers_to_include(
    shared: &Shared,
    chat: &Chat,
    name: &str,
    content_type: &str,
    size: u64,
) -> Vec<(String, String)> {
    let connect = &shared.cfg.connect;
    vec![
        ("x-amz-meta-contact_id".into(), chat.contact_id.clone()),
        (
            "x-amz-meta-initial_contact_id".into(),
            chat.initial_contact_id.clone(),
        ),
        ("x-amz-acl".into(), "bucket-owner-full-control".into()),
        ("Content-Disposition".into(), content_disposition(name)),
        ("x-amz-meta-account_id".into(), connect.account_id.clone()),
        ("Content-Length".into(), size.to_string()),
        ("Content-Type".into(), content_type.to_owned()),
        (
            "x-amz-meta-organization_id".into(),
            connect.instance_id.clone(),
        ),
    ]
    .into_iter()
    .chain(connect.attachment_extra_headers.clone())
    .collect()
}

/// The scan applied to customer attachments: the one set at run time, else the configured one.
pub(crate) fn scan(shared: &Shared, cs: &ConnectState) -> AttachmentScan {
    cs.scan.unwrap_or(shared.cfg.connect.attachment_scan)
}

fn verdict_status(verdict: ScanVerdict) -> ArtifactStatus {
    match verdict {
        ScanVerdict::Approved => ArtifactStatus::Approved,
        ScanVerdict::Rejected => ArtifactStatus::Rejected,
    }
}

// ----- StartAttachmentUpload -----

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StartRequest {
    content_type: Option<String>,
    attachment_size_in_bytes: Option<i64>,
    attachment_name: Option<String>,
    client_token: Option<String>,
}

async fn start_attachment_upload(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(start_inner(&shared, &headers, &body).await)
}

fn required<'a>(value: &'a Option<String>, name: &str, max: usize) -> Result<&'a str, AwsError> {
    match value.as_deref() {
        Some(v) if (1..=max).contains(&v.chars().count()) => Ok(v),
        Some(_) => Err(AwsError::validation(format!(
            "{name} must be 1 to {max} characters long"
        ))),
        None => Err(AwsError::validation(format!(
            "1 validation error detected: Value null at '{name}' failed to satisfy constraint: Member must not be null"
        ))),
    }
}

async fn start_inner(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Result<Value, AwsError> {
    let token = admit_participant_call(shared, headers, FaultOp::StartAttachmentUpload).await?;
    let req: StartRequest = parse(Service::Participant, body)?;
    let content_type = required(&req.content_type, "contentType", 255)?;
    let name = required(&req.attachment_name, "attachmentName", 256)?;
    let client_token = required(&req.client_token, "clientToken", 500)?;
    let size = match req.attachment_size_in_bytes {
        Some(n) if n >= 1 => n.unsigned_abs(),
        Some(n) => {
            return Err(AwsError::validation(format!(
                "AttachmentSizeInBytes must be at least 1, not {n}"
            )));
        }
        None => {
            return Err(AwsError::validation(
                "1 validation error detected: Value null at 'attachmentSizeInBytes' failed to satisfy constraint: Member must not be null",
            ));
        }
    };
    let connect = &shared.cfg.connect;
    let mut cs = lock(&shared.connect);
    let idx = chat_for_connection(&cs, &token)?;
    let chat = cs.chats.get(idx).ok_or_else(no_access)?;
    if let Some(previous) = chat.attachment_tokens.get(client_token) {
        return Ok(previous.clone());
    }
    let wanted = essence(content_type);
    if !connect
        .attachment_types
        .iter()
        .any(|t| essence(t) == wanted)
    {
        return Err(AwsError::validation(format!(
            "The attachment content type {content_type} is not supported"
        )));
    }
    if size > connect.max_attachment_bytes {
        return Err(AwsError::validation(format!(
            "The attachment size {size} exceeds the maximum of {} bytes",
            connect.max_attachment_bytes
        )));
    }
    if chat.attachments.len() >= usize::try_from(connect.max_attachments_per_chat).unwrap_or(0) {
        return Err(AwsError::new(
            StatusCode::PAYMENT_REQUIRED,
            "ServiceQuotaExceededException",
            format!(
                "The chat already has the maximum of {} attachments",
                connect.max_attachments_per_chat
            ),
        ));
    }
    let id = ids::uuid();
    let attachment = Attachment {
        id: id.clone(),
        role: ParticipantRole::Customer,
        name: name.to_owned(),
        content_type: content_type.to_owned(),
        declared_size: size,
        s3_path: s3_path(shared, chat, &id, name),
        headers: headers_to_include(shared, chat, name, content_type, size),
        upload: None,
        completed: false,
        status: None,
        item_ids: Vec::new(),
        created_at: clock::now(),
    };
    let contact_id = chat.contact_id.clone();
    let expiry = i64::try_from(connect.attachment_url_expiry_secs).unwrap_or(300);
    let (url, expires_at) = presign(shared, &mut cs, &attachment, Method::PUT, expiry);
    let headers: Map<String, Value> = attachment
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let response = json!({
        "AttachmentId": id,
        "UploadMetadata": {
            "Url": url,
            "UrlExpiry": clock::iso_ms(expires_at),
            "HeadersToInclude": headers,
        },
    });
    cs.add_attachment(idx, attachment).ok_or_else(no_access)?;
    if let Some(chat) = cs.chats.get_mut(idx) {
        chat.attachment_tokens
            .insert(client_token.to_owned(), response.clone());
    }
    drop(cs);
    tracing::info!(attachment_id = %id, %name, size, "attachment upload started");
    shared.events.emit(SandboxEvent::AttachmentUploadStarted {
        contact_id,
        attachment_id: id,
        name: name.to_owned(),
        content_type: content_type.to_owned(),
        size,
    });
    Ok(response)
}

// ----- CompleteAttachmentUpload -----

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CompleteRequest {
    attachment_ids: Option<Vec<String>>,
    client_token: Option<String>,
}

async fn complete_attachment_upload(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(complete_inner(&shared, &headers, &body).await)
}

async fn complete_inner(
    shared: &Shared,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, AwsError> {
    let token = admit_participant_call(shared, headers, FaultOp::CompleteAttachmentUpload).await?;
    let req: CompleteRequest = parse(Service::Participant, body)?;
    let client_token = required(&req.client_token, "clientToken", 500)?;
    let ids = req.attachment_ids.unwrap_or_default();
    let [attachment_id] = ids.as_slice() else {
        return Err(AwsError::validation(format!(
            "AttachmentIds must contain exactly 1 id, not {}",
            ids.len()
        )));
    };
    let mut cs = lock(&shared.connect);
    let idx = chat_for_connection(&cs, &token)?;
    if let Some(previous) = cs
        .chats
        .get(idx)
        .and_then(|c| c.complete_tokens.get(client_token))
    {
        return Ok(previous.clone());
    }
    let scan = scan(shared, &cs);
    let (attachment, customer) = {
        let customer = cs
            .chats
            .get(idx)
            .map(|c| c.customer.clone())
            .ok_or_else(no_access)?;
        let Some((chat, attachment)) = cs.attachment_mut(attachment_id) else {
            return Err(AwsError::validation(format!(
                "Attachment {attachment_id} was not found"
            )));
        };
        if chat != idx || attachment.role != ParticipantRole::Customer {
            return Err(AwsError::validation(format!(
                "Attachment {attachment_id} was not found"
            )));
        }
        if attachment.upload.is_none() {
            return Err(AwsError::new(
                StatusCode::CONFLICT,
                "ConflictException",
                format!("Attachment {attachment_id} has not been uploaded to its upload URL"),
            ));
        }
        if attachment.completed {
            return Err(AwsError::new(
                StatusCode::CONFLICT,
                "ConflictException",
                format!("Attachment {attachment_id} has already been completed"),
            ));
        }
        attachment.completed = true;
        let status = if scan.delay_ms == 0 {
            verdict_status(scan.verdict)
        } else {
            ArtifactStatus::InProgress
        };
        attachment.status = Some(status);
        (attachment.clone(), customer)
    };
    let status = attachment.status.unwrap_or(ArtifactStatus::InProgress);
    let new = attachment.item(
        status,
        ParticipantRole::Customer,
        &customer.participant_id,
        &customer.display_name,
    );
    let item = append_item(shared, &mut cs, idx, new).ok_or_else(no_access)?;
    if let Some((_, a)) = cs.attachment_mut(attachment_id) {
        a.item_ids.push(item.item.id.clone());
    }
    let response = json!({});
    let contact_id = item.item.contact_id.clone();
    if let Some(chat) = cs.chats.get_mut(idx) {
        chat.complete_tokens
            .insert(client_token.to_owned(), response.clone());
    }
    drop(cs);
    shared.events.emit(SandboxEvent::AttachmentCompleted {
        contact_id,
        attachment_id: attachment_id.clone(),
        status,
    });
    if status == ArtifactStatus::InProgress
        && let Some(task_shared) = shared.arc()
    {
        let id = attachment_id.clone();
        shared.spawn(async move {
            tokio::time::sleep(StdDuration::from_millis(scan.delay_ms)).await;
            finish_scan(&task_shared, &id, verdict_status(scan.verdict));
        });
    }
    Ok(response)
}

/// The scan of a customer attachment ends: its status changes and a second ATTACHMENT item
/// announces the verdict (if the chat is still live).
fn finish_scan(shared: &Shared, attachment_id: &str, status: ArtifactStatus) {
    let mut cs = lock(&shared.connect);
    let Some((idx, attachment)) = cs.attachment_mut(attachment_id) else {
        return;
    };
    attachment.status = Some(status);
    let attachment = attachment.clone();
    let Some(chat) = cs.chats.get(idx) else {
        return;
    };
    if chat.is_ended() {
        return;
    }
    let customer = chat.customer.clone();
    let new = attachment.item(
        status,
        ParticipantRole::Customer,
        &customer.participant_id,
        &customer.display_name,
    );
    if let Some(item) = append_item(shared, &mut cs, idx, new)
        && let Some((_, a)) = cs.attachment_mut(attachment_id)
    {
        a.item_ids.push(item.item.id);
    }
    tracing::info!(%attachment_id, status = status.as_str(), "attachment scanned");
}

// ----- GetAttachment -----

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetRequest {
    attachment_id: Option<String>,
    url_expiry_in_seconds: Option<i64>,
}

async fn get_attachment(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(get_inner(&shared, &headers, &body).await)
}

async fn get_inner(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Result<Value, AwsError> {
    let token = admit_participant_call(shared, headers, FaultOp::GetAttachment).await?;
    let req: GetRequest = parse(Service::Participant, body)?;
    let attachment_id = required(&req.attachment_id, "attachmentId", 256)?;
    let secs = req.url_expiry_in_seconds.unwrap_or(MAX_URL_EXPIRY);
    if !(MIN_URL_EXPIRY..=MAX_URL_EXPIRY).contains(&secs) {
        return Err(AwsError::validation(format!(
            "UrlExpiryInSeconds must be between {MIN_URL_EXPIRY} and {MAX_URL_EXPIRY}, not {secs}"
        )));
    }
    let mut cs = lock(&shared.connect);
    let idx = chat_for_connection(&cs, &token)?;
    let attachment = match cs.attachment(attachment_id) {
        Some((chat, a)) if chat == idx => a.clone(),
        _ => {
            return Err(AwsError::validation(format!(
                "Attachment {attachment_id} was not found"
            )));
        }
    };
    match attachment.status {
        Some(ArtifactStatus::Approved) => {}
        other => {
            return Err(AwsError::validation(format!(
                "Attachment {attachment_id} is not approved (status {})",
                other.map_or("not completed", ArtifactStatus::as_str)
            )));
        }
    }
    let size = attachment.upload.as_ref().map_or(0, |u| u.size);
    let (url, expires_at) = presign(shared, &mut cs, &attachment, Method::GET, secs);
    Ok(json!({
        "Url": url,
        "UrlExpiry": clock::iso_ms(expires_at),
        "AttachmentSizeInBytes": size,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn content_types_compare_by_essence() {
        assert_eq!(essence("Image/PNG; charset=binary"), "image/png");
    }
}
