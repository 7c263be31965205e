//! [`XApi::download_media`](xdm_core::ports::XApi::download_media): the file of a DM's media,
//! as a stream of exactly known length (docs/protocols.md A6, docs/delivery.md, Inbound).
//!
//! * Only URLs the allow-list ([`MediaHosts`](crate::MediaHosts), `XDM_X_MEDIA_HOSTS`) accepts
//!   are fetched; any other is `MediaHostNotAllowed` without a request.
//! * TON URLs (path `/1.1/ton/…`, on whichever allowed host) are GET with an OAuth 1.0a
//!   `Authorization` as the business account (query parameters signed); twimg URLs without one.
//!   When the account acts with OAuth 2.0, a TON URL `…/1.1/ton/data/dm/{dm_id}/{media_id}/{res}`
//!   is fetched as `{api_url}/2/dm_conversations/media/{dm_id}/{media_id}/{res}` with its Bearer
//!   token instead (TON does not take OAuth 2.0; the API host is trusted as the API base), a 401
//!   there retried once with a fresh token; any other TON URL needs OAuth 1.0a.
//! * Redirects are followed by hand, at most [`MAX_MEDIA_REDIRECTS`], each target checked against
//!   the allow-list first (off-list ⇒ `MediaHostNotAllowed`, nothing fetched there) and signed
//!   afresh only when it is a TON URL itself: a signature never travels to another URL.
//! * 401/403 ⇒ `Forbidden`, 404/410 ⇒ `NotFound` (not retried); 5xx, timeouts, connection
//!   errors ⇒ `Unavailable`; others as [`error_from_response`].
//! * An announced `Content-Length` over `max_bytes` ⇒ `TooLarge { size: Some(n) }` before the
//!   body is read. Without one the body is spooled to an anonymous temporary file while counting
//!   (`TooLarge { size: None }` as soon as it passes `max_bytes`) and streamed back from the
//!   file, which the OS deletes when the stream is dropped. Either way the stream yields an
//!   `io::Error` if the body turns out shorter or longer than the length returned.
//!
//! Logs: media URLs are private-ish (TON), so only host and path, at DEBUG.

use std::io;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt, TryStreamExt};
use http::{HeaderMap, Method, StatusCode, header};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use url::Url;
use xdm_core::ids::XUserId;
use xdm_core::inbound::InboundMedia;
use xdm_core::media::{ByteStream, MediaStream, content_type_for, essence, extension_for};
use xdm_core::ports::XError;

use crate::auth::{BearerToken, UserAuth};
use crate::client::{XClient, error_from_response, no_credentials, transport_error};

/// The most redirects one download follows.
pub const MAX_MEDIA_REDIRECTS: usize = 3;
/// The path prefix of X's private DM media (`https://ton.twitter.com/1.1/ton/data/dm/…`).
pub const TON_PATH_PREFIX: &str = "/1.1/ton/";

/// How much of an error answer is read for its message.
const ERROR_BODY_LIMIT: usize = 64 * 1024;
/// Read size when streaming a spooled file back.
const SPOOL_READ_BYTES: usize = 64 * 1024;
/// Longest file name kept from a URL.
const MAX_FILE_NAME_CHARS: usize = 128;
/// Content types that say nothing about the file.
const GENERIC_TYPES: &[&str] = &[
    "application/octet-stream",
    "binary/octet-stream",
    "application/binary",
    "application/unknown",
    "application/x-download",
    "application/force-download",
];

/// Whether `url` is a TON URL (X's private DM media, fetched OAuth 1.0a-signed).
pub fn is_ton_url(url: &Url) -> bool {
    url.path().starts_with(TON_PATH_PREFIX)
}

