//! X Chat media upload (docs/xchat.md §4): `initialize` `{conversation_id, total_bytes}` → a
//! session and its `media_hash_key`; `append` one segment (`segment_index` 0–999, any order, each
//! once) as JSON with base64 `media` or as multipart/form-data with the raw bytes in `media`;
//! `finalize` `{num_parts}` once every part is there and the sizes add up to `total_bytes`. The
//! bytes are ciphertext (secretstream under the conversation key); they are kept as sent.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, OriginalUri, Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::clock;
use crate::faults::FaultOp;
use crate::media::files::sha256_hex;
use crate::media::stream::{BodyError, collect_body};
use crate::state::Shared;
use crate::sync::lock;
use crate::x::auth::Accept;
use crate::x::calls::{XRequest, admit_as, finish};
use crate::x::chat::body::{self, Object};
use crate::x::chat::conversation;
use crate::x::chat::records::ChatMediaRecord;
use crate::x::chat::state::MediaUpload;
use crate::x::problem::XReply;
use crate::x::records::XOp;
use crate::x::state::RateInfo;

/// Largest upload kept (in memory); X does not document its limit.
pub(crate) const MAX_MEDIA_BYTES: u64 = 64 * 1024 * 1024;
/// Largest segment (X's example uses 3 MiB).
pub(crate) const MAX_SEGMENT_BYTES: u64 = 8 * 1024 * 1024;
/// Room for base64 and the JSON around a segment: the append route's body limit.
pub(crate) const MAX_APPEND_BODY: usize = (MAX_SEGMENT_BYTES as usize) * 4 / 3 + 64 * 1024;
const MAX_SEGMENT_INDEX: u64 = 999;
/// Small multipart fields larger than this are refused.
const MAX_FIELD_BYTES: usize = 1024;
/// How long an unfinished session is said to live (`expires_at`).
const SESSION_SECS: i64 = 24 * 60 * 60;

/// `POST /2/chat/media/upload/initialize`.
pub(crate) async fn initialize(
    State(shared): State<Arc<Shared>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = XRequest::new(method, uri, headers);
    let reply = initialize_reply(&shared, &req, &body).await;
    finish(&shared, XOp::ChatMediaInitialize, &req, reply)
}

async fn initialize_reply(shared: &Shared, req: &XRequest, raw: &[u8]) -> XReply {
    let (principal, rate) = match admit_as(
        shared,
        req,
        XOp::ChatMediaInitialize,
        FaultOp::ChatMediaUpload,
        Accept::MEDIA_WRITE,
    )
    .await
    {
        Ok(admitted) => admitted,
        Err(reply) => return reply,
    };
    let me = principal.user_id().unwrap_or_default();
    let (given, total_bytes) = match body::object(raw).and_then(|obj| {
        let conversation_id = body::required_str(&obj, "conversation_id")?.to_owned();
        Ok((conversation_id, body::integer(&obj, "total_bytes")?))
    }) {
        Ok(parsed) => parsed,
        Err(message) => return XReply::invalid_body(rate, message),
    };
    let conv = match conversation::resolve(me, &given) {
        Ok(conv) => conv,
        Err(e) => return e.reply(rate, "conversation_id"),
    };
    if !(1..=MAX_MEDIA_BYTES).contains(&total_bytes) {
        return XReply::invalid_param(
            rate,
            "total_bytes",
            &total_bytes.to_string(),
            format!("total_bytes must be between 1 and {MAX_MEDIA_BYTES}"),
        );
    }
    let session_id = shared.snowflake.next();
    let media_hash_key = uuid::Uuid::new_v4().simple().to_string();
    let record = ChatMediaRecord {
        session_id: session_id.clone(),
        media_hash_key: media_hash_key.clone(),
        conversation_id: conv.id.clone(),
        uploader_id: me.to_owned(),
        total_bytes,
        size: 0,
        segments: 0,
        finalized: false,
        sha256: None,
        created_at: clock::now_iso_ms(),
    };
    lock(&shared.x).chat.media.push(MediaUpload {
        record,
        parts: Default::default(),
        blob: None,
    });
    XReply::new(
        StatusCode::OK,
        json!({"data": {"session_id": session_id, "media_hash_key": media_hash_key, "conversation_id": conv.id}}),
        rate,
    )
}

/// `POST /2/chat/media/upload/{session_id}/append`.
pub(crate) async fn append(
    State(shared): State<Arc<Shared>>,
    Path(session_id): Path<String>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let req = XRequest::new(method, uri, headers);
    let reply = append_reply(&shared, &req, &session_id, body).await;
    finish(&shared, XOp::ChatMediaAppend, &req, reply)
}

