//! [`XClient`]: the X REST v2 calls the bridge makes, implementing [`XApi`] over reqwest.
//!
//! * One `reqwest::Client` for the REST calls, built once (connect timeout 5 s, whole request
//!   20 s, no redirects: a redirect would not carry a valid OAuth signature, and must not carry the
//!   header elsewhere), and one for media downloads (connect timeout 5 s, a read timeout instead of
//!   a total one since a 20 MB file may take a while, no automatic redirects:
//!   [`crate::media_download`] follows them itself, within the allowed media hosts).
//! * Every call is made in user context as the business account it acts for ([`UserAuth`]):
//!   with its OAuth 2.0 access token when the [`UserTokenSource`] has one (`Authorization:
//!   Bearer`), else OAuth 1.0a-signed with its own token or the default token (JSON bodies are not
//!   signed; query parameters are), else the call fails with `Unauthorized` naming the account.
//!   OAuth 1.0a is optional: an OAuth 2.0-only deployment has no consumer key at all.
//! * A 401 to an OAuth 2.0 call is reported to the source ([`UserTokenSource::token_rejected`])
//!   and the call is sent once more with the token it gives back; bodies are rebuilt for that
//!   (JSON, forms and media segments are all held in memory).
//! * Errors are classified for the core ([`error_from_response`]): 429 `usage-capped` ⇒
//!   `UsageCapped`, other 429 ⇒ `RateLimited` (reset from `x-rate-limit-reset`), 401 ⇒
//!   `Unauthorized`, 403 ⇒ `Forbidden`, 400 ⇒ `Invalid`, 404 ⇒ `NotFound`, 5xx / timeouts /
//!   connection errors / unreadable success bodies ⇒ `Unavailable`.
//! * Media: [`XApi::download_media`] is [`crate::media_download`], [`XApi::upload_media`] is
//!   [`crate::media_upload`]; [`XApi::sent_dms`] is [`crate::dm_events`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, Method, StatusCode, header};
use serde::{Deserialize, Serialize};
use url::Url;
use xdm_core::ids::XUserId;
use xdm_core::inbound::InboundMedia;
use xdm_core::media::{MediaStream, XMediaCategory};
use xdm_core::ports::{DmRequest, SentDm, SentDmRecord, XApi, XError};
use xdm_core::profile::XProfile;

use crate::auth::{BearerToken, UserAuth, UserTokenSource};
use crate::media_hosts::{MediaHosts, MediaHostsError};
use crate::oauth1::{self, AccessToken, Consumer, SignableRequest};
use crate::problem::{Problem, one_line};
use crate::user::UserObject;
use crate::{lenient, rate_limit};

