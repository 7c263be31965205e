//! Who an X call is made as: a business account's OAuth 1.0a token or its OAuth 2.0 user access
//! token ([`UserAuth`]), where OAuth 2.0 tokens come from ([`UserTokenSource`]), and the choice
//! between them for each call (`Credentials`).
//!
//! * Every call is made in user context as the business account it acts for: with its OAuth 2.0
//!   access token when the source has one (`Authorization: Bearer`), else OAuth 1.0a-signed with
//!   its own token or the default token (JSON bodies are not signed; query parameters are), else
//!   the call fails with `Unauthorized` naming the account. OAuth 1.0a is optional: an OAuth
//!   2.0-only deployment has no consumer key at all.
//! * The client asks the source for `business`'s token before each call; when X answers 401 to an
//!   OAuth 2.0 call it reports the token with [`UserTokenSource::token_rejected`] and retries once
//!   with the token it gets back (an access token that expired a second ago is refreshed without
//!   a failed send). Keeping, refreshing and storing tokens is the source's job (the app wires a
//!   store-backed keeper in); this crate only uses them.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::{HeaderValue, Method};
use url::Url;
use xdm_core::ids::XUserId;
use xdm_core::ports::XError;

use crate::oauth1::{self, AccessToken, Consumer, SignableRequest};
use crate::transport::secret_header;

/// A boxed `Send` future (what keeps [`UserTokenSource`] usable as `dyn`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An OAuth 2.0 access token. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(String);

impl BearerToken {
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token itself: only for the `Authorization` header, never for logs.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(…)")
    }
}

/// The credentials one call is made with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserAuth {
    /// OAuth 1.0a user context, signed with the app's consumer and this token.
    OAuth1(AccessToken),
    /// OAuth 2.0 user context (`Authorization: Bearer`).
    OAuth2(BearerToken),
}

impl UserAuth {
    /// OAuth 2.0 with `access_token` (e.g. a brand-new token from a login).
    pub fn oauth2(access_token: impl Into<String>) -> Self {
        Self::OAuth2(BearerToken::new(access_token))
    }

    /// `"OAuth 1.0a"` or `"OAuth 2.0"`, for logs and messages.
    pub fn scheme(&self) -> &'static str {
        match self {
            Self::OAuth1(_) => "OAuth 1.0a",
            Self::OAuth2(_) => "OAuth 2.0",
        }
    }
}

/// Where OAuth 2.0 user access tokens come from (the lead wires a store-backed keeper in).
pub trait UserTokenSource: Send + Sync + fmt::Debug + 'static {
    /// A valid access token for `business`; `Ok(None)` when it has no OAuth 2.0 token.
    fn access_token<'a>(
        &'a self,
        business: &'a XUserId,
    ) -> BoxFuture<'a, Result<Option<String>, XError>>;

    /// X answered 401 to `token`: a fresh token to retry once with (`Ok(None)`: none).
    fn token_rejected<'a>(
        &'a self,
        business: &'a XUserId,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, XError>>;
}

/// The credentials a client can act with: the app's OAuth 1.0a consumer and tokens, and the
/// source of OAuth 2.0 user tokens.
#[derive(Debug, Clone, Default)]
pub(crate) struct Credentials {
    /// OAuth 1.0a: none in an OAuth 2.0-only deployment.
    pub(crate) consumer: Option<Consumer>,
    pub(crate) default_token: Option<AccessToken>,
    pub(crate) account_tokens: HashMap<XUserId, AccessToken>,
    pub(crate) user_tokens: Option<Arc<dyn UserTokenSource>>,
}

impl Credentials {
    /// The OAuth 1.0a token used to act as `business`: its own when configured, else the
    /// default; `None` without one or without a consumer.
    pub(crate) fn oauth1_token(&self, business: &XUserId) -> Option<&AccessToken> {
        self.consumer.as_ref()?;
        self.account_tokens
            .get(business)
            .or(self.default_token.as_ref())
    }

    /// Who a call for `business` is made as: OAuth 2.0 when the token source has a token for it,
    /// else OAuth 1.0a when configured, else `Unauthorized`.
    pub(crate) async fn auth_for(&self, business: &XUserId) -> Result<UserAuth, XError> {
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

    /// X answered 401 to `rejected`: the OAuth 2.0 credentials to send the call once more with,
    /// when the source gives back another token.
    pub(crate) async fn after_rejection(
        &self,
        business: &XUserId,
        rejected: &BearerToken,
    ) -> Result<Option<UserAuth>, XError> {
        let Some(source) = &self.user_tokens else {
            return Ok(None);
        };
        Ok(source
            .token_rejected(business, rejected.expose_secret())
            .await?
            .filter(|fresh| fresh != rejected.expose_secret())
            .map(UserAuth::oauth2))
    }

    /// The `Authorization` header value of a request made as `auth` (no form body): a Bearer
    /// token, or an OAuth 1.0a signature over the method, URL and query.
    pub(crate) fn authorization_for(
        &self,
        auth: &UserAuth,
        method: &Method,
        url: &Url,
    ) -> Result<String, XError> {
        match auth {
            UserAuth::OAuth2(token) => Ok(format!("Bearer {}", token.expose_secret())),
            UserAuth::OAuth1(token) => {
                let consumer = self.consumer.as_ref().ok_or_else(|| {
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

    /// [`Self::authorization_for`] as a sensitive header value.
    pub(crate) fn authorization_header(
        &self,
        auth: &UserAuth,
        method: &Method,
        url: &Url,
    ) -> Result<HeaderValue, XError> {
        secret_header(&self.authorization_for(auth, method, url)?).ok_or_else(|| {
            XError::Unauthorized("the X credentials cannot be sent in a header".into())
        })
    }
}

/// The error of a call for an account nobody can act as.
pub(crate) fn no_credentials(business: &XUserId) -> XError {
    XError::Unauthorized(format!(
        "no X credentials for account {business}: run `xdm-connect x login`"
    ))
}
