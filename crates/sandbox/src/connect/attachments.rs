//! Chat attachments (docs/protocols.md B2, B3): StartAttachmentUpload → PUT to the pre-signed "S3" URL
//! with every `HeadersToInclude` header → CompleteAttachmentUpload → ATTACHMENT item (scanned:
//! IN_PROGRESS → APPROVED | REJECTED); GetAttachment → pre-signed GET. The S3 side lives on this
//! listener under `/s3/…`: a PUT lacking or altering any `HeadersToInclude` header is refused with
//! S3's `403 SignatureDoesNotMatch`, bodies are hashed as they stream and never held whole.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use time::{Duration, OffsetDateTime};

use crate::clock;
use crate::config::{AttachmentScan, ScanVerdict};
use crate::connect::chat::{Chat, ConnectState, NewItem};
use crate::connect::contact::parse;
use crate::connect::errors::{AwsError, Service, respond};
use crate::connect::model::{
    ArtifactStatus, AttachmentItem, AttachmentView, ChatItem, ItemType, MessageVisibility,
    ParticipantRole,
};
use crate::connect::participant::{admit, chat_for_connection, no_access};
use crate::error::SandboxError;
use crate::events::SandboxEvent;
use crate::faults::FaultOp;
use crate::ids;
use crate::media::files::{FileOrigin, HashSink, StoredFile};
use crate::media::stream::{BodyError, drain_body, file_response, hash_body};
use crate::state::{Shared, lock};

/// RFC 3986 unreserved characters stay as they are in S3 keys.
const KEY_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Characters escaped in the `filename="…"` of Content-Disposition (non-ASCII, quotes, controls).
const DISPOSITION: &AsciiSet = &percent_encoding::CONTROLS.add(b'"').add(b'\\').add(b'%');

/// GetAttachment `UrlExpiryInSeconds` bounds and default.
const MIN_URL_EXPIRY: i64 = 5;
const MAX_URL_EXPIRY: i64 = 300;
/// A refused PUT reads (and drops) at most this much of the body before answering.
const DRAIN_LIMIT: u64 = 64 * 1024 * 1024;

pub(crate) fn participant_routes() -> Router<Arc<Shared>> {
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

pub(crate) fn s3_routes() -> Router<Arc<Shared>> {
    Router::new().route("/s3/{*key}", put(s3_put).get(s3_get))
}

/// One request to a pre-signed attachment URL, as answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3RequestRecord {
    pub method: String,
    pub path: String,
    pub attachment_id: Option<String>,
    pub status: u16,
    /// The S3 error code (`SignatureDoesNotMatch`, `AccessDenied`, `IncompleteBody`…).
    pub code: Option<String>,
    /// Why, in words.
    pub rejection: Option<String>,
    /// `HeadersToInclude` headers the PUT did not send.
    pub missing_headers: Vec<String>,
    /// `HeadersToInclude` headers the PUT sent with another value.
    pub mismatched_headers: Vec<String>,
    /// Bytes received (PUT) or the size of the file served (GET).
    pub size: Option<u64>,
    /// SHA-256 of a received body, lower-case hex.
    pub sha256: Option<String>,
    pub at: String,
}

/// An attachment the agent side sends (`agent_send_attachment_with`, `POST …/{id}/attachment`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentAttachment {
    pub name: String,
    /// Default: the file's content type.
    #[serde(default)]
    pub content_type: Option<String>,
    /// A registered file (`SandboxHandle::add_file`).
    pub file_id: String,
    /// Default APPROVED (only APPROVED attachments can be downloaded).
    #[serde(default = "approved")]
    pub status: ArtifactStatus,
}

fn approved() -> ArtifactStatus {
    ArtifactStatus::Approved
}