pub(crate) async fn download(
    client: &XClient,
    business: &XUserId,
    media: &InboundMedia,
    max_bytes: u64,
) -> Result<MediaStream, XError> {
    let original = Url::parse(media.url.trim())
        .map_err(|_| XError::MediaHostNotAllowed("an address that is not a valid URL".into()))?;
    let mut url = original.clone();
    let mut redirects = 0;
    // Resolved at the first TON URL (twimg downloads need no credentials).
    let mut auth: Option<UserAuth> = None;
    let response = loop {
        if !client.media_hosts().allows(&url) {
            let origin = origin(&url);
            tracing::warn!(%origin, media_id = %media.media_id, "media not fetched: not an allowed X media host");
            return Err(XError::MediaHostNotAllowed(origin));
        }
        let response = if is_ton_url(&url) {
            let account = match &auth {
                Some(a) => a.clone(),
                None => {
                    let a = client.auth_for(business).await?;
                    auth = Some(a.clone());
                    a
                }
            };
            let (response, fetched) = fetch_ton(client, business, account, &url).await?;
            if let Some(fetched) = fetched {
                // A relative redirect of the API v2 endpoint resolves against it.
                url = fetched;
            }
            response
        } else {
            fetch(client, None, &url).await?
        };
        let status = response.status();
        if is_redirect(status) {
            if redirects == MAX_MEDIA_REDIRECTS {
                return Err(XError::Unavailable(format!(
                    "X redirected the media download more than {MAX_MEDIA_REDIRECTS} times"
                )));
            }
            redirects += 1;
            url = location(response.headers(), &url)?;
            tracing::debug!(
                status = status.as_u16(),
                host = url.host_str().unwrap_or_default(),
                path = url.path(),
                "media download redirected"
            );
            continue;
        }
        if !matches!(
            status,
            StatusCode::OK | StatusCode::NON_AUTHORITATIVE_INFORMATION
        ) {
            return Err(download_error(response).await);
        }
        break response;
    };

    let headers = response.headers();
    let announced = content_length(headers);
    let stated_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(essence);
    let (file_name, content_type) = name_and_type(
        &original,
        &media.media_id,
        stated_type.as_deref(),
        media.content_type.as_deref(),
    );
    let (length, body) = match announced {
        Some(size) if size > max_bytes => {
            tracing::info!(
                media_id = %media.media_id,
                size,
                limit = max_bytes,
                "media larger than allowed; not downloaded"
            );
            return Err(XError::TooLarge {
                size: Some(size),
                limit: max_bytes,
            });
        }
        Some(size) => (size, exact_length(response_stream(response), size)),
        None => spool(response, max_bytes).await?,
    };
    tracing::debug!(
        media_id = %media.media_id,
        %file_name,
        %content_type,
        length,
        spooled = announced.is_none(),
        "media download open"
    );
    Ok(MediaStream {
        file_name,
        content_type,
        length,
        body,
    })
}

