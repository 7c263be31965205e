//! OAuth 2.0 Authorization Code with PKCE (RFC 7636) and the refresh-token grant, as X runs them
//! (`https://x.com/i/oauth2/authorize`, `POST /2/oauth2/token`, `POST /2/oauth2/revoke`).
//!
//! Hand-written on reqwest: it is three form POSTs, and the `oauth2` crate pins another reqwest
//! major (a second HTTP stack) and cannot express X's single-use refresh tokens, whose rotation
//! the token store coordinates (one refresh at a time per account, the new refresh token saved
//! before the old one is forgotten).
//!
//! * Confidential client (a client secret is configured): `Authorization: Basic
//!   base64(client_id:client_secret)`, as X's docs show it; public client: `client_id` in the form.
//! * Token answers `{"token_type":"bearer","expires_in":7200,"access_token","scope","refresh_token"}`
//!   become a [`TokenGrant`]. Errors `{"error","error_description"}` with 400–403 are the
//!   endpoint refusing (`Rejected`: only a new login helps); 429, 5xx, other statuses, timeouts
//!   and unreadable answers are `Unavailable` (the same refresh token may work later).
//!
//! Nothing here logs a token, a code, a verifier or the client secret.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use http::{StatusCode, header};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use url::Url;
use xdm_core::ports::{RefreshError, TokenGrant, TokenRefresher};

use crate::lenient;
use crate::problem::one_line;

/// The scopes the bridge asks for: read and send DMs, look users up, upload media, and a
/// refresh token (`offline.access`).
pub const SCOPES: &str = "dm.read dm.write tweet.read users.read media.write offline.access";
/// Where users approve the app.
pub const AUTHORIZE_URL: &str = "https://x.com/i/oauth2/authorize";
/// The token endpoint, relative to the API base.
pub const TOKEN_PATH: &str = "/2/oauth2/token";
/// The revocation endpoint, relative to the API base.
pub const REVOKE_PATH: &str = "/2/oauth2/revoke";

/// Length of a generated code verifier (RFC 7636 allows 43 to 128).
const VERIFIER_LEN: usize = 64;
/// RFC 7636 §4.1 unreserved characters.
const UNRESERVED: &[u8; 66] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const TIMEOUT: Duration = Duration::from_secs(20);
/// Token answers are small; anything bigger is not X.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// `len` characters of the unreserved set, uniformly from the OS CSPRNG (uuid v4 draws its 122
/// random bits from it; the 4 version/variant bits of each are skipped, and bytes are
/// rejection-sampled so every character is equally likely).
fn random_unreserved(len: usize) -> String {
    // 198 = 3 × 66: bytes below it map uniformly onto the 66 characters.
    const LIMIT: u8 = 198;
    let mut out = String::with_capacity(len);
    while out.len() < len {
        let bytes = uuid::Uuid::new_v4().into_bytes();
        for (i, b) in bytes.into_iter().enumerate() {
            // Byte 6 holds the version nibble, byte 8 the variant bits.
            if i == 6 || i == 8 || b >= LIMIT || out.len() == len {
                continue;
            }
            out.push(char::from(UNRESERVED[usize::from(b % 66)]));
        }
    }
    out
}

/// An opaque `state` for the authorization request (32 unreserved characters).
pub fn random_state() -> String {
    random_unreserved(32)
}

/// A PKCE code verifier and its S256 challenge.
#[derive(Clone, PartialEq, Eq)]
pub struct Pkce {
    verifier: String,
    challenge: String,
}

impl fmt::Debug for Pkce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkce")
            .field("verifier", &"<redacted>")
            .field("challenge", &self.challenge)
            .finish()
    }
}

impl Pkce {
    /// A fresh verifier: 64 characters of the unreserved set from a CSPRNG.
    pub fn generate() -> Self {
        Self::from_verifier(random_unreserved(VERIFIER_LEN))
    }

    /// The challenge of a given verifier: base64url-no-pad(SHA-256(verifier)).
    pub fn from_verifier(verifier: impl Into<String>) -> Self {
        let verifier = verifier.into();
        let digest = Sha256::digest(verifier.as_bytes());
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
        Self {
            verifier,
            challenge,
        }
    }