/// A pre-signed URL handed out.
#[derive(Debug, Clone)]
pub(crate) struct Presigned {
    pub attachment_id: String,
    pub method: Method,
    pub expires_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub(crate) struct Uploaded {
    pub file_id: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Attachment {
    pub id: String,
    pub role: ParticipantRole,
    pub name: String,
    pub content_type: String,
    pub declared_size: u64,
    /// The S3 path of its URLs (percent-encoded as in a request line).
    pub s3_path: String,
    /// `HeadersToInclude`, in the order handed out.
    pub headers: Vec<(String, String)>,
    pub upload: Option<Uploaded>,
    pub completed: bool,
    pub status: Option<ArtifactStatus>,
    pub item_ids: Vec<String>,
    pub created_at: OffsetDateTime,
}

impl Attachment {
    pub(crate) fn view(&self, chat: &Chat) -> AttachmentView {
        AttachmentView {
            attachment_id: self.id.clone(),
            contact_id: chat.contact_id.clone(),
            initial_contact_id: chat.initial_contact_id.clone(),
            role: self.role,
            name: self.name.clone(),
            content_type: self.content_type.clone(),
            declared_size: self.declared_size,
            uploaded: self.upload.is_some(),
            size: self.upload.as_ref().map(|u| u.size),
            sha256: self.upload.as_ref().map(|u| u.sha256.clone()),
            file_id: self.upload.as_ref().map(|u| u.file_id.clone()),
            completed: self.completed,
            status: self.status,
            item_ids: self.item_ids.clone(),
            created_at: clock::iso_ms(self.created_at),
        }
    }

    fn item(&self, status: ArtifactStatus) -> AttachmentItem {
        AttachmentItem {
            content_type: self.content_type.clone(),
            attachment_id: self.id.clone(),
            attachment_name: self.name.clone(),
            status,
        }
    }
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

fn s3_path(shared: &Shared, chat: &Chat, attachment_id: &str, name: &str) -> String {
    format!(
        "/s3/amazon-connect-{}-attachments/connect/sandbox/Attachments/chat/{}/{attachment_id}_{}",
        shared.cfg.connect.account_id,
        chat.initial_contact_id,
        utf8_percent_encode(name, KEY_SEGMENT)
    )
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
        (
            "Content-Disposition".into(),
            format!(
                "attachment; filename=\"{}\"",
                utf8_percent_encode(name, DISPOSITION)
            ),
        ),
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

/// A pre-signed URL for `method` on `attachment`, valid `secs` seconds: `(url, expiry)`.
fn presign(
    shared: &Shared,
    cs: &mut ConnectState,
    attachment: &Attachment,
    method: Method,
    secs: i64,
) -> (String, OffsetDateTime) {
    let now = clock::now();
    let expires_at = now + Duration::seconds(secs);
    let signature = ids::hex_token(2);
    let date = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    let signed_headers = if method == Method::PUT {
        let mut names: Vec<String> = attachment
            .headers
            .iter()
            .map(|(k, _)| k.to_ascii_lowercase())
            .chain(std::iter::once("host".to_owned()))
            .collect();
        names.sort();
        names.join(";")
    } else {
        "host".to_owned()
    };
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("X-Amz-Algorithm", "AWS4-HMAC-SHA256")
        .append_pair(
            "X-Amz-Credential",
            &format!(
                "ASIASANDBOXATTACHMENTS/{}/{}/s3/aws4_request",
                &date[..8],
                shared.cfg.connect.region
            ),
        )
        .append_pair("X-Amz-Date", &date)
        .append_pair("X-Amz-Expires", &secs.to_string())
        .append_pair("X-Amz-SignedHeaders", &signed_headers)
        .append_pair("X-Amz-Signature", &signature)
        .finish();
    cs.presigned.insert(
        signature,
        Presigned {
            attachment_id: attachment.id.clone(),
            method,
            expires_at,
        },
    );
    (
        format!("{}{}?{query}", shared.base_url, attachment.s3_path),
        expires_at,
    )
}

fn scan(shared: &Shared, cs: &ConnectState) -> AttachmentScan {
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
    let token = admit(shared, headers, FaultOp::StartAttachmentUpload).await?;
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
    let token = admit(shared, headers, FaultOp::CompleteAttachmentUpload).await?;
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
    let new = NewItem {
        item_type: ItemType::Attachment,
        content_type: String::new(),
        content: None,
        attachments: Some(vec![attachment.item(status)]),
        role: Some(ParticipantRole::Customer),
        participant_id: Some(customer.participant_id.clone()),
        display_name: Some(customer.display_name.clone()),
        visibility: MessageVisibility::All,
    };
    let item = shared
        .append_item(&mut cs, idx, new)
        .ok_or_else(no_access)?;
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
            task_shared.finish_scan(&id, verdict_status(scan.verdict));
        });
    }
    Ok(response)
}

impl Shared {
    /// The scan of a customer attachment ends: its status changes and a second ATTACHMENT item
    /// announces the verdict (if the chat is still live).
    fn finish_scan(&self, attachment_id: &str, status: ArtifactStatus) {
        let mut cs = lock(&self.connect);
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
        let new = NewItem {
            item_type: ItemType::Attachment,
            content_type: String::new(),
            content: None,
            attachments: Some(vec![attachment.item(status)]),
            role: Some(ParticipantRole::Customer),
            participant_id: Some(customer.participant_id),
            display_name: Some(customer.display_name),
            visibility: MessageVisibility::All,
        };
        if let Some(item) = self.append_item(&mut cs, idx, new)
            && let Some((_, a)) = cs.attachment_mut(attachment_id)
        {
            a.item_ids.push(item.item.id);
        }
        tracing::info!(%attachment_id, status = status.as_str(), "attachment scanned");
    }

