//! DM media through the fake: downloads (allow-list, TON signatures, redirects, size limits,
//! spooling, truncation) and media upload v2 (segments, finalize, STATUS polling, memory).

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

// ---------------------------------------------------------------- allow-list

#[tokio::test]
async fn off_list_urls_are_refused_without_any_request() {
    let server = Server::routed(vec![(
        "/",
        route(|_| bytes_answer("image/jpeg", vec![1, 2, 3])),
    )])
    .await;
    let port = server.addr.port();
    // The default list (X's hosts only), and lists that name the host but not this way.
    let cases = [
        (
            "ton.twitter.com,pbs.twimg.com,video.twimg.com".to_owned(),
            format!("http://127.0.0.1:{port}/x.jpg"),
            format!("http://127.0.0.1:{port}"),
        ),
        // https-only entry: plain http refused.
        (
            format!("127.0.0.1:{port}"),
            format!("http://127.0.0.1:{port}/x.jpg"),
            format!("http://127.0.0.1:{port}"),
        ),
        // Another port of the same host.
        (
            format!("http://127.0.0.1:{}", port.wrapping_add(1)),
            format!("http://127.0.0.1:{port}/x.jpg"),
            format!("http://127.0.0.1:{port}"),
        ),
        (
            host_entry(&server),
            "https://evil.example/1.1/ton/data/dm/1/2/x.jpg".to_owned(),
            "evil.example".to_owned(),
        ),
        (
            host_entry(&server),
            "not a url".to_owned(),
            "an address that is not a valid URL".to_owned(),
        ),
    ];
    for (hosts, url, refused) in cases {
        let client = media_client(&server.url(), &hosts);
        let e = client
            .download_media(&uid(BUSINESS), &photo(&url), 20 * MB)
            .await
            .unwrap_err();
        assert_eq!(e, XError::MediaHostNotAllowed(refused), "{hosts} / {url}");
        assert!(!e.is_retryable());
    }
    assert!(server.requests().is_empty(), "no request may be made");
}

// ---------------------------------------------------------------- downloads

#[tokio::test]
async fn a_ton_photo_is_fetched_signed_and_a_twimg_video_unsigned() {
    let image = pattern_bytes(7, 48_213);
    let video = pattern_bytes(11, 150_001);
    let video_answer = video.clone();
    let server = Server::routed(vec![
        ("/1.1/ton/", ton_route(other_token(), image.clone())),
        (
            "/dm_video/",
            route(move |_| bytes_answer("video/mp4", video_answer.clone())),
        ),
    ])
    .await;
    let client = media_client(DEFAULT_API_URL, &host_entry(&server));

    // The photo, as the business account whose token is not the default one; a query on the
    // URL must be signed too.
    let url = format!("{}{TON_PATH}?format=jpg&name=large", server.url());
    let file = client
        .download_media(&uid(OTHER_BUSINESS), &photo(&url), 20 * MB)
        .await
        .unwrap();
    assert_eq!(file.file_name, "T7xt1pvd.jpg");
    assert_eq!(file.content_type, "image/jpeg");
    assert_eq!(file.length, image.len() as u64);
    assert_eq!(collect(file).await.unwrap(), image);
    let ton = server.only_request();
    assert_eq!(ton.method, Method::GET);
    assert_eq!(ton.target, format!("{TON_PATH}?format=jpg&name=large"));
    ton.assert_signed_by(&other_token());

    // The same photo signed with another account's token is refused by TON.
    let e = client
        .download_media(&uid(BUSINESS), &photo(&url), 20 * MB)
        .await
        .unwrap_err();
    assert!(matches!(e, XError::Forbidden(_)), "{e:?}");
    assert!(!e.is_retryable());

    // The video: no Authorization at all; the payload's type is kept.
    let url = format!("{}{VIDEO_PATH}", server.url());
    let file = client
        .download_media(
            &uid(BUSINESS),
            &inbound(MediaKind::Video, &url, Some("video/mp4")),
            20 * MB,
        )
        .await
        .unwrap();
    assert_eq!(
        file.file_name,
        "Jf8WOAmvNe69JAJ1Kxb18tBTagTN5BbvZjIFBJHQRKE.mp4"
    );
    assert_eq!(file.content_type, "video/mp4");
    assert_eq!(collect(file).await.unwrap(), video);
    let requests = server.requests();
    let twimg = requests.last().unwrap();
    assert_eq!(twimg.target, VIDEO_PATH);
    assert!(!twimg.headers.contains_key("authorization"));
}

