//! Why an OAuth 2.0 step failed ([`OAuth2Error`]); messages never carry a token or a code.

use crate::problem::one_line;

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