    /// Changes the scan of attachments completed from now on.
    pub(crate) fn set_attachment_scan(&self, scan: AttachmentScan) {
        lock(&self.connect).scan = Some(scan);
    }

    pub(crate) fn attachment_scan(&self) -> AttachmentScan {
        let cs = lock(&self.connect);
        scan(self, &cs)
    }

    pub(crate) fn attachment_views(&self) -> Vec<AttachmentView> {
        let cs = lock(&self.connect);
        cs.chats
            .iter()
            .flat_map(|chat| chat.attachments.iter().map(|a| a.view(chat)))
            .collect()
    }

    pub(crate) fn s3_requests(&self) -> Vec<S3RequestRecord> {
        lock(&self.connect).s3_requests.clone()
    }

    /// An ATTACHMENT item (role AGENT) from the present agent, carrying a registered file.
    pub(crate) fn agent_send_attachment(
        &self,
        contact_id: &str,
        spec: AgentAttachment,
    ) -> Result<ChatItem, SandboxError> {
        let file = self.file_info(&spec.file_id).ok_or_else(|| {
            SandboxError::invalid("attachment", format!("unknown file {}", spec.file_id))
        })?;
        if spec.name.is_empty() {
            return Err(SandboxError::invalid("attachment", "empty name"));
        }
        let content_type = spec
            .content_type
            .unwrap_or_else(|| file.content_type.clone());
        let (item, attachment_id) = self.with_live_chat(contact_id, |cs, idx| {
            let agent = Self::present_agent(cs, idx, contact_id)?;
            let chat = cs
                .chats
                .get(idx)
                .ok_or_else(|| SandboxError::UnknownContact(contact_id.to_owned()))?;
            let id = ids::uuid();
            let attachment = Attachment {
                id: id.clone(),
                role: ParticipantRole::Agent,
                name: spec.name.clone(),
                content_type: content_type.clone(),
                declared_size: file.size,
                s3_path: s3_path(self, chat, &id, &spec.name),
                headers: Vec::new(),
                upload: Some(Uploaded {
                    file_id: file.file_id.clone(),
                    size: file.size,
                    sha256: file.sha256.clone(),
                }),
                completed: true,
                status: Some(spec.status),
                item_ids: Vec::new(),
                created_at: clock::now(),
            };
            let new = NewItem {
                item_type: ItemType::Attachment,
                content_type: String::new(),
                content: None,
                attachments: Some(vec![attachment.item(spec.status)]),
                role: Some(ParticipantRole::Agent),
                participant_id: Some(agent.participant_id.clone()),
                display_name: Some(agent.display_name.clone()),
                visibility: MessageVisibility::All,
            };
            cs.add_attachment(idx, attachment)
                .ok_or_else(|| SandboxError::UnknownContact(contact_id.to_owned()))?;
            let item = self
                .append_item(cs, idx, new)
                .ok_or_else(|| SandboxError::UnknownContact(contact_id.to_owned()))?;
            if let Some((_, a)) = cs.attachment_mut(&id) {
                a.item_ids.push(item.item.id.clone());
            }
            Ok((item, id))
        })?;
        tracing::info!(%attachment_id, name = %spec.name, "agent sent an attachment");
        Ok(item)
    }
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
    let token = admit(shared, headers, FaultOp::GetAttachment).await?;
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

// ----- the S3 side -----

fn s3_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{}</RequestId><HostId>{}</HostId></Error>",
        ids::hex_token(1).to_ascii_uppercase(),
        ids::short_code(3)
    );
    (status, [(header::CONTENT_TYPE, "application/xml")], body).into_response()
}

