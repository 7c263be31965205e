//! The HTTP plumbing every X client here shares: reqwest clients built alike (a connect timeout,
//! no redirects, the bridge's user agent), headers that carry a secret, URLs under the API base,
//! and answers read whole within a size limit (or, for an error's message, only their start).

use std::time::Duration;

use http::{HeaderMap, HeaderValue, StatusCode};
use url::Url;
use xdm_core::ports::XError;

use crate::error::error_from_response;

/// A reqwest client builder with `connect_timeout`, redirects off (a redirect would not carry a
/// valid OAuth signature, and must not carry the credentials elsewhere) and the bridge's user
/// agent; the caller adds its own request or read timeout.
pub(crate) fn client_builder(connect_timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("xdm-connect/", env!("CARGO_PKG_VERSION")))
}

/// A header value carrying a secret (`Authorization`), marked sensitive so that it stays out of
/// `Debug` output; `None` when it cannot be sent in a header.
pub(crate) fn secret_header(value: &str) -> Option<HeaderValue> {
    let mut value = HeaderValue::from_str(value).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// `path` under the API base `api_url` (no trailing slash); the message says why not.
pub(crate) fn api_endpoint(api_url: &str, path: &str) -> Result<Url, String> {
    Url::parse(&format!("{api_url}{path}"))
        .map_err(|e| format!("cannot build the URL of {path}: {e}"))
}

/// An answer read whole.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Answer {
    /// The answer when it is a success (2xx), else X's error classified for the core
    /// ([`error_from_response`]).
    pub(crate) fn success(self) -> Result<Self, XError> {
        if self.status.is_success() {
            Ok(self)
        } else {
            Err(error_from_response(self.status, &self.headers, &self.body))
        }
    }
}

/// Why an answer could not be read whole.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The connection failed or timed out while reading.
    Transport(reqwest::Error),
    /// The body is larger than the limit.
    TooLarge,
}

/// Reads the whole answer, refusing a body over `limit` bytes.
pub(crate) async fn read_answer(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Answer, ReadError> {
    let status = response.status();
    let headers = response.headers().clone();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Transport)? {
        if body.len() + chunk.len() > limit {
            return Err(ReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// Appends up to `limit` bytes of the body to `body` (an error answer, for its message): what
/// could be read when the body is longer or reading fails.
pub(crate) async fn read_prefix(
    response: &mut reqwest::Response,
    limit: usize,
    body: &mut Vec<u8>,
) {
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = limit - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == limit {
            break;
        }
    }
}