async fn append_reply(shared: &Shared, req: &XRequest, session_id: &str, raw: Body) -> XReply {
    let (principal, rate) = match admit_as(
        shared,
        req,
        XOp::ChatMediaAppend,
        FaultOp::ChatMediaUpload,
        Accept::MEDIA_WRITE,
    )
    .await
    {
        Ok(admitted) => admitted,
        Err(reply) => return reply,
    };
    let me = principal.user_id().unwrap_or_default();
    let (fields, media) = match read_segment(&req.headers, raw).await {
        Ok(read) => read,
        Err(message) => return XReply::invalid_body(rate, message),
    };
    let index = match body::integer(&fields, "segment_index") {
        Ok(i) if i <= MAX_SEGMENT_INDEX => i as u32,
        Ok(i) => {
            return XReply::invalid_param(
                rate,
                "segment_index",
                &i.to_string(),
                format!("segment_index must be between 0 and {MAX_SEGMENT_INDEX}"),
            );
        }
        Err(message) => return XReply::invalid_body(rate, message),
    };
    let mut x = lock(&shared.x);
    let upload = match session(&mut x.chat.media, session_id, me, &fields, rate) {
        Ok(upload) => upload,
        Err(reply) => return reply,
    };
    if upload.parts.contains_key(&index) {
        return XReply::invalid_param(
            rate,
            "segment_index",
            &index.to_string(),
            format!("segment {index} was already appended"),
        );
    }
    let size = upload.record.size + media.len() as u64;
    if size > upload.record.total_bytes {
        return XReply::invalid_body(
            rate,
            format!(
                "The appended bytes exceed total_bytes ({})",
                upload.record.total_bytes
            ),
        );
    }
    upload.record.size = size;
    upload.record.segments += 1;
    upload.parts.insert(index, media);
    let expires_at = clock::now_unix_secs() + SESSION_SECS;
    XReply::new(
        StatusCode::OK,
        json!({"data": {"expires_at": expires_at}}),
        rate,
    )
}

/// `POST /2/chat/media/upload/{session_id}/finalize`.
pub(crate) async fn finalize(
    State(shared): State<Arc<Shared>>,
    Path(session_id): Path<String>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = XRequest::new(method, uri, headers);
    let reply = finalize_reply(&shared, &req, &session_id, &body).await;
    finish(&shared, XOp::ChatMediaFinalize, &req, reply)
}

async fn finalize_reply(shared: &Shared, req: &XRequest, session_id: &str, raw: &[u8]) -> XReply {
    let (principal, rate) = match admit_as(
        shared,
        req,
        XOp::ChatMediaFinalize,
        FaultOp::ChatMediaUpload,
        Accept::MEDIA_WRITE,
    )
    .await
    {
        Ok(admitted) => admitted,
        Err(reply) => return reply,
    };
    let me = principal.user_id().unwrap_or_default();
    let fields = match body::object(raw) {
        Ok(fields) => fields,
        Err(message) => return XReply::invalid_body(rate, message),
    };
    let num_parts = match body::integer(&fields, "num_parts") {
        Ok(n) if n >= 1 => n,
        Ok(_) => return XReply::invalid_body(rate, "$.num_parts: must be at least 1"),
        Err(message) => return XReply::invalid_body(rate, message),
    };
    let mut x = lock(&shared.x);
    let upload = match session(&mut x.chat.media, session_id, me, &fields, rate) {
        Ok(upload) => upload,
        Err(reply) => return reply,
    };
    let expected: Vec<u32> = (0..num_parts)
        .filter_map(|i| u32::try_from(i).ok())
        .collect();
    let have: Vec<u32> = upload.parts.keys().copied().collect();
    if have != expected {
        return XReply::invalid_body(
            rate,
            format!("num_parts is {num_parts} but the appended segments are {have:?}"),
        );
    }
    if upload.record.size != upload.record.total_bytes {
        return XReply::invalid_body(
            rate,
            format!(
                "{} bytes were appended but total_bytes is {}",
                upload.record.size, upload.record.total_bytes
            ),
        );
    }
    let blob: Vec<u8> = std::mem::take(&mut upload.parts)
        .into_values()
        .flatten()
        .collect();
    upload.record.sha256 = Some(sha256_hex(&blob));
    upload.record.finalized = true;
    upload.blob = Some(blob);
    tracing::info!(media_hash_key = %upload.record.media_hash_key, size = upload.record.size, "X Chat media finalized");
    XReply::new(StatusCode::OK, json!({"data": {"success": true}}), rate)
}

