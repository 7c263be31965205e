//! `GET /2/media/upload?command=STATUS&media_id=…`: the processing of a finalized GIF or video,
//! `in_progress` until poll number `processing_polls`, then `succeeded` (or `failed` after a
//! `MediaProcessing` fault); early polls (before `check_after_secs`) are answered and counted.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use crate::events::SandboxEvent;
use crate::faults::FaultOp;
use crate::state::Shared;
use crate::sync::lock;
use crate::x::auth::Accept;
use crate::x::calls::{XRequest, admit_as, finish, is_x_id};
use crate::x::media_upload::answer::{media_data, processing_info};
use crate::x::problem::XReply;
use crate::x::records::{ProcessingState, XOp};

pub(super) async fn status(
    State(shared): State<Arc<Shared>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let req = XRequest::new(method, uri, headers);
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
        return XReply::invalid_param(
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
        return XReply::invalid_param(
            rate,
            "media_id",
            id,
            format!("Media id [{id}] was not found"),
        );
    };
    let Some(state) = upload.view.state else {
        return XReply::invalid_param(
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
