//! X media upload v2 (docs/protocols.md A5): `initialize` → `append` (segments 0, 1, 2… in order,
//! multipart or JSON base64) → `finalize` → `GET ?command=STATUS` polling for GIFs and videos, plus
//! the one-shot `POST /2/media/upload` for images. OAuth 1.0a verified like every X route (the
//! JSON and multipart bodies are not signed). Bytes are hashed as they stream: an upload is never
//! held whole (only uploads under `MediaConfig::keep_bytes_up_to` keep their bytes).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, OriginalUri, Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use crate::clock;
use crate::events::SandboxEvent;
use crate::faults::FaultOp;
use crate::media::files::{FileOrigin, HashSink};
use crate::media::stream::{BodyError, collect_body, drain_body};
use crate::state::{Shared, lock};
use crate::x::api::{XRequest, admit_as, finish, is_x_id};
use crate::x::auth::Accept;
use crate::x::problem::{self, XReply};
use crate::x::records::{MediaCategory, ProcessingState, SentMedia, UploadedMedia, XOp};
use crate::x::state::RateInfo;

/// Small multipart fields (`segment_index`, `media_category`…) larger than this are refused.
const MAX_FIELD_BYTES: usize = 1024;
/// Room for the JSON around a base64 segment.
const JSON_SLACK: u64 = 64 * 1024;
const MAX_SEGMENT_INDEX: u32 = 999;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/2/media/upload/initialize", post(initialize))
        .route("/2/media/upload/{id}/append", post(append))
        .route("/2/media/upload/{id}/finalize", post(finalize))
        .route("/2/media/upload", get(status).post(one_shot))
        // Bodies are streamed and limited by the handlers themselves.
        .layer(DefaultBodyLimit::disable())
}

/// An upload in progress or done.
#[derive(Debug)]
pub(crate) struct Upload {
    pub view: UploadedMedia,
    sink: HashSink,
    /// An `append` is streaming (the next one must wait for it).
    appending: bool,
    created_unix: i64,
    /// When the last answer told the client to check again.
    next_check_at: Option<Instant>,
    /// STATUS polls since `finalize`.
    polls_since_finalize: u32,
    /// Set at `finalize` by a `MediaProcessing` fault: processing ends `failed` with this message.
    failure: Option<String>,
}

impl Upload {
    pub(crate) fn sent_media(&self) -> Option<SentMedia> {
        Some(SentMedia {
            media_id: self.view.media_id.clone(),
            media_key: self.view.media_key.clone(),
            category: self.view.category,
            media_type: self.view.media_type.clone(),
            size: self.view.received_bytes,
            sha256: self.view.sha256.clone()?,
            file_id: self.view.file_id.clone()?,
        })
    }

    fn expires_at(&self, shared: &Shared) -> i64 {
        self.created_unix
            .saturating_add(i64::try_from(shared.cfg.x.media.expires_after_secs).unwrap_or(0))
    }
}

/// The media a DM may carry as `media_id`, or why it may not.
pub(crate) fn attachment_problem(shared: &Shared, media_id: &str) -> Result<SentMedia, String> {
    let x = lock(&shared.x);
    let Some(upload) = x.uploads.get(media_id) else {
        return Err(format!("media_id [{media_id}] does not exist"));
    };
    if upload.view.owner_id != shared.cfg.x.business.id {
        return Err(format!(
            "media_id [{media_id}] was not uploaded by the authenticating user"
        ));
    }
    if upload.expires_at(shared) <= clock::now_unix_secs() {
        return Err(format!("media_id [{media_id}] has expired"));
    }
    match upload.view.state {
        Some(ProcessingState::Succeeded) => upload
            .sent_media()
            .ok_or_else(|| format!("media_id [{media_id}] is not ready")),
        None => Err(format!("media_id [{media_id}] has not been finalized")),
        Some(state) => Err(format!(
            "media_id [{media_id}] is not ready: its processing state is {}",
            state.as_str()
        )),
    }
}

fn media_key(category: MediaCategory, id: &str) -> String {
    let prefix = match category {
        MediaCategory::DmImage => 3,
        MediaCategory::DmGif => 16,
        MediaCategory::DmVideo => 7,
    };
    format!("{prefix}_{id}")
}

