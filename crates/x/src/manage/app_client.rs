//! [`AppClient`]: the X client of the app bearer token (`XDM_X_BEARER_TOKEN`) — its HTTP clients
//! (one with a total timeout for the management calls, one without for the activity stream), its
//! URLs and one management request read back whole.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, header};
use serde_json::Value;
use url::Url;

use super::error::{ManageError, ManageReason, accepted};
use crate::auth::BearerToken;
use crate::config::{XConfigError, normalise_api_url};
use crate::error::transport_error;
use crate::transport::{ReadError, api_endpoint, client_builder, read_answer, secret_header};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const TIMEOUT: Duration = Duration::from_secs(30);
/// Management answers are small JSON documents.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// The X client of the app bearer token. Cheap to clone.
#[derive(Clone)]
pub struct AppClient {
    http: reqwest::Client,
    /// Without a total timeout: the activity stream stays open for hours.
    pub(crate) stream_http: reqwest::Client,
    api_url: Arc<str>,
    bearer: Arc<BearerToken>,
}

impl fmt::Debug for AppClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppClient")
            .field("api_url", &self.api_url)
            .finish_non_exhaustive()
    }
}

impl AppClient {
    /// `api_url` as for [`crate::XClientConfig`]; `bearer` is the app's bearer token.
    pub fn new(api_url: &str, bearer: &str) -> Result<Self, XConfigError> {
        let api_url = normalise_api_url(api_url)?;
        if bearer.trim().is_empty() {
            return Err(XConfigError::Empty("XDM_X_BEARER_TOKEN"));
        }
        let build = |timeout: Option<Duration>| {
            let mut b = client_builder(CONNECT_TIMEOUT);
            if let Some(t) = timeout {
                b = b.timeout(t);
            }
            b.build()
                .map_err(|e| XConfigError::HttpClient(e.to_string()))
        };
        Ok(Self {
            http: build(Some(TIMEOUT))?,
            stream_http: build(None)?,
            api_url: api_url.into(),
            bearer: Arc::new(BearerToken::new(bearer.trim())),
        })
    }

    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    pub(crate) fn endpoint(&self, path: &str) -> Result<Url, ManageError> {
        api_endpoint(&self.api_url, path).map_err(|message| ManageError::new(None, message))
    }

    pub(crate) fn bearer_header(&self) -> Result<http::HeaderValue, ManageError> {
        secret_header(&format!("Bearer {}", self.bearer.expose_secret())).ok_or_else(|| {
            ManageError::new(
                ManageReason::NotAuthorized,
                "the bearer token cannot be sent in a header",
            )
        })
    }

    /// Sends one request with an optional JSON body and reads the whole (bounded) answer: its
    /// body when it is a success, else the error it is ([`accepted`]).
    pub(super) async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Vec<u8>, ManageError> {
        let mut request = self
            .http
            .request(method.clone(), url.clone())
            .header(header::AUTHORIZATION, self.bearer_header()?);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| ManageError::from(transport_error(e)))?;
        let answer = read_answer(response, MAX_ANSWER_BYTES)
            .await
            .map_err(|e| match e {
                ReadError::Transport(e) => ManageError::from(transport_error(e)),
                ReadError::TooLarge => ManageError::new(
                    ManageReason::Unavailable,
                    format!("X's answer to {method} {} is too large", url.path()),
                ),
            })?;
        tracing::debug!(%method, path = url.path(), status = answer.status.as_u16(), "X answered");
        accepted(answer)
    }
}