#[tokio::test]
async fn redirects_are_followed_only_within_the_allowed_hosts() {
    let foreign = Server::routed(vec![(
        "/",
        route(|_| bytes_answer("image/jpeg", vec![9; 10])),
    )])
    .await;
    let cdn_video = pattern_bytes(3, 70_000);
    let cdn_answer = cdn_video.clone();
    let cdn = Server::routed(vec![(
        "/dm_video/",
        route(move |_| bytes_answer("video/mp4", cdn_answer.clone())),
    )])
    .await;
    let image = pattern_bytes(5, 1_000);
    let (cdn_url, foreign_url) = (cdn.url(), foreign.url());
    let server = Server::routed(vec![
        ("/1.1/ton/", ton_route(default_token(), image.clone())),
        // TON photo moved to another TON path (signed again there).
        ("/moved/ton", route(|_| redirect(301, TON_PATH))),
        // A chain: here → here → the CDN (another allowed host).
        ("/hop1", route(|_| redirect(302, "/hop2?x=1"))),
        (
            "/hop2",
            route(move |_| redirect(307, &format!("{cdn_url}{VIDEO_PATH}"))),
        ),
        (
            "/away",
            route(move |_| redirect(302, &format!("{foreign_url}/steal.jpg"))),
        ),
        ("/loop", route(|_| redirect(302, "/loop"))),
        ("/nowhere", route(|_| status_only(302))),
    ])
    .await;
    let client = media_client(
        DEFAULT_API_URL,
        &format!("{},{}", host_entry(&server), host_entry(&cdn)),
    );
    let get = |path: &str| {
        let client = client.clone();
        let url = format!("{}{path}", server.url());
        async move {
            client
                .download_media(&uid(BUSINESS), &photo(&url), 20 * MB)
                .await
        }
    };

    let file = get("/moved/ton").await.unwrap();
    assert_eq!(collect(file).await.unwrap(), image);
    let seen = server.requests();
    assert_eq!(seen.len(), 2);
    assert!(
        !seen[0].headers.contains_key("authorization"),
        "not a TON path"
    );
    seen[1].assert_signed_by(&default_token());

    let file = get("/hop1").await.unwrap();
    // Named after the URL of the payload; typed by the final answer.
    assert_eq!(file.file_name, "hop1.mp4");
    assert_eq!(file.content_type, "video/mp4");
    assert_eq!(collect(file).await.unwrap(), cdn_video);
    let cdn_seen = cdn.only_request();
    assert_eq!(cdn_seen.target, VIDEO_PATH);
    assert!(!cdn_seen.headers.contains_key("authorization"));

    let e = get("/away").await.unwrap_err();
    assert_eq!(
        e,
        XError::MediaHostNotAllowed(format!("http://{}", foreign.addr))
    );
    assert!(
        foreign.requests().is_empty(),
        "nothing fetched off the list"
    );

    let before = server.requests().len();
    let e = get("/loop").await.unwrap_err();
    assert!(
        matches!(&e, XError::Unavailable(m) if m.contains("more than 3")),
        "{e:?}"
    );
    assert_eq!(server.requests().len() - before, 1 + MAX_MEDIA_REDIRECTS);

    let e = get("/nowhere").await.unwrap_err();
    assert!(matches!(e, XError::Unavailable(_)), "{e:?}");
}

