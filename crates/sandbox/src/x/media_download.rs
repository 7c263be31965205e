//! Downloads of DM media (docs/protocols.md A6): TON photo URLs need an OAuth 1.0a signature (verified
//! like every X route, base URL = the URL without query); twimg-style video, GIF and preview paths
//! and other registered URLs are public; the API v2 download
//! (`/2/dm_conversations/media/…`) needs an OAuth 2.0 user with `dm.read`. Every GET of a media URL
//! is recorded, refused ones included.

use std::sync::Arc;

use axum::Router;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::clock;
use crate::events::SandboxEvent;
use crate::faults::{self, FaultOp};
use crate::media::files::StoredFile;
use crate::media::registry::{MediaRequestKind, MediaRequestRecord, MediaRoute};
use crate::media::stream::file_response;
use crate::state::Shared;
use crate::sync::lock;
use crate::x::auth::Accept;
use crate::x::calls::{XRequest, admit, admit_as, finish, record_call};
use crate::x::dm_media::{TON_PREFIX, segment};
use crate::x::problem::{self, XReply, rate_headed};
use crate::x::records::XOp;

/// Path prefixes of the public (twimg-style) media URLs.
pub(crate) const PUBLIC_PREFIXES: &[&str] = &[
    "/dm_video/",
    "/dm_gif/",
    "/dm_video_preview/",
    "/dm_gif_preview/",
];

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/1.1/ton/data/dm/{dm_id}/{media_id}/{resource}", get(ton))
        .route(
            "/2/dm_conversations/media/{dm_id}/{media_id}/{resource_id}",
            get(download_media),
        )
}

/// Whether the fallback should hand a request to [`public`].
pub(crate) fn is_media_request(shared: &Shared, method: &Method, path: &str) -> bool {
    (method == Method::GET || method == Method::HEAD)
        && (lock(&shared.media).route(path).is_some()
            || PUBLIC_PREFIXES.iter().any(|p| path.starts_with(p)))
}

