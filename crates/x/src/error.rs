//! Failures of X calls classified for the core as [`XError`]s: an error answer by its status
//! and body ([`error_from_response`]: 429 `usage-capped` ⇒ `UsageCapped`, other 429 ⇒
//! `RateLimited` (reset from `x-rate-limit-reset`), 401 ⇒ `Unauthorized`, 403 ⇒ `Forbidden`,
//! 400 ⇒ `Invalid`, 404 ⇒ `NotFound`, 5xx ⇒ `Unavailable`), timeouts and connection errors, and
//! success answers whose body is not what X documents (`Unavailable`).

use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderMap, StatusCode};
use xdm_core::metric_names::{self, PLATFORM_X};
use xdm_core::ports::XError;

use crate::problem::{Problem, one_line, status_reason};
use crate::rate_limit;

/// Classifies an X error answer (any non-2xx) for the core.
pub fn error_from_response(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> XError {
    let problem = Problem::parse(body);
    let summary = problem
        .as_ref()
        .and_then(Problem::summary)
        .unwrap_or_else(|| status_reason(status));
    let code = status.as_u16();
    let usage_capped = code == 429 && problem.as_ref().is_some_and(Problem::is_usage_capped);
    count_error_answer(status, headers, code == 429 && !usage_capped);
    match code {
        429 if usage_capped => XError::UsageCapped(summary),
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

/// Counts an error answer of X in `xdm_platform_errors_total` (code: the HTTP status) and, when
/// `rate_limited` (a 429 that is not the usage cap), the wait until `x-rate-limit-reset` in the
/// rate-limit counters. Every classification of an X error answer calls it once.
pub(crate) fn count_error_answer(status: StatusCode, headers: &HeaderMap, rate_limited: bool) {
    metric_names::platform_error(PLATFORM_X, status.as_str().to_owned());
    if rate_limited {
        let now_s = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let wait_s = rate_limit::reset_at_s(headers)
            .and_then(|at| u64::try_from(at).ok())
            .map_or(0, |at| at.saturating_sub(now_s));
        metric_names::rate_limit_wait(PLATFORM_X, wait_s);
    }
}

/// A request that got no (whole) answer: a timeout, a connection error, a failed read.
pub(crate) fn transport_error(e: reqwest::Error) -> XError {
    let e = e.without_url();
    metric_names::platform_error(
        PLATFORM_X,
        if e.is_timeout() {
            "timeout"
        } else if e.is_connect() {
            "connect"
        } else {
            "transport"
        },
    );
    if e.is_timeout() {
        XError::Unavailable(format!("X did not answer in time: {e}"))
    } else if e.is_connect() {
        XError::Unavailable(format!("cannot connect to X: {e}"))
    } else {
        XError::Unavailable(format!("the request to X failed: {e}"))
    }
}

/// A success answer to `what` whose body is not what X documents.
pub(crate) fn unexpected_body(what: &str, body: &[u8]) -> XError {
    metric_names::platform_error(PLATFORM_X, "unexpected_answer");
    let shown = one_line(&String::from_utf8_lossy(body), 200);
    XError::Unavailable(format!(
        "X answered {what} with an unexpected body: {shown}"
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

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