const SIGNATURE_MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your key and signing method.";

/// A refusal of a pre-signed request, with the attachment it named (if any).
type Refused = Box<(Option<String>, Refusal)>;

/// A refusal: the response and what to record.
struct Refusal {
    status: StatusCode,
    code: String,
    message: String,
    rejection: String,
    missing: Vec<String>,
    mismatched: Vec<String>,
}

impl Refusal {
    fn new(status: StatusCode, code: &str, message: &str, rejection: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.to_owned(),
            rejection: rejection.into(),
            missing: Vec::new(),
            mismatched: Vec::new(),
        }
    }

    fn signature(rejection: impl Into<String>) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            SIGNATURE_MISMATCH,
            rejection,
        )
    }
}

fn query_signature(uri: &Uri) -> Option<String> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "X-Amz-Signature")
        .map(|(_, v)| v.into_owned())
}

/// The attachment a pre-signed request is for, checked: signature known for this path and
/// method, not expired.
fn authorise(cs: &ConnectState, method: &Method, uri: &Uri) -> Result<Attachment, Refused> {
    let Some(signature) = query_signature(uri) else {
        return Err(Box::new((
            None,
            Refusal::new(
                StatusCode::FORBIDDEN,
                "AccessDenied",
                "Access Denied",
                "no X-Amz-Signature in the query",
            ),
        )));
    };
    let Some(presigned) = cs.presigned.get(&signature) else {
        return Err(Box::new((
            None,
            Refusal::signature("X-Amz-Signature is not one the sandbox handed out"),
        )));
    };
    let attachment = cs
        .attachment(&presigned.attachment_id)
        .map(|(_, a)| a.clone());
    let id = Some(presigned.attachment_id.clone());
    let Some(attachment) = attachment.filter(|a| a.s3_path == uri.path()) else {
        return Err(Box::new((
            id,
            Refusal::signature("the path is not the one the URL was signed for"),
        )));
    };
    if presigned.method != method {
        return Err(Box::new((
            id,
            Refusal::signature(format!(
                "the URL was signed for {}, not {method}",
                presigned.method
            )),
        )));
    }
    if presigned.expires_at <= clock::now() {
        return Err(Box::new((
            id,
            Refusal::new(
                StatusCode::FORBIDDEN,
                "AccessDenied",
                "Request has expired",
                "the pre-signed URL has expired",
            ),
        )));
    }
    Ok(attachment)
}

/// Which `HeadersToInclude` headers are missing or differ.
fn compare_headers(expected: &[(String, String)], got: &HeaderMap) -> (Vec<String>, Vec<String>) {
    let mut missing = Vec::new();
    let mut mismatched = Vec::new();
    for (name, value) in expected {
        match got.get(name.as_str()) {
            None => missing.push(name.clone()),
            Some(v) if v.as_bytes() != value.as_bytes() => mismatched.push(name.clone()),
            Some(_) => {}
        }
    }
    (missing, mismatched)
}

struct S3Outcome {
    attachment_id: Option<String>,
    status: u16,
    refusal: Option<Refusal>,
    size: Option<u64>,
    sha256: Option<String>,
}

fn record_s3(shared: &Shared, method: &Method, path: &str, outcome: S3Outcome) -> Option<Response> {
    let (code, rejection, missing, mismatched) = match &outcome.refusal {
        Some(r) => (
            Some(r.code.clone()),
            Some(r.rejection.clone()),
            r.missing.clone(),
            r.mismatched.clone(),
        ),
        None => (None, None, Vec::new(), Vec::new()),
    };
    if let Some(why) = &rejection {
        tracing::info!(%method, %path, status = outcome.status, reason = %why, "S3 request refused");
    }
    let event = if *method == Method::PUT {
        SandboxEvent::AttachmentPut {
            attachment_id: outcome.attachment_id.clone(),
            status: outcome.status,
            rejection: rejection.clone(),
            size: outcome.size,
            sha256: outcome.sha256.clone(),
        }
    } else {
        SandboxEvent::AttachmentDownload {
            attachment_id: outcome.attachment_id.clone(),
            status: outcome.status,
        }
    };
    lock(&shared.connect).s3_requests.push(S3RequestRecord {
        method: method.to_string(),
        path: path.to_owned(),
        attachment_id: outcome.attachment_id,
        status: outcome.status,
        code,
        rejection,
        missing_headers: missing,
        mismatched_headers: mismatched,
        size: outcome.size,
        sha256: outcome.sha256,
        at: clock::now_iso_ms(),
    });
    shared.events.emit(event);
    outcome
        .refusal
        .map(|r| s3_error(r.status, &r.code, &r.message))
}