    /// The verifier itself: only for the token request.
    pub fn verifier(&self) -> &str {
        &self.verifier
    }

    pub fn challenge(&self) -> &str {
        &self.challenge
    }

    /// Always `S256`.
    pub fn method(&self) -> &'static str {
        "S256"
    }
}

/// Why an OAuth 2.0 step failed. Messages never carry a token or a code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuth2Error {
    /// The user did not approve the app (`error=access_denied` on the redirect).
    #[error("the X authorization was denied{}", describe(.0))]
    Denied(Option<String>),
    /// The redirect carried another `error`.
    #[error("X's authorization failed: {error}{}", describe(.description))]
    AuthorizationFailed {
        error: String,
        description: Option<String>,
    },
    /// The redirect's `state` is not the one sent (another login's redirect, or forged).
    #[error("the redirect's state does not match this login: start the login again")]
    StateMismatch,
    /// The redirect carried no `code`.
    #[error("the redirect carries no authorization code")]
    MissingCode,
    /// The token endpoint refused the request (`invalid_grant`, …): only a new login helps.
    #[error("X refused the token request: {0}")]
    Rejected(String),
    /// Network, timeout, 5xx, 429 or an unreadable answer.
    #[error("the X token endpoint is unavailable: {0}")]
    Unavailable(String),
    /// A setting or argument that cannot work.
    #[error("{0}")]
    Invalid(String),
}