#[tokio::test]
async fn an_announced_size_over_the_limit_is_refused_before_the_body() {
    let server = Server::routed(vec![(
        "/big.mp4",
        // 50 MB announced; one piece sent, then nothing ever again: reading the body would hang.
        route(|_| announced_answer(50_000_000, vec![0; 1024], true)),
    )])
    .await;
    let client = media_client(DEFAULT_API_URL, &host_entry(&server));
    let media = inbound(
        MediaKind::Video,
        &format!("{}/big.mp4", server.url()),
        Some("video/mp4"),
    );
    let e = tokio::time::timeout(
        Duration::from_secs(10),
        client.download_media(&uid(BUSINESS), &media, 20 * MB),
    )
    .await
    .expect("refused without waiting for the body")
    .unwrap_err();
    assert_eq!(
        e,
        XError::TooLarge {
            size: Some(50_000_000),
            limit: 20 * MB
        }
    );
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn a_body_without_length_is_spooled_and_counted() {
    let clip = pattern_bytes(1, 300_123);
    let pieces: Vec<Vec<u8>> = clip.chunks(7_777).map(<[u8]>::to_vec).collect();
    let big: Vec<Vec<u8>> = (0..40).map(|i| pattern_bytes(i * 65_536, 65_536)).collect();
    let server = Server::routed(vec![
        (
            "/dm_gif/clip.mp4",
            route(move |_| chunked_answer("application/octet-stream", pieces.clone())),
        ),
        (
            "/dm_gif/big",
            route(move |_| chunked_answer("video/mp4", big.clone())),
        ),
    ])
    .await;
    let client = media_client(DEFAULT_API_URL, &host_entry(&server));

    let media = inbound(
        MediaKind::AnimatedGif,
        &format!("{}/dm_gif/clip.mp4", server.url()),
        Some("video/mp4"),
    );
    let spools_before = open_spool_files();
    let file = client
        .download_media(&uid(BUSINESS), &media, 20 * MB)
        .await
        .unwrap();
    assert!(server.requests()[0].headers.get("authorization").is_none());
    assert_eq!(file.length, clip.len() as u64, "exact length");
    assert_eq!(file.file_name, "clip.mp4");
    // The answer's type is generic: the payload's is used.
    assert_eq!(file.content_type, "video/mp4");
    if let Some(before) = spools_before {
        assert_eq!(
            open_spool_files(),
            Some(before + 1),
            "an unnamed temporary file"
        );
    }
    assert_eq!(collect(file).await.unwrap(), clip);
    // The stream is dropped: its file is closed, and being unnamed, gone.
    if let Some(before) = spools_before {
        let deadline = Instant::now() + Duration::from_secs(5);
        while open_spool_files() != Some(before) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(open_spool_files(), Some(before));
    }

    // 2.5 MB without Content-Length, limit 1 MB: stopped while counting.
    let media = inbound(
        MediaKind::AnimatedGif,
        &format!("{}/dm_gif/big", server.url()),
        None,
    );
    let e = client
        .download_media(&uid(BUSINESS), &media, MB)
        .await
        .unwrap_err();
    assert_eq!(
        e,
        XError::TooLarge {
            size: None,
            limit: MB
        }
    );
}

#[tokio::test]
async fn a_truncated_transfer_is_an_error_in_the_stream() {
    let server = Server::routed(vec![(
        "/cut.mp4",
        route(|_| announced_answer(100_000, vec![1; 40_000], false)),
    )])
    .await;
    let client = media_client(DEFAULT_API_URL, &host_entry(&server));
    let media = inbound(MediaKind::Video, &format!("{}/cut.mp4", server.url()), None);
    let file = client
        .download_media(&uid(BUSINESS), &media, 20 * MB)
        .await
        .unwrap();
    assert_eq!(file.length, 100_000);
    assert!(collect(file).await.is_err(), "a short body must not pass");
}

#[tokio::test]
async fn download_errors_are_classified() {
    let server = Server::routed(vec![
        ("/403", route(|_| status_only(403))),
        ("/404", route(|_| status_only(404))),
        ("/410", route(|_| status_only(410))),
        ("/503", route(|_| status_only(503))),
        (
            "/429",
            route(|_| {
                let mut r = status_only(429);
                r.headers_mut()
                    .insert("x-rate-limit-reset", HeaderValue::from_static("1775080934"));
                r
            }),
        ),
    ])
    .await;
    let client = media_client(DEFAULT_API_URL, &host_entry(&server));
    let get = |path: &str| {
        let client = client.clone();
        let url = format!("{}{path}", server.url());
        async move {
            client
                .download_media(&uid(BUSINESS), &photo(&url), 20 * MB)
                .await
                .unwrap_err()
        }
    };
    assert!(matches!(get("/403").await, XError::Forbidden(_)));
    assert!(matches!(get("/404").await, XError::NotFound(_)));
    assert!(matches!(get("/410").await, XError::NotFound(_)));
    let e = get("/503").await;
    assert!(
        matches!(e, XError::Unavailable(_)) && e.is_retryable(),
        "{e:?}"
    );
    assert_eq!(
        get("/429").await,
        XError::RateLimited {
            reset_at_s: Some(1_775_080_934)
        }
    );

    // No answer within the read timeout.
    let mut slow = answer(200, "late");
    slow.delay = Duration::from_secs(5);
    let slow = Server::start(slow).await;
    let client = media_client_with(DEFAULT_API_URL, &host_entry(&slow), |c| {
        c.with_media_timeouts(Duration::from_millis(300), Duration::from_secs(60))
    });
    let e = client
        .download_media(
            &uid(BUSINESS),
            &photo(&format!("{}/x.jpg", slow.url())),
            20 * MB,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, XError::Unavailable(m) if m.contains("in time")),
        "{e:?}"
    );
}