/// X's REST base when `XDM_X_API_URL` is not set.
pub const DEFAULT_API_URL: &str = "https://api.x.com";
/// The setting that overrides the base URL (emulators, tests).
pub const API_URL_SETTING: &str = "XDM_X_API_URL";
/// The profile fields the bridge asks for.
pub const USER_FIELDS: &str = "name,username,profile_image_url,verified,public_metrics";

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);
/// Media downloads: the longest silence between two reads (there is no total timeout).
const DEFAULT_MEDIA_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Media upload: the whole of one `append` request (one chunk of at most
/// [`crate::media_upload::MEDIA_CHUNK_BYTES`]: 1 MiB in 60 s is ~140 kbit/s at the least).
const DEFAULT_MEDIA_APPEND_TIMEOUT: Duration = Duration::from_secs(60);
/// Media upload: how long to wait for X to process a file after `finalize`.
const DEFAULT_MEDIA_PROCESSING_LIMIT: Duration = Duration::from_secs(600);
/// X's answers are small JSON documents; anything bigger is not X.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// A setting that cannot work. The message names the setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XConfigError {
    #[error("{API_URL_SETTING} is not a usable base URL: {0}")]
    ApiUrl(String),
    #[error("{0} is empty")]
    Empty(&'static str),
    #[error("the access token for X account {0} is empty")]
    EmptyAccountToken(XUserId),
    #[error("cannot build the HTTP client for X: {0}")]
    HttpClient(String),
    #[error(transparent)]
    MediaHosts(#[from] MediaHostsError),
}

/// How to reach X and as whom.
#[derive(Debug, Clone)]
pub struct XClientConfig {
    /// Normalised: http(s), no query or fragment, no trailing slash.
    api_url: String,
    /// OAuth 1.0a: none in an OAuth 2.0-only deployment.
    consumer: Option<Consumer>,
    default_token: Option<AccessToken>,
    account_tokens: HashMap<XUserId, AccessToken>,
    user_tokens: Option<Arc<dyn UserTokenSource>>,
    connect_timeout: Duration,
    timeout: Duration,
    media_hosts: MediaHosts,
    media: MediaTimeouts,
}

/// The timeouts of the media calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MediaTimeouts {
    /// Downloads: the longest wait for the next bytes (answer head or body).
    pub(crate) read: Duration,
    /// Upload: one whole `append` request.
    pub(crate) append: Duration,
    /// Upload: the total wait for X's processing after `finalize`.
    pub(crate) processing: Duration,
}

impl XClientConfig {
    /// OAuth 1.0a with a consumer and a default token (the set-up before OAuth 2.0): [`Self::new`]
    /// with [`Self::with_consumer`] and [`Self::with_default_token`], all checked here.
    pub fn oauth1(
        api_url: &str,
        consumer: Consumer,
        default_token: AccessToken,
    ) -> Result<Self, XConfigError> {
        check_consumer(&consumer)?;
        Self::new(api_url)?
            .with_consumer(consumer)
            .with_default_token(default_token)
    }

    /// `api_url` is the base of every call (`https://api.x.com`, or an emulator's
    /// `http://127.0.0.1:port[/prefix]`); a trailing slash is ignored. No credentials yet: add
    /// OAuth 1.0a ([`Self::with_consumer`], [`Self::with_default_token`],
    /// [`Self::with_account_token`]) and/or OAuth 2.0 ([`Self::with_user_tokens`]). A call for an
    /// account with neither fails with `Unauthorized`.
    pub fn new(api_url: &str) -> Result<Self, XConfigError> {
        let api_url = normalise_api_url(api_url)?;
        Ok(Self {
            api_url,
            consumer: None,
            default_token: None,
            account_tokens: HashMap::new(),
            user_tokens: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            media_hosts: MediaHosts::default(),
            media: MediaTimeouts {
                read: DEFAULT_MEDIA_READ_TIMEOUT,
                append: DEFAULT_MEDIA_APPEND_TIMEOUT,
                processing: DEFAULT_MEDIA_PROCESSING_LIMIT,
            },
        })
    }

    /// The app's OAuth 1.0a consumer (X "API key" and secret), needed by every OAuth 1.0a call
    /// (an empty key or secret is refused by [`XClient::new`]).
    pub fn with_consumer(mut self, consumer: Consumer) -> Self {
        self.consumer = Some(consumer);
        self
    }

    /// The OAuth 1.0a token of accounts without one of their own (and without OAuth 2.0).
    pub fn with_default_token(mut self, token: AccessToken) -> Result<Self, XConfigError> {
        for (value, setting) in [
            (token.token(), "XDM_X_ACCESS_TOKEN"),
            (token.expose_secret(), "XDM_X_ACCESS_TOKEN_SECRET"),
        ] {
            if value.trim().is_empty() {
                return Err(XConfigError::Empty(setting));
            }
        }
        self.default_token = Some(token);
        Ok(self)
    }

    /// Where OAuth 2.0 user access tokens come from; an account it has a token for is called
    /// with OAuth 2.0, whatever OAuth 1.0a token is configured.
    pub fn with_user_tokens(mut self, source: Arc<dyn UserTokenSource>) -> Self {
        self.user_tokens = Some(source);
        self
    }

    /// The OAuth 1.0a token to act as business account `business` (instead of the default token).
    pub fn with_account_token(
        mut self,
        business: XUserId,
        token: AccessToken,
    ) -> Result<Self, XConfigError> {
        if token.token().trim().is_empty() || token.expose_secret().trim().is_empty() {
            return Err(XConfigError::EmptyAccountToken(business));
        }
        self.account_tokens.insert(business, token);
        Ok(self)
    }

    /// Overrides the connect timeout (default 5 s) and the whole-request timeout (default 20 s).
    pub fn with_timeouts(mut self, connect: Duration, total: Duration) -> Self {
        self.connect_timeout = connect;
        self.timeout = total;
        self
    }

    /// The hosts media may be downloaded from (`XDM_X_MEDIA_HOSTS`; default X's media hosts).
    pub fn with_media_hosts(mut self, hosts: MediaHosts) -> Self {
        self.media_hosts = hosts;
        self
    }

    /// Overrides the media timeouts: `read` is the longest silence while downloading (default
    /// 30 s; the connect timeout is shared with the REST calls), `append` the whole of one upload
    /// `append` request (default 60 s).
    pub fn with_media_timeouts(mut self, read: Duration, append: Duration) -> Self {
        self.media.read = read;
        self.media.append = append;
        self
    }

    /// How long to wait for X to process an uploaded file before giving up with `Unavailable`
    /// (default 10 minutes).
    pub fn with_media_processing_limit(mut self, limit: Duration) -> Self {
        self.media.processing = limit;
        self
    }

    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    pub fn media_hosts(&self) -> &MediaHosts {
        &self.media_hosts
    }
}

fn check_consumer(consumer: &Consumer) -> Result<(), XConfigError> {
    for (value, setting) in [
        (consumer.key(), "XDM_X_CONSUMER_KEY"),
        (consumer.expose_secret(), "XDM_X_CONSUMER_SECRET"),
    ] {
        if value.trim().is_empty() {
            return Err(XConfigError::Empty(setting));
        }
    }
    Ok(())
}

pub(crate) fn normalise_api_url(raw: &str) -> Result<String, XConfigError> {
    let bad = |reason: String| Err(XConfigError::ApiUrl(reason));
    let url = match Url::parse(raw.trim()) {
        Ok(u) => u,
        Err(e) => return bad(format!("{e}")),
    };
    if !matches!(url.scheme(), "http" | "https") {
        return bad(format!(
            "the scheme must be http or https, not {}",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return bad("it has no host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return bad("it must not carry credentials".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return bad(format!("it must not have a query or a fragment ({url})"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// The X REST client. Cheap to clone (shares the connection pool).
#[derive(Debug, Clone)]
pub struct XClient {
    http: reqwest::Client,
    media_http: reqwest::Client,
    api_url: Arc<str>,
    consumer: Option<Arc<Consumer>>,
    default_token: Option<Arc<AccessToken>>,
    account_tokens: Arc<HashMap<XUserId, AccessToken>>,
    user_tokens: Option<Arc<dyn UserTokenSource>>,
    media_hosts: Arc<MediaHosts>,
    media: MediaTimeouts,
}

impl XClient {
    pub fn new(config: XClientConfig) -> Result<Self, XConfigError> {
        if let Some(consumer) = &config.consumer {
            check_consumer(consumer)?;
        }
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("xdm-connect/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| XConfigError::HttpClient(e.to_string()))?;
        let media_http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.media.read)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("xdm-connect/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| XConfigError::HttpClient(e.to_string()))?;
        Ok(Self {
            http,
            media_http,
            api_url: config.api_url.into(),
            consumer: config.consumer.map(Arc::new),
            default_token: config.default_token.map(Arc::new),
            account_tokens: Arc::new(config.account_tokens),
            user_tokens: config.user_tokens,
            media_hosts: Arc::new(config.media_hosts),
            media: config.media,
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

    /// The OAuth 1.0a token used to act as `business`: its own when configured, else the
    /// default; `None` without one or without a consumer.
    pub fn oauth1_token(&self, business: &XUserId) -> Option<&AccessToken> {
        self.consumer.as_ref()?;
        self.account_tokens
            .get(business)
            .or(self.default_token.as_deref())
    }

    /// The source of OAuth 2.0 user tokens, when configured.
    pub fn user_tokens(&self) -> Option<&Arc<dyn UserTokenSource>> {
        self.user_tokens.as_ref()
    }

    /// Who a call for `business` is made as: OAuth 2.0 when the token source has a token for it,
    /// else OAuth 1.0a when configured, else `Unauthorized`.
    pub async fn auth_for(&self, business: &XUserId) -> Result<UserAuth, XError> {
        if let Some(source) = &self.user_tokens
            && let Some(token) = source.access_token(business).await?
        {
            return Ok(UserAuth::OAuth2(BearerToken::new(token)));
        }
        match self.oauth1_token(business) {
            Some(token) => Ok(UserAuth::OAuth1(token.clone())),
            None => Err(no_credentials(business)),
        }
    }

    /// The `Authorization` header value of a request made as `auth` (no form body): a Bearer
    /// token, or an OAuth 1.0a signature over the method, URL and query.
    pub fn authorization_for(
        &self,
        auth: &UserAuth,
        method: &Method,
        url: &Url,
    ) -> Result<String, XError> {
        match auth {
            UserAuth::OAuth2(token) => Ok(format!("Bearer {}", token.expose_secret())),
            UserAuth::OAuth1(token) => {
                let consumer = self.consumer.as_deref().ok_or_else(|| {
                    XError::Unauthorized(
                        "OAuth 1.0a needs the X consumer key (XDM_X_CONSUMER_KEY), which is not set"
                            .into(),
                    )
                })?;
                let request = SignableRequest {
                    method: method.as_str(),
                    url,
                    form_body: None,
                };
                oauth1::sign(&request, consumer, Some(token))
                    .map(|s| s.authorization)
                    .map_err(|e| XError::Unauthorized(e.to_string()))
            }
        }
    }

    pub(crate) fn endpoint(&self, path: &str) -> Result<Url, XError> {
        Url::parse(&format!("{}{path}", self.api_url))
            .map_err(|e| XError::Invalid(format!("cannot build the URL of {path}: {e}")))
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
        let (UserAuth::OAuth2(rejected), Some(source)) = (&auth, &self.user_tokens) else {
            return Ok(answer);
        };
        match source
            .token_rejected(business, rejected.expose_secret())
            .await?
        {
            Some(fresh) if fresh != rejected.expose_secret() => {
                tracing::info!(%business, path = url.path(), "X refused the OAuth 2.0 access token; retrying once with a fresh one");
                let fresh = UserAuth::OAuth2(BearerToken::new(fresh));
                self.call_as(&fresh, &method, &url, &build).await
            }
            _ => Ok(answer),
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
        let authorization = self.authorization_for(auth, method, url)?;
        let mut value = http::HeaderValue::from_str(&authorization).map_err(|_| {
            XError::Unauthorized("the X credentials cannot be sent in a header".into())
        })?;
        value.set_sensitive(true);
        let request = self
            .http
            .request(method.clone(), url.clone())
            .header(header::AUTHORIZATION, value);
        let request = build(request)?;
        let mut response = request.send().await.map_err(transport_error)?;
        let status = response.status();
        let headers = response.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(XError::Unavailable(format!(
                    "X's answer to {method} {} is larger than {MAX_RESPONSE_BYTES} bytes",
                    url.path()
                )));
            }
            body.extend_from_slice(&chunk);
        }
        tracing::debug!(
            %method,
            path = url.path(),
            status = status.as_u16(),
            rate_limit = ?rate_limit::RateLimitHeaders::from_headers(&headers).ok(),
            "X answered"
        );
        Ok(Answer {
            status,
            headers,
            body,
        })
    }
}

/// The error of a call for an account nobody can act as.
pub(crate) fn no_credentials(business: &XUserId) -> XError {
    XError::Unauthorized(format!(
        "no X credentials for account {business}: run `xdm-connect x login`"
    ))
}

/// The id, handle and name of an authenticated user (`GET /2/users/me`).
#[derive(Debug, Deserialize)]
struct MeAnswer {
    #[serde(default, deserialize_with = "lenient::object")]
    data: Option<UserObject>,
}

impl XClient {
    /// `GET /2/users/me` as `auth`: who a (brand-new) token belongs to. No retry on 401.
    pub async fn me_as(&self, auth: &UserAuth) -> Result<XProfile, XError> {
        let mut url = self.endpoint("/2/users/me")?;
        url.set_query(Some(&format!("user.fields={USER_FIELDS}")));
        let answer = self.call_as(auth, &Method::GET, &url, &Ok).await?;
        me_profile(&answer)
    }

    /// `GET /2/users/me` as business account `business` (its OAuth 2.0 or OAuth 1.0a credentials).
    pub async fn me(&self, business: &XUserId) -> Result<XProfile, XError> {
        let mut url = self.endpoint("/2/users/me")?;
        url.set_query(Some(&format!("user.fields={USER_FIELDS}")));
        let answer = self.call::<()>(Method::GET, url, business, None).await?;
        me_profile(&answer)
    }
}

fn me_profile(answer: &Answer) -> Result<XProfile, XError> {
    if !answer.status.is_success() {
        return Err(error_from_response(
            answer.status,
            &answer.headers,
            &answer.body,
        ));
    }
    let user = serde_json::from_slice::<MeAnswer>(&answer.body)
        .ok()
        .and_then(|a| a.data)
        .ok_or_else(|| unexpected_body("a users/me lookup", &answer.body))?;
    let id = user
        .id
        .as_deref()
        .and_then(|id| XUserId::parse(id).ok())
        .ok_or_else(|| unexpected_body("a users/me lookup", &answer.body))?;
    Ok(user.into_profile(id))
}

pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

pub(crate) fn transport_error(e: reqwest::Error) -> XError {
    let e = e.without_url();
    if e.is_timeout() {
        XError::Unavailable(format!("X did not answer in time: {e}"))
    } else if e.is_connect() {
        XError::Unavailable(format!("cannot connect to X: {e}"))
    } else {
        XError::Unavailable(format!("the request to X failed: {e}"))
    }
}

/// Classifies an X error answer (any non-2xx) for the core.
pub fn error_from_response(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> XError {
    let problem = Problem::parse(body);
    let summary = problem
        .as_ref()
        .and_then(Problem::summary)
        .unwrap_or_else(|| {
            status
                .canonical_reason()
                .unwrap_or("no reason given")
                .to_owned()
        });
    let code = status.as_u16();
    match code {
        429 if problem.as_ref().is_some_and(Problem::is_usage_capped) => {
            XError::UsageCapped(summary)
        }
        429 => XError::RateLimited {
            reset_at_s: rate_limit::reset_at_s(headers),
        },
        401 => XError::Unauthorized(summary),
        403 => XError::Forbidden(summary),
        400 => XError::Invalid(summary),
        404 => XError::NotFound(summary),
        408 | 425 | 500..=599 => XError::Unavailable(format!("HTTP {code}: {summary}")),
        402..=499 => XError::Invalid(format!("HTTP {code}: {summary}")),
        _ => XError::Unavailable(format!("unexpected HTTP {code} from X: {summary}")),
    }
}

/// `POST /2/dm_conversations/with/:id/messages` body.
#[derive(Debug, Serialize)]
struct DmBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attachments: Option<[DmAttachment<'a>; 1]>,
}

#[derive(Debug, Serialize)]
struct DmAttachment<'a> {
    media_id: &'a str,
}

#[derive(Debug, Deserialize)]
struct DmCreated {
    data: DmCreatedData,
}

#[derive(Debug, Deserialize)]
struct DmCreatedData {
    dm_event_id: String,
}

#[derive(Debug, Deserialize)]
struct UserAnswer {
    #[serde(default, deserialize_with = "lenient::object")]
    data: Option<UserObject>,
}

pub(crate) fn unexpected_body(what: &str, body: &[u8]) -> XError {
    let shown = one_line(&String::from_utf8_lossy(body), 200);
    XError::Unavailable(format!(
        "X answered {what} with an unexpected body: {shown}"
    ))
}

impl XApi for XClient {
    async fn send_dm(&self, dm: &DmRequest) -> Result<SentDm, XError> {
        let text = dm.text.as_deref().filter(|t| !t.is_empty());
        let media_id = dm.media_id.as_deref().filter(|m| !m.is_empty());
        if text.is_none() && media_id.is_none() {
            return Err(XError::Invalid(
                "a DM needs a text or a media attachment".into(),
            ));
        }
        let url = self.endpoint(&format!(
            "/2/dm_conversations/with/{}/messages",
            dm.recipient
        ))?;
        let body = DmBody {
            text,
            attachments: media_id.map(|media_id| [DmAttachment { media_id }]),
        };
        tracing::debug!(business = %dm.business, recipient = %dm.recipient, media = media_id.is_some(), "sending a DM");
        let answer = self
            .call(Method::POST, url, &dm.business, Some(&body))
            .await?;
        if !answer.status.is_success() {
            return Err(error_from_response(
                answer.status,
                &answer.headers,
                &answer.body,
            ));
        }
        match serde_json::from_slice::<DmCreated>(&answer.body) {
            Ok(created) if !created.data.dm_event_id.is_empty() => Ok(SentDm {
                dm_event_id: created.data.dm_event_id,
            }),
            _ => Err(unexpected_body("a DM send", &answer.body)),
        }
    }

    async fn sent_dms(
        &self,
        business: &XUserId,
        recipient: &XUserId,
        since_ms: i64,
    ) -> Result<Vec<SentDmRecord>, XError> {
        crate::dm_events::sent_dms(self, business, recipient, since_ms).await
    }

    async fn user(&self, business: &XUserId, id: &XUserId) -> Result<Option<XProfile>, XError> {
        let mut url = self.endpoint(&format!("/2/users/{id}"))?;
        url.set_query(Some(&format!("user.fields={USER_FIELDS}")));
        let answer = self.call::<()>(Method::GET, url, business, None).await?;
        if !answer.status.is_success() {
            return Err(error_from_response(
                answer.status,
                &answer.headers,
                &answer.body,
            ));
        }
        let parsed: Option<UserAnswer> = serde_json::from_slice(&answer.body).ok();
        if let Some(user) = parsed.and_then(|a| a.data) {
            if user.id.as_deref().is_some_and(|got| got != id.as_str()) {
                return Err(XError::Unavailable(format!(
                    "X answered a lookup of user {id} with another user"
                )));
            }
            return Ok(Some(user.into_profile(id.clone())));
        }
        match Problem::parse(&answer.body) {
            Some(p) if p.has_resource_not_found() => Ok(None),
            _ => Err(unexpected_body("a user lookup", &answer.body)),
        }
    }

    async fn download_media(
        &self,
        business: &XUserId,
        media: &InboundMedia,
        max_bytes: u64,
    ) -> Result<MediaStream, XError> {
        crate::media_download::download(self, business, media, max_bytes).await
    }

    async fn upload_media(
        &self,
        business: &XUserId,
        category: XMediaCategory,
        file: MediaStream,
    ) -> Result<String, XError> {
        Box::pin(crate::media_upload::upload(self, business, category, file)).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn config(url: &str) -> Result<XClientConfig, XConfigError> {
        XClientConfig::oauth1(
            url,
            Consumer::new("ck", "cs"),
            AccessToken::new("at", "ats"),
        )
    }

    #[test]
    fn normalises_the_base_url() {
        assert_eq!(
            config(DEFAULT_API_URL).unwrap().api_url(),
            "https://api.x.com"
        );
        assert_eq!(
            config("https://api.x.com/").unwrap().api_url(),
            "https://api.x.com"
        );
        assert_eq!(
            config(" http://127.0.0.1:9000/x-api// ").unwrap().api_url(),
            "http://127.0.0.1:9000/x-api"
        );
    }

    #[test]
    fn bad_settings_are_named() {
        for bad in [
            "",
            "api.x.com",
            "ftp://api.x.com",
            "https://api.x.com/?a=1",
            "https://u:p@api.x.com",
        ] {
            let e = config(bad).unwrap_err();
            assert!(matches!(e, XConfigError::ApiUrl(_)), "{bad}");
            assert!(e.to_string().starts_with("XDM_X_API_URL "), "{e}");
            assert!(!e.to_string().contains("u:p"), "{e}");
        }
        let e = XClientConfig::oauth1(
            DEFAULT_API_URL,
            Consumer::new("ck", ""),
            AccessToken::new("at", "ats"),
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "XDM_X_CONSUMER_SECRET is empty");
        let lazy = XClientConfig::new(DEFAULT_API_URL)
            .unwrap()
            .with_consumer(Consumer::new(" ", "cs"));
        assert_eq!(
            XClient::new(lazy).unwrap_err().to_string(),
            "XDM_X_CONSUMER_KEY is empty"
        );
        let e = config(DEFAULT_API_URL)
            .unwrap()
            .with_account_token(XUserId::parse("1").unwrap(), AccessToken::new("", "s"))
            .unwrap_err();
        assert_eq!(e.to_string(), "the access token for X account 1 is empty");
    }

    #[test]
    fn classifies_error_answers() {
        let none = HeaderMap::new();
        let mut reset = HeaderMap::new();
        reset.insert(
            "x-rate-limit-reset",
            http::HeaderValue::from_static("1775080934"),
        );
        let s = |c| StatusCode::from_u16(c).unwrap();
        assert_eq!(
            error_from_response(
                s(429),
                &reset,
                br#"{"errors":[{"code":88,"message":"Rate limit exceeded"}]}"#
            ),
            XError::RateLimited {
                reset_at_s: Some(1_775_080_934)
            }
        );
        assert_eq!(
            error_from_response(s(429), &none, b""),
            XError::RateLimited { reset_at_s: None }
        );
        assert_eq!(
            error_from_response(s(429), &reset, br#"{"title":"UsageCapExceeded","detail":"Usage cap exceeded: Monthly product cap","type":"https://api.twitter.com/2/problems/usage-capped"}"#),
            XError::UsageCapped("Usage cap exceeded: Monthly product cap".into())
        );
        assert_eq!(
            error_from_response(s(401), &none, b""),
            XError::Unauthorized("Unauthorized".into())
        );
        assert_eq!(
            error_from_response(s(409), &none, b"{}"),
            XError::Invalid("HTTP 409: Conflict".into())
        );
        assert!(
            matches!(error_from_response(s(502), &none, b"<html>"), XError::Unavailable(m) if m == "HTTP 502: Bad Gateway")
        );
        assert!(matches!(
            error_from_response(s(302), &none, b""),
            XError::Unavailable(_)
        ));
    }
}