/// The caller's unfinished session `session_id`, the body naming its conversation and key.
fn session<'a>(
    media: &'a mut [MediaUpload],
    session_id: &str,
    me: &str,
    fields: &Object,
    rate: RateInfo,
) -> Result<&'a mut MediaUpload, XReply> {
    let Some(upload) = media.iter_mut().find(|m| m.record.session_id == session_id) else {
        return Err(XReply::invalid_param(
            rate,
            "session_id",
            session_id,
            format!("There is no upload session [{session_id}]"),
        ));
    };
    if upload.record.uploader_id != me {
        return Err(body::forbidden(
            rate,
            "The upload session belongs to another user.",
        ));
    }
    if upload.record.finalized {
        return Err(XReply::invalid_param(
            rate,
            "session_id",
            session_id,
            format!("The upload session [{session_id}] is already finalized"),
        ));
    }
    let given = body::required_str(fields, "conversation_id")
        .map_err(|message| XReply::invalid_body(rate, message))?;
    let named = conversation::resolve(me, given).map(|c| c.id);
    if named.as_deref() != Ok(upload.record.conversation_id.as_str()) {
        return Err(XReply::invalid_param(
            rate,
            "conversation_id",
            given,
            format!(
                "conversation_id [{given}] is not the upload session's ({})",
                upload.record.conversation_id
            ),
        ));
    }
    let key = body::required_str(fields, "media_hash_key")
        .map_err(|message| XReply::invalid_body(rate, message))?;
    if key != upload.record.media_hash_key {
        return Err(XReply::invalid_param(
            rate,
            "media_hash_key",
            key,
            format!("media_hash_key [{key}] is not the upload session's"),
        ));
    }
    Ok(upload)
}

/// A segment body: the fields (as a JSON object; multipart fields as strings) and the media bytes.
async fn read_segment(headers: &HeaderMap, raw: Body) -> Result<(Object, Vec<u8>), String> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let too_large =
        || format!("The segment exceeds the maximum segment size of {MAX_SEGMENT_BYTES} bytes");
    let mut fields = Object::new();
    let mut media: Option<Vec<u8>> = None;
    if content_type.starts_with("multipart/form-data") {
        let mut request = Request::new(raw);
        if let Some(ct) = headers.get(header::CONTENT_TYPE) {
            request
                .headers_mut()
                .insert(header::CONTENT_TYPE, ct.clone());
        }
        let mut multipart = Multipart::from_request(request, &())
            .await
            .map_err(|e| format!("Invalid multipart body: {e}"))?;
        let mut texts: HashMap<String, String> = HashMap::new();
        while let Some(field) = multipart
            .next_field()
            .await
            .map_err(|e| format!("Invalid multipart body: {}", e.body_text()))?
        {
            let name = field.name().unwrap_or("").to_owned();
            let bytes = field
                .bytes()
                .await
                .map_err(|e| format!("Invalid multipart body: {}", e.body_text()))?;
            if name == "media" {
                if media.is_some() {
                    return Err("Only one `media` field is allowed".into());
                }
                if bytes.len() as u64 > MAX_SEGMENT_BYTES {
                    return Err(too_large());
                }
                media = Some(bytes.to_vec());
            } else if bytes.len() > MAX_FIELD_BYTES {
                return Err(format!("The `{name}` field is too long"));
            } else {
                texts.insert(name, String::from_utf8_lossy(&bytes).trim().to_owned());
            }
        }
        fields.extend(texts.into_iter().map(|(k, v)| (k, Value::String(v))));
    } else if content_type.starts_with("application/json") {
        let raw = collect_body(raw, MAX_APPEND_BODY as u64)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge { .. } => too_large(),
                BodyError::Broken(why) => format!("The body could not be read: {why}"),
            })?;
        fields = body::object(&raw)?;
        if let Some(value) = fields.remove("media") {
            let text = value.as_str().ok_or("$.media: string expected")?;
            let bytes = STANDARD
                .decode(text)
                .map_err(|e| format!("$.media is not valid base64: {e}"))?;
            if bytes.len() as u64 > MAX_SEGMENT_BYTES {
                return Err(too_large());
            }
            media = Some(bytes);
        }
    } else {
        return Err(format!(
            "Content-Type must be multipart/form-data or application/json, not `{content_type}`"
        ));
    }
    let media = media.ok_or("$.media: is missing but it is required")?;
    if media.is_empty() {
        return Err("$.media: the segment is empty".into());
    }
    Ok((fields, media))
}
