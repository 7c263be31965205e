//! [`OAuth2Client`]: X's token endpoint (`POST /2/oauth2/token`: the authorization code
//! exchanged, a refresh token used) and revocation endpoint (`POST /2/oauth2/revoke`).
//!
//! * Confidential client (a client secret is configured): `Authorization: Basic
//!   base64(client_id:client_secret)`, as X's docs show it; public client: `client_id` in the form.
//! * Token answers `{"token_type":"bearer","expires_in":7200,"access_token","scope","refresh_token"}`
//!   become a [`TokenGrant`]. Errors `{"error","error_description"}` with 400–403 are the
//!   endpoint refusing (`Rejected`: only a new login helps); 429, 5xx, other statuses, timeouts
//!   and unreadable answers are `Unavailable` (the same refresh token may work later).

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use http::{StatusCode, header};
use serde::Deserialize;
use url::Url;
use xdm_core::ports::{RefreshError, TokenGrant, TokenRefresher};

use super::error::OAuth2Error;
use super::pkce::Pkce;
use crate::lenient;
use crate::problem::{Problem, one_line, status_reason};
use crate::transport::{ReadError, client_builder, read_answer, secret_header};

/// The token endpoint, relative to the API base.
pub const TOKEN_PATH: &str = "/2/oauth2/token";
/// The revocation endpoint, relative to the API base.
pub const REVOKE_PATH: &str = "/2/oauth2/revoke";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const TIMEOUT: Duration = Duration::from_secs(20);
/// Token answers are small; anything bigger is not X.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

impl From<Failure> for OAuth2Error {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Rejected(m) => Self::Rejected(m),
            Failure::Unavailable(m) => Self::Unavailable(m),
        }
    }
}

impl From<Failure> for RefreshError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Rejected(m) => Self::Rejected(m),
            Failure::Unavailable(m) => Self::Unavailable(m),
        }
    }
}

/// A token-endpoint failure before it is typed for its caller.
enum Failure {
    Rejected(String),
    Unavailable(String),
}

/// The client credentials and endpoints of X's OAuth 2.0.
#[derive(Clone)]
pub struct OAuth2Client {
    http: reqwest::Client,
    token_url: Url,
    pub(super) revoke_url: Url,
    pub(super) client_id: String,
    client_secret: Option<String>,
}

impl fmt::Debug for OAuth2Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuth2Client")
            .field("token_url", &self.token_url.as_str())
            .field("client_id", &self.client_id)
            .field("confidential", &self.client_secret.is_some())
            .finish()
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default, deserialize_with = "lenient::string")]
    access_token: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    token_type: Option<String>,
    #[serde(default, deserialize_with = "lenient::unsigned")]
    expires_in: Option<u64>,
    #[serde(default, deserialize_with = "lenient::string")]
    refresh_token: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    scope: Option<String>,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    #[serde(default, deserialize_with = "lenient::string")]
    error: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    error_description: Option<String>,
}

