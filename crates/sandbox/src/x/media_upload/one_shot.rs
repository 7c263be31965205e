//! The one-shot `POST /2/media/upload` of an image (multipart or JSON, `dm_image` only; the
//! deprecated command-style `?command=…` answers 400), stored and ready at once.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{OriginalUri, Request, State};
use axum::http::StatusCode;
use axum::response::Response;

use crate::clock;
use crate::events::SandboxEvent;
use crate::faults::FaultOp;
use crate::media::files::{FileOrigin, HashSink};
use crate::media::stream::drain_body;
use crate::state::Shared;
use crate::sync::lock;
use crate::x::auth::Accept;
use crate::x::calls::{XRequest, admit_as, finish};
use crate::x::media_upload::answer::media_data;
use crate::x::media_upload::media_type::{extension, type_fits};
use crate::x::media_upload::segment::read_segment;
use crate::x::problem::XReply;
use crate::x::records::{MediaCategory, ProcessingState, UploadedMedia, XOp};
use crate::x::uploads::Upload;

pub(super) async fn one_shot(
    State(shared): State<Arc<Shared>>,
    OriginalUri(uri): OriginalUri,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let req = XRequest::new(parts.method, uri, parts.headers);
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
        return XReply::invalid_param(
            rate,
            "command",
            "",
            "The command-style media upload is deprecated: use /2/media/upload/initialize, /append and /finalize".into(),
        );
    }
    let mut sink = HashSink::new(shared.cfg.media.keep_bytes_up_to);
    let (fields, _) = match read_segment(&req.headers, body, &mut sink, limit, limit).await {
        Ok(read) => read,
        Err(message) => return XReply::invalid_body(rate, message),
    };
    let category_value = fields.get("media_category").cloned().unwrap_or_default();
    match MediaCategory::parse(&category_value) {
        Some(MediaCategory::DmImage) => {}
        Some(_) => {
            return XReply::invalid_param(
                rate,
                "media_category",
                &category_value,
                "The one-shot upload takes images only: upload GIFs and videos in chunks".into(),
            );
        }
        None => {
            return XReply::invalid_param(
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
        return XReply::invalid_param(
            rate,
            "media_type",
            &media_type,
            format!("The `media_type` [{media_type}] does not fit media_category dm_image"),
        );
    }
    let media_id = shared.snowflake.next();
    let hashed = sink.finish();
    let size = hashed.size;
    let file = lock(&shared.media).store_upload(
        &format!("{media_id}.{}", extension(&media_type)),
        &media_type,
        hashed,
        FileOrigin::XUpload {
            media_id: media_id.clone(),
        },
    );
    let now = clock::now();
    let upload = Upload::new(
        UploadedMedia {
            media_id: media_id.clone(),
            media_key: MediaCategory::DmImage.media_key(&media_id),
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
        HashSink::new(0),
        now.unix_timestamp(),
    );
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