// ---------------------------------------------------------------- uploads

/// One part of a `multipart/form-data` body.
struct FormPart<'a> {
    name: String,
    file_name: Option<String>,
    data: &'a [u8],
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn quoted(headers: &str, key: &str) -> Option<String> {
    let at = headers.find(&format!("{key}=\""))? + key.len() + 2;
    let len = headers[at..].find('"')?;
    Some(headers[at..at + len].to_owned())
}

/// A strict little RFC 7578 reader: the fake's own, independent of the client's library.
fn multipart_parts<'a>(content_type: &str, body: &'a [u8]) -> Result<Vec<FormPart<'a>>, String> {
    let boundary = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .ok_or("no boundary")?
        .trim_matches('"');
    let delimiter = format!("\r\n--{boundary}");
    let mut rest = body
        .strip_prefix(format!("--{boundary}").as_bytes())
        .ok_or("the body does not start with the boundary")?;
    let mut parts = Vec::new();
    while !rest.starts_with(b"--") {
        rest = rest
            .strip_prefix(b"\r\n")
            .ok_or("no CRLF after a boundary")?;
        let head_end = find(rest, b"\r\n\r\n").ok_or("no end of part headers")?;
        let head = std::str::from_utf8(&rest[..head_end]).map_err(|e| e.to_string())?;
        let disposition = head
            .lines()
            .find(|l| {
                l.to_ascii_lowercase()
                    .starts_with("content-disposition: form-data")
            })
            .ok_or("a part without form-data disposition")?;
        let after = &rest[head_end + 4..];
        let end = find(after, delimiter.as_bytes()).ok_or("no closing boundary")?;
        parts.push(FormPart {
            name: quoted(disposition, "name").ok_or("a part without a name")?,
            file_name: quoted(disposition, "filename"),
            data: &after[..end],
        });
        rest = &after[end + delimiter.len()..];
    }
    Ok(parts)
}

/// How the fake X media upload behaves, and what it saw.
struct UploadFake {
    /// `processing_info` of the finalize answer (`None`: ready at once).
    finalize_info: Option<Value>,
    /// Successive STATUS `processing_info`s (the last one repeats).
    status_infos: Vec<Value>,
    /// Keep the bytes (else only check them against [`pattern`]).
    keep: bool,
    append_status: u16,
    state: Mutex<UploadState>,
}