/// The API v2 address of a TON DM media URL (`/1.1/ton/data/dm/{dm_id}/{media_id}/{res}` ⇒
/// `{api_url}/2/dm_conversations/media/{dm_id}/{media_id}/{res}`); `None` for other shapes.
pub fn v2_media_url(api_url: &str, ton: &Url) -> Option<Url> {
    let segments: Vec<&str> = ton.path_segments()?.collect();
    let [v, t, d, dm, dm_id, media_id, resource] = segments.as_slice() else {
        return None;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if [*v, *t, *d, *dm] != ["1.1", "ton", "data", "dm"]
        || !digits(dm_id)
        || !digits(media_id)
        || resource.is_empty()
        || resource.starts_with('.')
    {
        return None;
    }
    Url::parse(&format!(
        "{api_url}/2/dm_conversations/media/{dm_id}/{media_id}/{resource}"
    ))
    .ok()
}

/// A TON URL as `account`: OAuth 1.0a-signed, or the API v2 media endpoint with OAuth 2.0
/// (then also the URL fetched instead).
async fn fetch_ton(
    client: &XClient,
    business: &XUserId,
    account: UserAuth,
    url: &Url,
) -> Result<(reqwest::Response, Option<Url>), XError> {
    let UserAuth::OAuth2(token) = account else {
        return Ok((fetch(client, Some(&account), url).await?, None));
    };
    let Some(v2) = v2_media_url(client.api_url(), url) else {
        // Not a DM media URL the v2 endpoint serves: only OAuth 1.0a can fetch it.
        let token = client
            .oauth1_token(business)
            .ok_or_else(|| no_credentials(business))?;
        let response = fetch(client, Some(&UserAuth::OAuth1(token.clone())), url).await?;
        return Ok((response, None));
    };
    let response = fetch(client, Some(&UserAuth::OAuth2(token.clone())), &v2).await?;
    if response.status() != StatusCode::UNAUTHORIZED {
        return Ok((response, Some(v2)));
    }
    let Some(source) = client.user_tokens() else {
        return Ok((response, Some(v2)));
    };
    match source
        .token_rejected(business, token.expose_secret())
        .await?
    {
        Some(fresh) if fresh != token.expose_secret() => {
            tracing::info!(%business, "X refused the OAuth 2.0 access token for a media download; retrying once with a fresh one");
            let fresh = UserAuth::OAuth2(BearerToken::new(fresh));
            Ok((fetch(client, Some(&fresh), &v2).await?, Some(v2)))
        }
        _ => Ok((response, Some(v2))),
    }
}

/// One GET, with an `Authorization` as `auth` when given.
async fn fetch(
    client: &XClient,
    auth: Option<&UserAuth>,
    url: &Url,
) -> Result<reqwest::Response, XError> {
    let mut request = client.media_http_client().get(url.clone());
    if let Some(auth) = auth {
        let authorization = client.authorization_for(auth, &Method::GET, url)?;
        let mut value = http::HeaderValue::from_str(&authorization).map_err(|_| {
            XError::Unauthorized("the X credentials cannot be sent in a header".into())
        })?;
        value.set_sensitive(true);
        request = request.header(header::AUTHORIZATION, value);
    }
    tracing::debug!(
        host = url.host_str().unwrap_or_default(),
        path = url.path(),
        auth = auth.map(UserAuth::scheme),
        "downloading media"
    );
    request.send().await.map_err(transport_error)
}

fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// The redirect target, resolved against the URL that answered.
fn location(headers: &HeaderMap, base: &Url) -> Result<Url, XError> {
    let target = headers
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| {
            XError::Unavailable("X redirected the media download without a Location".into())
        })?;
    base.join(target.trim()).map_err(|_| {
        XError::Unavailable("X redirected the media download to an unreadable Location".into())
    })
}

/// What a refused URL is called in errors: its host (and port), with the scheme when it is
/// not https.
fn origin(url: &Url) -> String {
    let host = url.host_str().unwrap_or("(no host)");
    let host = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    match url.scheme() {
        "https" => host,
        scheme => format!("{scheme}://{host}"),
    }
}

async fn download_error(response: reqwest::Response) -> XError {
    let status = response.status();
    let code = status.as_u16();
    match code {
        401 | 403 => XError::Forbidden(format!("HTTP {code} for the media file")),
        404 | 410 => XError::NotFound(format!("the media file (HTTP {code})")),
        _ => {
            let headers = response.headers().clone();
            let body = read_bounded(response, ERROR_BODY_LIMIT).await;
            error_from_response(status, &headers, &body)
        }
    }
}