fn host(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

struct Outcome {
    kind: MediaRequestKind,
    status: u16,
    file_id: Option<String>,
    rejection: Option<String>,
}

fn record(shared: &Shared, method: &Method, path: &str, headers: &HeaderMap, outcome: Outcome) {
    shared.events.emit(SandboxEvent::MediaDownload {
        kind: outcome.kind,
        path: path.to_owned(),
        status: outcome.status,
        file_id: outcome.file_id.clone(),
    });
    lock(&shared.media).record_request(MediaRequestRecord {
        kind: outcome.kind,
        method: method.to_string(),
        path: path.to_owned(),
        host: host(headers),
        status: outcome.status,
        file_id: outcome.file_id,
        rejection: outcome.rejection,
        at: clock::now_iso_ms(),
    });
}

/// The file, or a redirect to where its serve options send it.
fn serve(shared: &Shared, route: &MediaRoute, file: &StoredFile) -> Response {
    if route.kind != MediaRequestKind::Redirected
        && let Some(target) = &file.info.serve.redirect_to
    {
        return redirect(shared, target, file);
    }
    file_response(file, None)
}

fn redirect(shared: &Shared, target: &str, file: &StoredFile) -> Response {
    let location = target.trim_end_matches('/').to_owned();
    let location = format!(
        "{location}/{}/{}",
        file.info.file_id,
        segment(&file.info.name)
    );
    if let Ok(url) = url::Url::parse(&location) {
        let port = shared
            .base_url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse::<u16>().ok());
        if url.port_or_known_default() == port {
            lock(&shared.media).register_path(
                url.path(),
                &file.info.file_id,
                MediaRequestKind::Redirected,
            );
        }
    }
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// `GET /1.1/ton/data/dm/{dm_id}/{media_id}/{resource}`.
async fn ton(
    State(shared): State<Arc<Shared>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    ton_reply(&shared, XRequest::new(method, uri, headers)).await
}

async fn ton_reply(shared: &Shared, req: XRequest) -> Response {
    let path = req.uri.path().to_owned();
    let route = lock(&shared.media).route(&path);
    let file_id = route.as_ref().map(|r| r.file_id.clone());
    let rate = match admit(shared, &req, XOp::TonDownload, FaultOp::TonDownload, false).await {
        Ok((_, rate)) => rate,
        Err(reply) => {
            let outcome = Outcome {
                kind: MediaRequestKind::Ton,
                status: reply.status.as_u16(),
                file_id,
                rejection: reply.rejection.clone(),
            };
            record(shared, &req.method, &path, &req.headers, outcome);
            return finish(shared, XOp::TonDownload, &req, reply);
        }
    };
    let found = route.and_then(|r| lock(&shared.media).get(&r.file_id).cloned().map(|f| (r, f)));
    let Some((route, file)) = found else {
        let reply = XReply::new(
            StatusCode::NOT_FOUND,
            json!({"errors": [{"code": 34, "message": "Sorry, that page does not exist."}]}),
            rate,
        )
        .rejected("no media at this path");
        let outcome = Outcome {
            kind: MediaRequestKind::Ton,
            status: 404,
            file_id: None,
            rejection: reply.rejection.clone(),
        };
        record(shared, &req.method, &path, &req.headers, outcome);
        return finish(shared, XOp::TonDownload, &req, reply);
    };
    let response = rate_headed(serve(shared, &route, &file), rate);
    let status = response.status().as_u16();
    record_call(shared, XOp::TonDownload, &req, status, None);
    let outcome = Outcome {
        kind: MediaRequestKind::Ton,
        status,
        file_id: Some(file.info.file_id.clone()),
        rejection: None,
    };
    record(shared, &req.method, &path, &req.headers, outcome);
    response
}

/// Public media paths (and any other registered media URL): no authentication.
pub(crate) async fn public(
    shared: Arc<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let path = uri.path().to_owned();
    if path.starts_with(TON_PREFIX) {
        return ton_reply(&shared, XRequest::new(method, uri, headers)).await;
    }
    let route = lock(&shared.media).route(&path);
    let kind = route.as_ref().map_or(MediaRequestKind::Public, |r| r.kind);
    let file_id = route.as_ref().map(|r| r.file_id.clone());
    if let Some(injected) = faults::gate(&shared, FaultOp::MediaDownload).await {
        let status = injected.status();
        let message = injected
            .fault
            .message
            .clone()
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("Error").to_owned());
        let outcome = Outcome {
            kind,
            status: status.as_u16(),
            file_id,
            rejection: Some(injected.rejection().into()),
        };
        record(&shared, &method, &path, &headers, outcome);
        return (status, message).into_response();
    }
    let found = route.and_then(|r| lock(&shared.media).get(&r.file_id).cloned().map(|f| (r, f)));
    let Some((route, file)) = found else {
        let outcome = Outcome {
            kind,
            status: 404,
            file_id: None,
            rejection: Some("no media at this path".into()),
        };
        record(&shared, &method, &path, &headers, outcome);
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    };
    let response = serve(&shared, &route, &file);
    let outcome = Outcome {
        kind,
        status: response.status().as_u16(),
        file_id: Some(file.info.file_id.clone()),
        rejection: None,
    };
    record(&shared, &method, &path, &headers, outcome);
    response
}

/// `GET /2/dm_conversations/media/{dm_id}/{media_id}/{resource_id}` (OAuth 2.0 user with
/// `dm.read`, a participant of the DM): the bytes the TON URL serves, as
/// `application/octet-stream`.
pub(crate) async fn download_media(
    State(shared): State<Arc<Shared>>,
    Path((dm_id, media_id, _resource)): Path<(String, String, String)>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let req = XRequest::new(method, uri, headers);
    let (principal, rate) = match admit_as(
        &shared,
        &req,
        XOp::DmMediaDownload,
        FaultOp::DmMediaDownload,
        Accept::OAUTH2_DM_READ,
    )
    .await
    {
        Ok(admitted) => admitted,
        Err(reply) => return finish(&shared, XOp::DmMediaDownload, &req, reply),
    };
    let me = principal.user_id().unwrap_or_default().to_owned();
    let file_id = lock(&shared.x)
        .dm_history
        .iter()
        .find(|dm| dm.dm_event_id == dm_id && (dm.sender_id == me || dm.recipient_id == me))
        .and_then(|dm| dm.media.as_ref())
        .filter(|m| m.media_id == media_id)
        .map(|m| m.file_id.clone());
    let file = file_id.and_then(|id| lock(&shared.media).get(&id).cloned());
    let Some(file) = file else {
        let reply = XReply::new(
            StatusCode::NOT_FOUND,
            json!({
                "title": "Not Found Error",
                "type": problem::RESOURCE_NOT_FOUND,
                "status": 404,
                "detail": format!("Could not find media {media_id} of DM {dm_id}."),
            }),
            rate,
        )
        .rejected("no such DM media for this user");
        return finish(&shared, XOp::DmMediaDownload, &req, reply);
    };
    record_call(&shared, XOp::DmMediaDownload, &req, 200, None);
    let mut response = file_response(&file, None);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    rate_headed(response, rate)
}
