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
//!   body is read; without one, `TooLarge { size: None }` as soon as it passes `max_bytes`. The
//!   body is a stream of exactly the length returned (`body`); the file is named and typed by
//!   [`name_and_type`].
//!
//! Logs: media URLs are private-ish (TON), so only host and path, at DEBUG.

pub(crate) mod body;
mod name;

use http::{HeaderMap, Method, StatusCode, header};
use url::Url;
use xdm_core::ids::XUserId;
use xdm_core::inbound::InboundMedia;
use xdm_core::media::{MediaStream, essence};
use xdm_core::ports::XError;

pub use name::name_and_type;

use crate::auth::{UserAuth, no_credentials};
use crate::client::XClient;
use crate::error::{error_from_response, transport_error};
use crate::transport::read_prefix;

/// The most redirects one download follows.
pub const MAX_MEDIA_REDIRECTS: usize = 3;
/// The path prefix of X's private DM media (`https://ton.twitter.com/1.1/ton/data/dm/…`).
pub const TON_PATH_PREFIX: &str = "/1.1/ton/";

/// How much of an error answer is read for its message.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

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
        Some(size) => (size, body::announced(response, size)),
        None => body::spool(response, max_bytes).await?,
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
    match client
        .credentials()
        .after_rejection(business, &token)
        .await?
    {
        Some(fresh) => {
            tracing::info!(%business, "X refused the OAuth 2.0 access token for a media download; retrying once with a fresh one");
            Ok((fetch(client, Some(&fresh), &v2).await?, Some(v2)))
        }
        None => Ok((response, Some(v2))),
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
        let authorization = client
            .credentials()
            .authorization_header(auth, &Method::GET, url)?;
        request = request.header(header::AUTHORIZATION, authorization);
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

pub(crate) async fn download_error(mut response: reqwest::Response) -> XError {
    let status = response.status();
    let code = status.as_u16();
    match code {
        401 | 403 => XError::Forbidden(format!("HTTP {code} for the media file")),
        404 | 410 => XError::NotFound(format!("the media file (HTTP {code})")),
        _ => {
            let headers = response.headers().clone();
            let mut body = Vec::new();
            read_prefix(&mut response, ERROR_BODY_LIMIT, &mut body).await;
            error_from_response(status, &headers, &body)
        }
    }
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
}
