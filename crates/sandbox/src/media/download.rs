//! Downloads of DM media (docs/protocols.md A6): TON photo URLs need an OAuth 1.0a signature (verified
//! like every X route, base URL = the URL without query); twimg-style video, GIF and preview paths
//! and other registered URLs are public. Every GET is recorded, refused ones included.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::clock;
use crate::events::SandboxEvent;
use crate::faults::FaultOp;
use crate::media::files::StoredFile;
use crate::media::registry::{MediaRequestKind, MediaRequestRecord, MediaRoute};
use crate::media::stream::file_response;
use crate::state::Shared;
use crate::x::api::{XRequest, admit, finish, record_call};
use crate::x::dm_media::{TON_PREFIX, segment};
use crate::x::problem::XReply;
use crate::x::records::XOp;
use crate::x::state::RateInfo;

/// Path prefixes of the public (twimg-style) media URLs.
pub(crate) const PUBLIC_PREFIXES: &[&str] = &[
    "/dm_video/",
    "/dm_gif/",
    "/dm_video_preview/",
    "/dm_gif_preview/",
];

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/1.1/ton/data/dm/{dm_id}/{media_id}/{resource}", get(ton))
}

/// Whether the fallback should hand a request to [`public`].
pub(crate) fn is_media_request(shared: &Shared, method: &Method, path: &str) -> bool {
    (method == Method::GET || method == Method::HEAD)
        && (shared.media_route(path).is_some()
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
    shared.record_media_request(MediaRequestRecord {
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

fn rate_headed(mut response: Response, rate: RateInfo) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-rate-limit-limit", i64::from(rate.limit)),
        ("x-rate-limit-remaining", i64::from(rate.remaining)),
        ("x-rate-limit-reset", rate.reset),
    ] {
        headers.insert(name, HeaderValue::from(value));
    }
    response
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
            shared.register_media_path(
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
    let req = XRequest {
        method,
        uri,
        headers,
        body: Bytes::new(),
    };
    ton_reply(&shared, req).await
}

async fn ton_reply(shared: &Shared, req: XRequest) -> Response {
    let path = req.uri.path().to_owned();
    let route = shared.media_route(&path);
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
    let found = route.and_then(|r| shared.file(&r.file_id).map(|f| (r, f)));
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
        let req = XRequest {
            method,
            uri,
            headers,
            body: Bytes::new(),
        };
        return ton_reply(&shared, req).await;
    }
    let route = shared.media_route(&path);
    let kind = route.as_ref().map_or(MediaRequestKind::Public, |r| r.kind);
    let file_id = route.as_ref().map(|r| r.file_id.clone());
    if let Some(injected) = shared.gate(FaultOp::MediaDownload).await {
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
    let found = route.and_then(|r| shared.file(&r.file_id).map(|f| (r, f)));
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