#[derive(Default)]
struct UploadState {
    initialize: Option<Value>,
    /// (segment_index, size, file name of the `media` part).
    segments: Vec<(u64, usize, Option<String>)>,
    data: Vec<u8>,
    received: u64,
    /// The first segment whose bytes were not the pattern's at their offset.
    bad_content: Option<u64>,
    finalized_at: Option<Instant>,
    polls: Vec<Instant>,
    errors: Vec<String>,
}

impl UploadFake {
    fn new(finalize_info: Option<Value>, status_infos: Vec<Value>) -> Arc<Self> {
        Arc::new(Self {
            finalize_info,
            status_infos,
            keep: true,
            append_status: 200,
            state: Mutex::default(),
        })
    }

    fn respond(&self, seen: &Seen) -> Response {
        let json_answer = |status: u16, v: Value| {
            let mut r = (StatusCode::from_u16(status).unwrap(), v.to_string()).into_response();
            r.headers_mut()
                .insert("content-type", HeaderValue::from_static("application/json"));
            r
        };
        let mut state = self.state.lock().unwrap();
        if !seen.signed_by(&default_token()) {
            state
                .errors
                .push(format!("unsigned {} {}", seen.method, seen.target));
            return json_answer(401, json!({"title": "Unauthorized", "status": 401}));
        }
        let path = seen.target.split('?').next().unwrap_or_default();
        match (seen.method.as_str(), path) {
            ("POST", "/2/media/upload/initialize") => {
                state.initialize = Some(seen.json());
                json_answer(
                    200,
                    json!({"data": {"id": MEDIA_ID, "media_key": format!("13_{MEDIA_ID}"), "expires_after_secs": 1_295_999}}),
                )
            }
            ("POST", p) if p == format!("/2/media/upload/{MEDIA_ID}/append") => {
                if self.append_status != 200 {
                    return json_answer(
                        self.append_status,
                        json!({"title": "Service Unavailable"}),
                    );
                }
                let content_type = seen.headers["content-type"].to_str().unwrap_or_default();
                let parts = match multipart_parts(content_type, &seen.body) {
                    Ok(parts) => parts
                        .into_iter()
                        .map(|p| (p.name, p.file_name, p.data.to_vec()))
                        .collect::<Vec<_>>(),
                    Err(e) => {
                        state.errors.push(e);
                        return json_answer(400, json!({"title": "Invalid Request"}));
                    }
                };
                let names: Vec<&str> = parts.iter().map(|p| p.0.as_str()).collect();
                if names != ["segment_index", "media"] {
                    state.errors.push(format!("parts {names:?}"));
                }
                let index: u64 = std::str::from_utf8(&parts[0].2).unwrap().parse().unwrap();
                let data = &parts[1].2;
                if !self.keep
                    && state.bad_content.is_none()
                    && *data != pattern_bytes(state.received, data.len())
                {
                    state.bad_content = Some(index);
                }
                if self.keep {
                    state.data.extend_from_slice(data);
                }
                state.received += data.len() as u64;
                state.segments.push((index, data.len(), parts[1].1.clone()));
                json_answer(200, json!({"data": {"expires_at": 1_775_080_934}}))
            }
            ("POST", p) if p == format!("/2/media/upload/{MEDIA_ID}/finalize") => {
                state.finalized_at = Some(Instant::now());
                let mut data = json!({"id": MEDIA_ID, "media_key": format!("13_{MEDIA_ID}"), "size": state.received, "expires_after_secs": 86_400});
                if let Some(info) = &self.finalize_info {
                    data["processing_info"] = info.clone();
                }
                json_answer(200, json!({"data": data}))
            }
            ("GET", "/2/media/upload") => {
                if seen.target != format!("/2/media/upload?command=STATUS&media_id={MEDIA_ID}") {
                    state.errors.push(format!("STATUS target {}", seen.target));
                }
                state.polls.push(Instant::now());
                let n = state.polls.len() - 1;
                let info = self.status_infos[n.min(self.status_infos.len() - 1)].clone();
                json_answer(
                    200,
                    json!({"data": {"id": MEDIA_ID, "media_key": format!("13_{MEDIA_ID}"), "processing_info": info}}),
                )
            }
            _ => {
                state
                    .errors
                    .push(format!("unexpected {} {}", seen.method, seen.target));
                json_answer(404, json!({"title": "Not Found"}))
            }
        }
    }
}