impl OAuth2Client {
    /// `token_url` is X's `https://api.x.com/2/oauth2/token` (or an emulator's); the revocation
    /// endpoint is its sibling `…/revoke`. `client_secret`: `None` for a public client.
    pub fn new(
        token_url: &str,
        client_id: &str,
        client_secret: Option<String>,
    ) -> Result<Self, OAuth2Error> {
        let token_url = Url::parse(token_url.trim()).map_err(|e| {
            OAuth2Error::Invalid(format!("the OAuth 2.0 token URL is not usable: {e}"))
        })?;
        if !matches!(token_url.scheme(), "http" | "https") {
            return Err(OAuth2Error::Invalid(
                "the OAuth 2.0 token URL must be http or https".into(),
            ));
        }
        let revoke_url = token_url.join("revoke").map_err(|e| {
            OAuth2Error::Invalid(format!("the OAuth 2.0 token URL is not usable: {e}"))
        })?;
        if client_id.trim().is_empty() {
            return Err(OAuth2Error::Invalid(
                "the X OAuth 2.0 client id (XDM_X_CLIENT_ID) is empty".into(),
            ));
        }
        let http = client_builder(CONNECT_TIMEOUT)
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| OAuth2Error::Invalid(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            token_url,
            revoke_url,
            client_id: client_id.trim().to_owned(),
            client_secret: client_secret
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty()),
        })
    }

    /// The token endpoint of the API base `api_url` (`{api_url}/2/oauth2/token`).
    pub fn for_api(
        api_url: &str,
        client_id: &str,
        client_secret: Option<String>,
    ) -> Result<Self, OAuth2Error> {
        let base = api_url.trim().trim_end_matches('/');
        Self::new(&format!("{base}{TOKEN_PATH}"), client_id, client_secret)
    }

    /// Whether a client secret is configured (confidential client).
    pub fn is_confidential(&self) -> bool {
        self.client_secret.is_some()
    }

    /// Exchanges the authorization `code` of the redirect for tokens.
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
        pkce: &Pkce,
    ) -> Result<TokenGrant, OAuth2Error> {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", pkce.verifier()),
        ];
        Ok(self.token_request(&form).await?)
    }

    /// Revokes an access or refresh token (a logout). X answers `{"revoked":true}`.
    pub async fn revoke(&self, token: &str) -> Result<(), OAuth2Error> {
        let (status, body) = self.post(&self.revoke_url, &[("token", token)]).await?;
        if status.is_success() {
            return Ok(());
        }
        Err(classify(status, &body).into())
    }

    async fn token_request(&self, form: &[(&str, &str)]) -> Result<TokenGrant, Failure> {
        let (status, body) = self.post(&self.token_url, form).await?;
        if !status.is_success() {
            return Err(classify(status, &body));
        }
        let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|_| {
            Failure::Unavailable("the token endpoint answered an unreadable body".into())
        })?;
        if let Some(kind) = answer.token_type.as_deref()
            && !kind.eq_ignore_ascii_case("bearer")
        {
            return Err(Failure::Unavailable(format!(
                "the token endpoint granted a {} token, not a bearer token",
                one_line(kind, 40)
            )));
        }
        let access_token = answer
            .access_token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Failure::Unavailable("the token endpoint answered without an access token".into())
            })?;
        Ok(TokenGrant {
            access_token,
            refresh_token: answer.refresh_token.filter(|t| !t.is_empty()),
            expires_in_s: answer.expires_in.and_then(|s| i64::try_from(s).ok()),
            scope: answer.scope,
        })
    }

    /// One form POST with the client's credentials; the status and the (bounded) body.
    async fn post(
        &self,
        url: &Url,
        form: &[(&str, &str)],
    ) -> Result<(StatusCode, Vec<u8>), Failure> {
        let mut fields: Vec<(&str, &str)> = form.to_vec();
        let mut request = self.http.post(url.clone());
        match &self.client_secret {
            Some(secret) => {
                let basic = base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{secret}", self.client_id));
                let value = secret_header(&format!("Basic {basic}")).ok_or_else(|| {
                    Failure::Rejected("the client credentials are not ASCII".into())
                })?;
                request = request.header(header::AUTHORIZATION, value);
            }
            None => fields.push(("client_id", &self.client_id)),
        }
        let response = request
            .form(&fields)
            .send()
            .await
            .map_err(|e| Failure::Unavailable(e.without_url().to_string()))?;
        let answer = read_answer(response, MAX_ANSWER_BYTES)
            .await
            .map_err(|e| match e {
                ReadError::Transport(e) => Failure::Unavailable(e.without_url().to_string()),
                ReadError::TooLarge => {
                    Failure::Unavailable("the token endpoint's answer is too large".into())
                }
            })?;
        tracing::debug!(
            path = url.path(),
            status = answer.status.as_u16(),
            "X OAuth 2.0 endpoint answered"
        );
        Ok((answer.status, answer.body))
    }
}

/// An error answer of the token or revocation endpoint.
fn classify(status: StatusCode, body: &[u8]) -> Failure {
    let parsed: Option<ErrorAnswer> = serde_json::from_slice(body).ok();
    let problem = Problem::parse(body).and_then(|p| p.summary());
    let message = parsed
        .as_ref()
        .and_then(|e| {
            let error = e.error.as_deref().filter(|s| !s.is_empty())?;
            Some(
                match e.error_description.as_deref().filter(|s| !s.is_empty()) {
                    Some(d) => format!("{error}: {}", one_line(d, 200)),
                    None => error.to_owned(),
                },
            )
        })
        .or(problem)
        .unwrap_or_else(|| status_reason(status));
    let code = status.as_u16();
    match code {
        400..=403 => Failure::Rejected(format!("HTTP {code}: {message}")),
        _ => Failure::Unavailable(format!("HTTP {code}: {message}")),
    }
}

impl TokenRefresher for OAuth2Client {
    async fn refresh(&self, refresh_token: &str) -> Result<TokenGrant, RefreshError> {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        Ok(self.token_request(&form).await?)
    }
}