/// An injected fault on an S3 operation: `Some(refusal)` when it fails the call.
async fn s3_fault(shared: &Shared, op: FaultOp) -> Option<Refusal> {
    let injected = shared.gate(op).await?;
    let status = injected.status();
    let fault = &injected.fault;
    let code = fault.code.clone().unwrap_or_else(|| {
        match status.as_u16() {
            400 => "BadRequest",
            403 => "AccessDenied",
            404 => "NoSuchKey",
            503 => "SlowDown",
            _ => "InternalError",
        }
        .to_owned()
    });
    let message = fault
        .message
        .clone()
        .unwrap_or_else(|| format!("Injected fault: {code}"));
    Some(Refusal::new(status, &code, &message, injected.rejection()))
}

async fn s3_put(
    State(shared): State<Arc<Shared>>,
    OriginalUri(uri): OriginalUri,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let method = parts.method.clone();
    let path = uri.path().to_owned();
    crate::faults::note_call(FaultOp::AttachmentPut);
    let refuse = |shared: &Shared, id: Option<String>, refusal: Refusal| {
        let outcome = S3Outcome {
            attachment_id: id,
            status: refusal.status.as_u16(),
            refusal: Some(refusal),
            size: None,
            sha256: None,
        };
        record_s3(shared, &method, &path, outcome)
            .unwrap_or_else(|| StatusCode::INTERNAL_SERVER_ERROR.into_response())
    };
    let checked = authorise(&lock(&shared.connect), &method, &uri);
    let attachment = match checked {
        Ok(a) => a,
        Err(refused) => {
            let (id, refusal) = *refused;
            drain_body(body, DRAIN_LIMIT).await;
            return refuse(&shared, id, refusal);
        }
    };
    let id = Some(attachment.id.clone());
    if let Some(refusal) = s3_fault(&shared, FaultOp::AttachmentPut).await {
        drain_body(body, DRAIN_LIMIT).await;
        return refuse(&shared, id, refusal);
    }
    if attachment.completed {
        drain_body(body, DRAIN_LIMIT).await;
        return refuse(
            &shared,
            id,
            Refusal::new(
                StatusCode::FORBIDDEN,
                "AccessDenied",
                "Access Denied",
                "the attachment was already completed",
            ),
        );
    }
    let (missing, mismatched) = compare_headers(&attachment.headers, &parts.headers);
    if !missing.is_empty() || !mismatched.is_empty() {
        drain_body(body, DRAIN_LIMIT).await;
        let mut why = Vec::new();
        if !missing.is_empty() {
            why.push(format!("missing {}", missing.join(", ")));
        }
        if !mismatched.is_empty() {
            why.push(format!("altered {}", mismatched.join(", ")));
        }
        let mut refusal = Refusal::signature(format!(
            "HeadersToInclude not sent verbatim: {}",
            why.join("; ")
        ));
        refusal.missing = missing;
        refusal.mismatched = mismatched;
        return refuse(&shared, id, refusal);
    }
    let mut sink = HashSink::new(shared.cfg.media.keep_bytes_up_to);
    let declared = attachment.declared_size;
    if let Err(e) = hash_body(body, &mut sink, declared).await {
        let why = match e {
            BodyError::TooLarge { limit } => format!("more than Content-Length ({limit}) bytes"),
            BodyError::Broken(why) => format!("the body broke off: {why}"),
        };
        return refuse(
            &shared,
            id,
            Refusal::new(
                StatusCode::BAD_REQUEST,
                "IncompleteBody",
                "You did not provide the number of bytes specified by the Content-Length HTTP header",
                why,
            ),
        );
    }
    if sink.len() != declared {
        let got = sink.len();
        return refuse(
            &shared,
            id,
            Refusal::new(
                StatusCode::BAD_REQUEST,
                "IncompleteBody",
                "You did not provide the number of bytes specified by the Content-Length HTTP header",
                format!("{got} bytes received, {declared} declared"),
            ),
        );
    }
    let hashed = sink.finish();
    let file = shared.store_upload(
        &attachment.name,
        &attachment.content_type,
        hashed,
        FileOrigin::ConnectUpload {
            attachment_id: attachment.id.clone(),
        },
    );
    if let Some((_, a)) = lock(&shared.connect).attachment_mut(&attachment.id) {
        a.upload = Some(Uploaded {
            file_id: file.file_id.clone(),
            size: file.size,
            sha256: file.sha256.clone(),
        });
    }
    tracing::info!(attachment_id = %attachment.id, size = file.size, sha256 = %file.sha256, "attachment uploaded");
    let outcome = S3Outcome {
        attachment_id: id,
        status: 200,
        refusal: None,
        size: Some(file.size),
        sha256: Some(file.sha256.clone()),
    };
    record_s3(&shared, &method, &path, outcome);
    let mut response = StatusCode::OK.into_response();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", &file.sha256[..32])) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

async fn s3_get(
    State(shared): State<Arc<Shared>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
) -> Response {
    let path = uri.path().to_owned();
    // HEAD is answered like GET (axum drops the body).
    let as_get = if method == Method::HEAD {
        Method::GET
    } else {
        method.clone()
    };
    crate::faults::note_call(FaultOp::AttachmentGet);
    let checked = authorise(&lock(&shared.connect), &as_get, &uri);
    let refused = |id: Option<String>, refusal: Refusal| {
        let outcome = S3Outcome {
            attachment_id: id,
            status: refusal.status.as_u16(),
            refusal: Some(refusal),
            size: None,
            sha256: None,
        };
        record_s3(&shared, &method, &path, outcome)
            .unwrap_or_else(|| StatusCode::INTERNAL_SERVER_ERROR.into_response())
    };
    let attachment = match checked {
        Ok(a) => a,
        Err(boxed) => {
            let (id, refusal) = *boxed;
            return refused(id, refusal);
        }
    };
    let id = Some(attachment.id.clone());
    if let Some(refusal) = s3_fault(&shared, FaultOp::AttachmentGet).await {
        return refused(id, refusal);
    }
    let file: Option<StoredFile> = attachment
        .upload
        .as_ref()
        .and_then(|u| shared.file(&u.file_id));
    let Some(mut file) = file.filter(|f| f.info.retained) else {
        return refused(
            id,
            Refusal::new(
                StatusCode::NOT_FOUND,
                "NoSuchKey",
                "The specified key does not exist.",
                "the sandbox kept only the size and hash of this attachment",
            ),
        );
    };
    file.info.content_type = attachment.content_type.clone();
    let disposition = format!(
        "attachment; filename=\"{}\"",
        utf8_percent_encode(&attachment.name, DISPOSITION)
    );
    let response = file_response(&file, Some(&disposition));
    let outcome = S3Outcome {
        attachment_id: id,
        status: response.status().as_u16(),
        refusal: None,
        size: Some(file.info.size),
        sha256: None,
    };
    record_s3(&shared, &method, &path, outcome);
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn header_comparison_names_what_is_missing_or_altered() {
        let expected = vec![
            (
                "x-amz-acl".to_owned(),
                "bucket-owner-full-control".to_owned(),
            ),
            ("Content-Type".to_owned(), "image/png".to_owned()),
            ("Content-Length".to_owned(), "9".to_owned()),
        ];
        let mut got = HeaderMap::new();
        got.insert("content-type", HeaderValue::from_static("image/jpeg"));
        got.insert("content-length", HeaderValue::from_static("9"));
        let (missing, mismatched) = compare_headers(&expected, &got);
        assert_eq!(missing, vec!["x-amz-acl"]);
        assert_eq!(mismatched, vec!["Content-Type"]);
    }

    #[test]
    fn content_types_compare_by_essence() {
        assert_eq!(essence("Image/PNG; charset=binary"), "image/png");
    }
}
