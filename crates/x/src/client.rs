//! [`XClient`]: the REST client of the calls the bridge makes to X as a business account — the
//! HTTP clients, the URLs, and one request sent with the account's credentials and read back
//! whole.
//!
//! * One `reqwest::Client` for the REST calls, built once (connect timeout 5 s, whole request
//!   20 s, no redirects: a redirect would not carry a valid OAuth signature, and must not carry the
//!   header elsewhere), and one for media downloads (connect timeout 5 s, a read timeout instead of
//!   a total one since a 20 MB file may take a while, no automatic redirects:
//!   [`crate::media_download`] follows them itself, within the allowed media hosts).
//! * Every call is made as the business account it acts for ([`crate::auth`]: OAuth 2.0 when the
//!   token source has a token for it, else OAuth 1.0a).
//! * A 401 to an OAuth 2.0 call is reported to the source ([`UserTokenSource::token_rejected`])
//!   and the call is sent once more with the token it gives back; bodies are rebuilt for that
//!   (JSON, forms and media segments are all held in memory).
//! * Answers are read whole, at most 1 MiB; errors are classified for the core by
//!   [`crate::error`].
//!
//! The calls themselves are in the files of their concern: [`crate::dm_send`],
//! [`crate::user_lookup`], [`crate::dm_events`], [`crate::media_download`],
//! [`crate::media_upload`], [`crate::manage`]; [`crate::x_api`] makes the client the core's
//! `XApi`.

use std::collections::BTreeMap;
use std::sync::Arc;

use http::{Method, StatusCode, header};
use serde::Serialize;
use url::Url;
use xdm_core::ids::XUserId;
use xdm_core::ports::XError;

use crate::auth::{Credentials, UserAuth, UserTokenSource};
use crate::chat::ChatIdentity;
use crate::chat::conversation_key_cache::ConversationKeyCache;
use crate::chat::signing_key_cache::SigningKeyCache;
use crate::config::{MediaTimeouts, check_consumer};
use crate::error::transport_error;
use crate::media_hosts::MediaHosts;
use crate::oauth1::AccessToken;
use crate::rate_limit;
use crate::transport::{Answer, ReadError, api_endpoint, client_builder, read_answer};

// The paths these had when they were defined in this file.
pub use crate::config::{API_URL_SETTING, DEFAULT_API_URL, XClientConfig, XConfigError};
pub use crate::error::error_from_response;
pub use crate::user::USER_FIELDS;

/// X's answers are small JSON documents; anything bigger is not X.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// The X REST client. Cheap to clone (shares the connection pool).
#[derive(Debug, Clone)]
pub struct XClient {
    http: reqwest::Client,
    media_http: reqwest::Client,
    api_url: Arc<str>,
    credentials: Arc<Credentials>,
    media_hosts: Arc<MediaHosts>,
    media: MediaTimeouts,
    chat: Arc<BTreeMap<XUserId, Option<ChatIdentity>>>,
    default_chat: Option<ChatIdentity>,
    signing_keys: Arc<SigningKeyCache>,
    conversation_keys: Arc<ConversationKeyCache>,
}

impl XClient {
    pub fn new(config: XClientConfig) -> Result<Self, XConfigError> {
        if let Some(consumer) = &config.credentials.consumer {
            check_consumer(consumer)?;
        }
        let http = client_builder(config.connect_timeout)
            .timeout(config.timeout)
            .build()
            .map_err(|e| XConfigError::HttpClient(e.to_string()))?;
        let media_http = client_builder(config.connect_timeout)
            .read_timeout(config.media.read)
            .build()
            .map_err(|e| XConfigError::HttpClient(e.to_string()))?;
        Ok(Self {
            http,
            media_http,
            api_url: config.api_url.into(),
            credentials: Arc::new(config.credentials),
            media_hosts: Arc::new(config.media_hosts),
            media: config.media,
            chat: Arc::new(config.chat),
            default_chat: config.default_chat,
            signing_keys: Arc::default(),
            conversation_keys: Arc::default(),
        })
    }

    /// The base URL every call starts with (no trailing slash).
    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    /// The shared HTTP client of the REST calls (media upload included).
    pub fn http_client(&self) -> &reqwest::Client {
        &self.http
    }

    /// The HTTP client of media downloads (read timeout, no redirects).
    pub(crate) fn media_http_client(&self) -> &reqwest::Client {
        &self.media_http
    }

    /// The hosts media may be downloaded from.
    pub fn media_hosts(&self) -> &MediaHosts {
        &self.media_hosts
    }

    pub(crate) fn media_timeouts(&self) -> MediaTimeouts {
        self.media
    }

    /// The X Chat keys of `business`; `Invalid` when it has none (its customers on X Chat
    /// cannot be read or answered until keys are set up).
    pub fn chat_identity(&self, business: &XUserId) -> Result<ChatIdentity, XError> {
        let identity = match self.chat.get(business) {
            Some(own) => own.as_ref(),
            None => self.default_chat.as_ref(),
        };
        identity.cloned().ok_or_else(|| {
            XError::Invalid(format!(
                "business account {business} has no X Chat keys (XDM_X_CHAT_KEYS; `xdm-connect x chat-keys init`)"
            ))
        })
    }