fn bad_request(rate: RateInfo, parameter: &str, value: &str, message: String) -> XReply {
    XReply::new(
        StatusCode::BAD_REQUEST,
        problem::invalid_request(vec![problem::param_error(
            parameter,
            value,
            message.clone(),
        )]),
        rate,
    )
    .rejected(message)
}

fn bad_body(rate: RateInfo, message: String) -> XReply {
    XReply::new(
        StatusCode::BAD_REQUEST,
        problem::invalid_request(vec![problem::body_error(message.clone())]),
        rate,
    )
    .rejected(message)
}

fn x_request(method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> XRequest {
    XRequest {
        method,
        uri,
        headers,
        body,
    }
}

/// Whether `media_type` fits `category` (images for `dm_image`, `image/gif` for `dm_gif`,
/// videos for `dm_video`).
fn type_fits(category: MediaCategory, media_type: &str) -> bool {
    let essence = media_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match category {
        MediaCategory::DmImage => essence.starts_with("image/") && essence != "image/gif",
        MediaCategory::DmGif => essence == "image/gif",
        MediaCategory::DmVideo => essence.starts_with("video/"),
    }
}

fn extension(media_type: &str) -> &'static str {
    match media_type.to_ascii_lowercase().as_str() {
        "image/png" => "png",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "video/mp4" => "mp4",
        "video/quicktime" => "mov",
        t if t.starts_with("image/") => "jpg",
        _ => "bin",
    }
}

// ----- initialize -----

async fn initialize(
    State(shared): State<Arc<Shared>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = x_request(method, uri, headers, Bytes::new());
    let reply = initialize_reply(&shared, &req, &body).await;
    finish(&shared, XOp::MediaInitialize, &req, reply)
}

async fn initialize_reply(shared: &Shared, req: &XRequest, body: &[u8]) -> XReply {
    let rate = match admit_as(
        shared,
        req,
        XOp::MediaInitialize,
        FaultOp::MediaInitialize,
        Accept::MEDIA_WRITE,
    )
    .await
    {
        Ok((_, rate)) => rate,
        Err(reply) => return reply,
    };
    let obj = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(obj)) => obj,
        Ok(_) => return bad_body(rate, "$: must be a JSON object".into()),
        Err(e) => return bad_body(rate, format!("Request body is not valid JSON: {e}")),
    };
    let category_value = obj
        .get("media_category")
        .and_then(Value::as_str)
        .unwrap_or("");
    let Some(category) = MediaCategory::parse(category_value) else {
        return bad_request(
            rate,
            "media_category",
            category_value,
            format!(
                "The `media_category` value [{category_value}] is not one of [dm_image, dm_gif, dm_video]"
            ),
        );
    };
    let media_type = obj.get("media_type").and_then(Value::as_str).unwrap_or("");
    if media_type.is_empty() {
        return bad_request(
            rate,
            "media_type",
            "",
            "The `media_type` field is required".into(),
        );
    }
    if !type_fits(category, media_type) {
        return bad_request(
            rate,
            "media_type",
            media_type,
            format!(
                "The `media_type` [{media_type}] does not fit media_category {}",
                category.as_str()
            ),
        );
    }
    let total = obj.get("total_bytes").and_then(Value::as_u64).unwrap_or(0);
    if total == 0 {
        return bad_request(
            rate,
            "total_bytes",
            &obj.get("total_bytes")
                .map(Value::to_string)
                .unwrap_or_default(),
            "The `total_bytes` field must be a positive integer".into(),
        );
    }
    if total > category.max_bytes() {
        return bad_request(
            rate,
            "total_bytes",
            &total.to_string(),
            format!(
                "total_bytes {total} exceeds the {} limit of {} bytes",
                category.as_str(),
                category.max_bytes()
            ),
        );
    }
    let media_id = shared.snowflake.next();
    let key = media_key(category, &media_id);
    let now = clock::now();
    let upload = Upload {
        view: UploadedMedia {
            media_id: media_id.clone(),
            media_key: key.clone(),
            category,
            media_type: media_type.to_owned(),
            total_bytes: total,
            received_bytes: 0,
            segments: 0,
            finalized: false,
            state: None,
            status_polls: 0,
            early_polls: 0,
            file_id: None,
            sha256: None,
            owner_id: shared.cfg.x.business.id.clone(),
            created_at: clock::iso_ms(now),
        },
        sink: HashSink::new(shared.cfg.media.keep_bytes_up_to),
        appending: false,
        created_unix: now.unix_timestamp(),
        next_check_at: None,
        polls_since_finalize: 0,
        failure: None,
    };
    lock(&shared.x).uploads.insert(media_id.clone(), upload);
    shared.events.emit(SandboxEvent::MediaInitialized {
        media_id: media_id.clone(),
        category,
        total_bytes: total,
    });
    XReply::new(
        StatusCode::OK,
        json!({"data": {
            "id": media_id,
            "media_key": key,
            "expires_after_secs": shared.cfg.x.media.expires_after_secs,
        }}),
        rate,
    )
}

