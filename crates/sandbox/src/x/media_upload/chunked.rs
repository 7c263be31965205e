//! The chunked upload: `initialize` (category, type and size checked) → `append` (one segment
//! at a time, strictly in order, never past `total_bytes`) → `finalize` (exactly `total_bytes`;
//! the file stored, images ready at once, GIFs and videos then processed).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{OriginalUri, Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use crate::clock;
use crate::events::SandboxEvent;
use crate::faults::{self, FaultOp};
use crate::media::files::{FileOrigin, HashSink};
use crate::media::stream::drain_body;
use crate::state::Shared;
use crate::sync::lock;
use crate::x::auth::Accept;
use crate::x::calls::{XRequest, admit_as, finish, is_x_id};
use crate::x::media_upload::answer::{media_data, processing_info};
use crate::x::media_upload::media_type::{extension, type_fits};
use crate::x::media_upload::segment::read_segment;
use crate::x::problem::XReply;
use crate::x::records::{MediaCategory, ProcessingState, UploadedMedia, XOp};
use crate::x::state::RateInfo;
use crate::x::uploads::Upload;

const MAX_SEGMENT_INDEX: u32 = 999;

pub(super) async fn initialize(
    State(shared): State<Arc<Shared>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = XRequest::new(method, uri, headers);
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
        Ok(_) => return XReply::invalid_body(rate, "$: must be a JSON object"),
        Err(e) => {
            return XReply::invalid_body(rate, format!("Request body is not valid JSON: {e}"));
        }
    };
    let category_value = obj
        .get("media_category")
        .and_then(Value::as_str)
        .unwrap_or("");
    let Some(category) = MediaCategory::parse(category_value) else {
        return XReply::invalid_param(
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
        return XReply::invalid_param(
            rate,
            "media_type",
            "",
            "The `media_type` field is required".into(),
        );
    }
    if !type_fits(category, media_type) {
        return XReply::invalid_param(
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
        return XReply::invalid_param(
            rate,
            "total_bytes",
            &obj.get("total_bytes")
                .map(Value::to_string)
                .unwrap_or_default(),
            "The `total_bytes` field must be a positive integer".into(),
        );
    }
    if total > category.max_bytes() {
        return XReply::invalid_param(
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
    let key = category.media_key(&media_id);
    let now = clock::now();
    let upload = Upload::new(
        UploadedMedia {
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
        HashSink::new(shared.cfg.media.keep_bytes_up_to),
        now.unix_timestamp(),
    );
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

pub(super) async fn append(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    OriginalUri(uri): OriginalUri,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let req = XRequest::new(parts.method, uri, parts.headers);
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
        return Err(XReply::invalid_param(
            rate,
            "id",
            id,
            format!("Media id [{id}] was not found"),
        ));
    };
    if upload.view.finalized {
        return Err(XReply::invalid_param(
            rate,
            "id",
            id,
            format!("Media id [{id}] has already been finalized"),
        ));
    }
    if upload.appending {
        return Err(XReply::invalid_param(
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
        expires_at: upload.expires_at(shared.cfg.x.media.expires_after_secs),
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
            Err(message) => return XReply::invalid_body(rate, message),
        };
    let index_text = fields.get("segment_index").cloned().unwrap_or_default();
    let index = match index_text.parse::<u32>() {
        Ok(i) if i <= MAX_SEGMENT_INDEX => i,
        _ => {
            return XReply::invalid_param(
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
        return XReply::invalid_param(
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

pub(super) async fn finalize(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let req = XRequest::new(method, uri, headers);
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
            return XReply::invalid_param(rate, "id", id, format!("Media id [{id}] was not found"));
        };
        if upload.appending {
            return XReply::invalid_param(
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
            return XReply::invalid_param(
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
        faults::processing_failure(shared)
    } else {
        None
    };
    let file = lock(&shared.media).store_upload(
        &name,
        &media_type,
        hashed,
        FileOrigin::XUpload {
            media_id: media_id.clone(),
        },
    );
    let mut x = lock(&shared.x);
    let Some(upload) = x.uploads.get_mut(id) else {
        return XReply::invalid_param(rate, "id", id, format!("Media id [{id}] was not found"));
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
