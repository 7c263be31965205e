//! [`reject`]: the plain-text error answer every handler gives, counted in
//! `xdm_http_rejections_total`; [`refuse`]: the same for a request anyone could have sent
//! (unauthenticated, unreadable or replayed), counted by reason and logged within limits.

use std::fmt::Display;

use super::log_limit::REFUSALS;
use crate::monitoring::webhooks::{self, Refusal, Source};

/// A one-line plain-text error answer.
pub(crate) fn reject(
    status: http::StatusCode,
    reason: impl Into<String>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let reason = reason.into();
    metrics::counter!("xdm_http_rejections_total", "status" => status.as_u16().to_string())
        .increment(1);
    (
        status,
        [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{reason}\n"),
    )
        .into_response()
}

/// Refuses a request that anyone could have sent — a bad or missing signature, a foreign
/// topic, a body that is not the platform's, a replayed message: counted in
/// `xdm_webhook_requests_total` with its `reason`, logged at WARN as `what` with the error at
/// most 10 times a minute per `log_key` (then one line with the count left out; `log_limit`),
/// and answered `status` with the error.
pub(crate) fn refuse(
    source: Source,
    reason: Refusal,
    log_key: &'static str,
    what: &'static str,
    status: http::StatusCode,
    error: &dyn Display,
) -> axum::response::Response {
    webhooks::refused(source, reason);
    if REFUSALS.admit(log_key) {
        tracing::warn!(reason = log_key, status = status.as_u16(), error = %error, "{what}");
    }
    reject(status, error.to_string())
}

/// The answer to a webhook body that could not be read: too large is 413, counted as
/// `too_large` for `source`; anything else (the body cut short by the listener's time or memory
/// limit, the client gone) is answered by the listener, which counts it (`connection.rs`), so
/// it is not counted again here.
pub(crate) fn unread_body(
    source: Source,
    rejection: axum::extract::rejection::BytesRejection,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if rejection.status() == http::StatusCode::PAYLOAD_TOO_LARGE {
        webhooks::refused(source, Refusal::TooLarge);
        return reject(rejection.status(), rejection.body_text());
    }
    rejection.into_response()
}