// ----- append -----

/// Clears the `appending` mark however the append ends (also when the client goes away and the
/// handler is dropped mid-stream).
struct AppendGuard<'a> {
    shared: &'a Shared,
    media_id: String,
}

impl Drop for AppendGuard<'_> {
    fn drop(&mut self) {
        if let Some(upload) = lock(&self.shared.x).uploads.get_mut(&self.media_id) {
            upload.appending = false;
        }
    }
}

/// Non-media fields of a segment body.
type Fields = HashMap<String, String>;

/// Reads a segment body (multipart with `media` + small fields, or JSON with base64 `media`),
/// streaming the media into `sink` with at most `segment_limit` bytes for this body and
/// `total_limit` for the sink. Returns the other fields and the media's length.
async fn read_segment(
    headers: &HeaderMap,
    body: Body,
    sink: &mut HashSink,
    segment_limit: u64,
    total_limit: u64,
) -> Result<(Fields, u64), String> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let start = sink.len();
    let check = |sink: &HashSink, more: usize| -> Result<(), String> {
        let segment = sink.len() - start + more as u64;
        if segment > segment_limit {
            return Err(format!(
                "The segment exceeds the maximum segment size of {segment_limit} bytes"
            ));
        }
        if sink.len() + more as u64 > total_limit {
            return Err(format!(
                "The appended bytes exceed total_bytes ({total_limit})"
            ));
        }
        Ok(())
    };
    let mut fields = Fields::new();
    let mut media_seen = false;
    if content_type.starts_with("multipart/form-data") {
        let mut request = Request::new(body);
        if let Some(ct) = headers.get(header::CONTENT_TYPE) {
            request
                .headers_mut()
                .insert(header::CONTENT_TYPE, ct.clone());
        }
        let mut multipart = Multipart::from_request(request, &())
            .await
            .map_err(|e| format!("Invalid multipart body: {e}"))?;
        while let Some(mut field) = multipart
            .next_field()
            .await
            .map_err(|e| format!("Invalid multipart body: {}", e.body_text()))?
        {
            let name = field.name().unwrap_or("").to_owned();
            if name == "media" {
                if media_seen {
                    return Err("Only one `media` field is allowed".into());
                }
                media_seen = true;
                while let Some(chunk) = field
                    .chunk()
                    .await
                    .map_err(|e| format!("Invalid multipart body: {}", e.body_text()))?
                {
                    check(sink, chunk.len())?;
                    sink.push(&chunk);
                }
            } else {
                let mut value = Vec::new();
                while let Some(chunk) = field
                    .chunk()
                    .await
                    .map_err(|e| format!("Invalid multipart body: {}", e.body_text()))?
                {
                    value.extend_from_slice(&chunk);
                    if value.len() > MAX_FIELD_BYTES {
                        return Err(format!("The `{name}` field is too long"));
                    }
                }
                fields.insert(name, String::from_utf8_lossy(&value).trim().to_owned());
            }
        }
    } else if content_type.starts_with("application/json") {
        let limit = segment_limit.saturating_mul(4) / 3 + JSON_SLACK;
        let raw = collect_body(body, limit).await.map_err(|e| match e {
            BodyError::TooLarge { .. } => {
                format!("The segment exceeds the maximum segment size of {segment_limit} bytes")
            }
            BodyError::Broken(why) => format!("The body could not be read: {why}"),
        })?;
        let obj: Map<String, Value> = match serde_json::from_slice(&raw) {
            Ok(Value::Object(obj)) => obj,
            Ok(_) => return Err("$: must be a JSON object".into()),
            Err(e) => return Err(format!("Request body is not valid JSON: {e}")),
        };
        for (name, value) in obj {
            if name == "media" {
                let text = value.as_str().ok_or("$.media: string expected")?;
                let bytes = STANDARD
                    .decode(text)
                    .map_err(|e| format!("$.media is not valid base64: {e}"))?;
                check(sink, bytes.len())?;
                sink.push(&bytes);
                media_seen = true;
            } else {
                let text = match value {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                fields.insert(name, text);
            }
        }
    } else {
        return Err(format!(
            "Content-Type must be multipart/form-data or application/json, not `{content_type}`"
        ));
    }
    if !media_seen {
        return Err("The `media` field is required".into());
    }
    Ok((fields, sink.len() - start))
}