async fn upload_server(fake: &Arc<UploadFake>) -> Server {
    let fake = fake.clone();
    Server::routed(vec![(
        "/2/media/upload",
        route(move |seen| fake.respond(seen)),
    )])
    .await
}

fn file(name: &str, content_type: &str, length: u64, body: ByteStream) -> MediaStream {
    MediaStream {
        file_name: name.into(),
        content_type: content_type.into(),
        length,
        body,
    }
}

#[tokio::test]
async fn a_9_mb_video_goes_up_in_ordered_segments_and_waits_for_processing() {
    let fake = UploadFake::new(
        Some(json!({"state": "pending", "check_after_secs": 1})),
        vec![
            json!({"state": "in_progress", "check_after_secs": 1, "progress_percent": 40}),
            json!({"state": "succeeded", "progress_percent": 100}),
        ],
    );
    let server = upload_server(&fake).await;
    let length = 9 * MB + 12_345;
    // The source stream comes in odd-sized pieces, unrelated to the chunk size.
    let body = pattern_stream(length, 100_003);
    let id = server
        .client()
        .upload_media(
            &uid(BUSINESS),
            XMediaCategory::DmVideo,
            file("clip.mp4", "video/mp4", length, body),
        )
        .await
        .unwrap();
    assert_eq!(id, MEDIA_ID);

    let state = fake.state.lock().unwrap();
    assert!(state.errors.is_empty(), "{:?}", state.errors);
    assert_eq!(
        state.initialize,
        Some(
            json!({"media_type": "video/mp4", "total_bytes": length, "media_category": "dm_video"})
        )
    );
    let chunk = MEDIA_CHUNK_BYTES;
    let expected: Vec<(u64, usize, Option<String>)> = (0..10)
        .map(|i| {
            (
                i,
                if i < 9 { chunk } else { 12_345 },
                Some("media".to_owned()),
            )
        })
        .collect();
    assert_eq!(state.segments, expected);
    assert_eq!(
        state.data,
        pattern_bytes(0, length as usize),
        "concatenation = file"
    );

    // finalize once, then STATUS twice, each after check_after_secs.
    let finalized = state.finalized_at.unwrap();
    assert_eq!(state.polls.len(), 2);
    assert!(state.polls[0] - finalized >= Duration::from_millis(950));
    assert!(state.polls[1] - state.polls[0] >= Duration::from_millis(950));

    let requests = server.requests();
    let order: Vec<String> = requests
        .iter()
        .map(|r| format!("{} {}", r.method, r.target.replace(MEDIA_ID, "ID")))
        .collect();
    let mut want = vec!["POST /2/media/upload/initialize".to_owned()];
    want.extend((0..10).map(|_| "POST /2/media/upload/ID/append".to_owned()));
    want.push("POST /2/media/upload/ID/finalize".to_owned());
    want.extend((0..2).map(|_| "GET /2/media/upload?command=STATUS&media_id=ID".to_owned()));
    assert_eq!(order, want);
    for r in &requests {
        r.assert_signed_by(&default_token());
    }
    assert!(
        requests[1].headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("multipart/form-data; boundary=")
    );
}

#[tokio::test]
async fn an_image_ready_at_finalize_needs_no_status() {
    let fake = UploadFake::new(None, vec![]);
    let server = upload_server(&fake).await;
    let id = server
        .client()
        .upload_media(
            &uid(BUSINESS),
            XMediaCategory::DmImage,
            file(
                "receipt.png",
                "image/png",
                5_000,
                pattern_stream(5_000, 4_096),
            ),
        )
        .await
        .unwrap();
    assert_eq!(id, MEDIA_ID);
    let state = fake.state.lock().unwrap();
    assert!(state.errors.is_empty(), "{:?}", state.errors);
    assert_eq!(
        state.initialize,
        Some(
            json!({"media_type": "image/png", "total_bytes": 5_000, "media_category": "dm_image"})
        )
    );
    assert_eq!(state.segments.len(), 1);
    assert!(state.polls.is_empty());
}