/// Up to `limit` bytes of a body; whatever could be read when it fails.
async fn read_bounded(mut response: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = limit - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == limit {
            break;
        }
    }
    body
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The file name (the URL's last path segment, made safe, with an extension from the type
/// when it has none) and the content type (the answer's when it is specific, else the
/// payload's, else from the name's extension).
pub fn name_and_type(
    url: &Url,
    media_id: &str,
    answered_type: Option<&str>,
    payload_type: Option<&str>,
) -> (String, String) {
    let segment = url
        .path_segments()
        .and_then(|mut s| s.rfind(|s| !s.is_empty()))
        .unwrap_or_default();
    let decoded = percent_encoding::percent_decode_str(segment).decode_utf8_lossy();
    let mut name = safe_file_name(&decoded);
    if name.is_empty() {
        name = safe_file_name(&format!("x-media-{media_id}"));
    }
    let content_type = [answered_type, payload_type]
        .into_iter()
        .flatten()
        .map(essence)
        .find(|t| is_specific(t))
        .or_else(|| content_type_for(&name).map(str::to_owned))
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    if !has_extension(&name)
        && let Some(ext) = extension_for(&content_type)
    {
        name = format!("{name}.{ext}");
    }
    (name, content_type)
}

/// ASCII letters, digits, `-`, `_` and inner dots; anything else becomes `_`.
fn safe_file_name(raw: &str) -> String {
    let cleaned: String = raw
        .chars()
        .take(MAX_FILE_NAME_CHARS)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let cleaned = cleaned.trim_matches('.');
    if cleaned.chars().all(|c| c == '_' || c == '.') {
        String::new()
    } else {
        cleaned.to_owned()
    }
}

fn has_extension(name: &str) -> bool {
    name.rsplit_once('.').is_some_and(|(stem, ext)| {
        !stem.is_empty()
            && (1..=5).contains(&ext.len())
            && ext.chars().all(|c| c.is_ascii_alphanumeric())
    })
}

/// A `type/subtype` that says what the file is (not `application/octet-stream` and the like).
fn is_specific(content_type: &str) -> bool {
    content_type
        .split_once('/')
        .is_some_and(|(t, s)| !t.is_empty() && !s.is_empty())
        && !GENERIC_TYPES.contains(&content_type)
}

fn io_error(e: reqwest::Error) -> io::Error {
    let kind = if e.is_timeout() {
        io::ErrorKind::TimedOut
    } else {
        io::ErrorKind::Other
    };
    io::Error::new(kind, e.without_url())
}

fn response_stream(response: reqwest::Response) -> impl Stream<Item = io::Result<Bytes>> + Send {
    response.bytes_stream().map_err(io_error)
}

/// Passes `inner` through, ending with an error if it yields fewer or more than `expected`
/// bytes (a truncated transfer must never pass for a whole file).
fn exact_length<S>(inner: S, expected: u64) -> ByteStream
where
    S: Stream<Item = io::Result<Bytes>> + Send + 'static,
{
    let inner = Box::pin(inner);
    Box::pin(futures_util::stream::unfold(
        Some((inner, 0_u64)),
        move |state| async move {
            let (mut inner, seen) = state?;
            match inner.next().await {
                Some(Ok(chunk)) => {
                    let seen = seen + chunk.len() as u64;
                    if seen > expected {
                        let e = io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("the media file is longer than the {expected} bytes announced"),
                        );
                        return Some((Err(e), None));
                    }
                    Some((Ok(chunk), Some((inner, seen))))
                }
                Some(Err(e)) => Some((Err(e), None)),
                None if seen < expected => {
                    let e = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("the media transfer was cut after {seen} of {expected} bytes"),
                    );
                    Some((Err(e), None))
                }
                None => None,
            }
        },
    ))
}

/// Copies a body of unknown length to an anonymous temporary file (deleted by the OS when
/// closed), counting; returns its length and a stream reading it back.
async fn spool(response: reqwest::Response, max_bytes: u64) -> Result<(u64, ByteStream), XError> {
    let spool_error = |e: io::Error| {
        XError::Unavailable(format!("cannot spool the media to a temporary file: {e}"))
    };
    let file = tokio::task::spawn_blocking(tempfile::tempfile)
        .await
        .map_err(|e| spool_error(io::Error::other(e)))?
        .map_err(spool_error)?;
    let mut file = tokio::fs::File::from_std(file);
    let mut body = response.bytes_stream();
    let mut total: u64 = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(transport_error)?;
        total += chunk.len() as u64;
        if total > max_bytes {
            tracing::info!(
                limit = max_bytes,
                "media without a Content-Length passed the size limit; download stopped"
            );
            return Err(XError::TooLarge {
                size: None,
                limit: max_bytes,
            });
        }
        file.write_all(&chunk).await.map_err(spool_error)?;
    }
    file.flush().await.map_err(spool_error)?;
    file.rewind().await.map_err(spool_error)?;
    Ok((total, exact_length(file_stream(file), total)))
}

