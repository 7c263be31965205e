//! Who an X call is made as: a business account's OAuth 1.0a token or its OAuth 2.0 user access
//! token ([`UserAuth`]), and where OAuth 2.0 tokens come from ([`UserTokenSource`]).
//!
//! The client asks the source for `business`'s token before each call; when X answers 401 to an
//! OAuth 2.0 call it reports the token with [`UserTokenSource::token_rejected`] and retries once
//! with the token it gets back (an access token that expired a second ago is refreshed without a
//! failed send). Keeping, refreshing and storing tokens is the source's job (the app wires a
//! store-backed keeper in); this crate only uses them.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use xdm_core::ids::XUserId;
use xdm_core::ports::XError;

use crate::oauth1::AccessToken;

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