fn describe(description: &Option<String>) -> String {
    description
        .as_deref()
        .map(|d| format!(" ({})", one_line(d, 200)))
        .unwrap_or_default()
}

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
    revoke_url: Url,
    client_id: String,
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
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("xdm-connect/", env!("CARGO_PKG_VERSION")))
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

    /// The address to send the user to (`authorize_base`: [`AUTHORIZE_URL`] or an emulator's).
    pub fn authorize_url(
        &self,
        authorize_base: &str,
        redirect_uri: &str,
        scopes: &str,
        state: &str,
        pkce: &Pkce,
    ) -> Result<Url, OAuth2Error> {
        let mut url = Url::parse(authorize_base.trim()).map_err(|e| {
            OAuth2Error::Invalid(format!("the OAuth 2.0 authorize URL is not usable: {e}"))
        })?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", scopes)
            .append_pair("state", state)
            .append_pair("code_challenge", pkce.challenge())
            .append_pair("code_challenge_method", pkce.method());
        Ok(url)
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
                let mut value =
                    http::HeaderValue::from_str(&format!("Basic {basic}")).map_err(|_| {
                        Failure::Rejected("the client credentials are not ASCII".into())
                    })?;
                value.set_sensitive(true);
                request = request.header(header::AUTHORIZATION, value);
            }
            None => fields.push(("client_id", &self.client_id)),
        }
        let mut response = request
            .form(&fields)
            .send()
            .await
            .map_err(|e| Failure::Unavailable(e.without_url().to_string()))?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| Failure::Unavailable(e.without_url().to_string()))?
        {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(Failure::Unavailable(
                    "the token endpoint's answer is too large".into(),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        tracing::debug!(
            path = url.path(),
            status = status.as_u16(),
            "X OAuth 2.0 endpoint answered"
        );
        Ok((status, body))
    }
}

/// An error answer of the token or revocation endpoint.
fn classify(status: StatusCode, body: &[u8]) -> Failure {
    let parsed: Option<ErrorAnswer> = serde_json::from_slice(body).ok();
    let problem = crate::problem::Problem::parse(body).and_then(|p| p.summary());
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
        .unwrap_or_else(|| {
            status
                .canonical_reason()
                .unwrap_or("no reason given")
                .to_owned()
        });
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

/// The authorization code of the redirect X sends the user back with. `url_or_query` is the
/// whole redirect URL, or its query (with or without `?`). Checks `state` first.
pub fn parse_redirect(url_or_query: &str, expected_state: &str) -> Result<String, OAuth2Error> {
    let raw = url_or_query.trim();
    let query = match Url::parse(raw) {
        Ok(url) => url.query().unwrap_or_default().to_owned(),
        Err(_) => raw.trim_start_matches('?').to_owned(),
    };
    let mut code = None;
    let mut state = None;
    let mut error = None;
    let mut description = None;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "code" => code = Some(v.into_owned()),
            "state" => state = Some(v.into_owned()),
            "error" => error = Some(v.into_owned()),
            "error_description" => description = Some(v.into_owned()),
            _ => {}
        }
    }
    if let Some(error) = error {
        return Err(if error == "access_denied" {
            OAuth2Error::Denied(description)
        } else {
            OAuth2Error::AuthorizationFailed {
                error: one_line(&error, 100),
                description,
            }
        });
    }
    if state.as_deref() != Some(expected_state) || expected_state.is_empty() {
        return Err(OAuth2Error::StateMismatch);
    }
    code.filter(|c| !c.is_empty())
        .ok_or(OAuth2Error::MissingCode)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b() {
        let p = Pkce::from_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(p.challenge(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert_eq!(p.method(), "S256");
        assert!(!format!("{p:?}").contains("dBjft"));
    }

    #[test]
    fn generated_verifiers_are_long_unreserved_and_distinct() {
        let a = Pkce::generate();
        let b = Pkce::generate();
        assert_eq!(a.verifier().len(), VERIFIER_LEN);
        assert!(a.verifier().bytes().all(|c| UNRESERVED.contains(&c)));
        assert_ne!(a.verifier(), b.verifier());
        assert_eq!(a.challenge().len(), 43);
        assert_eq!(random_state().len(), 32);
        // Every character can occur (uniform mapping): over 100 verifiers all 66 show up.
        let mut seen = std::collections::HashSet::new();
        for _ in 0..100 {
            seen.extend(Pkce::generate().verifier().bytes());
        }
        assert_eq!(seen.len(), 66);
    }

    #[test]
    fn parses_redirects() {
        let url = "https://bridge.example/oauth/x/callback?state=s123&code=VGNibzFW";
        assert_eq!(parse_redirect(url, "s123").unwrap(), "VGNibzFW");
        assert_eq!(parse_redirect("?code=abc&state=s", "s").unwrap(), "abc");
        assert_eq!(parse_redirect("code=abc&state=s", "s").unwrap(), "abc");
        assert_eq!(
            parse_redirect(url, "other"),
            Err(OAuth2Error::StateMismatch)
        );
        assert_eq!(
            parse_redirect("state=s", "s"),
            Err(OAuth2Error::MissingCode)
        );
        let denied = parse_redirect(
            "https://b.example/cb?error=access_denied&error_description=The+user+denied&state=s",
            "s",
        )
        .unwrap_err();
        assert_eq!(denied, OAuth2Error::Denied(Some("The user denied".into())));
        assert_eq!(
            denied.to_string(),
            "the X authorization was denied (The user denied)"
        );
        assert!(matches!(
            parse_redirect("error=invalid_scope&state=s", "s"),
            Err(OAuth2Error::AuthorizationFailed { .. })
        ));
    }

    #[test]
    fn builds_the_authorize_url() {
        let client = OAuth2Client::new("https://api.x.com/2/oauth2/token", "cid", None).unwrap();
        assert_eq!(
            client.revoke_url.as_str(),
            "https://api.x.com/2/oauth2/revoke"
        );
        let pkce = Pkce::from_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        let url = client
            .authorize_url(
                AUTHORIZE_URL,
                "http://127.0.0.1:8787/callback",
                SCOPES,
                "st",
                &pkce,
            )
            .unwrap();
        assert!(matches!(
            client.authorize_url("not a url", "r", SCOPES, "st", &pkce),
            Err(OAuth2Error::Invalid(_))
        ));
        let q: std::collections::BTreeMap<String, String> =
            url.query_pairs().into_owned().collect();
        assert_eq!(url.host_str(), Some("x.com"));
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], "cid");
        assert_eq!(q["redirect_uri"], "http://127.0.0.1:8787/callback");
        assert_eq!(q["scope"], SCOPES);
        assert_eq!(q["state"], "st");
        assert_eq!(
            q["code_challenge"],
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_eq!(q["code_challenge_method"], "S256");
    }
}