fn file_stream(file: tokio::fs::File) -> impl Stream<Item = io::Result<Bytes>> + Send {
    futures_util::stream::try_unfold(file, |mut file| async move {
        let mut buf = BytesMut::with_capacity(SPOOL_READ_BYTES);
        let n = file.read_buf(&mut buf).await?;
        Ok((n > 0).then(|| (buf.freeze(), file)))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn ton_urls_are_recognised_by_path() {
        assert!(is_ton_url(&url(
            "https://ton.twitter.com/1.1/ton/data/dm/1547580822294646788/1547580751654203394/T7xt1pvd.jpg"
        )));
        assert!(is_ton_url(&url(
            "http://127.0.0.1:4566/1.1/ton/data/dm/1/2/x.jpg"
        )));
        assert!(!is_ton_url(&url("https://pbs.twimg.com/dm_gif/1/x.mp4")));
        assert!(!is_ton_url(&url("https://ton.twitter.com/1.1/tonic/x")));
    }

    #[test]
    fn names_and_types() {
        let ton = url(
            "https://ton.twitter.com/1.1/ton/data/dm/1547580822294646788/1547580751654203394/T7xt1pvd.jpg",
        );
        assert_eq!(
            name_and_type(&ton, "1547580751654203394", Some("image/jpeg"), None),
            ("T7xt1pvd.jpg".into(), "image/jpeg".into())
        );
        // A generic answer type: the name decides.
        assert_eq!(
            name_and_type(&ton, "1", Some("application/octet-stream"), None),
            ("T7xt1pvd.jpg".into(), "image/jpeg".into())
        );
        let video = url(
            "https://video.twimg.com/dm_video/762671519986319360/vid/180x320/Jf8WOAmvNe69JAJ1Kxb18tBTagTN5BbvZjIFBJHQRKE.mp4?tag=1",
        );
        assert_eq!(
            name_and_type(&video, "1", None, Some("video/mp4")),
            (
                "Jf8WOAmvNe69JAJ1Kxb18tBTagTN5BbvZjIFBJHQRKE.mp4".into(),
                "video/mp4".into()
            )
        );
        // The answer's specific type wins, parameters dropped, lower case.
        assert_eq!(
            name_and_type(
                &video,
                "1",
                Some("Video/MP4; codecs=avc1"),
                Some("image/gif")
            )
            .1,
            "video/mp4"
        );
        // No extension: one from the type.
        assert_eq!(
            name_and_type(
                &url("https://pbs.twimg.com/media/AbC123"),
                "1",
                Some("image/png"),
                None
            ),
            ("AbC123.png".into(), "image/png".into())
        );
        assert_eq!(
            name_and_type(&url("https://pbs.twimg.com/media/AbC123"), "1", None, None),
            ("AbC123".into(), "application/octet-stream".into())
        );
        // No usable segment: named after the media id; odd characters replaced.
        assert_eq!(
            name_and_type(
                &url("https://pbs.twimg.com/"),
                "762712152901836804",
                None,
                Some("video/mp4")
            ),
            ("x-media-762712152901836804.mp4".into(), "video/mp4".into())
        );
        assert_eq!(
            name_and_type(
                &url("https://pbs.twimg.com/a/..%2F..%2Fetc%2Fpasswd%20x.jpg"),
                "1",
                None,
                None
            ),
            ("_.._etc_passwd_x.jpg".into(), "image/jpeg".into())
        );
    }

    #[test]
    fn refused_origins_name_the_host() {
        assert_eq!(origin(&url("https://evil.example/x")), "evil.example");
        assert_eq!(
            origin(&url("https://evil.example:8443/x")),
            "evil.example:8443"
        );
        assert_eq!(
            origin(&url("http://pbs.twimg.com/x")),
            "http://pbs.twimg.com"
        );
    }

    async fn collect(stream: ByteStream) -> Result<Vec<u8>, io::Error> {
        stream
            .try_fold(Vec::new(), |mut all, chunk| async move {
                all.extend_from_slice(&chunk);
                Ok(all)
            })
            .await
    }

    fn pieces(parts: &[&'static [u8]]) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
        futures_util::stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
    }

    #[tokio::test]
    async fn exact_length_catches_short_and_long_bodies() {
        assert_eq!(
            collect(exact_length(pieces(&[b"abc", b"de"]), 5))
                .await
                .unwrap(),
            b"abcde"
        );
        let short = collect(exact_length(pieces(&[b"abc"]), 5))
            .await
            .unwrap_err();
        assert_eq!(short.kind(), io::ErrorKind::UnexpectedEof);
        let long = collect(exact_length(pieces(&[b"abc", b"def"]), 5))
            .await
            .unwrap_err();
        assert_eq!(long.kind(), io::ErrorKind::InvalidData);
    }
}
