//! `GET /2/chat/media/{conversation_id}/{media_hash_key}` (docs/xchat.md §4): the finalized
//! ciphertext of a conversation's media as `application/octet-stream`, for its participants only
//! (`A-B`, `A:B` or the peer's id; another user's conversation ⇒ 403, an unknown key ⇒ 404).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::faults::FaultOp;
use crate::state::Shared;
use crate::sync::lock;
use crate::x::auth::Accept;
use crate::x::calls::{XRequest, admit_as, finish, record_call};
use crate::x::chat::body;
use crate::x::chat::conversation;
use crate::x::problem::{XReply, rate_headed};
use crate::x::records::XOp;

/// `media_hash_key` pattern: `^[a-zA-Z0-9]{1,50}$`.
fn is_media_hash_key(key: &str) -> bool {
    (1..=50).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_alphanumeric())
}

pub(crate) async fn download(
    State(shared): State<Arc<Shared>>,
    Path((conversation_id, media_hash_key)): Path<(String, String)>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let req = XRequest::new(method, uri, headers);
    match blob(&shared, &req, &conversation_id, &media_hash_key).await {
        Ok((bytes, rate)) => {
            record_call(&shared, XOp::ChatMediaDownload, &req, 200, None);
            let len = bytes.len();
            let mut response = (StatusCode::OK, Body::from(bytes)).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            rate_headed(response, rate)
        }
        Err(reply) => finish(&shared, XOp::ChatMediaDownload, &req, reply),
    }
}

async fn blob(
    shared: &Shared,
    req: &XRequest,
    conversation_id: &str,
    media_hash_key: &str,
) -> Result<(Vec<u8>, crate::x::state::RateInfo), XReply> {
    let (principal, rate) = admit_as(
        shared,
        req,
        XOp::ChatMediaDownload,
        FaultOp::ChatMediaDownload,
        Accept::MEDIA_WRITE,
    )
    .await?;
    let me = principal.user_id().unwrap_or_default();
    let conv =
        conversation::resolve(me, conversation_id).map_err(|e| e.reply(rate, "conversation_id"))?;
    if !is_media_hash_key(media_hash_key) {
        return Err(XReply::invalid_param(
            rate,
            "media_hash_key",
            media_hash_key,
            format!(
                "The `media_hash_key` path parameter value [{media_hash_key}] does not match ^[a-zA-Z0-9]{{1,50}}$"
            ),
        ));
    }
    let x = lock(&shared.x);
    x.chat
        .media
        .iter()
        .find(|m| m.record.conversation_id == conv.id && m.record.media_hash_key == media_hash_key)
        .and_then(|m| m.blob.clone())
        .map(|bytes| (bytes, rate))
        .ok_or_else(|| {
            body::not_found(
                rate,
                format!(
                    "Could not find media {media_hash_key} in conversation {}.",
                    conv.id
                ),
            )
        })
}
