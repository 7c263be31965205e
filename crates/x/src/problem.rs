//! X's error bodies (docs/protocols.md A4.4), all read by one forgiving model:
//! * the v2 problem `{"title","detail","type","status"}` (`type` = `https://api.x.com/2/problems/<kind>`,
//!   or `api.twitter.com` on older responses, or `about:blank`), sometimes with `errors[]`;
//! * the legacy `{"errors":[{"code","message"}]}`;
//! * the partial-success `errors[]` beside or instead of `data` (items with `resource_id`,
//!   `resource_type`, `title`, `detail`, `type`), e.g. a user that does not exist.

use serde::Deserialize;

use crate::lenient;

/// The part of a problem `type` URI before the kind.
const PROBLEMS_PATH: &str = "/2/problems/";

/// An X error body. Every field is optional; unknown fields are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Problem {
    #[serde(default, deserialize_with = "lenient::string")]
    pub title: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub detail: Option<String>,
    #[serde(rename = "type", default, deserialize_with = "lenient::string")]
    pub problem_type: Option<String>,
    #[serde(default, deserialize_with = "lenient::unsigned")]
    pub status: Option<u64>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub errors: Vec<ProblemItem>,
}

/// An item of `errors[]`, in the legacy or the v2 form.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ProblemItem {
    /// Legacy numeric code (88 = rate limit exceeded).
    #[serde(default, deserialize_with = "lenient::unsigned")]
    pub code: Option<u64>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub message: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub title: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub detail: Option<String>,
    #[serde(rename = "type", default, deserialize_with = "lenient::string")]
    pub problem_type: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub resource_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub resource_type: Option<String>,
}

/// The `<kind>` of `https://api.x.com/2/problems/<kind>` (any host: X moved from api.twitter.com).
pub fn problem_kind(problem_type: &str) -> Option<&str> {
    let (_, kind) = problem_type.rsplit_once(PROBLEMS_PATH)?;
    Some(kind.trim_end_matches('/')).filter(|k| !k.is_empty() && !k.contains('/'))
}

impl Problem {
    /// Reads an error body; `None` when it is not a JSON object.
    pub fn parse(body: &[u8]) -> Option<Self> {
        let value: serde_json::Value = serde_json::from_slice(body).ok()?;
        if !value.is_object() {
            return None;
        }
        Self::deserialize(value).ok()
    }

    /// The kind of the top-level problem (`usage-capped`, `invalid-request`, …).
    pub fn kind(&self) -> Option<&str> {
        problem_kind(self.problem_type.as_deref()?)
    }

    /// The pay-per-use spend cap (a 429 that is not a rate limit and is not retried).
    pub fn is_usage_capped(&self) -> bool {
        self.kind() == Some("usage-capped")
    }

    /// Whether an `errors[]` item says the resource does not exist.
    pub fn has_resource_not_found(&self) -> bool {
        self.kind() == Some("resource-not-found")
            || self.errors.iter().any(|e| {
                e.problem_type.as_deref().and_then(problem_kind) == Some("resource-not-found")
            })
    }

    /// One short line for an error message: the detail, else the title, else the first item's
    /// detail or message. Control characters become spaces; at most 300 characters.
    pub fn summary(&self) -> Option<String> {
        let first = self.errors.first();
        let text = [
            self.detail.as_deref(),
            self.title.as_deref(),
            first.and_then(|e| e.detail.as_deref()),
            first.and_then(|e| e.message.as_deref()),
            first.and_then(|e| e.title.as_deref()),
        ]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|s| !s.is_empty())?;
        Some(one_line(text, 300))
    }
}

/// What an error answer is called when its body says nothing: the status's reason phrase.
pub(crate) fn status_reason(status: http::StatusCode) -> String {
    status
        .canonical_reason()
        .unwrap_or("no reason given")
        .to_owned()
}

/// `s` on one line, cut to `max` characters.
pub(crate) fn one_line(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_rate_limit_problem() {
        let p = Problem::parse(
            br#"{"title":"Too Many Requests","detail":"Too Many Requests","type":"about:blank","status":429}"#,
        )
        .unwrap();
        assert_eq!(p.status, Some(429));
        assert_eq!(p.kind(), None);
        assert!(!p.is_usage_capped());
        assert_eq!(p.summary().as_deref(), Some("Too Many Requests"));
    }

    #[test]
    fn recognises_usage_capped_on_both_hosts() {
        for host in ["api.x.com", "api.twitter.com"] {
            let body = format!(
                r#"{{"title":"UsageCapExceeded","detail":"Usage cap exceeded: Monthly product cap","type":"https://{host}/2/problems/usage-capped","period":"Monthly","scope":"Product"}}"#
            );
            let p = Problem::parse(body.as_bytes()).unwrap();
            assert!(p.is_usage_capped(), "{host}");
            assert_eq!(
                p.summary().as_deref(),
                Some("Usage cap exceeded: Monthly product cap")
            );
        }
    }

    #[test]
    fn reads_invalid_request_and_forbidden() {
        let p = Problem::parse(br#"{"errors":[{"parameters":{"id":["3456 "]},"message":"The `id` query parameter value [3456 ] is not valid"}],"title":"Invalid Request","detail":"One or more parameters to your request was invalid.","type":"https://api.twitter.com/2/problems/invalid-request"}"#).unwrap();
        assert_eq!(p.kind(), Some("invalid-request"));
        assert_eq!(
            p.summary().as_deref(),
            Some("One or more parameters to your request was invalid.")
        );
        assert_eq!(
            p.errors[0].message.as_deref(),
            Some("The `id` query parameter value [3456 ] is not valid")
        );
        let p = Problem::parse(
            br#"{"title":"Forbidden","type":"about:blank","status":403,"detail":"Forbidden"}"#,
        )
        .unwrap();
        assert_eq!(p.summary().as_deref(), Some("Forbidden"));
    }

    #[test]
    fn reads_legacy_errors() {
        let p =
            Problem::parse(br#"{"errors":[{"code":88,"message":"Rate limit exceeded"}]}"#).unwrap();
        assert_eq!(p.errors[0].code, Some(88));
        assert_eq!(p.summary().as_deref(), Some("Rate limit exceeded"));
    }

    #[test]
    fn reads_partial_errors() {
        let p = Problem::parse(br#"{"errors":[{"value":"1","detail":"Could not find user with id: [1].","title":"Not Found Error","resource_type":"user","parameter":"id","resource_id":"1","type":"https://api.x.com/2/problems/resource-not-found"}]}"#).unwrap();
        assert!(p.has_resource_not_found());
        assert_eq!(p.errors[0].resource_id.as_deref(), Some("1"));
        assert_eq!(
            p.summary().as_deref(),
            Some("Could not find user with id: [1].")
        );
    }

    #[test]
    fn tolerates_garbage() {
        assert_eq!(Problem::parse(b"<html>502</html>"), None);
        assert_eq!(Problem::parse(b"[1]"), None);
        let p = Problem::parse(br#"{"title":["x"],"errors":"nope","status":"x"}"#).unwrap();
        assert_eq!(p, Problem::default());
        assert_eq!(p.summary(), None);
        assert_eq!(problem_kind("https://api.x.com/2/problems/"), None);
        assert_eq!(problem_kind("about:blank"), None);
        let long = Problem {
            detail: Some(format!("a\nb{}", "x".repeat(400))),
            ..Problem::default()
        };
        let s = long.summary().unwrap();
        assert!(s.starts_with("a b") && s.chars().count() == 301);
    }
}