    /// The signing keys seen on X (X Chat).
    pub(crate) fn signing_keys(&self) -> &SigningKeyCache {
        &self.signing_keys
    }

    /// The conversation keys opened so far (X Chat).
    pub(crate) fn conversation_keys(&self) -> &ConversationKeyCache {
        &self.conversation_keys
    }

    /// Who this client can act as.
    pub(crate) fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// The OAuth 1.0a token used to act as `business`: its own when configured, else the
    /// default; `None` without one or without a consumer.
    pub fn oauth1_token(&self, business: &XUserId) -> Option<&AccessToken> {
        self.credentials.oauth1_token(business)
    }

    /// The source of OAuth 2.0 user tokens, when configured.
    pub fn user_tokens(&self) -> Option<&Arc<dyn UserTokenSource>> {
        self.credentials.user_tokens.as_ref()
    }

    /// Who a call for `business` is made as: OAuth 2.0 when the token source has a token for it,
    /// else OAuth 1.0a when configured, else `Unauthorized`.
    pub async fn auth_for(&self, business: &XUserId) -> Result<UserAuth, XError> {
        self.credentials.auth_for(business).await
    }

    /// The `Authorization` header value of a request made as `auth` (no form body): a Bearer
    /// token, or an OAuth 1.0a signature over the method, URL and query.
    pub fn authorization_for(
        &self,
        auth: &UserAuth,
        method: &Method,
        url: &Url,
    ) -> Result<String, XError> {
        self.credentials.authorization_for(auth, method, url)
    }

    pub(crate) fn endpoint(&self, path: &str) -> Result<Url, XError> {
        api_endpoint(&self.api_url, path).map_err(XError::Invalid)
    }

    /// Sends one request as `business` with an optional JSON body and reads the whole (bounded)
    /// answer.
    pub(crate) async fn call<B: Serialize + ?Sized + Sync>(
        &self,
        method: Method,
        url: Url,
        business: &XUserId,
        json: Option<&B>,
    ) -> Result<Answer, XError> {
        self.call_with(method, url, business, |request| {
            Ok(match json {
                Some(body) => request.json(body),
                None => request,
            })
        })
        .await
    }

    /// Sends one request as `business`, completed by `build` (a body that is not signed: JSON,
    /// multipart; a timeout), and reads the whole (bounded) answer. A 401 to an OAuth 2.0 call is
    /// retried once with the token the source gives back (`build` runs again for it).
    pub(crate) async fn call_with(
        &self,
        method: Method,
        url: Url,
        business: &XUserId,
        build: impl Fn(reqwest::RequestBuilder) -> Result<reqwest::RequestBuilder, XError> + Send + Sync,
    ) -> Result<Answer, XError> {
        let auth = self.auth_for(business).await?;
        let answer = self.call_as(&auth, &method, &url, &build).await?;
        if answer.status != StatusCode::UNAUTHORIZED {
            return Ok(answer);
        }
        let UserAuth::OAuth2(rejected) = &auth else {
            return Ok(answer);
        };
        match self.credentials.after_rejection(business, rejected).await? {
            Some(fresh) => {
                tracing::info!(%business, path = url.path(), "X refused the OAuth 2.0 access token; retrying once with a fresh one");
                self.call_as(&fresh, &method, &url, &build).await
            }
            None => Ok(answer),
        }
    }

    /// Sends one request as `auth` (no retry), completed by `build`, and reads the whole
    /// (bounded) answer.
    pub(crate) async fn call_as(
        &self,
        auth: &UserAuth,
        method: &Method,
        url: &Url,
        build: &(impl Fn(reqwest::RequestBuilder) -> Result<reqwest::RequestBuilder, XError> + Sync),
    ) -> Result<Answer, XError> {
        let authorization = self.credentials.authorization_header(auth, method, url)?;
        let request = self
            .http
            .request(method.clone(), url.clone())
            .header(header::AUTHORIZATION, authorization);
        let request = build(request)?;
        let response = request.send().await.map_err(transport_error)?;
        let answer = read_answer(response, MAX_RESPONSE_BYTES)
            .await
            .map_err(|e| match e {
                ReadError::Transport(e) => transport_error(e),
                ReadError::TooLarge => XError::Unavailable(format!(
                    "X's answer to {method} {} is larger than {MAX_RESPONSE_BYTES} bytes",
                    url.path()
                )),
            })?;
        tracing::debug!(
            %method,
            path = url.path(),
            status = answer.status.as_u16(),
            rate_limit = ?rate_limit::RateLimitHeaders::from_headers(&answer.headers).ok(),
            "X answered"
        );
        Ok(answer)
    }
}
