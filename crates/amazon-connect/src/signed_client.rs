//! One hand-signed rest-json AWS service (the Connect control plane, Customer Profiles): its
//! endpoint, region and credentials, and the signed exchange every call of it makes.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use serde::Serialize;
use serde::de::DeserializeOwned;
use xdm_core::ports::ConnectError;

use crate::config::{ConfigError, validate_endpoint};
use crate::errors::Plane;
use crate::rest_json::{Failed, exchange, http_client};
use crate::signing::{CredentialsCache, sign_request};

/// A SigV4-signed rest-json client of one service. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct SignedClient {
    http: reqwest::Client,
    /// SigV4 signing name (`connect`, `profile`).
    service: &'static str,
    /// Endpoint without a trailing slash; operation paths are appended.
    endpoint: String,
    region: String,
    credentials: Arc<CredentialsCache>,
}

impl SignedClient {
    /// The client of `service` in the `SdkConfig`'s region, with its credentials provider; the
    /// endpoint is what `resolve` makes of the `SdkConfig` endpoint and the region, checked as
    /// the setting `endpoint_setting`.
    pub(crate) fn new(
        sdk: &SdkConfig,
        service: &'static str,
        endpoint_setting: &'static str,
        resolve: impl FnOnce(Option<&str>, &str) -> String,
        timeout: Duration,
    ) -> Result<Self, ConfigError> {
        let region = crate::endpoints::sdk_region(sdk)?;
        let endpoint = resolve(sdk.endpoint_url(), &region);
        validate_endpoint(endpoint_setting, &endpoint)?;
        let provider = sdk
            .credentials_provider()
            .ok_or(ConfigError::NoCredentials)?;
        Ok(Self {
            http: http_client(timeout)?,
            service,
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            region,
            credentials: Arc::new(CredentialsCache::new(provider)),
        })
    }

    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub(crate) fn region(&self) -> &str {
        &self.region
    }

    /// Sends `body` as JSON and decodes the answer; a failure as its [`ConnectError`].
    pub(crate) async fn call<B: Serialize, R: DeserializeOwned>(
        &self,
        op: &'static str,
        method: http::Method,
        path: &str,
        body: &B,
    ) -> Result<R, ConnectError> {
        let body = serde_json::to_vec(body)
            .map_err(|e| ConnectError::Invalid(format!("{op}: could not encode the body: {e}")))?;
        self.send(op, method, path, Some(body))
            .await
            .map_err(|failed| failed.err)
    }

    /// Signs and sends one call (`path` may carry a query string); `body: None` sends no body
    /// and no `Content-Type` (GET).
    pub(crate) async fn send<R: DeserializeOwned>(
        &self,
        op: &'static str,
        method: http::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<R, Failed> {
        let url = format!("{}{path}", self.endpoint);
        let mut builder = http::Request::builder().method(method).uri(&url);
        if body.is_some() {
            builder = builder.header(http::header::CONTENT_TYPE, "application/json");
        }
        let mut request = builder.body(body.unwrap_or_default()).map_err(|e| {
            ConnectError::Invalid(format!("{op}: could not build the request: {e}"))
        })?;

        let credentials = self
            .credentials
            .get()
            .await
            .map_err(|e| crate::errors::from_credentials(op, &e))?;
        sign_request(
            &mut request,
            credentials,
            &self.region,
            self.service,
            SystemTime::now(),
        )
        .map_err(|e| ConnectError::Invalid(format!("{op}: could not sign the request: {e}")))?;

        let request = reqwest::Request::try_from(request).map_err(|e| {
            ConnectError::Invalid(format!("{op}: could not build the request: {e}"))
        })?;
        exchange(&self.http, Plane::Control, op, request).await
    }
}
