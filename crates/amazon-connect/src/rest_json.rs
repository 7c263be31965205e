//! One rest-json exchange with Amazon Connect over reqwest, shared by the calls this adapter makes
//! without the AWS SDK (the signed control plane, the participant API's send calls): send the
//! request, read the answer (bounded), decode a success or classify a failure with the one
//! classification of [`crate::errors`] (docs/protocols.md B0).

use std::time::Duration;

use serde::de::DeserializeOwned;
use xdm_core::metric_names::{self, PLATFORM_CONNECT};
use xdm_core::ports::ConnectError;

use crate::config::ConfigError;
use crate::errors::{Plane, classify, from_reqwest, parse_rest_json_error};

/// Largest response body read from Connect (its answers are a few hundred bytes).
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// The HTTP client of the hand-made calls: `timeout` for the whole request, no redirects (AWS
/// APIs do not redirect; a redirect would be a misconfigured endpoint).
pub(crate) fn http_client(timeout: Duration) -> Result<reqwest::Client, ConfigError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| ConfigError::HttpClient(e.to_string()))
}

/// A failed call: its classification, and the service's error code when it answered one.
#[derive(Debug)]
pub(crate) struct Failed {
    pub(crate) err: ConnectError,
    pub(crate) code: Option<String>,
}

impl From<ConnectError> for Failed {
    fn from(err: ConnectError) -> Self {
        Self { err, code: None }
    }
}

/// Sends `request` and decodes the answer: a 2xx body as `R` (an empty body as `{}`, for
/// operations whose response has no fields), anything else classified for `plane`.
pub(crate) async fn exchange<R: DeserializeOwned>(
    http: &reqwest::Client,
    plane: Plane,
    op: &'static str,
    request: reqwest::Request,
) -> Result<R, Failed> {
    tracing::debug!(op, url = %request.url(), "calling Amazon Connect");
    let response = http
        .execute(request)
        .await
        .map_err(|e| from_reqwest(op, &e))?;
    let status = response.status();
    if status.is_success() {
        let bytes = read_limited(response, op).await?;
        let body: &[u8] = if bytes.is_empty() { b"{}" } else { &bytes };
        return serde_json::from_slice::<R>(body).map_err(|e| {
            metric_names::platform_error(PLATFORM_CONNECT, "unexpected_answer");
            ConnectError::Unavailable(format!("{op}: unexpected response (HTTP {status}): {e}"))
                .into()
        });
    }

    let headers = response.headers().clone();
    let bytes = read_limited(response, op).await?;
    let info = parse_rest_json_error(&headers, &bytes);
    let err = classify(
        plane,
        op,
        Some(status.as_u16()),
        info.code.as_deref(),
        info.message.as_deref(),
    );
    tracing::debug!(
        op,
        status = status.as_u16(),
        code = info.code.as_deref().unwrap_or("-"),
        request_id = headers
            .get("x-amzn-requestid")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-"),
        "Amazon Connect call failed"
    );
    Err(Failed {
        err,
        code: info.code,
    })
}

async fn read_limited(mut response: reqwest::Response, op: &str) -> Result<Vec<u8>, ConnectError> {
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| from_reqwest(op, &e))? {
        if out.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(ConnectError::Unavailable(format!(
                "{op}: response larger than {MAX_RESPONSE_BYTES} bytes"
            )));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}
