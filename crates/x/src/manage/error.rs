//! What went wrong with a management call: [`ManageError`], one line built from X's problem
//! (never raw JSON), with the [`ManageReason`] when it is one the CLI explains or accepts.

use http::{HeaderMap, StatusCode};
use xdm_core::ports::XError;

use crate::problem::{Problem, one_line, status_reason};
use crate::rate_limit;
use crate::transport::Answer;

/// What X said was wrong with a management call, when recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManageReason {
    /// X's CRC check of the webhook URL failed (no answer, or a wrong `response_token`).
    CrcValidationFailed,
    /// The URL is not acceptable to X (not https, a port, a bad format).
    UrlValidationFailed,
    /// A webhook with this URL is already registered.
    DuplicateUrlFailed,
    /// The app has as many webhooks as its plan allows.
    WebhookLimitExceeded,
    /// The account is already subscribed.
    DuplicateSubscriptionFailed,
    /// The app has as many subscriptions as its plan allows.
    SubscriptionLimitExceeded,
    /// 401/403: the credentials are refused or lack the permission (scope, app access level).
    NotAuthorized,
    /// 429 (`reset_at_s`: when X's window resets, Unix seconds).
    RateLimited { reset_at_s: Option<i64> },
    /// 429 `usage-capped`: the app's pay-per-use spend cap is reached. Not a rate limit: no
    /// window resets it, waiting does not help (raise the cap in X's developer console).
    UsageCapped,
    /// 404: no such webhook or subscription.
    NotFound,
    /// 5xx, timeouts, connection errors, unreadable answers.
    Unavailable,
}

impl ManageReason {
    /// X's own name for it, when it has one.
    fn x_name(self) -> Option<&'static str> {
        Some(match self {
            Self::CrcValidationFailed => "CrcValidationFailed",
            Self::UrlValidationFailed => "UrlValidationFailed",
            Self::DuplicateUrlFailed => "DuplicateUrlFailed",
            Self::WebhookLimitExceeded => "WebhookLimitExceeded",
            Self::DuplicateSubscriptionFailed => "DuplicateSubscriptionFailed",
            Self::SubscriptionLimitExceeded => "SubscriptionLimitExceeded",
            _ => return None,
        })
    }
}

/// A management call that did not succeed. `Display` is one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ManageError {
    reason: Option<ManageReason>,
    message: String,
}

impl ManageError {
    pub(crate) fn new(reason: impl Into<Option<ManageReason>>, message: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            message: message.into(),
        }
    }

    /// The recognised reason; `None` for anything else X (or this side) refused.
    pub fn reason(&self) -> Option<ManageReason> {
        self.reason
    }

    /// The explanation alone.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// A successful answer to `what` whose body is not what X documents.
    pub(crate) fn unexpected(what: &str, body: &[u8]) -> Self {
        let shown = one_line(&String::from_utf8_lossy(body), 200);
        Self::new(
            ManageReason::Unavailable,
            format!("X answered {what} with an unexpected body: {shown}"),
        )
    }
}

impl From<XError> for ManageError {
    fn from(e: XError) -> Self {
        let reason = match &e {
            XError::Unauthorized(_) | XError::Forbidden(_) => ManageReason::NotAuthorized,
            XError::RateLimited { reset_at_s } => ManageReason::RateLimited {
                reset_at_s: *reset_at_s,
            },
            XError::NotFound(_) => ManageReason::NotFound,
            XError::Unavailable(_) => ManageReason::Unavailable,
            _ => return Self::new(None, e.to_string()),
        };
        Self::new(reason, e.to_string())
    }
}

/// Classifies an error answer of a management call.
pub fn manage_error(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ManageError {
    let code = status.as_u16();
    let text = String::from_utf8_lossy(body);
    let known = [
        ManageReason::CrcValidationFailed,
        ManageReason::UrlValidationFailed,
        ManageReason::DuplicateUrlFailed,
        ManageReason::WebhookLimitExceeded,
        ManageReason::DuplicateSubscriptionFailed,
        ManageReason::SubscriptionLimitExceeded,
    ]
    .into_iter()
    .find(|r| r.x_name().is_some_and(|name| text.contains(name)));
    let summary = Problem::parse(body)
        .and_then(|p| {
            // The first item's message is usually the precise one ("… failed CRC").
            let first = p.errors.first();
            [
                first.and_then(|e| e.message.clone()),
                first.and_then(|e| e.detail.clone()),
            ]
            .into_iter()
            .flatten()
            .find(|s| !s.trim().is_empty())
            .map(|s| one_line(s.trim(), 300))
            .or_else(|| p.summary())
        })
        .unwrap_or_else(|| status_reason(status));
    let usage_capped = code == 429 && Problem::parse(body).is_some_and(|p| p.is_usage_capped());
    crate::error::count_error_answer(status, headers, code == 429 && !usage_capped);
    let reason = match (known, code) {
        (Some(r), _) => Some(r),
        (None, 401 | 403) => Some(ManageReason::NotAuthorized),
        (None, 429) if usage_capped => Some(ManageReason::UsageCapped),
        (None, 429) => Some(ManageReason::RateLimited {
            reset_at_s: rate_limit::reset_at_s(headers),
        }),
        (None, 404) => Some(ManageReason::NotFound),
        (None, 408 | 500..=599) => Some(ManageReason::Unavailable),
        (None, _) => None,
    };
    let message = match reason {
        Some(ManageReason::NotAuthorized) => {
            format!("X refused the credentials (HTTP {code}): {summary}")
        }
        Some(ManageReason::RateLimited {
            reset_at_s: Some(at),
        }) => format!("X rate-limited the call (HTTP 429) until Unix time {at}: {summary}"),
        Some(ManageReason::UsageCapped) => format!(
            "X refused the call: the app's usage cap is spent (HTTP 429; raise it in the developer console): {summary}"
        ),
        _ => match reason.and_then(ManageReason::x_name) {
            Some(name) if !summary.contains(name) => format!("HTTP {code}: {summary} ({name})"),
            _ => format!("HTTP {code}: {summary}"),
        },
    };
    ManageError::new(reason, message)
}

/// The body of a successful answer; a failed one classified ([`manage_error`]).
pub(crate) fn accepted(answer: Answer) -> Result<Vec<u8>, ManageError> {
    if answer.status.is_success() {
        Ok(answer.body)
    } else {
        Err(manage_error(answer.status, &answer.headers, &answer.body))
    }
}