#[tokio::test]
async fn processing_that_fails_is_invalid() {
    let fake = UploadFake::new(
        Some(json!({"state": "in_progress", "check_after_secs": 0})),
        vec![json!({"state": "failed", "progress_percent": 0,
            "error": {"code": 1, "name": "InvalidMedia", "message": "Unsupported video format"}})],
    );
    let server = upload_server(&fake).await;
    let e = server
        .client()
        .upload_media(
            &uid(BUSINESS),
            XMediaCategory::DmGif,
            file("a.gif", "image/gif", 2_000, pattern_stream(2_000, 512)),
        )
        .await
        .unwrap_err();
    assert_eq!(
        e,
        XError::Invalid("X could not process the file: Unsupported video format".into())
    );
    assert_eq!(fake.state.lock().unwrap().polls.len(), 1);
}

#[tokio::test]
async fn processing_that_never_ends_gives_up() {
    let fake = UploadFake::new(
        Some(json!({"state": "pending", "check_after_secs": 0})),
        vec![json!({"state": "in_progress", "check_after_secs": 0})],
    );
    let server = upload_server(&fake).await;
    let client = media_client_with(&server.url(), "ton.twitter.com", |c| {
        c.with_media_processing_limit(Duration::from_secs(1))
    });
    let e = client
        .upload_media(
            &uid(BUSINESS),
            XMediaCategory::DmVideo,
            file("v.mp4", "video/mp4", 10, pattern_stream(10, 10)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, XError::Unavailable(m) if m.contains("still processing")),
        "{e:?}"
    );
    // Polled, but not in a hot loop (at least 250 ms apart).
    let polls = fake.state.lock().unwrap().polls.len();
    assert!((1..=5).contains(&polls), "{polls} polls");
}

#[tokio::test]
async fn upload_errors_are_classified() {
    // X refuses a segment: its classification, and no finalize.
    let fake = Arc::new(UploadFake {
        finalize_info: None,
        status_infos: vec![],
        keep: true,
        append_status: 503,
        state: Mutex::default(),
    });
    let server = upload_server(&fake).await;
    let e = server
        .client()
        .upload_media(
            &uid(BUSINESS),
            XMediaCategory::DmImage,
            file("a.jpg", "image/jpeg", 10, pattern_stream(10, 10)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, XError::Unavailable(m) if m.contains("503")),
        "{e:?}"
    );
    assert!(fake.state.lock().unwrap().finalized_at.is_none());

    // The source stream fails halfway (the download side): Unavailable, no finalize.
    let fake = UploadFake::new(None, vec![]);
    let server = upload_server(&fake).await;
    let failing: ByteStream = Box::pin(pattern_stream(MB + 10, 65_536).take(20).chain(
        futures_util::stream::iter([Err(io::Error::other("connection reset by Connect"))]),
    ));
    let e = server
        .client()
        .upload_media(
            &uid(BUSINESS),
            XMediaCategory::DmVideo,
            file("v.mp4", "video/mp4", 3 * MB, failing),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, XError::Unavailable(m) if m.contains("connection reset by Connect")),
        "{e:?}"
    );
    {
        let state = fake.state.lock().unwrap();
        assert_eq!(state.segments.len(), 1, "the full first chunk was sent");
        assert!(state.finalized_at.is_none());
    }

    // A stream shorter than announced: Unavailable, no finalize.
    let fake = UploadFake::new(None, vec![]);
    let server = upload_server(&fake).await;
    let e = server
        .client()
        .upload_media(
            &uid(BUSINESS),
            XMediaCategory::DmImage,
            file("a.jpg", "image/jpeg", 1_000, pattern_stream(900, 100)),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, XError::Unavailable(_)), "{e:?}");
    assert!(fake.state.lock().unwrap().finalized_at.is_none());

    // initialize refused by X; and a file over the category's limit never reaches X.
    let server = Server::start(answer(
        400,
        r#"{"title":"Invalid Request","detail":"One or more parameters to your request was invalid.","type":"https://api.x.com/2/problems/invalid-request"}"#,
    ))
    .await;
    let e = server
        .client()
        .upload_media(
            &uid(BUSINESS),
            XMediaCategory::DmImage,
            file("a.jpg", "image/jpeg", 10, pattern_stream(10, 10)),
        )
        .await
        .unwrap_err();
    assert_eq!(
        e,
        XError::Invalid("One or more parameters to your request was invalid.".into())
    );
    let before = server.requests().len();
    let e = server
        .client()
        .upload_media(
            &uid(BUSINESS),
            XMediaCategory::DmImage,
            file(
                "big.jpg",
                "image/jpeg",
                6 * MB,
                pattern_stream(6 * MB, 65_536),
            ),
        )
        .await
        .unwrap_err();
    assert_eq!(
        e,
        XError::TooLarge {
            size: Some(6 * MB),
            limit: 5 * MB
        }
    );
    assert_eq!(server.requests().len(), before);
}

