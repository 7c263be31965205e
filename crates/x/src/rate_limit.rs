//! X's rate-limit headers (docs/protocols.md A4.3): `x-rate-limit-limit`, `x-rate-limit-remaining`,
//! `x-rate-limit-reset` (Unix seconds), read into a typed value in the manner of twilight-http's
//! `RateLimitHeaders`: all three or none.

use http::HeaderMap;

pub const LIMIT: &str = "x-rate-limit-limit";
pub const REMAINING: &str = "x-rate-limit-remaining";
pub const RESET: &str = "x-rate-limit-reset";

/// The rate-limit state a response reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitHeaders {
    Present {
        /// Requests allowed in the window.
        limit: u64,
        /// Requests left in the window.
        remaining: u64,
        /// When the window resets, Unix seconds.
        reset_at_s: i64,
    },
    /// The response carried none of the three headers.
    Missing,
}

/// A rate-limit header that is there but unreadable, or missing beside the others.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateLimitHeaderError {
    #[error("the {0} header is missing while the other rate-limit headers are present")]
    Missing(&'static str),
    #[error("the {0} header is not a number")]
    NotANumber(&'static str),
}

impl RateLimitHeaders {
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, RateLimitHeaderError> {
        let present = [LIMIT, REMAINING, RESET]
            .iter()
            .any(|name| headers.contains_key(*name));
        if !present {
            return Ok(Self::Missing);
        }
        Ok(Self::Present {
            limit: number(headers, LIMIT)?,
            remaining: number(headers, REMAINING)?,
            reset_at_s: number(headers, RESET)?,
        })
    }

    /// When the window resets (Unix seconds), if reported.
    pub fn reset_at_s(&self) -> Option<i64> {
        match self {
            Self::Present { reset_at_s, .. } => Some(*reset_at_s),
            Self::Missing => None,
        }
    }
}

/// `x-rate-limit-reset` alone, leniently: what a 429 needs even when the other headers are odd.
pub fn reset_at_s(headers: &HeaderMap) -> Option<i64> {
    number(headers, RESET).ok()
}

fn number<T: std::str::FromStr>(
    headers: &HeaderMap,
    name: &'static str,
) -> Result<T, RateLimitHeaderError> {
    let value = headers
        .get(name)
        .ok_or(RateLimitHeaderError::Missing(name))?;
    value
        .to_str()
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or(RateLimitHeaderError::NotANumber(name))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, http::HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn reads_all_three() {
        let h = headers(&[
            ("x-rate-limit-limit", "15"),
            ("x-rate-limit-remaining", "0"),
            ("x-rate-limit-reset", "1775080934"),
        ]);
        let r = RateLimitHeaders::from_headers(&h).unwrap();
        assert_eq!(
            r,
            RateLimitHeaders::Present {
                limit: 15,
                remaining: 0,
                reset_at_s: 1_775_080_934
            }
        );
        assert_eq!(r.reset_at_s(), Some(1_775_080_934));
    }

    #[test]
    fn none_is_missing() {
        let r = RateLimitHeaders::from_headers(&headers(&[("content-type", "x")])).unwrap();
        assert_eq!(r, RateLimitHeaders::Missing);
        assert_eq!(r.reset_at_s(), None);
    }

    #[test]
    fn partial_or_garbage_is_an_error() {
        assert_eq!(
            RateLimitHeaders::from_headers(&headers(&[("x-rate-limit-reset", "1")])),
            Err(RateLimitHeaderError::Missing(LIMIT))
        );
        assert_eq!(
            RateLimitHeaders::from_headers(&headers(&[
                ("x-rate-limit-limit", "15"),
                ("x-rate-limit-remaining", "-1"),
                ("x-rate-limit-reset", "1"),
            ])),
            Err(RateLimitHeaderError::NotANumber(REMAINING))
        );
        assert_eq!(
            reset_at_s(&headers(&[("x-rate-limit-reset", " 42 ")])),
            Some(42)
        );
        assert_eq!(
            reset_at_s(&headers(&[("x-rate-limit-reset", "soon")])),
            None
        );
    }
}
