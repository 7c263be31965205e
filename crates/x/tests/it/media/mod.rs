//! DM media through the fake: downloads (allow-list, TON signatures, redirects, size limits,
//! spooling, truncation) in `download`, media upload v2 (segments, finalize, STATUS polling,
//! memory) in `upload`; the helpers both use are here.

mod download;
mod upload;

use std::io;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::body::Body;
use futures_util::{StreamExt, TryStreamExt};
use serde_json::{Value, json};
use xdm_core::inbound::{InboundMedia, MediaKind};
use xdm_core::media::{ByteStream, MediaStream, XMediaCategory};
use xdm_x::{DEFAULT_API_URL, MAX_MEDIA_REDIRECTS, MEDIA_CHUNK_BYTES, MediaHosts};

use super::*;

const MB: u64 = 1024 * 1024;
const TON_PATH: &str = "/1.1/ton/data/dm/1547580822294646788/1547580751654203394/T7xt1pvd.jpg";
const VIDEO_PATH: &str =
    "/dm_video/762671519986319360/vid/180x320/Jf8WOAmvNe69JAJ1Kxb18tBTagTN5BbvZjIFBJHQRKE.mp4";
const MEDIA_ID: &str = "1880028106020515840";

// ---------------------------------------------------------------- helpers

fn media_client(api: &str, hosts: &str) -> XClient {
    media_client_with(api, hosts, |c| c)
}

fn media_client_with(
    api: &str,
    hosts: &str,
    tune: impl FnOnce(XClientConfig) -> XClientConfig,
) -> XClient {
    let config = XClientConfig::oauth1(api, consumer(), default_token())
        .unwrap()
        .with_account_token(uid(OTHER_BUSINESS), other_token())
        .unwrap()
        .with_media_hosts(MediaHosts::parse(hosts).unwrap());
    XClient::new(tune(config)).unwrap()
}

fn inbound(kind: MediaKind, url: &str, content_type: Option<&str>) -> InboundMedia {
    InboundMedia {
        kind,
        media_id: "1547580751654203394".into(),
        url: url.into(),
        content_type: content_type.map(str::to_owned),
        sealed: None,
    }
}

fn photo(url: &str) -> InboundMedia {
    inbound(MediaKind::Photo, url, None)
}

/// A byte that depends on its offset, so misplaced or reordered segments show.
fn pattern(i: u64) -> u8 {
    (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 57) as u8 ^ (i as u8)
}

fn pattern_bytes(from: u64, len: usize) -> Vec<u8> {
    (from..from + len as u64).map(pattern).collect()
}

/// `len` pattern bytes, generated lazily in `piece`-sized pieces (never held whole).
fn pattern_stream(len: u64, piece: usize) -> ByteStream {
    Box::pin(futures_util::stream::unfold(0_u64, move |at| async move {
        (at < len).then(|| {
            let n = piece.min((len - at) as usize);
            (Ok(Bytes::from(pattern_bytes(at, n))), at + n as u64)
        })
    }))
}

async fn collect(file: MediaStream) -> io::Result<Vec<u8>> {
    file.body
        .try_fold(Vec::new(), |mut all, piece| async move {
            all.extend_from_slice(&piece);
            Ok(all)
        })
        .await
}

fn bytes_answer(content_type: &str, body: Vec<u8>) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut()
        .insert("content-type", HeaderValue::from_str(content_type).unwrap());
    r
}

/// A streamed body without Content-Length (chunked transfer encoding).
fn chunked_answer(content_type: &str, pieces: Vec<Vec<u8>>) -> Response {
    let stream = futures_util::stream::iter(
        pieces
            .into_iter()
            .map(|p| Ok::<_, io::Error>(Bytes::from(p))),
    );
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut()
        .insert("content-type", HeaderValue::from_str(content_type).unwrap());
    r
}

/// Announces `announced` bytes and sends `first`; then either never sends anything more
/// (`then_hang`) or, after a pause (so that what was sent is flushed), ends the body short.
fn announced_answer(announced: u64, first: Vec<u8>, then_hang: bool) -> Response {
    let head = futures_util::stream::iter([Ok::<_, io::Error>(Bytes::from(first))]);
    let body = if then_hang {
        Body::from_stream(head.chain(futures_util::stream::pending()))
    } else {
        let pause = futures_util::stream::once(async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            Ok::<_, io::Error>(Bytes::new())
        });
        Body::from_stream(head.chain(pause))
    };
    let mut r = Response::new(body);
    let headers = r.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("video/mp4"));
    headers.insert("content-length", HeaderValue::from(announced));
    r
}

fn redirect(status: u16, location: &str) -> Response {
    let mut r = StatusCode::from_u16(status).unwrap().into_response();
    r.headers_mut()
        .insert("location", HeaderValue::from_str(location).unwrap());
    r
}

fn status_only(status: u16) -> Response {
    StatusCode::from_u16(status).unwrap().into_response()
}

fn route(f: impl Fn(&Seen) -> Response + Send + Sync + 'static) -> Responder {
    Arc::new(f)
}

/// TON as X runs it: 401 unless signed by the token of the business account.
fn ton_route(token: AccessToken, image: Vec<u8>) -> Responder {
    route(move |seen| {
        if seen.signed_by(&token) {
            bytes_answer("image/jpeg", image.clone())
        } else {
            status_only(401)
        }
    })
}

fn host_entry(server: &Server) -> String {
    format!("http://{}", server.addr)
}

/// Files open in this process that live in the temporary directory without a name (what a
/// spool is); `None` without /proc.
fn open_spool_files() -> Option<usize> {
    let temp = std::env::temp_dir();
    let temp = temp.to_string_lossy();
    let count = std::fs::read_dir("/proc/self/fd")
        .ok()?
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter(|target| {
            let target = target.to_string_lossy();
            target.starts_with(temp.as_ref()) && target.ends_with(" (deleted)")
        })
        .count();
    Some(count)
}
