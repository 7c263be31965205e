use std::fmt;
use std::future::Future;

/// What an OAuth 2.0 token endpoint grants (`POST /2/oauth2/token`, either grant type).
#[derive(Clone, PartialEq, Eq)]
pub struct TokenGrant {
    pub access_token: String,
    /// Only with the `offline.access` scope. X's refresh tokens are single-use: a refresh
    /// answers a new one and the old one is spent.
    pub refresh_token: Option<String>,
    /// Seconds the access token lives (X: 7,200); `None` when the endpoint did not say.
    pub expires_in_s: Option<i64>,
    /// Space-separated scopes granted.
    pub scope: Option<String>,
}

impl fmt::Debug for TokenGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenGrant")
            .field("access_token", &"<redacted>")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field("expires_in_s", &self.expires_in_s)
            .field("scope", &self.scope)
            .finish()
    }
}

/// Why a refresh did not give a new token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefreshError {
    /// The token endpoint refused the refresh token (`invalid_grant`, `invalid_request`,
    /// revoked, spent, or the client is not authorised): only a new login helps.
    #[error("X refused the refresh token: {0}")]
    Rejected(String),
    /// Network, timeout, 5xx or 429: the same refresh token may work later.
    #[error("the X token endpoint is unavailable: {0}")]
    Unavailable(String),
}

/// The OAuth 2.0 refresh-token grant (implemented by `xdm-x` over HTTP, by fakes in tests).
pub trait TokenRefresher: Send + Sync + 'static {
    /// Exchanges `refresh_token` for a new grant. Spends `refresh_token` when it succeeds.
    fn refresh(
        &self,
        refresh_token: &str,
    ) -> impl Future<Output = Result<TokenGrant, RefreshError>> + Send;
}