async fn append(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    OriginalUri(uri): OriginalUri,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let req = x_request(parts.method, uri, parts.headers, Bytes::new());
    let reply = append_reply(&shared, &req, &id, body).await;
    finish(&shared, XOp::MediaAppend, &req, reply)
}

/// The state an `append` starts from: the window, a copy of the running hash, `total_bytes`, the
/// expected `segment_index` and the expiry. Marks the upload as appending.
struct AppendStart {
    rate: RateInfo,
    sink: HashSink,
    total: u64,
    expected_index: u32,
    expires_at: i64,
}

async fn append_begin(shared: &Shared, req: &XRequest, id: &str) -> Result<AppendStart, XReply> {
    let (_, rate) = admit_as(
        shared,
        req,
        XOp::MediaAppend,
        FaultOp::MediaAppend,
        Accept::MEDIA_WRITE,
    )
    .await?;
    let mut x = lock(&shared.x);
    let Some(upload) = x.uploads.get_mut(id).filter(|_| is_x_id(id)) else {
        return Err(bad_request(
            rate,
            "id",
            id,
            format!("Media id [{id}] was not found"),
        ));
    };
    if upload.view.finalized {
        return Err(bad_request(
            rate,
            "id",
            id,
            format!("Media id [{id}] has already been finalized"),
        ));
    }
    if upload.appending {
        return Err(bad_request(
            rate,
            "segment_index",
            "",
            "Another segment of this media is being appended; segments must be sent one after the other".into(),
        ));
    }
    upload.appending = true;
    Ok(AppendStart {
        rate,
        sink: upload.sink.clone(),
        total: upload.view.total_bytes,
        expected_index: upload.view.segments,
        expires_at: upload.expires_at(shared),
    })
}

async fn append_reply(shared: &Shared, req: &XRequest, id: &str, body: Body) -> XReply {
    let segment_limit = shared.cfg.x.media.max_segment_bytes;
    let AppendStart {
        rate,
        mut sink,
        total,
        expected_index,
        expires_at,
    } = match append_begin(shared, req, id).await {
        Ok(start) => start,
        Err(reply) => {
            // Read what the client is sending, so that it gets the answer rather than a reset.
            drain_body(body, segment_limit.saturating_mul(2)).await;
            return reply;
        }
    };
    let _guard = AppendGuard {
        shared,
        media_id: id.to_owned(),
    };
    let (fields, len) =
        match read_segment(&req.headers, body, &mut sink, segment_limit, total).await {
            Ok(read) => read,
            Err(message) => return bad_body(rate, message),
        };
    let index_text = fields.get("segment_index").cloned().unwrap_or_default();
    let index = match index_text.parse::<u32>() {
        Ok(i) if i <= MAX_SEGMENT_INDEX => i,
        _ => {
            return bad_request(
                rate,
                "segment_index",
                &index_text,
                format!(
                    "The `segment_index` value [{index_text}] must be an integer from 0 to 999"
                ),
            );
        }
    };
    if index != expected_index {
        let what = if index < expected_index {
            "was already appended"
        } else {
            "is out of order"
        };
        return bad_request(
            rate,
            "segment_index",
            &index_text,
            format!("Segment {index} {what}: the next segment must be {expected_index}"),
        );
    }
    if let Some(upload) = lock(&shared.x).uploads.get_mut(id) {
        upload.sink = sink;
        upload.view.segments += 1;
        upload.view.received_bytes += len;
    }
    XReply::new(
        StatusCode::OK,
        json!({"data": {"expires_at": expires_at}}),
        rate,
    )
}

// ----- finalize -----