// ---------------------------------------------------------------- memory

const MEMORY_CHILD: &str = "XDM_X_TEST_MEMORY_CHILD";
const MEMORY_MARKER: &str = "upload memory:";

/// Resident set size in bytes (`VmRSS`: the `resident` field of /proc/self/statm, but in kB,
/// so independent of the page size).
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Runs [`upload_memory_child`] alone in a fresh process of this test binary, so that no other
/// test's allocations blur the measurement.
#[test]
fn uploading_64_mb_keeps_memory_flat() {
    if rss_bytes().is_none() {
        eprintln!("no /proc/self/status: memory test skipped");
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "media::upload_memory_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(MEMORY_CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(
        stderr.contains(MEMORY_MARKER),
        "the child did not measure:\n{stdout}\n{stderr}"
    );
}

#[tokio::test]
async fn upload_memory_child() {
    if std::env::var_os(MEMORY_CHILD).is_none() {
        return; // run by `uploading_64_mb_keeps_memory_flat` in its own process
    }
    let fake = Arc::new(UploadFake {
        finalize_info: None,
        status_infos: vec![],
        keep: false,
        append_status: 200,
        state: Mutex::default(),
    });
    let server = upload_server(&fake).await;
    let client = server.client();
    let upload = |length: u64| {
        let client = client.clone();
        async move {
            client
                .upload_media(
                    &uid(BUSINESS),
                    XMediaCategory::DmVideo,
                    file(
                        "big.mp4",
                        "video/mp4",
                        length,
                        pattern_stream(length, 64 * 1024),
                    ),
                )
                .await
        }
    };
    // Warm up: connection pool, allocator arenas, buffers of every size the upload uses.
    upload(4 * MB).await.unwrap();
    fake.state.lock().unwrap().received = 0;

    let baseline = rss_bytes().unwrap();
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(baseline));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if let Some(rss) = rss_bytes() {
                    peak.fetch_max(rss, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let length = 64 * MB;
    let id = upload(length).await.unwrap();
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let after = rss_bytes().unwrap();
    let peak = peak.load(Ordering::Relaxed).max(after);
    assert_eq!(id, MEDIA_ID);

    let state = fake.state.lock().unwrap();
    assert!(state.errors.is_empty(), "{:?}", state.errors);
    assert_eq!(state.received, length);
    assert_eq!(
        state.bad_content, None,
        "segments arrived in order and intact"
    );
    assert_eq!(state.segments.len() as u64, 4 + length / MB);

    let growth = peak.saturating_sub(baseline);
    eprintln!(
        "{MEMORY_MARKER} baseline {} KiB, peak {} KiB, after {} KiB, growth {} KiB",
        baseline / 1024,
        peak / 1024,
        after / 1024,
        growth / 1024
    );
    assert!(
        growth <= 16 * MB,
        "uploading 64 MB grew the RSS by {} KiB",
        growth / 1024
    );
}