fn processing_info(state: ProcessingState, check_after: u64, progress: Option<u32>) -> Value {
    let mut info = json!({"state": state.as_str()});
    if let Value::Object(obj) = &mut info {
        if matches!(
            state,
            ProcessingState::Pending | ProcessingState::InProgress
        ) {
            obj.insert("check_after_secs".into(), json!(check_after));
        }
        if let Some(p) = progress {
            obj.insert("progress_percent".into(), json!(p));
        }
    }
    info
}

/// The `data` of finalize and STATUS answers.
fn media_data(shared: &Shared, upload: &Upload, processing: Option<Value>) -> Value {
    let mut data = json!({
        "id": upload.view.media_id,
        "media_key": upload.view.media_key,
        "size": upload.view.received_bytes,
        "expires_after_secs": shared.cfg.x.media.expires_after_secs,
    });
    if let Value::Object(obj) = &mut data {
        if let Some(processing) = processing {
            obj.insert("processing_info".into(), processing);
        }
        if upload.view.category == MediaCategory::DmImage {
            obj.insert(
                "image".into(),
                json!({"image_type": upload.view.media_type}),
            );
        } else {
            obj.insert(
                "video".into(),
                json!({"video_type": upload.view.media_type}),
            );
        }
    }
    json!({"data": data})
}

async fn finalize(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let req = x_request(method, uri, headers, Bytes::new());
    let reply = finalize_reply(&shared, &req, &id).await;
    finish(&shared, XOp::MediaFinalize, &req, reply)
}

async fn finalize_reply(shared: &Shared, req: &XRequest, id: &str) -> XReply {
    let rate = match admit_as(
        shared,
        req,
        XOp::MediaFinalize,
        FaultOp::MediaFinalize,
        Accept::MEDIA_WRITE,
    )
    .await
    {
        Ok((_, rate)) => rate,
        Err(reply) => return reply,
    };
    let check_after = shared.cfg.x.media.check_after_secs;
    let (sink, name, media_type, category, media_id) = {
        let mut x = lock(&shared.x);
        let Some(upload) = x.uploads.get_mut(id).filter(|_| is_x_id(id)) else {
            return bad_request(rate, "id", id, format!("Media id [{id}] was not found"));
        };
        if upload.appending {
            return bad_request(
                rate,
                "id",
                id,
                "A segment of this media is still being appended".into(),
            );
        }
        if upload.view.finalized {
            // A retried finalize gets the current state.
            let processing = upload
                .view
                .state
                .filter(|_| upload.view.category.is_processed())
                .map(|s| processing_info(s, check_after, None));
            return XReply::new(StatusCode::OK, media_data(shared, upload, processing), rate);
        }
        if upload.view.received_bytes != upload.view.total_bytes {
            let message = format!(
                "The appended bytes ({}) do not match total_bytes ({})",
                upload.view.received_bytes, upload.view.total_bytes
            );
            return bad_request(
                rate,
                "total_bytes",
                &upload.view.total_bytes.to_string(),
                message,
            );
        }
        let sink = std::mem::replace(&mut upload.sink, HashSink::new(0));
        (
            sink,
            format!(
                "{}.{}",
                upload.view.media_id,
                extension(&upload.view.media_type)
            ),
            upload.view.media_type.clone(),
            upload.view.category,
            upload.view.media_id.clone(),
        )
    };
    let hashed = sink.finish();
    let failure = if category.is_processed() {
        shared.processing_failure()
    } else {
        None
    };
    let file = shared.store_upload(
        &name,
        &media_type,
        hashed,
        FileOrigin::XUpload {
            media_id: media_id.clone(),
        },
    );
    let mut x = lock(&shared.x);
    let Some(upload) = x.uploads.get_mut(id) else {
        return bad_request(rate, "id", id, format!("Media id [{id}] was not found"));
    };
    upload.view.finalized = true;
    upload.view.file_id = Some(file.file_id.clone());
    upload.view.sha256 = Some(file.sha256.clone());
    upload.failure = failure;
    let processing = if category.is_processed() {
        upload.view.state = Some(ProcessingState::Pending);
        upload.next_check_at = Some(Instant::now() + Duration::from_secs(check_after));
        Some(processing_info(ProcessingState::Pending, check_after, None))
    } else {
        upload.view.state = Some(ProcessingState::Succeeded);
        None
    };
    let body = media_data(shared, upload, processing);
    drop(x);
    tracing::info!(%media_id, size = file.size, sha256 = %file.sha256, "X media uploaded");
    shared.events.emit(SandboxEvent::MediaUploaded {
        media_id,
        category,
        media_type,
        size: file.size,
        sha256: file.sha256,
        file_id: file.file_id,
    });
    XReply::new(StatusCode::OK, body, rate)
}

// ----- STATUS -----

async fn status(
    State(shared): State<Arc<Shared>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let req = x_request(method, uri, headers, Bytes::new());
    let reply = status_reply(&shared, &req).await;
    finish(&shared, XOp::MediaStatus, &req, reply)
}

async fn status_reply(shared: &Shared, req: &XRequest) -> XReply {
    let rate = match admit_as(
        shared,
        req,
        XOp::MediaStatus,
        FaultOp::MediaStatus,
        Accept::MEDIA_WRITE,
    )
    .await
    {
        Ok((_, rate)) => rate,
        Err(reply) => return reply,
    };
    let query: HashMap<String, String> =
        url::form_urlencoded::parse(req.uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let command = query.get("command").map(String::as_str).unwrap_or("");
    if command != "STATUS" {
        return bad_request(
            rate,
            "command",
            command,
            format!("The `command` query parameter value [{command}] is not one of [STATUS]"),
        );
    }
    let id = query.get("media_id").map(String::as_str).unwrap_or("");
    let check_after = shared.cfg.x.media.check_after_secs;
    let polls_needed = shared.cfg.x.media.processing_polls.max(1);
    let mut x = lock(&shared.x);
    let Some(upload) = x.uploads.get_mut(id).filter(|_| is_x_id(id)) else {
        return bad_request(
            rate,
            "media_id",
            id,
            format!("Media id [{id}] was not found"),
        );
    };
    let Some(state) = upload.view.state else {
        return bad_request(
            rate,
            "media_id",
            id,
            format!("Media id [{id}] has not been finalized"),
        );
    };
    let now = Instant::now();
    upload.view.status_polls += 1;
    if upload.next_check_at.is_some_and(|at| now < at) {
        upload.view.early_polls += 1;
    }
    let mut finished = None;
    let (state, progress) = match state {
        ProcessingState::Pending | ProcessingState::InProgress => {
            upload.polls_since_finalize += 1;
            let polls = upload.polls_since_finalize;
            if polls >= polls_needed {
                let end = if upload.failure.is_some() {
                    ProcessingState::Failed
                } else {
                    ProcessingState::Succeeded
                };
                finished = Some(end);
                (end, 100)
            } else {
                (ProcessingState::InProgress, polls * 100 / polls_needed)
            }
        }
        done => (done, 100),
    };
    upload.view.state = Some(state);
    upload.next_check_at = matches!(state, ProcessingState::InProgress)
        .then(|| now + Duration::from_secs(check_after));
    let mut info = processing_info(state, check_after, Some(progress));
    if state == ProcessingState::Failed
        && let Value::Object(obj) = &mut info
    {
        obj.insert(
            "error".into(),
            json!({
                "code": 1,
                "name": "InvalidMedia",
                "message": upload.failure.clone().unwrap_or_default(),
            }),
        );
    }
    let body = media_data(shared, upload, Some(info));
    let media_id = upload.view.media_id.clone();
    drop(x);
    if let Some(state) = finished {
        shared
            .events
            .emit(SandboxEvent::MediaProcessed { media_id, state });
    }
    XReply::new(StatusCode::OK, body, rate)
}

// ----- one-shot upload -----

async fn one_shot(
    State(shared): State<Arc<Shared>>,
    OriginalUri(uri): OriginalUri,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let req = x_request(parts.method, uri, parts.headers, Bytes::new());
    let reply = one_shot_reply(&shared, &req, body).await;
    finish(&shared, XOp::MediaUpload, &req, reply)
}

async fn one_shot_reply(shared: &Shared, req: &XRequest, body: Body) -> XReply {
    let limit = MediaCategory::DmImage.max_bytes();
    let rate = match admit_as(
        shared,
        req,
        XOp::MediaUpload,
        FaultOp::MediaUpload,
        Accept::MEDIA_WRITE,
    )
    .await
    {
        Ok((_, rate)) => rate,
        Err(reply) => {
            drain_body(body, limit.saturating_mul(2)).await;
            return reply;
        }
    };
    let has_command = url::form_urlencoded::parse(req.uri.query().unwrap_or("").as_bytes())
        .any(|(k, _)| k == "command");
    if has_command {
        drain_body(body, limit.saturating_mul(2)).await;
        return bad_request(
            rate,
            "command",
            "",
            "The command-style media upload is deprecated: use /2/media/upload/initialize, /append and /finalize".into(),
        );
    }
    let mut sink = HashSink::new(shared.cfg.media.keep_bytes_up_to);
    let (fields, _) = match read_segment(&req.headers, body, &mut sink, limit, limit).await {
        Ok(read) => read,
        Err(message) => return bad_body(rate, message),
    };
    let category_value = fields.get("media_category").cloned().unwrap_or_default();
    match MediaCategory::parse(&category_value) {
        Some(MediaCategory::DmImage) => {}
        Some(_) => {
            return bad_request(
                rate,
                "media_category",
                &category_value,
                "The one-shot upload takes images only: upload GIFs and videos in chunks".into(),
            );
        }
        None => {
            return bad_request(
                rate,
                "media_category",
                &category_value,
                format!(
                    "The `media_category` value [{category_value}] is not one of [dm_image, dm_gif, dm_video]"
                ),
            );
        }
    }
    let media_type = fields
        .get("media_type")
        .cloned()
        .unwrap_or_else(|| "image/jpeg".to_owned());
    if !type_fits(MediaCategory::DmImage, &media_type) {
        return bad_request(
            rate,
            "media_type",
            &media_type,
            format!("The `media_type` [{media_type}] does not fit media_category dm_image"),
        );
    }
    let media_id = shared.snowflake.next();
    let hashed = sink.finish();
    let size = hashed.size;
    let file = shared.store_upload(
        &format!("{media_id}.{}", extension(&media_type)),
        &media_type,
        hashed,
        FileOrigin::XUpload {
            media_id: media_id.clone(),
        },
    );
    let now = clock::now();
    let upload = Upload {
        view: UploadedMedia {
            media_id: media_id.clone(),
            media_key: media_key(MediaCategory::DmImage, &media_id),
            category: MediaCategory::DmImage,
            media_type: media_type.clone(),
            total_bytes: size,
            received_bytes: size,
            segments: 1,
            finalized: true,
            state: Some(ProcessingState::Succeeded),
            status_polls: 0,
            early_polls: 0,
            file_id: Some(file.file_id.clone()),
            sha256: Some(file.sha256.clone()),
            owner_id: shared.cfg.x.business.id.clone(),
            created_at: clock::iso_ms(now),
        },
        sink: HashSink::new(0),
        appending: false,
        created_unix: now.unix_timestamp(),
        next_check_at: None,
        polls_since_finalize: 0,
        failure: None,
    };
    let body = media_data(shared, &upload, None);
    lock(&shared.x).uploads.insert(media_id.clone(), upload);
    shared.events.emit(SandboxEvent::MediaUploaded {
        media_id,
        category: MediaCategory::DmImage,
        media_type,
        size: file.size,
        sha256: file.sha256,
        file_id: file.file_id,
    });
    XReply::new(StatusCode::OK, body, rate)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn media_types_must_fit_their_category() {
        assert!(type_fits(MediaCategory::DmImage, "image/png"));
        assert!(type_fits(MediaCategory::DmImage, "IMAGE/JPEG"));
        assert!(!type_fits(MediaCategory::DmImage, "image/gif"));
        assert!(type_fits(MediaCategory::DmGif, "image/gif"));
        assert!(type_fits(MediaCategory::DmVideo, "video/mp4"));
        assert!(!type_fits(MediaCategory::DmVideo, "application/pdf"));
    }

    #[test]
    fn media_keys_have_the_category_prefix() {
        assert_eq!(media_key(MediaCategory::DmImage, "1"), "3_1");
        assert_eq!(media_key(MediaCategory::DmVideo, "1"), "7_1");
        assert_eq!(media_key(MediaCategory::DmGif, "1"), "16_1");
    }

    #[test]
    fn processing_info_shapes() {
        assert_eq!(
            processing_info(ProcessingState::Pending, 1, None),
            json!({"state": "pending", "check_after_secs": 1})
        );
        assert_eq!(
            processing_info(ProcessingState::Succeeded, 1, Some(100)),
            json!({"state": "succeeded", "progress_percent": 100})
        );
    }
}
